"""The whole training path learns: a small Swin-UNet overfits 16 self-blended faces on CPU.

The 16 fakes are made here by a simple self-blend (a colour-shifted copy of the face pasted inside
a scaled, shifted landmark hull, crisp mask), so this test depends on nothing but the model code.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from harness.data.sample_face import astronaut_face
from harness.models import DetectorLoss, build_model, to_tensor

SIZE = 64


def _self_blend(face: np.ndarray, landmarks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hull = landmarks[:27]  # jaw + brows: the whole inner face
    centre = hull.mean(0)
    pts = (hull - centre) * rng.uniform(0.7, 1.0) + centre + rng.uniform(-4, 4, 2)
    mask = np.zeros(face.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts.astype(np.int32)), 1)
    shifted = np.clip(face.astype(np.int16) + rng.integers(-40, 41, 3), 0, 255).astype(np.uint8)
    return np.where(mask[..., None] > 0, shifted, face), mask.astype(np.float32)


def test_small_swin_unet_overfits_16_self_blended_faces():
    face, landmarks = astronaut_face(SIZE)
    pairs = [_self_blend(np.asarray(face), np.asarray(landmarks), seed) for seed in range(16)]
    x = to_tensor(np.stack([p[0] for p in pairs]))
    masks = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
    labels = torch.ones(16)
    labels[::4] = 0.0  # a few reals: the unaltered face, all-zero mask
    x[::4] = to_tensor(np.asarray(face)[None])
    masks[::4] = 0.0

    torch.manual_seed(0)
    model = build_model(
        "swin", img_size=SIZE, decoder_dim=32, embed_dim=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), drop_path_rate=0.0
    )
    loss_fn = DetectorLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    losses = []
    for _ in range(150):
        out = model(x)
        total, _ = loss_fn(out, labels, masks)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        losses.append(total.item())
    model.eval()
    with torch.no_grad():
        pred = torch.sigmoid(model(x).mask_logits) > 0.5
    truth = masks > 0.5
    iou = ((pred & truth).sum() / (pred | truth).sum()).item()
    everywhere = (truth.sum() / truth.numel()).item()  # IoU of marking every pixel altered
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, mask IoU {iou:.3f} (all-pixels baseline {everywhere:.3f})")
    # Measured 0.88 on one 2-core machine and 0.71 on another (the math kernels differ): the bounds
    # are margins over what an untrained mask head gets, not one machine's value.
    assert min(losses[-10:]) < 0.75 * losses[0]
    assert iou > 0.5
    assert iou > everywhere + 0.2
