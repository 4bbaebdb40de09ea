"""Encoders built on timm: ``swin``, ``swin-s``, ``resnet50``, ``vit-s`` and ``efficientnet-b4`` (registered
by timm_backbones.py, which imports this module only when one is built).

Each returns four NCHW feature maps at strides 4, 8, 16, 32 and declares ``channels`` so the shared
Swin-Unet decoder fits it. ``pretrained`` is off by default; ``"imagenet"`` takes timm's ImageNet
weights (local cache first, a download only when the network answers, a clear error otherwise) and
a path is a local weights file (``.safetensors`` or a torch state dict), loaded strictly.

Small inputs: Swin's window must tile every stage map. ``window_size=None`` (the default) picks 7
when ``img_size/32`` is a multiple of 7 (224, 448 ...), otherwise the largest window <= 7 that divides
``img_size/32`` (64 px -> 2, 96 -> 3, 128 -> 4). Pass ``window_size=7`` explicitly to keep
ImageNet-compatible windows at other sizes (timm pads the maps then). ViT-S takes ``img_size``
directly; its position embedding is resampled from the pretrained 14x14 grid by timm.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.api import MEAN, STD, STRIDES, auto_window


def _check_size(img_size: int) -> None:
    if not isinstance(img_size, int) or img_size < 32 or img_size % 32:
        raise ValueError(f"img_size must be a multiple of 32 (at least 32), got {img_size!r}")


def _create(name: str, pretrained: bool | str, backbone: str, **kwargs: Any) -> tuple[nn.Module, dict | None]:
    """A headless timm model and the record of the weights that initialised it (None: random).

    ImageNet weights come from the local hub cache first and are downloaded only when the network
    answers (``harness.models.pretrained``); a path is a local weights file. Both load strictly.
    """
    import timm

    from harness.api import is_local_file, timm_imagenet_file, wants_imagenet, weights_record
    from harness.api import load_weights_file

    if isinstance(pretrained, os.PathLike):
        pretrained = os.fspath(pretrained)
    if pretrained is not False and not isinstance(pretrained, (bool, str)):
        raise TypeError(f"pretrained must be False, 'imagenet' or a weights file path, got {pretrained!r}")
    model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    if pretrained is False:
        return model, None
    if wants_imagenet(pretrained):
        path, source = timm_imagenet_file(model, backbone)
    else:
        assert is_local_file(pretrained)
        path, source = Path(pretrained).expanduser(), "local file"
    classifier = model.pretrained_cfg.get("classifier", "head")
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    load_weights_file(model, path, ignore_prefixes=tuple(h + "." for h in heads))
    return model, weights_record(path, source)


class InputAdapter(nn.Module):
    """Re-normalise the harness's ImageNet-normalised input for a model trained with other
    statistics (ViT and AdvProp EfficientNets use mean = std = 0.5): a fixed per-channel affine."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        m_in, s_in = torch.tensor(MEAN), torch.tensor(STD)
        m, s = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        self.register_buffer("scale", (s_in / s).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((m_in - m) / s).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def input_adapter(model: nn.Module) -> nn.Module:
    """An :class:`InputAdapter` from the timm model's pretrained config, or identity."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean, std = tuple(cfg.get("mean", MEAN)), tuple(cfg.get("std", STD))
    if len(mean) != 3 or (all(abs(a - b) < 1e-6 for a, b in zip(mean + std, MEAN + STD))):
        return nn.Identity()
    return InputAdapter(mean, std)


class TimmPyramid(nn.Module):
    """A hierarchical timm model (Swin, ResNet, EfficientNet) read out at its four stage outputs.

    ``weights`` records the file that initialised it (None: random); ``expects_pretrained`` says
    the paper trains this encoder from ImageNet, so training it from scratch earns a warning.
    """

    strides = STRIDES

    def __init__(
        self, model: nn.Module, indices: tuple[int, int, int, int], norm: bool,
        weights: dict | None = None, expects_pretrained: bool = True, adapter: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.indices = list(indices)
        self.adapter = input_adapter(model) if adapter is None else adapter
        # Drop the classifier (never trained here: unused parameters break DDP) but keep a final norm.
        model.prune_intermediate_layers(self.indices, prune_norm=not norm, prune_head=True)
        self.model = model
        self.norm = norm
        self.weights, self.expects_pretrained = weights, expects_pretrained
        info = model.feature_info
        self.channels = tuple(int(info[i]["num_chs"]) for i in self.indices)
        reductions = tuple(int(info[i]["reduction"]) for i in self.indices)
        if reductions != STRIDES:
            raise ValueError(f"{type(model).__name__} stages have strides {reductions}, expected {STRIDES}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_intermediates(
            self.adapter(x), indices=self.indices, norm=self.norm, intermediates_only=True, output_fmt="NCHW"
        )


class ViTPyramid(nn.Module):
    """A plain ViT's 1/16 token map turned into four scales (ViTDet's simple feature pyramid):
    two stride-2 deconvs up to 1/4, one up to 1/8, identity at 1/16, 2x2 max-pool to 1/32."""

    strides = STRIDES
    expects_pretrained = True

    def __init__(self, model: nn.Module, weights: dict | None = None) -> None:
        super().__init__()
        self.adapter = input_adapter(model)
        model.prune_intermediate_layers([len(model.blocks) - 1], prune_norm=False, prune_head=True)
        self.model = model
        self.weights = weights
        self.last = len(model.blocks) - 1
        dim = int(model.embed_dim)
        half, quarter = dim // 2, dim // 4
        self.up4 = nn.Sequential(
            nn.ConvTranspose2d(dim, half, 2, stride=2),
            nn.GroupNorm(1, half),  # LayerNorm over channels, NCHW-friendly
            nn.GELU(),
            nn.ConvTranspose2d(half, quarter, 2, stride=2),
        )
        self.up8 = nn.ConvTranspose2d(dim, half, 2, stride=2)
        self.down32 = nn.MaxPool2d(2)
        self.channels = (quarter, half, dim, dim)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        (f16,) = self.model.forward_intermediates(
            self.adapter(x), indices=[self.last], norm=True, intermediates_only=True, output_fmt="NCHW"
        )
        return [self.up4(f16), self.up8(f16), f16, self.down32(f16)]


def _swin(name: str, backbone: str):
    def factory(
        pretrained: bool | str = False, img_size: int = 224, window_size: int | None = None, **timm_kwargs: Any
    ) -> nn.Module:
        _check_size(img_size)
        # a window that tiles the stride-32 map tiles every finer map too
        window = auto_window(img_size // 32) if window_size is None else int(window_size)
        model, weights = _create(name, pretrained, backbone, img_size=img_size, window_size=window, **timm_kwargs)
        return TimmPyramid(model, (0, 1, 2, 3), norm=True, weights=weights)

    return factory


def resnet50(pretrained: bool | str = False, img_size: int = 224, **timm_kwargs: Any) -> nn.Module:
    """ResNet-50: layer1..layer4 (256, 512, 1024, 2048 channels); any multiple of 32 px."""
    _check_size(img_size)
    model, weights = _create("resnet50", pretrained, "resnet50", **timm_kwargs)
    return TimmPyramid(model, (1, 2, 3, 4), norm=False, weights=weights)


def vit_small(pretrained: bool | str = False, img_size: int = 224, **timm_kwargs: Any) -> nn.Module:
    """ViT-S/16 with a simple feature pyramid (96, 192, 384, 384 channels)."""
    _check_size(img_size)
    model, weights = _create("vit_small_patch16_224", pretrained, "vit-s", img_size=img_size, **timm_kwargs)
    return ViTPyramid(model, weights)


def efficientnet_b4(pretrained: bool | str = False, img_size: int = 224, **timm_kwargs: Any) -> nn.Module:
    """EfficientNet-B4 with AdvProp ImageNet weights, SBI's backbone (32, 56, 160, 448 channels).

    SBI (Shiohara & Yamasaki, CVPR 2022) fine-tunes ``efficientnet-b4`` from its AdvProp weights;
    timm's ``tf_efficientnet_b4.ap_in1k`` is that checkpoint (inputs re-normalised to [-1, 1]).
    """
    _check_size(img_size)
    model, weights = _create("tf_efficientnet_b4.ap_in1k", pretrained, "efficientnet-b4", **timm_kwargs)
    return TimmPyramid(model, (1, 2, 3, 4), norm=False, weights=weights)


swin_t = _swin("swin_tiny_patch4_window7_224", "swin")
swin_s = _swin("swin_small_patch4_window7_224", "swin-s")
