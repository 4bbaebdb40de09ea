"""Score one video or image with a trained checkpoint: frames -> faces -> crops -> P_C and P_M.

The face detector and the crop rule come from the checkpoint's model.json, so a face is cut exactly
as it was for training. Frames are sampled evenly over the whole video (``linspace``); a frame's
score aggregates its faces (max by default), the video score its frames (mean by default), both
taken from the training run's evaluation settings when the bundle records them.

Bad inputs never raise here: an unreadable file or a file without a face comes back as a
``MediaResult`` with ``status`` and ``error`` set, so the other files of the same call still get
their results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.common import runtime as dd
from harness.data.crop import CropRule, resize_crop
from harness.data.video import VideoDecodeError, is_image, is_media, read_frames_indexed
from harness.extend.defaults import defaults
from harness.common.errors import HarnessError
from harness.evaluation.runner import AGGREGATORS, predict_faces

Box = tuple[float, float, float, float]

DEFAULT_FRAMES = 32


class PredictSetupError(HarnessError, RuntimeError):
    """The checkpoint or its face detector cannot be used. One line, naming the file and the fix."""


@dataclass
class FaceResult:
    """One face of one frame: where it is, how it was cut, and what the model said."""

    box: Box  # detector box, frame pixels
    crop_box: tuple[float, ...]  # where the crop rule cut, frame pixels (may reach outside the frame): harness.data.crop.Box
    detector_score: float
    score: float  # P_C, probability of fake
    mask: np.ndarray | None  # P_M, float32 (img_size, img_size) in [0, 1], crop geometry; None: not asked (no maps)
    crop: np.ndarray  # the model's input, RGB uint8 (img_size, img_size, 3)


@dataclass
class FrameResult:
    index: int  # decoded frame index in the video (0 for an image)
    frame: np.ndarray  # RGB uint8, kept for the overlays
    faces: list[FaceResult] = field(default_factory=list)
    score: float | None = None  # aggregate over faces; None when no face was found


@dataclass
class MediaResult:
    path: Path
    status: str = "ok"  # "ok" | "no_face" | "unreadable" | "error"
    error: str | None = None
    frames_total: int = 0  # frames actually decoded (never the container's claim)
    frames: list[FrameResult] = field(default_factory=list)
    score: float | None = None
    verdict: str | None = None  # "fake" | "real"

    @property
    def kind(self) -> str:
        """``image`` or ``video``, from the file name: the rule the reader uses to decode it."""
        return "image" if is_image(self.path) else "video"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def frames_with_face(self) -> int:
        return sum(1 for f in self.frames if f.faces)


def collect_inputs(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand folders into their media files (recursive, sorted). Returns (files, problems) where a
    problem is (path, message) for a path that does not exist or a folder with no media."""
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_media(p))
            if not found:
                problems.append((path, f"{path}: folder holds no video or image file (looked for .mp4, .avi, .png, .jpg ...)"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append((path, f"{path}: no such file or folder; check the path"))
    return files, problems


class Predictor:
    """A loaded checkpoint + the detector and crop rule it was trained with."""

    def __init__(
        self,
        model: torch.nn.Module,
        meta: dict[str, Any],
        detector: Any,
        device: torch.device | str = "cpu",
        batch_size: int = 32,
        checkpoint: Path | None = None,
    ) -> None:
        self.model = model.eval()
        self.meta = meta
        self.detector = detector
        self.detector_name = str(meta.get("face_detector", defaults().legacy_face_detector))  # from_checkpoint records an override
        self.detector_options: dict[str, Any] = {}
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.checkpoint = checkpoint
        self.img_size = int(meta.get("img_size") or meta.get("model", {}).get("img_size", 224))
        from harness.models.bundle import bundle_heads, input_scale

        self.input_scale = input_scale(meta)  # the bundle's own input scaling (an imported model's)
        #: where the masks come from: the mask head (P_M), or Grad-CAM++ of P_C for a model without one
        self.mask_source = "P_M" if "mask" in bundle_heads(meta) else "Grad-CAM++"
        # the training crop rule, as the checkpoint recorded it (old defaults for fields it lacks)
        self.crop = CropRule.from_dict(meta.get("crop"), detector=str(meta.get("face_detector", defaults().legacy_face_detector)))
        evaluation = (meta.get("run") or {}).get("eval") or {}
        self.frame_aggregation = str(evaluation.get("frame_aggregation", "max"))
        self.video_aggregation = str(evaluation.get("video_aggregation", "mean"))
        for name in (self.frame_aggregation, self.video_aggregation):
            if name not in AGGREGATORS:
                raise PredictSetupError(f"checkpoint asks for aggregation {name!r}; known: {', '.join(AGGREGATORS)}")

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", batch_size: int = 32, detector: str | None = None,
                        detector_options: dict[str, Any] | None = None) -> "Predictor":
        """Load what ``--checkpoint`` names (a run folder, checkpoint folder, model.safetensors, or a
        foreign file as [IMPORTER:]FILE[?KEY=VALUE], imported into the cache: see
        harness.models.importing). ``detector`` (default: the checkpoint's) and its
        ``detector_options`` choose the face detector."""
        import harness
        from harness.common.errors import PluginError, UnknownOptionError
        from harness.models.bundle import CheckpointError, load_model
        from harness.models.importing import resolve_checkpoint

        try:
            # one process: auto is plain "cuda" (the current GPU, as reported), not torchrun's cuda:LOCAL_RANK
            dev = dd.pick_device(device, per_rank=False)
        except ValueError as exc:
            raise PredictSetupError(str(exc)) from exc
        try:
            directory = resolve_checkpoint(str(path))
            model, meta = load_model(directory, dev)
        except CheckpointError as exc:
            raise PredictSetupError(str(exc)) from exc
        except Exception as exc:  # whatever else an unusable bundle raises: one line, never a traceback
            raise PredictSetupError(f"cannot load checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        trained = meta.get("face_detector", defaults().legacy_face_detector)
        name = detector or trained
        options = dict(detector_options or {})
        try:
            found = harness.plugin("face_detector", name, **options)
        except UnknownOptionError as exc:
            raise PredictSetupError(f"--face-detector-option: {exc}") from exc
        except PluginError as exc:
            if detector:
                raise PredictSetupError(f"--face-detector {name!r}: {exc}") from exc
            raise PredictSetupError(f"{directory} was preprocessed with face detector {name!r}, which is not usable here: {exc}; "
                                    "choose another with --face-detector NAME") from exc
        except (TypeError, ValueError) as exc:
            raise PredictSetupError(f"face detector {name!r} does not take the options {options}: {exc}") from exc
        except Exception as exc:
            raise PredictSetupError(f"{directory}: face detector {name!r} cannot start ({type(exc).__name__}: {exc})") from exc
        try:
            predictor = cls(model, meta, found, dev, batch_size, checkpoint=directory)
        except PredictSetupError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise PredictSetupError(f"{directory / 'model.json'} has a bad field ({type(exc).__name__}: {exc}); copy the checkpoint again") from exc
        predictor.detector_name, predictor.detector_options = name, options
        predictor.crop = predictor.crop.with_detector(name)  # `none`: each image whole, at the model's crop size
        return predictor

    # ------------------------------------------------------------------ one file
    def analyse(self, path: str | Path, frames: int = DEFAULT_FRAMES, threshold: float = 0.5, maps: bool = True) -> MediaResult:
        """Score one video or image. Never raises for a bad file: see ``MediaResult.status``.
        ``maps``: each face's P_M (or Grad-CAM++) too; without, the classification alone (the
        same scores) and each face's ``mask`` None."""
        path = Path(path)
        result = MediaResult(path=path)
        if not is_media(path):
            result.status, result.error = "unreadable", f"{path}: not a video or image file (by its extension); pass .mp4/.avi/.mov or .png/.jpg"
            return result
        try:
            decoded, result.frames_total = read_frames_indexed(path, count=max(1, int(frames)))
        except VideoDecodeError as exc:
            result.status, result.error = "unreadable", str(exc)
            return result
        self._find_faces(decoded, result)
        crops = [face.crop for fr in result.frames for face in fr.faces]
        if not crops:
            result.status = "no_face"
            result.error = f"{path}: no face found in {len(result.frames)} sampled frame(s); the file is not scored"
            return result
        probs, masks = self.score_crops(crops, maps)
        i = 0
        frame_agg = AGGREGATORS[self.frame_aggregation]
        for fr in result.frames:
            for face in fr.faces:
                face.score, face.mask = float(probs[i]), None if masks is None else masks[i]
                i += 1
            if fr.faces:
                fr.score = frame_agg(np.array([f.score for f in fr.faces]))
        scored = [fr.score for fr in result.frames if fr.score is not None]
        result.score = AGGREGATORS[self.video_aggregation](np.array(scored))
        result.verdict = "fake" if result.score >= threshold else "real"
        return result

    def _find_faces(self, decoded: list[tuple[int, np.ndarray]], result: MediaResult) -> None:
        from harness.data.faces import FaceFinder

        finder = FaceFinder(self.detector)  # tracking between sampled frames, as preprocessing does
        for index, frame in decoded:
            fr = FrameResult(index=int(index), frame=frame)
            # preprocessing's crop rule, then evaluation's resize to the model input
            for face, box, crop in self.crop.crops(finder.find(frame), frame):
                fr.faces.append(
                    FaceResult(
                        box=tuple(float(v) for v in face.box),
                        crop_box=tuple(float(v) for v in box),
                        detector_score=float(face.score),
                        score=float("nan"),
                        mask=np.zeros((self.img_size, self.img_size), np.float32),
                        crop=resize_crop(crop, self.img_size),
                    )
                )
            result.frames.append(fr)

    def score_crops(self, crops: list[np.ndarray], maps: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """P_C (N,) and P_M (N, img_size, img_size) for RGB uint8 crops at img_size; a model without a
        mask head gets Grad-CAM++ maps of P_C in P_M's place (``mask_source``). Without ``maps``
        the classification head alone runs (the same P_C) and the masks are None."""
        from harness.models.bundle import NonFiniteScores

        try:
            probs, masks = predict_faces(self.model, crops, self.img_size, self.device, self.batch_size, self.input_scale,
                                         masks=maps)
        except NonFiniteScores as exc:  # the model's fault, not this file's: nothing more is scored
            raise PredictSetupError(f"{self.checkpoint or 'checkpoint'}: {exc}") from None
        if masks is None and maps:
            from harness.predict.explain import GradCamPlusPlus

            masks = GradCamPlusPlus(self.model, self.device, scale=self.input_scale)(crops)
        return probs, masks
