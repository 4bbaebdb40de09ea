"""The blend mask ("mosaic"): region polygons rasterised on a rotated grid, scaled by opacity.

Our reading of the paper's mask parameters (cell size 4-16 px, grid orientation +-5 deg, opacity
85-100 %): the regions are rasterised on a square grid of that cell size, turned by that angle
about the crop centre (random sub-cell phase), so the mask edge is a blocky staircase of tilted
cells; the whole mask is multiplied by the opacity. A Gaussian blur of random width then softens
the edge so it is not always a hard step. The grid itself is tiny (crop / cell), so rasterising
costs almost nothing; one nearest-neighbour warp brings it to crop size.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

#: Fixed-point bits for cv2.fillPoly: sub-pixel polygon vertices.
SHIFT = 4
#: Blur tails below this are set to 0, so "mask == 0" means "untouched" a few sigma out, not never.
MASK_FLOOR = 1e-3


def fill_polygon(canvas: np.ndarray, poly: np.ndarray) -> None:
    """Set the pixels of ``canvas`` (uint8, in place) inside ``poly`` ((K, 2) x, y px) to 1."""
    pts = np.round(poly * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=SHIFT)


def blur_around(mask: np.ndarray, binary: np.ndarray, sigma: float) -> bool:
    """Gaussian-blur ``mask`` (float32, in place) by ``sigma`` px around the non-zero box of
    ``binary``, padded by 3 sigma: cost follows the region, not the crop. Returns whether it blurred
    (not when sigma <= 0.3 px or ``binary`` is empty)."""
    if sigma <= 0.3:
        return False
    x, y, bw, bh = cv2.boundingRect(binary)
    if not (bw and bh):
        return False
    h, w = mask.shape[:2]
    pad = int(math.ceil(3 * sigma)) + 1
    x0, y0 = max(x - pad, 0), max(y - pad, 0)
    x1, y1 = min(x + bw + pad, w), min(y + bh + pad, h)
    mask[y0:y1, x0:x1] = cv2.GaussianBlur(mask[y0:y1, x0:x1], (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return True


def mosaic_mask(
    regions: dict[str, list[np.ndarray]],
    shape: tuple[int, int],
    cell: float,
    angle_deg: float,
    phase: tuple[float, float],
    opacity: float,
    soften_sigma: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Float32 (H, W) mask in [0, opacity] covering ``regions`` (name -> polygons in crop px).

    A region too small to cover one grid cell is filled at pixel resolution instead (named in the
    returned info under "pixel_fill"), so a chosen region never vanishes from the mask.
    """
    h, w = shape
    cell = max(float(cell), 1.0)
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    size = int(math.ceil(math.hypot(h, w) / cell)) + 3
    # Affine image px -> grid px: rotate by -theta about the crop centre, divide by cell, re-centre.
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    ox, oy = size / 2.0 + phase[0], size / 2.0 + phase[1]
    a = np.array([[cos, sin], [-sin, cos]]) / cell
    to_grid = np.array(
        [[a[0, 0], a[0, 1], ox - a[0, 0] * cx - a[0, 1] * cy], [a[1, 0], a[1, 1], oy - a[1, 0] * cx - a[1, 1] * cy]]
    )
    grid = np.zeros((size, size), np.uint8)
    fine: np.ndarray | None = None
    cells: dict[str, int] = {}
    pixel_fill: list[str] = []
    one = np.zeros_like(grid)
    for name, polys in regions.items():
        one[:] = 0
        for poly in polys:
            fill_polygon(one, poly @ to_grid[:, :2].T + to_grid[:, 2])
        n = int(np.count_nonzero(one))
        cells[name] = n
        if n:
            np.maximum(grid, one, out=grid)
        else:
            fine = np.zeros((h, w), np.uint8) if fine is None else fine
            for poly in polys:
                fill_polygon(fine, poly)
            pixel_fill.append(name)
    binary = cv2.warpAffine(
        grid, to_grid.astype(np.float64), (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )
    if fine is not None:
        np.maximum(binary, fine, out=binary)
    mask = binary.astype(np.float32)
    blur_around(mask, binary, soften_sigma)
    if opacity != 1.0:
        mask *= np.float32(opacity)
    mask[mask < MASK_FLOOR] = 0.0
    np.clip(mask, 0.0, 1.0, out=mask)
    return mask, {"cells": cells, "pixel_fill": pixel_fill, "grid_size": size}
