"""A real, public-domain face for demos, previews and tests: scikit-image's astronaut photo
(Eileen Collins, NASA), with its 68 landmarks found by dlib."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


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


@lru_cache(maxsize=4)
def astronaut_face(size: int = 256, margin: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A square RGB uint8 face crop of ``size`` px and its 68 landmarks in crop pixels.

    The crop is the landmark box grown by ``margin`` on each side (more on top for the forehead).
    Returned arrays are read-only: copy before changing them.
    """
    from skimage import data

    from harness_plugins.faces.dlib_faces import DlibFaceDetector

    photo = np.ascontiguousarray(data.astronaut())
    faces = DlibFaceDetector(upsample=0).detect(photo)
    if not faces or faces[0].landmarks is None:
        raise RuntimeError("dlib found no face in skimage.data.astronaut(); is dlib installed correctly?")
    lm = max(faces, key=lambda f: f.score).landmarks  # the mission patch also looks like a face
    crop, landmarks = crop_face(photo, lm, size, margin)
    crop.setflags(write=False)
    landmarks.setflags(write=False)
    return crop, landmarks
