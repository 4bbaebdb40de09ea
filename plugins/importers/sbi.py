"""Importer ``sbi``: the official SelfBlendedImages checkpoints (Shiohara and Yamasaki, CVPR 2022).

The released files are ``torch.save({"model": state_dict, "optimizer": ..., "epoch": ...})`` of a
``Detector`` whose ``net`` is efficientnet_pytorch's EfficientNet-B4 with a 2-class head (keys
``net._conv_stem.weight`` ... ``net._fc.weight``). Inference, as SBI's own ``src/inference/`` runs it
and recorded here as the bundle's data configuration so that `harness evaluate` and `harness
predict` reproduce it:

- faces: RetinaFace (resnet50_2020-07-20) boxes; each box grown by 1/8 of its width and height on
  every side, clipped to the frame, resized (bilinear, not square-preserving) to 380 x 380 RGB;
  faces smaller than half the frame's largest box are dropped;
- input: ``img / 255``, no mean/std; ``softmax(logits)[:, 1]`` is the fake probability (here the
  logit ``z1 - z0``, whose sigmoid is that softmax);
- 32 frames per video evenly spaced; frame score = max over its faces, video score = mean over
  frames. (SBI scores a video it cannot read 0.5; the harness counts it as failed instead.)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.api import ImportedModel, hookimpl

IMG_SIZE = 380
STEM_KEY = "net._conv_stem.weight"
FC_KEY = "net._fc.weight"


def _state(checkpoint: Any) -> dict[str, Any] | None:
    """The state dict of an SBI checkpoint, or None when ``checkpoint`` is not one."""
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if isinstance(state, dict) and STEM_KEY in state and FC_KEY in state:
        return state
    return None


def _check_tensors(state: dict[str, Any]) -> None:
    """Every entry of the state dict is a tensor (a damaged or hand-made file may hold a list)."""
    import torch

    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{key} is a {type(value).__name__}, not a tensor: the file is damaged or not one of "
                             "SBI's released checkpoints")


@lru_cache(maxsize=None)
def detector_class() -> type:
    """SBI's Detector as a torch module class, built on first use (`harness plugins` imports no torch)."""
    import torch
    from torch import nn

    from harness.api import ModelOutput

    class SbiDetector(nn.Module):
        """SBI's Detector: ``net`` = EfficientNet-B4, 2 classes (so the file's keys load as they are).
        Forward returns the harness's output: the fake logit, no local or mask head. ``cam_layer``
        (an identity on the last convolution's map) is what Grad-CAM++ explains."""

        def __init__(self, variant: str = "efficientnet-b4", num_classes: int = 2) -> None:
            from efficientnet_pytorch import EfficientNet

            super().__init__()
            self.net = EfficientNet.from_name(variant, num_classes=num_classes)  # weights come from the file
            self.cam_layer = nn.Identity()

        def forward(self, x: torch.Tensor) -> ModelOutput:
            features = self.cam_layer(self.net.extract_features(x))  # EfficientNet.forward, with the tap
            logits = self.net._fc(self.net._dropout(self.net._avg_pooling(features).flatten(1)))
            logit = logits[:, 1] - logits[:, 0]  # sigmoid(z1 - z0) == softmax(z)[:, 1]
            return ModelOutput(logit=logit, token_logits=None, token_features=None, mask_logits=None)

    return SbiDetector


class SbiImporter:
    version = "1"  # change with the conversion: bundles imported on the fly are cached by it

    def accepts(self, path: Path) -> bool:
        """A torch file whose pickle names SBI's stem (sniffed: nothing loaded; ``read`` checks the rest)."""
        from harness.api import checkpoint_strings

        strings = checkpoint_strings(path)
        return strings is not None and STEM_KEY in strings

    def read(self, path: Path) -> ImportedModel:
        from harness.api import CropRule, read_checkpoint

        checkpoint = read_checkpoint(path)
        state = _state(checkpoint)
        if state is None:
            raise ValueError(f"not an SBI checkpoint: expected {{'model': state_dict}} with {STEM_KEY} and {FC_KEY}")
        _check_tensors(state)
        classes = int(state[FC_KEY].shape[0])
        if classes != 2:
            raise ValueError(f"{FC_KEY} has {classes} outputs; SBI's head has 2 (real, fake)")
        rule = CropRule(detector="retinaface", landmark_model="none (detector box)", margin=0.125, forehead=0.0,
                        crop_size=IMG_SIZE, square=False, basis="detector-box", min_area=0.5)
        meta = {
            "model": {"variant": "efficientnet-b4", "num_classes": 2},
            "img_size": IMG_SIZE,
            "input": {"scale": "unit", "channels": "RGB"},
            "heads": ["class"],
            "face_detector": rule.detector,
            "crop": rule.to_dict(),
            "run": {"eval": {"frames_per_video": 32, "frame_aggregation": "max", "video_aggregation": "mean"},
                    "blender": "sbi", "backbone": "efficientnet-b4"},
            "training": {"datasets": ["ffpp"], "split": "train", "videos": "real only (self-blended fakes)",
                         "compression": "c23 (the released FFc23 weights; the file does not record it)",
                         "recorded_by": "SBI's paper and README (the checkpoint records no file list)"},
            "origin": {"source": "SelfBlendedImages (Shiohara and Yamasaki, CVPR 2022)", "epoch": checkpoint.get("epoch"),
                       "paper_row": "sbi"},
            "label": "SBI",
            "architecture": "EfficientNet-B4 (SBI's Detector, 2 classes)",
        }
        return ImportedModel(state_dict=dict(state), meta=meta)

    def build(self, options: dict[str, Any]) -> Any:
        return detector_class()(str(options.get("variant", "efficientnet-b4")), int(options.get("num_classes", 2)))


@hookimpl
def register_importers(register) -> None:
    register("sbi", SbiImporter, "SelfBlendedImages official checkpoints: {'model': EfficientNet-B4 state dict, ...}")
