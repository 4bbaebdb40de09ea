"""The data contracts between the harness core and its plugins.

Every plugin kind exchanges these small, plain types with the core, and each kind has one
Protocol here (``Blender``, ``Backbone``, ``Dataset``, ``FaceDetector``, ``Evaluator``,
``TrainLogger``, ``Importer``), plus the optional capabilities a plugin may add (``PairBlender``,
``TwoStageDetector`` ...). The core reads nothing else from a plugin: these members, the
factory's keyword options and the ``register()`` options ``harness.extend.contracts`` lists.
``harness.extend.contracts`` checks them when a plugin registers and when it is first built. A
plugin author reads this file and `hookspecs.py` and knows everything the core will hand over and
expect back. Importing it costs no numpy and no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, NotRequired, Protocol, Sequence, TypedDict, runtime_checkable

from harness.common.errors import HarnessError

if TYPE_CHECKING:  # annotations only: `harness plugins` and `--help` stay free of numpy and torch
    import numpy as np

Split = Literal["train", "val", "test"]

#: Label convention used everywhere inside the harness, whatever the dataset's own files say.
REAL: int = 0
FAKE: int = 1
#: the group holding every item of a dataset (reserved: no plugin group may take the name)
ALL = "all"


# --------------------------------------------------------------------------------------------
# Blenders
# --------------------------------------------------------------------------------------------
@dataclass
class BlendResult:
    """What a blender returns for one face.

    image: the fake face, RGB uint8, same size as the input.
    mask: float32 in [0, 1], same height/width, 1 = altered pixel.
    record: JSON-serialisable description of what was done (regions, scales, warps, augments).
    """

    image: np.ndarray
    mask: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Blender(Protocol):
    """`blender(face_rgb_uint8, landmarks68_xy, rng) -> BlendResult`. No hidden global randomness."""

    def __call__(self, face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> BlendResult: ...


class PairBlender(Blender, Protocol):
    """Capability ``pair``: the blender also returns the augmented real its fake was made from, so
    a training pair differs only inside the mask (SBI's convention)."""

    def pair(self, face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, BlendResult]: ...


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoRecord:
    """One video (or image) of a dataset.

    uid is unique across every dataset: ``dataset/method/compression/name`` (for example
    ``ffpp/Deepfakes/c23/000_003``). Frames are aggregated into videos by this id alone (see
    ``FRAME_SEPARATOR`` for images that are frames of one video).
    """

    uid: str
    path: Path
    label: int  # REAL (0) or FAKE (1)
    split: str  # "train" | "val" | "test"
    dataset: str
    method: str  # "original" for real videos
    compression: str = "raw"
    mask_path: Path | None = None  # a mask video, where the dataset has one
    mask_kind: str = "binary"  # "binary" or "grey" (threshold it)


#: A record whose uid reads ``<video uid>@@<frame name>`` is one frame (an image) of the video
#: ``<video uid>``: evaluation scores all such records together as that one video.
FRAME_SEPARATOR = "@@"


def video_uid(uid: str) -> str:
    """The video a record's uid belongs to (itself, unless it is a frame: see FRAME_SEPARATOR)."""
    return uid.split(FRAME_SEPARATOR, 1)[0]


class DatasetNotFoundError(HarnessError, RuntimeError):
    """The dataset is not where we looked. The message says where we looked and how to get it."""


class DatasetLayoutError(HarnessError, RuntimeError):
    """The dataset is there but does not match the protocol. The message names the file and the fix."""


@dataclass
class DatasetReport:
    """What a dataset's doctor found: used by `harness datasets`."""

    name: str
    found: bool
    root: Path | None
    looked_in: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # e.g. "test/fake/Deepfakes": 140
    expected: dict[str, int] = field(default_factory=dict)  # the protocol's counts
    problems: list[str] = field(default_factory=list)
    how_to_get: str = ""


class Dataset(Protocol):
    name: str

    def check(self) -> DatasetReport: ...

    def records(self, split: str) -> Iterator[VideoRecord]: ...


class SplitDataset(Dataset, Protocol):
    """Capability ``splits``: the splits it has, when not all of train, val and test (a dataset
    without ``val`` trains without validation, or gets one carved with ``val_fraction``)."""

    splits: Sequence[str]


class NotedDataset(Dataset, Protocol):
    """Capability ``notes``: where it departed from its protocol (a fallback split, skipped files),
    one line each, shown with its results."""

    notes: list[str]


class CompressedDataset(Dataset, Protocol):
    """Capability ``compression``: the compression level its records were read at (``c23`` ...),
    recorded with its results."""

    compression: str


class LocatedDataset(Dataset, Protocol):
    """Capability ``looked_in``: the folders and files it searched, known from construction, so
    `harness datasets` can say where it looked even when ``check()`` fails."""

    looked_in: Sequence[Path]


# --------------------------------------------------------------------------------------------
# Face detection
# --------------------------------------------------------------------------------------------
@dataclass
class Face:
    """One detected face in a frame: box (x0, y0, x1, y1) in frame pixels, 68 landmarks (dlib order)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None  # (68, 2) float32, frame pixels


Box = tuple[float, float, float, float]


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray) -> list[Face]:
        """RGB uint8 frame -> faces, largest first."""
        ...


class TwoStageDetector(FaceDetector, Protocol):
    """Capability ``two_stage``: boxes and landmarks separately, so preprocessing can track a face
    between frames and search a small window instead of the whole frame."""

    def boxes(self, frame: np.ndarray) -> list[tuple[Box, float]]: ...

    def landmarks(self, frame: np.ndarray, box: Box) -> np.ndarray: ...


class UpsamplingDetector(TwoStageDetector, Protocol):
    """Capability ``upsample``: ``boxes(frame, upsample=k)`` searches ``k`` times upsampled, and
    ``upsample`` (> 0) asks preprocessing to retry a frame where no face was found that way."""

    upsample: int

    def boxes(self, frame: np.ndarray, upsample: int | None = None) -> list[tuple[Box, float]]: ...


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
class Metric(TypedDict):
    value: float  # NaN where undefined (e.g. one class only), with the reason in ``undefined``
    ci_low: float
    ci_high: float
    n: int
    undefined: NotRequired[str]


@dataclass
class ScoreSet:
    """Scores at one level ("frame" or "video"): one entry per item.

    ids are video uids (video level) or ``uid#frame`` (frame level). groups hold the method
    (``original``, ``Deepfakes`` ...) so evaluators can report per method.
    """

    level: str
    ids: list[str]
    labels: np.ndarray  # int, 0 real / 1 fake
    scores: np.ndarray  # float, probability of fake
    groups: list[str]


@dataclass
class MaskSet:
    """Predicted and ground-truth masks of fake frames that have a mask (float HxW in [0,1])."""

    predicted: list[np.ndarray]
    truth: list[np.ndarray]
    groups: list[str]


@dataclass(frozen=True)
class EvalContext:
    """What the run tells every evaluator factory: ``factory(context)``."""

    n_boot: int = 1000  # bootstrap resamples for the confidence intervals
    # decision threshold of the threshold metrics (accuracy ...): the model's calibrated one, which
    # `harness predict` also uses, else the run's eval.threshold (0.5)
    threshold: float = 0.5
    seed: int = 0
    mask_threshold: float = 0.5  # P_M >= this is an altered pixel (the localization metrics)


class Evaluator(Protocol):
    name: str
    needs: str  # "scores" or "masks"

    def __call__(self, data: ScoreSet | MaskSet, rng: np.random.Generator) -> dict[str, Metric]: ...


# --------------------------------------------------------------------------------------------
# Backbones
# --------------------------------------------------------------------------------------------
class Backbone(Protocol):
    """A ``torch.nn.Module`` whose ``forward(x: N,3,H,W)`` returns four NCHW feature maps at
    ``strides == (4, 8, 16, 32)`` with ``channels`` channels each; the shared UNet decoder fits any
    such encoder. (Annotated without torch, to keep this module light.)"""

    channels: tuple[int, int, int, int]
    strides: tuple[int, int, int, int]

    def forward(self, x: Any) -> Sequence[Any]: ...


class PretrainedBackbone(Backbone, Protocol):
    """Capability ``weights``: the ``{"source", "file", "sha256"}`` of the file that initialised
    it (recorded in results), and ``expects_pretrained``: the method it reproduces starts from
    ImageNet, so training it from scratch prints a warning."""

    weights: dict[str, str] | None
    expects_pretrained: bool


# --------------------------------------------------------------------------------------------
# Training loggers
# --------------------------------------------------------------------------------------------
class TrainLogger(Protocol):
    """Built by ``factory(run_dir, config)``; a record is ``{"step", "epoch", scalar: value ...}``.
    ``register(name, factory, description, check=fn)``: ``fn()`` raises with what to install, and
    runs before any work starts."""

    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------
# Checkpoint importers
# --------------------------------------------------------------------------------------------
@dataclass
class ImportedModel:
    """A foreign checkpoint turned into a harness bundle: weights for ``Importer.build(model)`` and
    the bundle metadata (``model.json``): ``model`` (build options), ``architecture`` (the network
    as its authors name it, e.g. ``"Meso4"``), ``img_size``, ``input`` (``{"scale": "unit" |
    "imagenet" | "half"}``), ``heads`` (of class, local, mask), ``crop`` (a CropRule dict),
    ``face_detector``, ``run`` (``{"eval": {frame/video aggregation, frames_per_video}}``, and the
    ``blender``/``backbone`` its leaderboard row shows), ``training`` (the data the checkpoint was
    trained on, as the importer knows it) and ``origin`` (where it comes from). The core adds the
    importer, its version and options, the file name and its sha256 to ``origin``."""

    state_dict: dict[str, Any]
    meta: dict[str, Any]


class Importer(Protocol):
    """An importer owns a file format: the core never opens a foreign file, it asks the importers.

    Built by ``factory(**options)``: the options are what a user writes after the file,
    ``--checkpoint NAME:FILE?arch=core`` (the factory's keyword arguments: one it does not take is
    refused with the list of those it does; a value it does not support raises ``ValueError``
    naming the supported ones). One importer may serve a family of architectures, recognised from
    the file (key names and shapes), an option choosing where the file leaves it ambiguous.

    - ``version``: a class attribute, changed whenever the conversion changes; the bundles imported
      on the fly are cached by importer name, version, options and the file's sha256.
    - ``accepts(path)``: cheap (suffix, header bytes, ``harness.api.checkpoint_strings`` for a torch
      file); never executes the file. It may say yes to a file ``read`` then refuses with the reason.
    - ``read(path)``: reads the file its own way (torch: ``harness.api.read_checkpoint``, which never
      unpickles code; HDF5: h5py ...) and returns an ``ImportedModel``; ``ValueError`` (one line)
      when the file is not one it can convert.
    - ``build(model_options)``: the ``nn.Module`` whose ``forward(x)`` gives an object with
      ``logit`` (N,) and ``mask_logits`` (None without a mask head)."""

    version: str

    def accepts(self, path: Path) -> bool: ...

    def read(self, path: Path) -> ImportedModel: ...

    def build(self, options: dict[str, Any]) -> Any: ...


class ImportedNetwork(Protocol):
    """What ``Importer.build`` returns: an ``nn.Module`` whose ``forward(x)`` gives ``logit`` (N,)
    and ``mask_logits`` (None without a mask head)."""

    def forward(self, x: Any) -> Any: ...


class GradCamNetwork(ImportedNetwork, Protocol):
    """Capability ``cam_layer``: the ``nn.Module`` whose output Grad-CAM++ explains (`harness
    predict --explain`, and the maps of a model without a mask head)."""

    cam_layer: Any
