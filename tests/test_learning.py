"""Learning is real: an ImageNet-initialised light encoder separates held-out self-blends from
reals, and a collapsing configuration is caught by the trainer's guard.

Thresholds are generous margins over chance (AUC 0.5), not values tuned to one machine's kernels.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import harness
from harness.vocab.config import RunConfig
from harness.data.sample_face import astronaut_face
from harness.models import DetectorLoss, build_model, to_tensor
from harness.training.trainer import collapse_stats, collapse_warning

SIZE = 64


def _pairs(seeds: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, masks) of real/fake pairs self-blended from the sample face."""
    face, landmarks = astronaut_face(128)
    blender = harness.plugin("blender", "multipart")
    images, labels, masks = [], [], []
    for seed in seeds:
        real, fake = blender.pair(np.array(face), np.array(landmarks), np.random.default_rng(seed))
        for image, mask, label in ((real, np.zeros(fake.mask.shape, np.float32), 0.0), (fake.image, fake.mask, 1.0)):
            images.append(cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
            masks.append(cv2.resize(mask, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
            labels.append(label)
    return np.stack(images), np.array(labels, np.float32), np.stack(masks)


def _scores(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.sigmoid(model(to_tensor(images)).logit).numpy()


def test_a_pretrained_light_encoder_separates_held_out_self_blends(one_thread):
    train_x, train_y, train_m = _pairs(range(48))
    test_x, test_y, _ = _pairs(range(1000, 1024))  # blends never seen in training
    torch.manual_seed(0)
    model = build_model("mobilenetv2", pretrained="imagenet", img_size=SIZE)
    before = roc_auc_score(test_y, _scores(model, test_x))
    loss_fn = DetectorLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x_all, y_all = to_tensor(train_x), torch.from_numpy(train_y)
    m_all = torch.from_numpy(train_m)[:, None]
    rng = np.random.default_rng(0)
    for _ in range(60):
        model.train()
        pick = torch.from_numpy(np.sort(rng.choice(len(train_y) // 2, 8, replace=False)))
        idx = torch.cat([2 * pick, 2 * pick + 1])  # 8 reals with their 8 fakes
        total, _ = loss_fn(model(x_all[idx]), y_all[idx], m_all[idx])
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    after = roc_auc_score(test_y, _scores(model, test_x))
    print(f"held-out self-blend AUC {before:.3f} -> {after:.3f}")
    assert after > 0.75  # measured 0.88 here; chance is 0.5
    assert after > before + 0.15


def test_the_collapse_guard_names_the_cause():
    config = RunConfig(pretrained=False)  # from scratch: the likely cause the guard names
    rng = np.random.default_rng(0)
    healthy = collapse_stats(rng.normal(size=(32, 64)), rng.uniform(size=32))
    assert collapse_warning(healthy, config) is None
    same = np.tile(rng.normal(size=(1, 64)), (32, 1)) + rng.normal(scale=1e-4, size=(32, 64))
    collapsed = collapse_stats(same, np.full(32, 0.5) + rng.normal(scale=1e-4, size=32))
    message = collapse_warning(collapsed, config)
    assert message is not None and "feature collapse" in message and "--pretrained imagenet" in message
    cosine = RunConfig.from_dict({**config.to_dict(), "loss": {**config.to_dict()["loss"], "sim_form": "cosine"}})
    assert "'cosine'" in collapse_warning(collapsed, cosine)
