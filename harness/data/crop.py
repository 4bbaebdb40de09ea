"""The face crop rule: one square box per face, computed from its 68 landmarks.

Rule (recorded in every result as a ``CropRule``): take the landmarks' bounding box, extend its
top by ``forehead`` x its height (the 68 points stop at the eyebrows), make it square around its
centre, grow each side by ``margin`` x the side, and resize to ``crop_size``. Parts of the box
outside the frame are filled by edge reflection, so a face at the border keeps its geometry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator

import numpy as np

#: Grey masks (FF++ NeuralTextures renders) count a pixel as altered above this value in [0, 1].
GREY_THRESHOLD = 0.05
#: Binary mask videos are lossy-compressed: a pixel is altered above this value.
BINARY_THRESHOLD = 0.5


@dataclass(frozen=True)
class CropRule:
    """How crops were made: goes into results JSON next to the scores."""

    detector: str = "dlib"
    landmark_model: str = "dlib shape_predictor_68_face_landmarks"
    margin: float = 0.3
    forehead: float = 0.2
    crop_size: int = 256
    square: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def crop_box(landmarks: np.ndarray, margin: float = 0.3, forehead: float = 0.2) -> tuple[float, float, float, float]:
    """The square crop box (x0, y0, x1, y1) in frame pixels for one face's (68, 2) landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or len(lm) == 0:
        raise ValueError(f"crop_box: landmarks must be (N, 2), got {lm.shape}")
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    y0 -= forehead * (y1 - y0)
    side = max(x1 - x0, y1 - y0, 1.0) * (1.0 + 2.0 * margin)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


def crop_matrix(box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """2x3 affine frame -> crop for a square ``box`` cut to ``size`` px (inverted, it pastes back)."""
    x0, y0, x1, _ = box
    scale = size / (x1 - x0)
    return np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]], dtype=np.float64)


def crop_image(frame: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Cut ``box`` out of ``frame`` and resize it to ``size`` x ``size`` (area filter when shrinking)."""
    import cv2

    matrix = crop_matrix(box, size)
    if matrix[0, 0] < 1.0:
        # warpAffine has no area filter: cut the box region first, then resize with INTER_AREA.
        return _crop_area(frame, box, size)
    return cv2.warpAffine(frame, matrix[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _crop_area(frame: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        # reflection needs a source at least as large as the pad; fall back to edge replication
        mode = cv2.BORDER_REFLECT_101 if pad < min(h, w) else cv2.BORDER_REPLICATE
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, mode)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    region = frame[y0:y1, x0:x1]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


def face_crops(faces: Iterable[Any], frame: np.ndarray, size: int, margin: float = 0.3,
               forehead: float = 0.2) -> Iterator[tuple[Any, tuple[float, float, float, float], np.ndarray]]:
    """(face, box, crop) for each detected face of ``frame`` that has landmarks, in order.

    The one place faces become crops, so preprocessing (training, evaluation) and predict cut alike."""
    for face in faces:
        if face.landmarks is None:
            continue  # the crop rule needs landmarks
        box = crop_box(face.landmarks, margin=margin, forehead=forehead)
        yield face, box, crop_image(frame, box, size)


def resize_crop(image: np.ndarray, size: int) -> np.ndarray:
    """A square crop at ``size`` x ``size`` for the model: area filter when shrinking, linear when enlarging."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    import cv2

    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def landmarks_to_crop(landmarks: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Frame-pixel landmarks -> crop-pixel landmarks (float32) for a crop of ``box`` at ``size``."""
    x0, y0, x1, _ = box
    scale = size / (x1 - x0)
    return ((np.asarray(landmarks, dtype=np.float64) - [x0, y0]) * scale).astype(np.float32)


def mask_from_frame(mask_frame: np.ndarray, kind: str = "binary") -> np.ndarray:
    """A decoded mask-video frame (RGB or grey uint8) -> float32 {0, 1} mask of the same size."""
    grey = mask_frame.max(axis=2) if mask_frame.ndim == 3 else mask_frame
    value = grey.astype(np.float32) / 255.0
    if kind not in ("binary", "grey"):
        raise ValueError(f"mask kind must be 'binary' or 'grey', got {kind!r}")
    threshold = GREY_THRESHOLD if kind == "grey" else BINARY_THRESHOLD
    return (value > threshold).astype(np.float32)


def crop_mask(mask: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Crop a float mask with the same geometry as the face crop; values stay in [0, 1]."""
    import cv2

    matrix = crop_matrix(box, size)
    out = cv2.warpAffine(
        np.ascontiguousarray(mask, dtype=np.float32), matrix[:2], (size, size),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )
    return np.clip(out, 0.0, 1.0)
