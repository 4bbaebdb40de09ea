"""The stable plugin API: the one module a plugin imports from the harness.

Everything a blender, backbone, evaluator, dataset, face detector, logger or command needs from
the core is here; the rest of ``harness`` may move between versions. The names listed in
``__all__`` keep their meaning within a major version (docs/plugins.md, "Writing a plugin").

Importing this module costs no numpy and no torch: the helpers that need them (``auto_window``,
``weights_record`` ...) are imported when first accessed. Access them inside the function that
needs them (or in the module your factory imports), not at your plugin module's top, and
`harness --help` and `harness plugins` stay instant with your plugin installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.common.errors import HarnessError
from harness.extend.hookspecs import Register, hookimpl
from harness.extend.registry import PluginError, suggest
from harness.vocab.folder import RunFolder
from harness.extend.types import (
    FAKE,
    FRAME_SEPARATOR,
    REAL,
    Backbone,
    Blender,
    BlendResult,
    Box,
    CompressedDataset,
    Dataset,
    DatasetLayoutError,
    DatasetNotFoundError,
    DatasetReport,
    EvalContext,
    Evaluator,
    Face,
    FaceDetector,
    GradCamNetwork,
    ImportedModel,
    ImportedNetwork,
    Importer,
    LocatedDataset,
    MaskSet,
    Metric,
    NotedDataset,
    PairBlender,
    PretrainedBackbone,
    ScoreSet,
    SplitDataset,
    TrainLogger,
    TwoStageDetector,
    UpsamplingDetector,
    VideoRecord,
    video_uid,
)

#: name -> "module:attribute", imported on first access (these pull in numpy, OpenCV or torch)
_LAZY: dict[str, str] = {
    # datasets
    "safe_name": "harness.common.files:safe_name",
    "is_image": "harness.data.video:is_image",
    "is_media": "harness.data.video:is_media",
    # backbones: the feature contract the shared decoder checks, and the input normalisation
    "STRIDES": "harness.models.detector:STRIDES",
    "MEAN": "harness.models.inputs:MEAN",
    "STD": "harness.models.inputs:STD",
    "auto_window": "harness.models.decoder:auto_window",
    # pretrained weights: cache-first lookup, the record results keep, safe loading
    "PretrainedWeightsError": "harness.models.pretrained:PretrainedWeightsError",
    "packaged_file": "harness.models.pretrained:packaged_file",
    "wants_imagenet": "harness.models.pretrained:wants_imagenet",
    "weights_record": "harness.models.pretrained:weights_record",
    "is_local_file": "harness.models.pretrained:is_local_file",
    "timm_imagenet_file": "harness.models.pretrained:timm_imagenet_file",
    "load_weights_file": "harness.models.weights:load_weights_file",
    "read_state_dict": "harness.models.weights:read_state_dict",
    # face detectors: the two-stage base (boxes from a subclass, 68 landmarks on each) and the input check
    "LandmarkedDetector": "harness.data.landmarks:LandmarkedDetector",
    "check_frame": "harness.data.landmarks:check_frame",
    # importers: what an imported model's forward returns
    "ModelOutput": "harness.models.detector:ModelOutput",
    "read_checkpoint": "harness.models.importing:read_checkpoint",
    "checkpoint_strings": "harness.models.importing:checkpoint_strings",
    "CropRule": "harness.data.crop:CropRule",
    # loggers
    "JsonlLogger": "harness.training.loggers:JsonlLogger",
    # bounded reading of user files (one line, never a MemoryError): datasets' label lists
    "read_bounded_text": "harness.common.bounded:read_bounded_text",
    "read_json": "harness.common.bounded:read_json",
    "InputFileError": "harness.common.bounded:InputFileError",
    "MAX_CSV_BYTES": "harness.common.bounded:MAX_CSV_BYTES",
}

__all__ = [
    # hooks
    "hookimpl", "Register", "PluginError", "suggest",
    # the one base of user errors: raise it (or a subclass) with a one-line message and the CLI prints it
    "HarnessError",
    # the paths of a run folder (a logger writes under RunFolder(run_dir).tensorboard and the like)
    "RunFolder",
    # contracts (harness/extend/types.py) and their data
    "Blender", "PairBlender", "BlendResult",
    "Backbone", "PretrainedBackbone",
    "Dataset", "SplitDataset", "NotedDataset", "CompressedDataset", "LocatedDataset", "DatasetReport", "VideoRecord", "DatasetLayoutError", "DatasetNotFoundError",
    "FRAME_SEPARATOR", "REAL", "FAKE", "video_uid",
    "FaceDetector", "TwoStageDetector", "UpsamplingDetector", "Face", "Box",
    "Evaluator", "EvalContext", "Metric", "ScoreSet", "MaskSet",
    "TrainLogger",
    "Importer", "ImportedModel", "ImportedNetwork", "GradCamNetwork",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"harness.api has no {name!r}; the plugin API is: {', '.join(sorted(__all__))}")
    module, attribute = target.split(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
