"""Face detection with dlib's HOG or CNN (MMOD) detector and its 68-point landmark model; offline.

Three detectors, each with the same 68 landmarks on its boxes:

* ``dlib``: HOG, the fast path (misses faces under ~80 px without upsampling, and dark faces);
* ``dlib-cnn``: dlib's CNN face detector ``mmod_human_face_detector.dat`` (finds faces down to
  ~40 px with ``upsample=1`` and in low light; ~10-50x slower than HOG on a CPU);
* ``dlib-fallback``: HOG first, the CNN only on frames (or tracked regions) where HOG found
  nothing: the fast path stays fast where HOG works.

The model files ship in the PyPI package ``face-recognition-models`` (the landmark model also in
Debian's ``libdlib-data``). We locate them without importing that package, whose import fails on
new setuptools.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.api import check_frame, hookimpl
from harness.api import LandmarkedDetector as CoreLandmarkedDetector

LANDMARK_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_FILE = "mmod_human_face_detector.dat"
_DEBIAN_PATHS = (Path("/usr/share/dlib") / LANDMARK_FILE, Path("/usr/share/dlib-data") / LANDMARK_FILE)


def _model_file(name: str, env_var: str, extra: tuple[Path, ...] = ()) -> tuple[Path | None, list[Path]]:
    """The first existing of: $env_var, face-recognition-models' copy of ``name``, ``extra``;
    with every place looked in (for the error message)."""
    candidates: list[Path] = []
    env = os.environ.get(env_var)
    if env:
        candidates.append(Path(env))
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "models" / name)
    candidates.extend(extra)
    return next((p for p in candidates if p.is_file()), None), candidates


#: the landmark model every dlib detector's crops fit (recorded in the crop rule)
LANDMARK_MODEL = "dlib shape_predictor_68_face_landmarks"


def landmark_model_path() -> Path:
    """Where the 68-point model is: $HARNESS_DLIB_LANDMARKS, face-recognition-models, or Debian."""
    found, candidates = _model_file(LANDMARK_FILE, "HARNESS_DLIB_LANDMARKS", _DEBIAN_PATHS)
    if found is not None:
        return found
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"dlib's 68-point landmark model {LANDMARK_FILE} was not found (looked in: {looked}). "
        "Install it with `pip install face-recognition-models` (or `apt install libdlib-data`), "
        "or point HARNESS_DLIB_LANDMARKS at the file."
    )


def cnn_model_path() -> Path:
    """Where dlib's CNN face detector is: $HARNESS_DLIB_CNN, else face-recognition-models."""
    found, candidates = _model_file(CNN_FILE, "HARNESS_DLIB_CNN")
    if found is not None:
        return found
    looked = ", ".join(str(p) for p in candidates) or "(face-recognition-models is not installed)"
    raise FileNotFoundError(
        f"dlib's CNN face detector {CNN_FILE} was not found (looked in: {looked}). "
        "Install it with `pip install face-recognition-models`, or point HARNESS_DLIB_CNN at the file."
    )


@lru_cache(maxsize=None)
def _cnn_model() -> object:
    import dlib

    return dlib.cnn_face_detection_model_v1(str(cnn_model_path()))


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


class DlibLandmarks(CoreLandmarkedDetector):
    """The second half of a two-stage detector: dlib's 68 landmarks on each box a subclass's
    ``boxes`` finds (the core's ``LandmarkedDetector`` supplies ``detect``)."""

    def landmarks(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68 landmarks (float32, frame pixels) inside ``box``."""
        return landmarks_for_box(frame, box)


#: the old name: a detector base with dlib's landmarks (plugins written against it keep working)
LandmarkedDetector = DlibLandmarks


class DlibFaceDetector(DlibLandmarks):
    """HOG face detector + 68 landmarks. ``upsample`` finds faces smaller than ~80 px.

    Besides ``detect`` it offers the two halves separately, ``boxes`` (HOG only) and
    ``landmarks`` (the shape predictor on a given box), so the preprocessing pipeline can search
    a downscaled frame or a small region and still fit landmarks at full resolution.
    """

    name = "dlib"

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


class DlibCnnFaceDetector(DlibLandmarks):
    """dlib's CNN (MMOD) face detector + 68 landmarks: faces down to ~40 px (``upsample=1``) and in
    low light, at a CPU cost far above HOG's; weights from the face-recognition-models wheel.

    Its boxes are tighter than HOG's (chin to brows): ``box_scale`` grows them about their centre
    (and shifts them up by ``shift`` of their height) toward HOG's framing, so the landmark model,
    which was fitted on HOG boxes, and the crop rule see the same face framing from either."""

    name = "dlib-cnn"

    def __init__(self, upsample: int = 1, min_score: float = 0.0, box_scale: float = 1.0, shift: float = 0.0) -> None:
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        self.box_scale, self.shift = float(box_scale), float(shift)
        if self.upsample < 0:
            raise ValueError(f"dlib-cnn detector: upsample must be >= 0, got {upsample}")
        cnn_model_path()  # a missing file fails when the detector is built, not on the first frame

    def boxes(self, frame: np.ndarray, upsample: int | None = None) -> list[tuple[tuple[float, float, float, float], float]]:
        """CNN detections ``[(box, confidence), ...]`` in frame pixels, no landmarks."""
        frame = check_frame(frame)
        ups = self.upsample if upsample is None else int(upsample)
        out = []
        for d in _cnn_model()(frame, ups):
            if d.confidence < self.min_score:
                continue
            r = d.rect
            x0, y0, x1, y1 = float(r.left()), float(r.top()), float(r.right()), float(r.bottom())
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - self.shift * (y1 - y0)
            hw, hh = self.box_scale * (x1 - x0) / 2, self.box_scale * (y1 - y0) / 2
            out.append(((cx - hw, cy - hh, cx + hw, cy + hh), float(d.confidence)))
        return out


def mean_luma(frame: np.ndarray) -> float:
    """Mean brightness (0-255) of an RGB frame, from every 4th pixel."""
    sub = frame[::4, ::4].astype(np.float32)
    return float((0.299 * sub[..., 0] + 0.587 * sub[..., 1] + 0.114 * sub[..., 2]).mean())


def brighten(frame: np.ndarray, target: float = 110.0, denoise: float = 1.2) -> np.ndarray:
    """A dim room made readable for HOG: a gamma curve that maps the frame's mean brightness to
    ``target``, then a light Gaussian blur (sigma ``denoise`` px) against the sensor noise the curve
    amplifies (without it, HOG finds no more faces than in the dark frame). Cheap: a lookup table
    and a blur."""
    import cv2

    mean = min(max(mean_luma(frame), 1.0), 254.0)
    gamma = np.log(target / 255.0) / np.log(mean / 255.0)
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    out = cv2.LUT(np.ascontiguousarray(frame), lut)
    return np.ascontiguousarray(cv2.GaussianBlur(out, (0, 0), denoise) if denoise > 0 else out)


class DlibFallbackDetector(DlibLandmarks):
    """HOG first; where it finds nothing (a whole frame or a tracked region): HOG again on a
    brightened frame when the frame is dark (mean brightness under ``dark_below``), then dlib's CNN
    (upsampled ``cnn_upsample`` times, on the frame shrunk to ``cnn_max_side`` px at most). A video
    where HOG works costs what HOG costs; a frame where nothing is found costs a CNN pass (seconds
    on a CPU). Landmarks on a dark frame are fitted on the brightened frame."""

    name = "dlib-fallback"

    def __init__(self, upsample: int = 1, min_score: float = 0.0, cnn_upsample: int = 1, dark_below: float = 70.0,
                 cnn_max_side: int = 1280) -> None:
        self.hog = DlibFaceDetector(upsample=upsample, min_score=min_score)
        self.cnn = DlibCnnFaceDetector(upsample=cnn_upsample)
        self.upsample = self.hog.upsample
        self.dark_below = float(dark_below)
        self.cnn_max_side = int(cnn_max_side)
        self.calls = {"hog": 0, "bright": 0, "cnn": 0}  # which pass answered (benchmarks report it)

    def boxes(self, frame: np.ndarray, upsample: int | None = None) -> list[tuple[tuple[float, float, float, float], float]]:
        frame = check_frame(frame)
        found = self.hog.boxes(frame, upsample)
        if found:
            self.calls["hog"] += 1
            return found
        if mean_luma(frame) < self.dark_below:
            found = self.hog.boxes(brighten(frame), upsample)
            if found:
                self.calls["bright"] += 1
                return found
        h, w = frame.shape[:2]
        if upsample is not None and int(upsample) < self.upsample and max(h, w) > 640:
            # FaceFinder's full-resolution pass without upsampling: its upsampled pass of the same
            # frame comes next, so the CNN (seconds per frame on a CPU) runs there, once.
            return []
        self.calls["cnn"] += 1
        # The CNN finds ~40 px faces at upsample 1 (never upsample it further), on the frame shrunk
        # to cnn_max_side: a 70 px face in 1080p is 47 px at 1280 wide, ~9 CPU s instead of ~36.
        scale = min(1.0, self.cnn_max_side / max(h, w))
        small = frame
        if scale < 1.0:
            import cv2

            small = np.ascontiguousarray(cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA))
        found = self.cnn.boxes(small, self.cnn.upsample)
        return [(tuple(v / scale for v in box), score) for box, score in found]

    def landmarks(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        if mean_luma(frame) < self.dark_below:
            frame = brighten(frame)
        return landmarks_for_box(frame, box)


@hookimpl
def register_face_detectors(register):
    register("dlib", DlibFaceDetector, "dlib HOG detector + 68-point landmarks (offline)", landmark_model=LANDMARK_MODEL)
    register("dlib-cnn", DlibCnnFaceDetector,
             "dlib CNN (MMOD) detector: small (~40 px) and dark faces, slow on CPU; + 68 landmarks (offline)",
             landmark_model=LANDMARK_MODEL)
    register("dlib-fallback", DlibFallbackDetector,
             "dlib HOG, with the CNN detector only on frames where HOG finds nothing; + 68 landmarks (offline)",
             landmark_model=LANDMARK_MODEL)
