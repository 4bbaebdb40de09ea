"""The face crop rule: one square box per face, computed from its 68 landmarks.

Rule (recorded in every result as a ``CropRule``): take the landmarks' bounding box, extend its
top by ``forehead`` x its height (the 68 points stop at the eyebrows), make it square around its
centre, grow each side by ``margin`` x the side, and resize to ``crop_size``. Parts of the box
outside the frame are filled with black (``pad="constant"``), identically in training, evaluation
and predict: the padding carries no content. Rules recorded before ``pad`` existed filled them by
reflection (``pad="reflect"``), which mirrored a copy of the face into the border of tight test
crops only (training frames rarely reach the edge): a confound with the label. Those records keep
reflecting, so an old checkpoint still sees what it was trained on.
"""

from __future__ import annotations

from harness.defaults import defaults

from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

#: Grey masks (FF++ NeuralTextures renders) count a pixel as altered above this value in [0, 1].
GREY_THRESHOLD = 0.05
#: Binary mask videos are lossy-compressed: a pixel is altered above this value.
BINARY_THRESHOLD = 0.5


#: the rule's values before it recorded them: a checkpoint or cache without a field gets these
DEFAULT_MARGIN = 0.3
DEFAULT_FOREHEAD = 0.2
DEFAULT_CROP_SIZE = 256
DEFAULT_LANDMARK_MODEL = "dlib shape_predictor_68_face_landmarks"
#: how the part of a crop box outside the frame is filled: "constant" (black) for every rule made
#: now; "reflect" is what a rule recorded without ``pad`` did
PAD_MODES = ("constant", "reflect")
DEFAULT_PAD = "constant"
LEGACY_PAD = "reflect"
#: older checkpoints wrote {"size", "margin", "forehead"}
_ALIASES = {"size": "crop_size"}


@dataclass(frozen=True)
class CropRule:
    """How crops are made: built once per run from its configuration, it keys the face cache, is
    recorded in the cache, the checkpoint and the results, and predict reads it back (it travels
    with the model as timm's ``pretrained_cfg`` does)."""

    detector: str = defaults().legacy_face_detector  # a record without one was made with it
    landmark_model: str = DEFAULT_LANDMARK_MODEL
    margin: float = DEFAULT_MARGIN
    forehead: float = DEFAULT_FOREHEAD
    crop_size: int = DEFAULT_CROP_SIZE
    square: bool = True
    pad: str = LEGACY_PAD  # a record without it reflected; for_detector (every new rule) gives DEFAULT_PAD

    def __post_init__(self) -> None:
        if self.pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {', '.join(PAD_MODES)}, got {self.pad!r}")
        if self.crop_size < 16:
            raise ValueError(f"crop_size must be >= 16 px, got {self.crop_size}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.forehead < 0:
            raise ValueError(f"forehead must be >= 0, got {self.forehead}")

    @classmethod
    def for_detector(cls, detector: str = defaults().face_detector, crop_size: int = DEFAULT_CROP_SIZE, margin: float = DEFAULT_MARGIN,
                     forehead: float = DEFAULT_FOREHEAD, pad: str = DEFAULT_PAD) -> "CropRule":
        """The rule for face-detector plugin ``detector``, naming the landmark model it fits."""
        from harness.registry import get

        factory = get("face_detector", detector).factory
        landmark_model = str(getattr(factory, "landmark_model", DEFAULT_LANDMARK_MODEL))
        return cls(detector=detector, landmark_model=landmark_model, margin=float(margin),
                   forehead=float(forehead), crop_size=int(crop_size), pad=pad)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, detector: str | None = None) -> "CropRule":
        """The rule a checkpoint, cache or results file recorded: a missing field gets the value the
        harness used before recording it; unknown fields are ignored. ``detector`` fills in a
        record without one (old checkpoints named it beside the crop)."""
        data = {_ALIASES.get(k, k): v for k, v in dict(data or {}).items()}
        if detector is not None:
            data.setdefault("detector", detector)
        kinds = {f.name: f.type for f in fields(cls)}
        casts = {"str": str, "float": float, "int": int, "bool": bool}
        return cls(**{k: casts[kinds[k]](v) for k, v in data.items() if k in kinds})

    def cache_key(self) -> str:
        """The face-cache folder name of this rule. The forehead and the padding are written only
        when they differ from what caches made before they were part of the key used, so those
        caches keep their folder; constant padding cuts other crops, so it gets its own folder."""
        key = f"{self.detector}-crop{self.crop_size}-m{self.margin:g}"
        key = key if self.forehead == DEFAULT_FOREHEAD else f"{key}-fh{self.forehead:g}"
        return key if self.pad == LEGACY_PAD else f"{key}-pad{self.pad}"

    def box(self, landmarks: np.ndarray) -> tuple[float, float, float, float]:
        """The square crop box of one face's landmarks, in frame pixels."""
        return crop_box(landmarks, margin=self.margin, forehead=self.forehead)

    def cut(self, frame: np.ndarray, landmarks: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The crop of one face (at ``size``, default ``crop_size``) and its landmarks in crop pixels."""
        size = int(size or self.crop_size)
        box = self.box(landmarks)
        return crop_image(frame, box, size, self.pad), landmarks_to_crop(landmarks, box, size)

    def crops(self, faces: Iterable[Any], frame: np.ndarray) -> Iterator[tuple[Any, tuple[float, float, float, float], np.ndarray]]:
        """(face, box, crop) for each face of ``frame`` with landmarks: see ``face_crops``."""
        return face_crops(faces, frame, self.crop_size, self.margin, self.forehead, self.pad)


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


def crop_matrix(box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """2x3 affine frame -> crop for a square ``box`` cut to ``size`` px (inverted, it pastes back)."""
    x0, y0, x1, _ = box
    scale = size / (x1 - x0)
    return np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]], dtype=np.float64)


def crop_image(frame: np.ndarray, box: tuple[float, float, float, float], size: int, pad: str = LEGACY_PAD) -> np.ndarray:
    """Cut ``box`` out of ``frame`` and resize it to ``size`` x ``size`` (area filter when shrinking);
    the box's part outside the frame is black (``pad="constant"``) or a reflection (``"reflect"``)."""
    import cv2

    matrix = crop_matrix(box, size)
    if matrix[0, 0] < 1.0:
        # warpAffine has no area filter: cut the box region first, then resize with INTER_AREA.
        return _crop_area(frame, box, size, pad)
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
