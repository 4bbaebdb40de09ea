"""Pixel compositing shared by the blenders."""

from __future__ import annotations

import cv2
import numpy as np


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the mask's non-zero pixels; all zeros for an empty mask."""
    x, y, w, h = cv2.boundingRect((mask > 0).view(np.uint8))
    return x, y, x + w, y + h


def composite(
    outside: np.ndarray,
    inside: np.ndarray,
    mask: np.ndarray,
    origin: tuple[int, int] = (0, 0),
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """``outside * (1 - mask) + inside * mask`` as uint8 (a new array).

    ``inside`` may be a crop of the full frame whose top-left corner sits at ``origin`` (x, y); it
    must cover the mask's bounding box. Only that box is computed; elsewhere the result is
    ``outside`` exactly. ``box`` is ``mask_box(mask)`` when the caller already has it.
    """
    out = outside.copy()
    x0, y0, x1, y1 = mask_box(mask) if box is None else box
    if x1 <= x0 or y1 <= y0:
        return out
    ox, oy = origin
    if x0 < ox or y0 < oy or x1 > ox + inside.shape[1] or y1 > oy + inside.shape[0]:
        raise ValueError("composite: the inside image does not cover the mask's bounding box")
    m = np.ascontiguousarray(mask[y0:y1, x0:x1])
    a = np.ascontiguousarray(outside[y0:y1, x0:x1])
    b = np.ascontiguousarray(inside[y0 - oy : y1 - oy, x0 - ox : x1 - ox])
    out[y0:y1, x0:x1] = cv2.blendLinear(a, b, 1.0 - m, m)  # rounds; weight-0 pixels stay exact
    return out

