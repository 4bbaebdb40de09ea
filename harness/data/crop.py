"""The face crop rule: one square box per face, computed from its 68 landmarks.

Rule (recorded in every result as a ``CropRule``): take the landmarks' bounding box, extend its
top by ``forehead`` x its height (the 68 points stop at the eyebrows), make it square around its
centre, grow each side by ``margin`` x the side, and resize to ``crop_size``. Parts of the box
outside the frame are filled with black (``pad="constant"``), identically in training, evaluation
and predict: the padding carries no content. Rules recorded before ``pad`` existed filled them by
reflection (``pad="reflect"``), which mirrored a copy of the face into the border of tight test
crops only (training frames rarely reach the edge): a confound with the label. Those records keep
reflecting, so an old checkpoint still sees what it was trained on.

``basis="detector-box"`` is the rule of models imported from elsewhere (SBI's inference): the
detector's box grown by ``margin`` x its width / height on each side, clipped to the frame (not
square), resized to ``crop_size`` x ``crop_size`` with bilinear interpolation; faces smaller than
``min_area`` x the largest face of the frame are dropped.

Two bases turn the face upright with a similarity transform (rotation, uniform scale, shift) of its
landmarks, as the detectors the field compares against were trained (``TURNED``); their crops are
cut with bilinear interpolation, and ``min_area`` drops small faces as above (1.0: the largest only):

* ``basis="aligned5"``: five of the 68 landmarks (``template``: which, see
  ``harness.data.align.TEMPLATES``) mapped onto ArcFace's 112 px five-point template, scaled to
  ``crop_size`` and shrunk about the crop's centre by ``scale`` (Umeyama's least squares):
  DeepfakeBench's ``CropRule(basis="aligned5", template="deepfakebench", scale=1.3,
  crop_size=256, min_area=1.0)`` (black outside the frame, as its warpAffine);
* ``basis="upright"``: MesoNet's crop (Afchar et al. 2018, its pipeline.py): centred on the nose,
  side 2.2 (``harness.data.align.MESONET_K``) x max(eye distance, eyes-to-mouth distance) x
  ``scale``, turned so that the eyes-to-mouth line is vertical (``CropRule(basis="upright",
  scale=1.3, crop_size=256)``, reflected outside the frame as MesoNet's np.pad), up to MesoNet's
  integer rounding and its spline interpolation.

``basis="image"`` takes the whole image (or video frame) as the face, resized to ``crop_size``: the
rule of a face-detector plugin registered ``precropped=True`` (``--face-detector none``), for
datasets that ship face crops. Such a face has no landmarks.

Where a crop lies in the frame (``box``, recorded in the face cache and in predict's output) is the
box (x0, y0, x1, y1) of the axis-aligned bases and the frame positions of the top-left, top-right and
bottom-left corners of a turned crop (six numbers); ``crop_matrix`` reads either.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from harness.data.align import (DEFAULT_SCALE, DEFAULT_TEMPLATE, TEMPLATES, aligned_matrix, apply_affine, corners_matrix,
                                crop_corners, upright_matrix)
from harness.extend.defaults import defaults

#: Grey masks (FF++ NeuralTextures renders) count a pixel as altered above this value in [0, 1].
GREY_THRESHOLD = 0.05
#: Binary mask videos are lossy-compressed: a pixel is altered above this value.
BINARY_THRESHOLD = 0.5


#: the rule's values before it recorded them: a checkpoint or cache without a field gets these
DEFAULT_MARGIN = 0.3
DEFAULT_FOREHEAD = 0.2
DEFAULT_CROP_SIZE = 256
DEFAULT_LANDMARK_MODEL = "dlib shape_predictor_68_face_landmarks"
#: the landmark model of a face given without landmarks (basis "image")
NO_LANDMARKS = "none (pre-cropped faces)"
#: what a crop is computed from: the 68 landmarks (the harness's rule), the detector's box, five
#: landmarks aligned to a template, MesoNet's upright crop, or the whole image (see the docstring)
BASES = ("landmarks", "detector-box", "aligned5", "upright", "image")
#: the bases that turn the face upright with a similarity transform of its landmarks
TURNED = ("aligned5", "upright")
#: the fields only some bases read: a rule of another basis keeps their defaults and never records them
_BASIS_FIELDS = {"template": ("aligned5",), "scale": ("aligned5", "upright")}
#: how the part of a crop box outside the frame is filled: "constant" (black) for every rule made
#: now; "reflect" is what a rule recorded without ``pad`` did
PAD_MODES = ("constant", "reflect")
DEFAULT_PAD = "constant"
LEGACY_PAD = "reflect"
#: the largest crop side a rule may name (a 4096 px face crop is 48 MB)
MAX_CROP_SIZE = 4096
#: a rule given no ``pad``: what its basis did where it comes from (records made before ``pad``
#: reflected; DeepfakeBench's warpAffine fills black; MesoNet's np.pad reflects)
_BASIS_PAD = {"landmarks": LEGACY_PAD, "detector-box": LEGACY_PAD, "aligned5": "constant", "upright": "reflect",
              "image": "constant"}
#: older checkpoints wrote {"size", "margin", "forehead"}
_ALIASES = {"size": "crop_size"}
#: where a crop lies in the frame: (x0, y0, x1, y1), or a turned crop's corners (x, y) top-left,
#: top-right, bottom-left (six numbers)
Box = tuple[float, ...]



@dataclass(frozen=True)
class CropRule:
    """How crops are made: built once per run from its configuration, it keys the face cache, is
    recorded in the cache, the checkpoint and the results, and predict reads it back (it travels
    with the model as timm's ``pretrained_cfg`` does).

    An importer records the rule its model was trained with, e.g. DeepfakeBench's
    ``CropRule(detector="dlib", basis="aligned5", template="deepfakebench", scale=1.3, crop_size=256,
    min_area=1.0)`` or MesoNet's ``CropRule(detector="dlib", basis="upright", scale=1.3, crop_size=256)``."""

    detector: str = defaults().legacy_face_detector  # a record without one was made with it
    landmark_model: str = DEFAULT_LANDMARK_MODEL
    margin: float = DEFAULT_MARGIN
    forehead: float = DEFAULT_FOREHEAD
    crop_size: int = DEFAULT_CROP_SIZE
    square: bool = True
    basis: str = "landmarks"  # see BASES and the module docstring
    min_area: float = 0.0  # drop faces smaller than this share of the frame's largest (box area)
    pad: str = ""  # "": the basis's own (_BASIS_PAD: a landmark record without it reflected); for_detector gives DEFAULT_PAD
    template: str = DEFAULT_TEMPLATE  # aligned5: which five points go where (TEMPLATES)
    scale: float = DEFAULT_SCALE  # aligned5 and upright: how far the crop zooms out of the face

    def __post_init__(self) -> None:
        for name, value in (("margin", self.margin), ("forehead", self.forehead), ("min_area", self.min_area)):
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.basis not in BASES:
            raise ValueError(f"basis must be one of {', '.join(BASES)}, got {self.basis!r}")
        if not self.pad:
            object.__setattr__(self, "pad", _BASIS_PAD[self.basis])
        if self.pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {', '.join(PAD_MODES)}, got {self.pad!r}")
        if not 16 <= self.crop_size <= MAX_CROP_SIZE:
            raise ValueError(f"crop_size must be from 16 to {MAX_CROP_SIZE} px, got {self.crop_size}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.forehead < 0:
            raise ValueError(f"forehead must be >= 0, got {self.forehead}")
        self._check_alignment()

    def _check_alignment(self) -> None:
        """``template`` and ``scale``: valid, and left at their defaults by a basis that ignores them
        (two rules that cut the same crops are equal and share a cache)."""
        if self.template not in TEMPLATES:
            raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {self.template!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a number > 0, got {self.scale}")
        if self.basis not in _BASIS_FIELDS["template"] and self.template != DEFAULT_TEMPLATE:
            raise ValueError(f"template applies to basis {', '.join(_BASIS_FIELDS['template'])} only, not {self.basis!r}")
        if self.basis not in _BASIS_FIELDS["scale"] and self.scale != DEFAULT_SCALE:
            raise ValueError(f"scale applies to bases {', '.join(_BASIS_FIELDS['scale'])} only, not {self.basis!r}")

    @classmethod
    def for_detector(cls, detector: str = defaults().face_detector, crop_size: int = DEFAULT_CROP_SIZE, margin: float = DEFAULT_MARGIN,
                     forehead: float = DEFAULT_FOREHEAD, pad: str = DEFAULT_PAD) -> "CropRule":
        """The rule for face-detector plugin ``detector``, naming the landmark model it fits; a
        detector of pre-cropped faces gets the whole image (margin and forehead do not apply)."""
        from harness.extend.registry import get

        extra = get("face_detector", detector).extra
        if extra.get("precropped"):
            return cls(detector=detector, landmark_model=str(extra.get("landmark_model") or NO_LANDMARKS),
                       crop_size=int(crop_size), basis="image", pad=pad)
        landmark_model = str(extra.get("landmark_model", DEFAULT_LANDMARK_MODEL))
        return cls(detector=detector, landmark_model=landmark_model, margin=float(margin),
                   forehead=float(forehead), crop_size=int(crop_size), pad=pad)

    def with_detector(self, detector: str) -> "CropRule":
        """This rule with face detector ``detector`` in place of its own (the user chose another). A
        detector of pre-cropped faces takes the whole image at this rule's crop size; a rule that
        took whole images gets the harness's landmark rule for a real detector; a rule cut along
        landmarks names the new detector's landmark model."""
        if detector == self.detector:
            return self
        fresh = CropRule.for_detector(detector, crop_size=self.crop_size, margin=self.margin, forehead=self.forehead)
        if fresh.basis == "image" or self.basis == "image":
            return fresh
        if self.basis == "detector-box":
            return replace(self, detector=detector)
        return replace(self, detector=detector, landmark_model=fresh.landmark_model)

    @property
    def detects_faces(self) -> bool:
        """False for the whole-image rule: every image was taken as a face, none was looked for."""
        return self.basis != "image"

    def detection_note(self) -> str | None:
        """What results say when no face was looked for (None when faces were detected)."""
        if self.detects_faces:
            return None
        return (f"Faces not detected: face detector {self.detector!r} takes every image (and video frame) as one "
                "face, already cropped, so an image without a face is scored as a face")

    def to_dict(self) -> dict[str, Any]:
        """Every field, less those its basis ignores (so records of the other bases keep their form)."""
        data = asdict(self)
        for name, bases in _BASIS_FIELDS.items():
            if self.basis not in bases:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, detector: str | None = None) -> "CropRule":
        """The rule a checkpoint, cache or results file recorded: a missing field gets the value the
        harness used before recording it; unknown fields are ignored. ``detector`` fills in a
        record without one (old checkpoints named it beside the crop)."""
        if data is not None and not isinstance(data, Mapping):
            raise ValueError(f"a crop rule is an object of fields (crop_size, margin, ...), not {type(data).__name__}")
        data = {_ALIASES.get(k, k): v for k, v in dict(data or {}).items()}
        if detector is not None:
            data.setdefault("detector", detector)
        kinds = {f.name: f.type for f in fields(cls)}
        casts = {"str": str, "float": float, "int": int, "bool": bool}
        values = {}
        for key, value in ((k, v) for k, v in data.items() if k in kinds):
            try:
                values[key] = casts[kinds[key]](value)
            except (TypeError, ValueError, OverflowError):  # "abc" as a number, NaN as an integer
                word = {"str": "text", "float": "number", "int": "whole number", "bool": "true or false"}[kinds[key]]
                raise ValueError(f"{key} = {value!r}: must be {'' if word.startswith('t') else 'a '}{word}") from None
        return cls(**values)

    def cache_key(self) -> str:
        """The face-cache folder name of this rule. The forehead and the padding are written only
        when they differ from what caches made before they were part of the key used, so those
        caches keep their folder; constant padding cuts other crops, so it gets its own folder."""
        key = f"{self.detector}-crop{self.crop_size}-m{self.margin:g}"
        key = key if self.forehead == DEFAULT_FOREHEAD else f"{key}-fh{self.forehead:g}"
        if self.basis != "landmarks":  # new fields enter the key only when set: older caches keep theirs
            key += f"-{self.basis}"
        if self.basis in _BASIS_FIELDS["template"]:
            key += f"-{self.template}"
        if self.basis in _BASIS_FIELDS["scale"]:
            key += f"-s{self.scale:g}"
        key = key if not self.min_area else f"{key}-min{self.min_area:g}"
        return key if self.pad == LEGACY_PAD else f"{key}-pad{self.pad}"

    def matrix(self, landmarks: np.ndarray, size: int | None = None) -> np.ndarray:
        """The 2x3 affine frame -> crop of one face's landmarks, for a crop of ``size`` px (default
        ``crop_size``)."""
        size = int(size or self.crop_size)
        if self.basis == "aligned5":
            return aligned_matrix(landmarks, self.template, self.scale, size)
        if self.basis == "upright":
            return upright_matrix(landmarks, self.scale, size)
        return crop_matrix(self.box(landmarks), size)

    def box(self, landmarks: np.ndarray) -> Box:
        """Where the crop of one face's landmarks lies in the frame: its square box, or the corners
        of a turned crop (see the module docstring)."""
        if self.basis in TURNED:
            return crop_corners(self.matrix(landmarks), self.crop_size)
        return crop_box(landmarks, margin=self.margin, forehead=self.forehead)

    def cut(self, frame: np.ndarray, landmarks: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The crop of one face (at ``size``, default ``crop_size``) and its landmarks in crop pixels."""
        size = int(size or self.crop_size)
        if self.basis in TURNED:
            matrix = self.matrix(landmarks, size)
            return warp_crop(frame, matrix, size, self.pad), apply_affine(matrix, landmarks)
        box = self.box(landmarks)
        return crop_image(frame, box, size, self.pad), landmarks_to_crop(landmarks, box, size)

    def crops(self, faces: Iterable[Any], frame: np.ndarray) -> Iterator[tuple[Any, Box, np.ndarray]]:
        """(face, box, crop) for each face of ``frame`` with landmarks: see ``face_crops``."""
        if self.basis == "detector-box":
            return detector_box_crops(faces, frame, self.crop_size, self.margin, self.min_area)
        if self.basis == "image":
            return whole_image_crops(faces, frame, self.crop_size)
        if self.basis in TURNED:
            return self._turned_crops(faces, frame)
        return face_crops(faces, frame, self.crop_size, self.margin, self.forehead, self.pad)

    def _turned_crops(self, faces: Iterable[Any], frame: np.ndarray) -> Iterator[tuple[Any, Box, np.ndarray]]:
        for face in large_faces([f for f in faces if f.landmarks is not None], self.min_area):
            matrix = self.matrix(face.landmarks)
            yield face, crop_corners(matrix, self.crop_size), warp_crop(frame, matrix, self.crop_size, self.pad)


def crop_box(landmarks: np.ndarray, margin: float = DEFAULT_MARGIN, forehead: float = DEFAULT_FOREHEAD) -> tuple[float, float, float, float]:
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


def crop_matrix(box: Box, size: int) -> np.ndarray:
    """2x3 affine frame -> crop for ``box`` cut to ``size`` x ``size`` px (inverted, it pastes back);
    a box that is not square is stretched, as the detector-box rule does; six numbers are a turned
    crop's corners."""
    if len(box) == 6:
        return corners_matrix(box, size)
    x0, y0, x1, y1 = box
    sx = size / (x1 - x0)
    sy = size / (y1 - y0) if y1 > y0 else sx
    return np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]], dtype=np.float64)


def crop_image(frame: np.ndarray, box: Box, size: int, pad: str = LEGACY_PAD) -> np.ndarray:
    """Cut ``box`` out of ``frame`` and resize it to ``size`` x ``size`` (area filter when shrinking);
    the box's part outside the frame is black (``pad="constant"``) or a reflection (``"reflect"``).
    A turned crop (six numbers) is warped bilinearly."""
    matrix = crop_matrix(box, size)
    if len(box) == 4 and matrix[0, 0] < 1.0:
        # warpAffine has no area filter: cut the box region first, then resize with INTER_AREA.
        return _crop_area(frame, box, size, pad)
    return warp_crop(frame, matrix, size, pad)


def warp_crop(frame: np.ndarray, matrix: np.ndarray, size: int, pad: str = LEGACY_PAD) -> np.ndarray:
    """The ``size`` x ``size`` crop that the 2x3 affine ``matrix`` (frame -> crop) maps ``frame`` to,
    bilinear; what falls outside the frame is black (``pad="constant"``) or a reflection."""
    import cv2

    border = cv2.BORDER_CONSTANT if pad == "constant" else cv2.BORDER_REFLECT_101
    return cv2.warpAffine(frame, matrix[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)


def _crop_area(frame: np.ndarray, box: tuple[float, float, float, float], size: int, fill: str = LEGACY_PAD) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        if fill == "constant":
            mode = cv2.BORDER_CONSTANT
        else:  # reflection needs a source at least as large as the pad; fall back to edge replication
            mode = cv2.BORDER_REFLECT_101 if pad < min(h, w) else cv2.BORDER_REPLICATE
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, mode, value=0)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    region = frame[y0:y1, x0:x1]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


def face_crops(faces: Iterable[Any], frame: np.ndarray, size: int, margin: float = DEFAULT_MARGIN,
               forehead: float = DEFAULT_FOREHEAD, pad: str = LEGACY_PAD) -> Iterator[tuple[Any, tuple[float, float, float, float], np.ndarray]]:
    """(face, box, crop) for each detected face of ``frame`` that has landmarks, in order.

    The one place faces become crops, so preprocessing (training, evaluation) and predict cut alike."""
    for face in faces:
        if face.landmarks is None:
            continue  # the crop rule needs landmarks
        box = crop_box(face.landmarks, margin=margin, forehead=forehead)
        yield face, box, crop_image(frame, box, size, pad)


def detector_box(box: tuple[float, float, float, float], frame_shape: tuple[int, ...], margin: float) -> tuple[float, float, float, float]:
    """The detector's ``box`` grown by ``margin`` x its width / height on each side and clipped to the
    frame in whole pixels (SBI's test-time rule, src/inference/preprocess.py: margin 1/8)."""
    h, w = frame_shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = x1 - x0, y1 - y0
    return (float(max(0, int(x0 - margin * bw))), float(max(0, int(y0 - margin * bh))),
            float(min(w, int(x1 + margin * bw) + 1)), float(min(h, int(y1 + margin * bh) + 1)))


def detector_box_crops(faces: Iterable[Any], frame: np.ndarray, size: int, margin: float,
                       min_area: float = 0.0) -> Iterator[tuple[Any, tuple[float, float, float, float], np.ndarray]]:
    """(face, box, crop) per face by the detector-box rule; faces with less than ``min_area`` x the
    largest box area of the frame are dropped (SBI keeps faces of at least half the largest)."""
    import cv2

    faces = [f for f in faces if f.landmarks is not None]  # the cache also stores landmarks in crop pixels
    for face in large_faces(faces, min_area):
        box = detector_box(face.box, frame.shape, margin)
        x0, y0, x1, y1 = (int(v) for v in box)
        yield face, box, cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)


def large_faces(faces: list[Any], min_area: float = 0.0) -> list[Any]:
    """``faces`` less those with a box smaller than ``min_area`` x the largest box's area (1.0: the
    largest only, as DeepfakeBench and MesoNet keep), in order."""
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    return [face for face, area in zip(faces, areas) if not area < min_area * max(areas)]


def whole_image_crops(faces: Iterable[Any], frame: np.ndarray, size: int) -> Iterator[tuple[Any, Box, np.ndarray]]:
    """(face, box, crop) of the one face a pre-cropped image is: the whole frame resized to ``size``
    x ``size`` (stretched when it is not square, as the models' loaders resize)."""
    h, w = frame.shape[:2]
    for face in list(faces)[:1]:
        yield face, (0.0, 0.0, float(w), float(h)), resize_crop(frame, size)


def resize_crop(image: np.ndarray, size: int) -> np.ndarray:
    """A square crop at ``size`` x ``size`` for the model: area filter when shrinking, linear when enlarging."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    import cv2

    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def landmarks_to_crop(landmarks: np.ndarray | None, box: Box, size: int) -> np.ndarray:
    """Frame-pixel landmarks -> crop-pixel landmarks (float32) for a crop of ``box`` at ``size``; a
    face without landmarks (a pre-cropped image) gets none: shape (0, 2)."""
    if landmarks is None:
        return np.zeros((0, 2), np.float32)
    matrix = crop_matrix(box, size)
    if len(box) == 6:
        return apply_affine(matrix, landmarks)
    return (np.asarray(landmarks, dtype=np.float64) * [matrix[0, 0], matrix[1, 1]] + matrix[:, 2]).astype(np.float32)


def mask_from_frame(mask_frame: np.ndarray, kind: str = "binary") -> np.ndarray:
    """A decoded mask-video frame (RGB or grey uint8) -> float32 {0, 1} mask of the same size."""
    grey = mask_frame.max(axis=2) if mask_frame.ndim == 3 else mask_frame
    value = grey.astype(np.float32) / 255.0
    if kind not in ("binary", "grey"):
        raise ValueError(f"mask kind must be 'binary' or 'grey', got {kind!r}")
    threshold = GREY_THRESHOLD if kind == "grey" else BINARY_THRESHOLD
    return (value > threshold).astype(np.float32)


def crop_mask(mask: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Crop a float mask with the same geometry as the face crop; values stay in [0, 1]."""
    import cv2

    matrix = crop_matrix(box, size)
    out = cv2.warpAffine(
        np.ascontiguousarray(mask, dtype=np.float32), matrix[:2], (size, size),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )
    return np.clip(out, 0.0, 1.0)
