"""A Fig. 7-style preview grid: the source face, several fakes per blender, their masks under them.

Works with any registered blender (``blenders_by_name`` builds them through the registry) and
any face detector (``face_from_image``; by default the one a run uses, ``RunConfig().face_detector``).
``render_preview`` is pure (arrays in, RGB uint8 grid out); ``face_from_image`` finds and crops a
face in a photo the way ``harness.data.sample_face`` crops the astronaut. The CLI is
``harness blend preview`` (``harness.commands.blend``).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from harness.extend.types import Blender, FaceDetector

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


def blenders_by_name(names: Iterable[str], options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Blender]:
    """Ready blenders from the registry, by name (``options``: per-name constructor options)."""
    from harness.extend import registry

    options = options or {}
    return {name: registry.create("blender", name, **dict(options.get(name, {}))) for name in names}


def _rgb(face: np.ndarray) -> np.ndarray:
    """``face`` as a contiguous RGB uint8 (H, W, 3) array (grey faces get three equal channels)."""
    if not isinstance(face, np.ndarray) or face.dtype != np.uint8:
        raise ValueError(f"render_preview: face must be a uint8 numpy array, got {face.dtype if isinstance(face, np.ndarray) else type(face).__name__}")
    if face.ndim == 2:
        face = face[:, :, None]
    if face.ndim != 3 or face.shape[2] not in (1, 3):
        raise ValueError(f"render_preview: face must be (H, W, 3) RGB or grey, got shape {face.shape}")
    return np.ascontiguousarray(np.repeat(face, 3, axis=2) if face.shape[2] == 1 else face)


def _label(tile: np.ndarray, text: str) -> None:
    """Write ``text`` on a dark strip at the top of ``tile`` (in place), shrunk to fit."""
    import cv2

    if not text:
        return
    font, w, scale = cv2.FONT_HERSHEY_SIMPLEX, tile.shape[1], 0.4
    (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
    if tw > w - 4:
        scale *= (w - 4) / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
    tile[: th + 6] = (tile[: th + 6] * 0.35).astype(np.uint8)
    cv2.putText(tile, text, (2, th + 2), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _fake_tiles(name: str, k: int, blender: Blender, face: np.ndarray, landmarks: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fake ``k`` of ``blender`` and its mask, both labelled RGB tiles."""
    result = blender(face, landmarks, rng)
    fake = np.ascontiguousarray(result.image)
    _label(fake, f"{name} #{k + 1} {caption(result.record)}")
    mask = (np.clip(result.mask, 0, 1) * 255).astype(np.uint8)
    mask = np.ascontiguousarray(np.repeat(mask[:, :, None], 3, axis=2))
    _label(mask, f"mask max {float(result.mask.max()):.2f}")
    return fake, mask


def _row(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles side by side with a white gap between them."""
    gap = np.full((tiles[0].shape[0], _GAP, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for j, tile in enumerate(tiles):
        parts += [gap, tile] if j else [tile]
    return np.concatenate(parts, axis=1)


def _block(name: str, blender: Blender, face: np.ndarray, landmarks: np.ndarray, src: np.ndarray, n: int,
           rng: np.random.Generator) -> np.ndarray:
    """One blender's rows: its name band, [source, fakes] and [caption, masks]."""
    import cv2

    h, w = src.shape[:2]
    top, bottom = [src.copy()], [np.full((h, w, 3), 32, np.uint8)]
    _label(top[0], "source (real)")
    _label(bottom[0], "masks (1 = altered)")
    for k in range(n):
        fake, mask = _fake_tiles(name, k, blender, face, landmarks, rng)
        top.append(fake)
        bottom.append(mask)
    width = (n + 1) * w + n * _GAP
    band = np.full((_BAND, width, 3), 255, np.uint8)
    cv2.putText(band, name, (4, _BAND - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, _row(top), np.full((_GAP, width, 3), 255, np.uint8), _row(bottom)], axis=0)


def render_preview(
    face: np.ndarray,
    landmarks: np.ndarray,
    blenders: Mapping[str, Blender] | Iterable[str],
    n: int = 4,
    seed: int = 0,
) -> np.ndarray:
    """RGB uint8 grid: per blender, a row [source, fake 1..n] and under it [caption, mask 1..n].

    ``blenders``: name -> blender, or registered blender names. Each blender gets its own
    ``numpy.random.default_rng([seed, i])`` so the grid is reproducible.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not isinstance(blenders, Mapping):
        blenders = blenders_by_name(blenders)
    if not blenders:
        raise ValueError("give at least one blender")
    src = _rgb(face)
    blocks = [_block(name, blender, face, landmarks, src, n, np.random.default_rng([seed, i]))
              for i, (name, blender) in enumerate(blenders.items())]
    return np.concatenate(blocks, axis=0)


def default_detector_name() -> str:
    """The face detector a run uses by default (``RunConfig().face_detector``)."""
    from harness.vocab.config import RunConfig

    return RunConfig().face_detector


def face_from_image(path: str, size: int = 256, detector: FaceDetector | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read an image file, find its largest face and crop it: (RGB uint8 crop, 68 landmarks).

    ``detector``: a face detector, a registered detector's name, or ``None`` for the run default."""
    import cv2

    from harness.extend import registry
    from harness.data.sample_face import crop_face

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not read an image from {path}: is it a readable PNG/JPEG file?")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if detector is None or isinstance(detector, str):
        detector = registry.create("face_detector", detector or default_detector_name())
    faces = [f for f in detector.detect(rgb) if f.landmarks is not None]
    if not faces:
        raise ValueError(f"no face with landmarks found in {path}; try a larger, frontal face photo")
    return crop_face(rgb, faces[0].landmarks, size)
