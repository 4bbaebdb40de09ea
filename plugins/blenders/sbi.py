"""Self-blended images (Shiohara & Yamasaki, CVPR 2022), written from the paper's description.

One real face is copied into a source and a target; one of them (chosen at random) gets colour
(RGB shift / hue-saturation, brightness-contrast) and frequency (downscale or sharpen) transforms,
and the source is moved by a small random scale and translation. The blend mask is the convex
hull of the 68 landmarks, deformed by a smooth random radial wobble (a cheap stand-in for the
paper's elastic mask deformation, done on the polygon rather than on pixels), shrunk by a random
amount, filled, Gaussian-blurred and multiplied by a blend ratio drawn from {.25, .5, .75, 1, 1, 1}:

    fake = source * mask + target * (1 - mask)      mask: 1 = altered (source pixels)

Where the mask is 0 the fake equals the target. For the real counterpart, ``blender.pair(face,
lm, rng) -> (real, BlendResult)`` returns the target copy as the real (as SBI's training pairs
do), or ``augment_real`` draws one with the target's distribution (augmented half the time).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from harness.api import BlendResult, Register, hookimpl

from .augment import CopyAugment
from .blend_ops import composite, mask_box
from .grid_mask import MASK_FLOOR, blur_around, fill_polygon
from .inputs import check_face, check_inputs
from .regions import face_size, hull

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def _r(v: float, nd: int = 3) -> float:
    return round(float(v), nd)


class SBIBlender:
    """SBI baseline; ``blender(face, landmarks68, rng) -> BlendResult``.

    Options: translate (max shift as a fraction of width, height), scale (range), wobble (max radial
    mask deformation, fraction of face size), shrink (range of inward mask offset, fraction of
    face size), blur (mask Gaussian sigma range, fraction of face size), blend_ratios.
    """

    name = "sbi"

    def __init__(
        self,
        translate: tuple[float, float] = (0.03, 0.015),
        scale: tuple[float, float] = (0.95, 1 / 0.95),
        wobble: float = 0.04,
        shrink: tuple[float, float] = (0.0, 0.05),
        blur: tuple[float, float] = (0.01, 0.06),
        blend_ratios: tuple[float, ...] = BLEND_RATIOS,
    ) -> None:
        if not blend_ratios or not all(0 < r <= 1 for r in blend_ratios):
            raise ValueError("sbi: blend_ratios must be a non-empty list of values in (0, 1]")
        self.translate = (float(translate[0]), float(translate[1]))
        self.scale = (float(scale[0]), float(scale[1]))
        self.wobble = float(wobble)
        self.shrink = (float(shrink[0]), float(shrink[1]))
        self.blur = (float(blur[0]), float(blur[1]))
        self.blend_ratios = tuple(float(r) for r in blend_ratios)
        # SBI's source-target transforms: colour then one frequency op, no JPEG (that is the
        # trainer's own augmentation, applied to reals and fakes alike).
        self.augment = CopyAugment(
            p_rgb_shift=0.5, p_hue_sat=0.5, p_bright_contrast=1.0, p_sharpen=0.5, p_downscale=0.5, p_jpeg=0.0
        )

    def augment_real(self, face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The real counterpart: augmented half the time, like the fake's target (outside) copy."""
        face = check_face(face, "sbi.augment_real")
        return self.augment(face, rng)[0] if rng.random() < 0.5 else face.copy()

    def _mask(self, lm: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        h, w = shape
        size = face_size(lm)
        outline = hull(lm)
        centre = outline.mean(0)
        # Resample the hull outline densely, then move each point radially by a smooth random
        # wobble (three low harmonics of the angle) minus a random shrink.
        closed = np.vstack([outline, outline[:1]])
        seg = np.hypot(*np.diff(closed, axis=0).T)
        t = np.concatenate([[0.0], np.cumsum(seg)])
        s = np.linspace(0.0, t[-1], 72, endpoint=False)
        pts = np.stack([np.interp(s, t, closed[:, 0]), np.interp(s, t, closed[:, 1])], axis=1)
        d = pts - centre
        ang = np.arctan2(d[:, 1], d[:, 0])
        amp = rng.uniform(0, self.wobble, 3) * size
        phase = rng.uniform(0, 2 * math.pi, 3)
        wobble = sum(amp[k] * np.sin((k + 2) * ang + phase[k]) for k in range(3))
        shrink = float(rng.uniform(*self.shrink)) * size
        radius = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)
        pts = centre + d * (np.maximum(radius + wobble - shrink, 0.1 * radius) / radius)[:, None]
        binary = np.zeros((h, w), np.uint8)
        fill_polygon(binary, pts)
        mask = binary.astype(np.float32)
        sigma = float(rng.uniform(*self.blur)) * size
        if blur_around(mask, binary, sigma):
            mask[mask < MASK_FLOOR] = 0.0
            np.clip(mask, 0.0, 1.0, out=mask)  # float blur can overshoot 1 by an ulp
        return mask, {"wobble_px": [_r(a, 2) for a in amp], "shrink_px": _r(shrink, 2), "blur_sigma_px": _r(sigma, 2)}

    def __call__(self, face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> BlendResult:
        return self.pair(face, landmarks, rng)[1]

    def pair(
        self, face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, BlendResult]:
        """(real, fake): the real is the target copy, so the pair differs only inside the mask."""
        face, lm = check_inputs(face, landmarks, rng, "sbi")
        h, w = face.shape[:2]
        augment_source = bool(rng.random() < 0.5)
        augmented, aug_record = self.augment(face, rng)
        source, target = (augmented, face.copy()) if augment_source else (face, augmented)
        # Small random scale + translation of the source (and of the mask with it, as in SBI).
        k = float(rng.uniform(*self.scale))
        tx = float(rng.uniform(-self.translate[0], self.translate[0])) * w
        ty = float(rng.uniform(-self.translate[1], self.translate[1])) * h
        cx, cy = (w - 1) / 2, (h - 1) / 2
        affine = np.array([[k, 0, (1 - k) * cx + tx], [0, k, (1 - k) * cy + ty]], np.float64)
        moved = lm @ affine[:, :2].T + affine[:, 2]
        mask, mask_record = self._mask(moved, (h, w), rng)
        ratio = self.blend_ratios[int(rng.integers(len(self.blend_ratios)))]
        if ratio != 1.0:
            mask *= np.float32(ratio)
        # The moved source only shows inside the mask: warp just the mask's bounding box.
        box = mask_box(mask)
        x0, y0, x1, y1 = box
        if x1 > x0 and y1 > y0:
            shifted = affine.copy()
            shifted[:, 2] -= (x0, y0)
            patch = cv2.warpAffine(
                source, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
            fake = composite(target, patch, mask, origin=(x0, y0), box=box)
        else:
            fake = target.copy()
        record: dict[str, Any] = {
            "blender": "sbi",
            "regions": [{"name": "hull"}],
            "augmented": "source" if augment_source else "target",
            "augment": aug_record,
            "source_affine": {"scale": _r(k, 4), "tx_px": _r(tx, 2), "ty_px": _r(ty, 2)},
            "mask": mask_record,
            "blend_ratio": ratio,
            "composite": "fake = source*mask + target*(1-mask)",
            "mask_area": _r(float(mask.mean()), 4),
        }
        return target, BlendResult(image=fake, mask=mask, record=record)


@hookimpl
def register_blenders(register: Register) -> None:
    register("sbi", SBIBlender, "self-blended images baseline (Shiohara & Yamasaki, CVPR 2022), whole-face hull")
