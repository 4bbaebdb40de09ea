"""Photometric and frequency augmentation of one face copy, parameters drawn from the caller's rng.

We draw every parameter from the ``numpy.random.Generator`` handed to the blender and apply it
with plain cv2 ops (lookup tables, one small filter, one resize pair, one JPEG round trip), which
keeps a sample deterministic given the rng and costs well under a millisecond per copy at 256 px.
The ops mirror the albumentations transforms the paper names: RGBShift, HueSaturationValue,
RandomBrightnessContrast, Sharpen, Downscale and ImageCompression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

_LEVELS = np.arange(256, dtype=np.float32)


@dataclass
class CopyAugment:
    """One copy's augmentation. Each ``p_*`` is the probability an op runs; ranges are (low, high)."""

    p_rgb_shift: float = 0.3
    rgb_shift: float = 20.0  # +- levels per channel
    p_hue_sat: float = 0.3
    hue_shift: float = 6.0  # +- OpenCV hue units (180 = full circle)
    sat_shift: float = 25.0  # +- saturation levels
    p_bright_contrast: float = 1.0
    brightness: float = 0.1  # +- fraction of 255
    contrast: float = 0.1  # +- fraction
    p_sharpen: float = 0.25
    sharpen_alpha: tuple[float, float] = (0.2, 0.5)
    p_downscale: float = 0.25
    downscale: tuple[float, float] = (0.5, 0.9)
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (60, 100)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """Augment an RGB uint8 image; returns a new image and a JSON-able record of what ran."""
        record: dict[str, Any] = {}
        # Channel gain/offset ops fold into one per-channel lookup table.
        gain = np.ones(3, np.float32)
        offset = np.zeros(3, np.float32)
        if rng.random() < self.p_rgb_shift:
            shift = rng.uniform(-self.rgb_shift, self.rgb_shift, 3).astype(np.float32)
            offset += shift
            record["rgb_shift"] = [round(float(s), 2) for s in shift]
        if rng.random() < self.p_bright_contrast:
            alpha = 1.0 + rng.uniform(-self.contrast, self.contrast)
            beta = 255.0 * rng.uniform(-self.brightness, self.brightness)
            gain *= alpha
            offset = offset * alpha + beta
            record["brightness_contrast"] = [round(float(beta), 2), round(float(alpha), 4)]
        out = image
        if record:
            lut = np.clip(_LEVELS[:, None] * gain + offset, 0, 255).astype(np.uint8)
            out = cv2.LUT(image, lut.reshape(256, 1, 3))
        if rng.random() < self.p_hue_sat:
            dh = int(round(rng.uniform(-self.hue_shift, self.hue_shift)))
            ds = float(rng.uniform(-self.sat_shift, self.sat_shift))
            hue = (np.arange(256) + dh) % 180  # OpenCV 8-bit hue lives in [0, 180)
            sat = np.clip(_LEVELS + ds, 0, 255)
            lut = np.stack([hue, sat, _LEVELS], axis=1).astype(np.uint8).reshape(256, 1, 3)
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
            out = cv2.cvtColor(cv2.LUT(hsv, lut), cv2.COLOR_HSV2RGB)
            record["hue_sat"] = [dh, round(ds, 2)]
        # Frequency ops: at most one of sharpen / downscale, as in SBI's OneOf.
        u = rng.random()
        if u < self.p_sharpen:
            a = float(rng.uniform(*self.sharpen_alpha))
            kernel = np.full((3, 3), -a, np.float32)
            kernel[1, 1] = 1.0 + 8.0 * a  # identity + a * Laplacian sharpening, sums to 1
            out = cv2.filter2D(out, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
            record["sharpen"] = round(a, 4)
        elif u < self.p_sharpen + self.p_downscale:
            s = float(rng.uniform(*self.downscale))
            h, w = out.shape[:2]
            small = cv2.resize(out, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_LINEAR)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
            record["downscale"] = round(s, 4)
        if rng.random() < self.p_jpeg:
            q = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            # JPEG's chroma subsampling assumes BGR input: swap so artefacts fall as in a real file.
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok:
                out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                record["jpeg"] = q
        if out is image:
            out = image.copy()
        return out, record
