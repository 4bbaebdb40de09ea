"""Facial regions from 68 dlib landmarks: polygons for eyes, nose, mouth and the whole face.

Each region's base polygon is the convex hull of its landmarks grown by a margin relative to the
face size (a bare eye contour is a thin sliver; the lids and the skin around it belong to "the
eye" a face-editing method touches). ``scaled`` then resizes a polygon about its centroid by the
paper's per-region factor. The 68 points stop at the brows, so the whole-face polygon adds a
forehead: the brow points lifted along the face's chin-to-brow axis.
"""

from __future__ import annotations

import numpy as np

JAW = list(range(0, 17))
BROWS = list(range(17, 27))
NOSE = list(range(27, 36))
RIGHT_EYE = list(range(36, 42))  # the subject's right eye: on the image's left
LEFT_EYE = list(range(42, 48))
MOUTH = list(range(48, 60))

#: The paper's size ranges (fraction of the region's own size), Sec. "Multi-part ... self-blending".
SCALE_RANGES: dict[str, tuple[float, float]] = {
    "eyes": (0.80, 1.20),
    "mouth": (0.90, 1.30),
    "nose": (0.85, 1.15),
    "face": (0.90, 1.10),
}

#: Margin around each part's landmark hull, as a fraction of the face size.
_MARGIN = {"eyes": 0.05, "mouth": 0.035, "nose": 0.04, "face": 0.0}
#: Forehead height as a fraction of the brow-to-chin distance.
FOREHEAD = 0.35


def face_size(landmarks: np.ndarray) -> float:
    """The larger side of the landmarks' bounding box, in pixels."""
    extent = landmarks.max(0) - landmarks.min(0)
    return float(max(extent[0], extent[1]))


def up_axis(landmarks: np.ndarray) -> np.ndarray:
    """Unit vector from the chin towards the top of the nose bridge (the face's "up")."""
    v = landmarks[27] - landmarks[8]
    n = float(np.hypot(v[0], v[1]))
    return (v / n).astype(np.float64) if n > 1e-6 else np.array([0.0, -1.0])


def hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of ``points`` ((N, 2) x, y px) as a (K, 2) float64 polygon."""
    import cv2

    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _grow(poly: np.ndarray, margin: float) -> np.ndarray:
    """Push every vertex ``margin`` px away from the polygon's centroid."""
    c = poly.mean(0)
    d = poly - c
    n = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)[:, None]
    return c + d + d / n * margin


def base_polygons(landmarks: np.ndarray, region: str) -> list[np.ndarray]:
    """The unscaled polygon(s) of ``region`` ("eyes" gives two), each (K, 2) float64 in crop px."""
    lm = np.asarray(landmarks, np.float64)
    size = face_size(lm)
    if region == "eyes":
        groups = [RIGHT_EYE, LEFT_EYE]
    elif region == "mouth":
        groups = [MOUTH]
    elif region == "nose":
        groups = [NOSE]
    elif region == "face":
        lift = FOREHEAD * float(np.hypot(*(lm[27] - lm[8])))
        forehead = lm[BROWS] + up_axis(lm) * lift
        return [hull(np.concatenate([lm[JAW], lm[BROWS], forehead]))]
    else:
        raise ValueError(f"unknown region {region!r}; regions are: {', '.join(SCALE_RANGES)}")
    return [_grow(hull(lm[g]), _MARGIN[region] * size) for g in groups]


def scaled(poly: np.ndarray, factor: float) -> np.ndarray:
    """``poly`` resized by ``factor`` about its centroid."""
    c = poly.mean(0)
    return c + (poly - c) * factor
