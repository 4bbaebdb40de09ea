"""The timm encoders: ``swin``, ``swin-s``, ``resnet50``, ``vit-s`` and ``efficientnet-b4``.

This module only registers them; their code (timm_pyramid.py) imports torch and timm, so it is
imported when an encoder is built, not when `harness plugins` or `--help` lists it.
"""

from __future__ import annotations

from typing import Any, Callable

from harness.api import Register, hookimpl

IMPLEMENTATION = "harness_plugins.backbones.timm_pyramid"


def deferred(module: str, attribute: str, summary: str) -> Callable[..., Any]:
    """A backbone factory that imports ``module`` on its first call."""

    def factory(pretrained: bool | str = False, img_size: int = 224, **options: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), attribute)(pretrained=pretrained, img_size=img_size, **options)

    factory.__name__ = factory.__qualname__ = attribute
    factory.__doc__ = summary
    return factory


def forward_names(module: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that answers the implementation's public names (``TimmPyramid`` ...)
    by importing ``module`` on first use, so code written against the old layout keeps working."""

    def __getattr__(name: str) -> Any:
        import importlib

        if name.startswith("_"):  # __path__, __wrapped__ ...: asked by importers and pluggy, never forwarded
            raise AttributeError(name)
        return getattr(importlib.import_module(module), name)

    return __getattr__


__getattr__ = forward_names(IMPLEMENTATION)


@hookimpl
def register_backbones(register: Register) -> None:
    for name, attribute, summary in (
        ("swin", "swin_t", "Swin-T encoder (depths 2,2,6,2), timm"),
        ("swin-s", "swin_s", "Swin-S encoder (depths 2,2,18,2), timm"),
        ("resnet50", "resnet50", "ResNet-50 encoder (stages 1-4), timm"),
        ("vit-s", "vit_small", "ViT-S/16 encoder + simple feature pyramid, timm"),
        ("efficientnet-b4", "efficientnet_b4", "EfficientNet-B4 (AdvProp), SBI's backbone, timm"),
    ):
        register(name, deferred(IMPLEMENTATION, attribute, summary), summary)
