"""Pixel compositing shared by the blenders."""

from __future__ import annotations

import cv2
import numpy as np


def composite(outside: np.ndarray, inside: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``outside * (1 - mask) + inside * mask`` as uint8, computed only over the mask's bounding box."""
    out = outside.copy()
    x, y, w, h = cv2.boundingRect((mask > 0).view(np.uint8))
    if w == 0 or h == 0:
        return out
    m = mask[y : y + h, x : x + w, None]
    a = outside[y : y + h, x : x + w].astype(np.float32)
    b = inside[y : y + h, x : x + w].astype(np.float32)
    out[y : y + h, x : x + w] = np.clip(a + (b - a) * m + 0.5, 0, 255).astype(np.uint8)
    return out


def check_image(face: np.ndarray, who: str) -> np.ndarray:
    """An RGB uint8 (H, W, 3) view of ``face``; grey (H, W) / (H, W, 1) become three channels."""
    if not isinstance(face, np.ndarray) or face.dtype != np.uint8:
        raise ValueError(f"{who}: face must be a uint8 numpy array, got {getattr(face, 'dtype', type(face).__name__)}")
    if face.ndim == 2:
        face = face[:, :, None]
    if face.ndim != 3 or face.shape[2] not in (1, 3):
        raise ValueError(f"{who}: face must be (H, W, 3) RGB or (H, W[, 1]) grey, got shape {face.shape}")
    return np.ascontiguousarray(np.repeat(face, 3, axis=2) if face.shape[2] == 1 else face)
