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
    shape = predictor(np.ascontiguousarray(frame), dlib.rectangle(x0, y0, x1, y1))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


class DlibFaceDetector:
    """HOG face detector + 68 landmarks. ``upsample`` finds faces smaller than ~80 px."""

    name = "dlib"

    def __init__(self, upsample: int = 1, min_score: float = 0.0) -> None:
        self.upsample = int(upsample)
        self.min_score = float(min_score)

    def detect(self, frame: np.ndarray) -> list[Face]:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        detector, _ = _models()
        frame = np.ascontiguousarray(frame)
        rects, scores, _ = detector.run(frame, self.upsample, self.min_score)
        faces = []
        for rect, score in zip(rects, scores):
            box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            faces.append(Face(box=box, score=float(score), landmarks=landmarks_for_box(frame, box)))
        faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return faces


@hookimpl
def register_face_detectors(register):
    register("dlib", DlibFaceDetector, "dlib HOG detector + 68-point landmarks (offline)")
