"""A Fig. 7-style preview grid: the source face, several fakes per blender, their masks under them.

``render_preview`` is pure (arrays in, RGB uint8 grid out); ``face_from_image`` finds and crops a
face in a photo the way ``harness.data.sample_face`` crops the astronaut. The CLI lives in
``harness.commands.blend``.
"""

from __future__ import annotations

from typing import Any, Mapping

import cv2
import numpy as np

from harness.data.sample_face import crop_face
from harness.types import Blender

from .inputs import check_face

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BAND = 22  # px of the title band above each blender's rows
_GAP = 4


def caption(record: Mapping[str, Any]) -> str:
    """A short label for one fake from its record (regions, warps, blend ratio)."""
    bits: list[str] = []
    regions = record.get("regions")
    if regions:
        bits.append("+".join(r["name"] if isinstance(r, Mapping) else str(r) for r in regions))
    warps = record.get("warps")
    if warps:
        bits.append("warp:" + ",".join(sorted({w["group"].split("_")[0] for w in warps})))
    if "blend_ratio" in record:
        bits.append(f"ratio {record['blend_ratio']:g}")
    return " ".join(bits)


def _label(tile: np.ndarray, text: str) -> None:
    """Write ``text`` on a dark strip at the top of ``tile`` (in place), shrunk to fit."""
    if not text:
        return
    w = tile.shape[1]
    scale = 0.4
    (tw, th), _ = cv2.getTextSize(text, _FONT, scale, 1)
    if tw > w - 4:
        scale *= (w - 4) / tw
        (tw, th), _ = cv2.getTextSize(text, _FONT, scale, 1)
    tile[: th + 6] = (tile[: th + 6] * 0.35).astype(np.uint8)
    cv2.putText(tile, text, (2, th + 2), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def render_preview(
    face: np.ndarray,
    landmarks: np.ndarray,
    blenders: Mapping[str, Blender],
    n: int = 4,
    seed: int = 0,
) -> np.ndarray:
    """RGB uint8 grid: per blender, a row [source, fake 1..n] and under it [caption, mask 1..n].

    Each blender gets its own ``numpy.random.default_rng([seed, i])`` so the grid is reproducible.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not blenders:
        raise ValueError("give at least one blender")
    src = check_face(face, "render_preview")
    h, w = src.shape[:2]
    cols = n + 1
    width = cols * w + (cols - 1) * _GAP
    blocks = []
    for i, (name, blender) in enumerate(blenders.items()):
        rng = np.random.default_rng([seed, i])
        top = [src.copy()]
        bottom = [np.full((h, w, 3), 32, np.uint8)]
        _label(top[0], "source (real)")
        _label(bottom[0], "masks (1 = altered)")
        for k in range(n):
            result = blender(face, landmarks, rng)
            fake = np.ascontiguousarray(result.image)
            _label(fake, f"{name} #{k + 1} {caption(result.record)}")
            mask = (np.clip(result.mask, 0, 1) * 255).astype(np.uint8)
            mask = np.ascontiguousarray(np.repeat(mask[:, :, None], 3, axis=2))
            _label(mask, f"mask max {float(result.mask.max()):.2f}")
            top.append(fake)
            bottom.append(mask)
        band = np.full((_BAND, width, 3), 255, np.uint8)
        cv2.putText(band, name, (4, _BAND - 6), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        rows = []
        for row in (top, bottom):
            gap = np.full((h, _GAP, 3), 255, np.uint8)
            parts: list[np.ndarray] = []
            for j, tile in enumerate(row):
                parts += [gap, tile] if j else [tile]
            rows.append(np.concatenate(parts, axis=1))
        blocks.append(np.concatenate([band, rows[0], np.full((_GAP, width, 3), 255, np.uint8), rows[1]], axis=0))
    return np.concatenate(blocks, axis=0)


def face_from_image(path: str, size: int = 256, detector: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read an image file, find its largest face with the dlib plugin and crop it."""
    import harness

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not read an image from {path}: is it a readable PNG/JPEG file?")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    detector = detector or harness.plugin("face_detector", "dlib")
    faces = [f for f in detector.detect(rgb) if f.landmarks is not None]
    if not faces:
        raise ValueError(f"no face with landmarks found in {path}; try a larger, frontal face photo")
    return crop_face(rgb, faces[0].landmarks, size)
