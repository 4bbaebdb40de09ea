"""Moved to the core: ``harness.preview`` renders the preview grid for any registered blender.

This name stays importable for code written against it."""

from harness.preview import _BAND, _GAP, caption, face_from_image, render_preview  # noqa: F401
