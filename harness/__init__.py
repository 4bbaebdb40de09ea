"""A plugin-based harness for face-forgery detection and localization trained without fake samples.

From Python::

    import harness
    blender = harness.plugin("blender", "multipart")
    result = blender(face_rgb, landmarks68, numpy.random.default_rng(0))
    harness.plugins("backbone")   # what is installed
"""

from __future__ import annotations

from typing import Any

from harness.extend.hookspecs import hookimpl
from harness.extend.registry import PluginEntry

__version__ = "0.1.0"
__all__ = ["hookimpl", "plugin", "plugins", "__version__"]


def plugin(kind: str, name: str, **options: Any) -> Any:
    """A ready instance of the plugin ``name`` of ``kind`` (blender, backbone, evaluator, dataset,
    face_detector, logger), built with ``options``. Unknown names raise with the closest known name."""
    from harness.extend import registry as _plugins

    return _plugins.create(kind, name, **options)


def plugins(kind: str | None = None) -> list[PluginEntry]:
    """The registered plugins (all kinds, or one)."""
    from harness.extend import registry as _plugins

    return _plugins.entries(kind)
