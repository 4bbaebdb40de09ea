"""A real, public-domain face for demos, previews and tests: scikit-image's astronaut photo
(Eileen Collins, NASA), with its 68 landmarks.

The landmarks are data (``harness/reference/sample_face_landmarks.json``, in photo pixels), found
once by the dlib face-detector plugin; the file says how. The core needs no detector for them, and
``tests/test_sample_face.py`` checks that dlib still finds the same points.

The crop here is not ``harness.data.crop``'s ``CropRule`` (that one extends the box's top by a
forehead share and cuts with edge reflection-101; this one shifts the centre up by a tenth of the
height): switching would change every pixel of the sample face that tests and the demo depend on,
so it waits for the CropRule rework.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

LANDMARKS_PATH = Path(__file__).resolve().parents[1] / "reference" / "sample_face_landmarks.json"


def crop_face(image: np.ndarray, landmarks: np.ndarray, size: int = 256, margin: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A square crop of ``size`` px around the landmarks (grown by ``margin``, shifted up for the
    forehead) and the landmarks in crop pixels."""
    import cv2

    lm = np.asarray(landmarks, np.float32)
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0)
    left, top = cx - side / 2, cy - side / 2
    scale = size / side
    matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], dtype=np.float32)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return crop, ((lm - [left, top]) * scale).astype(np.float32)


def astronaut_landmarks(path: Path = LANDMARKS_PATH) -> np.ndarray:
    """The astronaut's 68 landmarks (float32, photo pixels) as stored, dlib's point order."""
    points = np.asarray(json.loads(Path(path).read_text(encoding="utf-8"))["landmarks"], np.float32)
    if points.shape != (68, 2):
        raise ValueError(f"{path}: expected 68 (x, y) landmarks, got an array of shape {points.shape}")
    return points


@lru_cache(maxsize=4)
def astronaut_face(size: int = 256, margin: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A square RGB uint8 face crop of ``size`` px and its 68 landmarks in crop pixels.

    The crop is the landmark box grown by ``margin`` on each side (more on top for the forehead).
    Returned arrays are read-only: copy before changing them.
    """
    from skimage import data

    photo = np.ascontiguousarray(data.astronaut())
    crop, landmarks = crop_face(photo, astronaut_landmarks(), size, margin)
    crop.setflags(write=False)
    landmarks.setflags(write=False)
    return crop, landmarks
