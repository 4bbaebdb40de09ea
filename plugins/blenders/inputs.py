"""Input checks shared by the blenders: bad input fails here with a message that names the
argument and the fix, never deep inside cv2."""

from __future__ import annotations

import numpy as np

#: Smallest crop side we accept; the blenders are designed for crops of 64 px and more.
MIN_SIDE = 32
#: Smallest landmark extent (px) that still describes a face we can cut regions from.
MIN_FACE_PX = 8.0


def check_face(face: np.ndarray, who: str) -> np.ndarray:
    """Validate a face image; return it as an RGB uint8 (H, W, 3) contiguous array.

    Grey faces, (H, W) or (H, W, 1), are expanded to three equal channels (a defined result).
    """
    if not isinstance(face, np.ndarray):
        raise ValueError(f"{who}: face must be a numpy array (H, W, 3) RGB uint8, got {type(face).__name__}")
    if face.dtype != np.uint8:
        raise ValueError(
            f"{who}: face must be uint8, got {face.dtype}; convert it first, e.g. "
            "np.clip(face * 255, 0, 255).astype(np.uint8) for a float image in [0, 1]"
        )
    if face.ndim == 2:
        face = face[:, :, None]
    if face.ndim != 3 or face.shape[2] not in (1, 3):
        raise ValueError(
            f"{who}: face must be (H, W, 3) RGB, (H, W) or (H, W, 1) grey; got shape {face.shape}"
            + (" (drop alpha with face[..., :3])" if face.ndim == 3 and face.shape[2] == 4 else "")
        )
    if face.shape[2] == 1:
        face = np.repeat(face, 3, axis=2)
    return np.ascontiguousarray(face)


def check_inputs(
    face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, who: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a blender's inputs; return an RGB uint8 (H, W, 3) face and (68, 2) float32 landmarks.

    Grey faces, (H, W) or (H, W, 1), are expanded to three equal channels (a defined result).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{who}: rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    face = check_face(face, who)
    h, w = face.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{who}: face crop is {w}x{h} px; need at least {MIN_SIDE} px a side (64+ recommended)")
    lm = np.asarray(landmarks)
    if lm.shape != (68, 2):
        raise ValueError(
            f"{who}: landmarks must be (68, 2) (x, y) points in dlib order, crop pixels; got shape {lm.shape}"
        )
    if not np.issubdtype(lm.dtype, np.number) or not np.all(np.isfinite(lm)):
        raise ValueError(f"{who}: landmarks must be finite numbers (found NaN/inf or non-numeric values)")
    lm = lm.astype(np.float32)
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    if x1 < 0 or y1 < 0 or x0 >= w or y0 >= h:
        raise ValueError(
            f"{who}: landmarks lie entirely outside the {w}x{h} crop; are they in frame pixels "
            "instead of crop pixels? Subtract the crop origin (and scale) first"
        )
    if max(x1 - x0, y1 - y0) < MIN_FACE_PX:
        raise ValueError(
            f"{who}: landmarks span under {MIN_FACE_PX:g} px; the face is too small to blend "
            "(crop closer, or skip this face)"
        )
    return face, lm
