"""Local displacement deformation (the paper's Eq. 1-2) and bilinear colour sampling (Eq. 3-5).

Inside a circle of radius ``r_max`` around ``c``, a pixel ``x`` takes its colour from

    u = x - alpha(x) * (m - c)                                               (Eq. 2)
    alpha = ((r^2 - |x-c|^2) / ((r^2 - |x-c|^2) + |m-c|^2))^2                (Eq. 1)

so the content at ``c`` is pushed towards ``m``; alpha is 0 on the circle and
(r^2 / (r^2 + |m-c|^2))^2 at the centre, which tends to 1 as the move shrinks against the radius
(the paper's "full weight at the centre" holds for |m-c| << r). Outside the circle nothing moves.

The pure functions work on any array of points so tests can check the equations; ``warp_disc``
applies one warp to an image with a single ``cv2.remap`` over the circle's bounding box only, so
the cost follows the circle, not the face crop.
"""

from __future__ import annotations

import cv2
import numpy as np


def displacement_weight(x: np.ndarray, c: np.ndarray, m: np.ndarray, r_max: float) -> np.ndarray:
    """Eq. 1: alpha for points ``x`` (..., 2); 0 on and outside the circle of radius ``r_max``."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    inside = np.maximum(float(r_max) ** 2 - np.sum((x - c) ** 2, axis=-1), 0.0)
    move = float(np.sum((m - c) ** 2))
    denom = inside + move
    ratio = np.divide(inside, denom, out=np.zeros_like(inside), where=denom > 0)
    return ratio**2


def displacement_field(x: np.ndarray, c: np.ndarray, m: np.ndarray, r_max: float) -> np.ndarray:
    """Eq. 2: the source position ``u`` each point ``x`` (..., 2) takes its colour from."""
    x = np.asarray(x, dtype=np.float64)
    alpha = displacement_weight(x, c, m, r_max)
    return x - alpha[..., None] * (np.asarray(m, np.float64) - np.asarray(c, np.float64))


def bilinear_sample(image: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Eq. 3-5: colour of ``image`` at real positions ``u`` (..., 2) as (x, y), borders clamped.

    Each of the four neighbours is weighted by the area of the opposite sub-rectangle.
    """
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape[:2]
    x = np.clip(np.asarray(u, np.float64)[..., 0], 0, w - 1)
    y = np.clip(np.asarray(u, np.float64)[..., 1], 0, h - 1)
    x0 = np.floor(x).astype(np.intp)
    y0 = np.floor(y).astype(np.intp)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    w00 = (1 - fx) * (1 - fy)  # neighbour (x0, y0)
    w10 = fx * (1 - fy)  # (x1, y0)
    w01 = (1 - fx) * fy  # (x0, y1)
    w11 = fx * fy  # (x1, y1)
    if img.ndim == 3:
        w00, w10, w01, w11 = (wt[..., None] for wt in (w00, w10, w01, w11))
    return w00 * img[y0, x0] + w10 * img[y0, x1] + w01 * img[y1, x0] + w11 * img[y1, x1]


def disc_box(c: np.ndarray, r_max: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The circle's pixel bounding box (x0, y0, x1, y1), clipped to the image; None if outside."""
    h, w = shape[:2]
    x0 = max(int(np.floor(c[0] - r_max)), 0)
    y0 = max(int(np.floor(c[1] - r_max)), 0)
    x1 = min(int(np.ceil(c[0] + r_max)) + 1, w)
    y1 = min(int(np.ceil(c[1] + r_max)) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def warp_disc(image: np.ndarray, c: np.ndarray, m: np.ndarray, r_max: float) -> bool:
    """Apply one Eq. 1-2 warp to ``image`` in place (bilinear colours, Eq. 3-5, via cv2.remap).

    Only the circle's bounding box is computed. Returns False when the circle misses the image.
    """
    box = disc_box(np.asarray(c, np.float64), r_max, image.shape)
    if box is None or r_max <= 0:
        return False
    x0, y0, x1, y1 = box
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)
    dx = xs[None, :] - np.float32(c[0])
    dy = ys[:, None] - np.float32(c[1])
    mx, my = np.float32(m[0] - c[0]), np.float32(m[1] - c[1])
    inside = np.maximum(np.float32(r_max * r_max) - (dx * dx + dy * dy), 0)
    denom = inside + (mx * mx + my * my)
    ratio = np.divide(inside, denom, out=np.zeros_like(inside), where=denom > 0)
    alpha = ratio * ratio
    map_x = xs[None, :] - alpha * mx
    map_y = ys[:, None] - alpha * my
    # The source is the whole (not yet changed) image, so samples may come from outside the box.
    patch = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    image[y0:y1, x0:x1] = patch
    return True
