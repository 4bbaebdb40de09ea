"""Pictures of a prediction (like the paper's Fig. 8): P_M pasted back on the frame as a heat
overlay with the face boxes, and a contact sheet of the most suspicious frames.

The paste-back inverts the crop rule's geometry exactly: a crop pixel (u, v) came from frame pixel
(x0 + u / s, y0 + v / s) with s = crop side / box side, so the mask is warped with the same affine
matrix the crop was cut with, read backwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from harness.data.crop import Box as CropBox  # a box, or a turned crop's corners
from harness.data.crop import crop_matrix  # the crop rule's own matrix: one geometry both ways

Box = tuple[float, float, float, float]

FAKE_RGB = (230, 40, 40)
REAL_RGB = (40, 200, 70)


def paste_mask(mask: np.ndarray, box: CropBox, frame_shape: Sequence[int]) -> np.ndarray:
    """A square crop-space mask (float in [0, 1]) -> frame-space float32 (H, W); 0 outside the box."""
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
        raise ValueError(f"paste_mask: expected a square 2-D mask, got shape {mask.shape}")
    h, w = int(frame_shape[0]), int(frame_shape[1])
    out = cv2.warpAffine(
        mask, crop_matrix(box, mask.shape[0]), (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )
    return np.clip(out, 0.0, 1.0)


def frame_heat(frame_shape: Sequence[int], masks_and_boxes: Iterable[tuple[np.ndarray, CropBox]]) -> np.ndarray:
    """Max over the faces of their pasted-back masks: one (H, W) float32 map per frame."""
    heat = np.zeros((int(frame_shape[0]), int(frame_shape[1])), np.float32)
    for mask, box in masks_and_boxes:
        np.maximum(heat, paste_mask(mask, box, frame_shape), out=heat)
    return heat


def colorize(heat: np.ndarray) -> np.ndarray:
    """[0, 1] map -> RGB uint8 with the JET palette (blue cold, red hot)."""
    grey = np.clip(heat * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def heat_overlay(image: np.ndarray, heat: np.ndarray, strength: float = 0.65) -> np.ndarray:
    """Blend the heat colours over ``image`` with opacity growing with the heat, so cold pixels
    keep the picture unchanged and only suspect regions are painted."""
    alpha = (np.clip(heat, 0.0, 1.0) * strength)[..., None]
    out = image.astype(np.float32) * (1.0 - alpha) + colorize(heat).astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def label(image: np.ndarray, text: str, origin: tuple[int, int], color: tuple[int, int, int] = (255, 255, 255), scale: float | None = None) -> None:
    """Text on a dark box, in place, readable on any background; scale follows the image size."""
    h, w = image.shape[:2]
    scale = scale if scale is not None else max(0.35, min(h, w) / 450.0)
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x = int(np.clip(origin[0], 0, max(0, w - tw - 4)))
    y = int(np.clip(origin[1], th + 4, h - 2))
    cv2.rectangle(image, (x, y - th - 4), (x + tw + 4, y + base), (0, 0, 0), -1)
    cv2.putText(image, text, (x + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def draw_box(image: np.ndarray, box: Box, score: float, threshold: float) -> None:
    """Face box coloured by its verdict, with its score, in place."""
    color = FAKE_RGB if score >= threshold else REAL_RGB
    thick = max(2, int(round(min(image.shape[:2]) / 200)))
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x0, y0), (x1, y1), color, thick)
    label(image, f"{score:.2f} {'fake' if score >= threshold else 'real'}", (x0, y0 - 4), color)


#: Small frames are enlarged (integer factor) before drawing so that labels stay legible.
MIN_RENDER_SIDE = 360


def render_frame(frame: np.ndarray, faces: Sequence, threshold: float, frame_score: float | None = None, caption: str = "") -> np.ndarray:
    """The frame with P_M as heat overlay and each face's box and score (``faces``: FaceResult).

    Frames whose short side is under MIN_RENDER_SIDE are drawn at an integer multiple of their size."""
    factor = max(1, int(np.ceil(MIN_RENDER_SIDE / max(1, min(frame.shape[:2])))))
    heat = frame_heat(frame.shape, ((f.mask, f.crop_box) for f in faces))
    if factor > 1:
        size = (frame.shape[1] * factor, frame.shape[0] * factor)
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        heat = cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR)
    out = heat_overlay(frame, heat)
    for face in faces:
        draw_box(out, tuple(v * factor for v in face.box), face.score, threshold)
    text = caption
    if frame_score is not None:
        text = f"{caption}  frame score {frame_score:.2f}".strip()
    if text:
        label(out, text, (4, out.shape[0] - 4))
    return out


def _tile(image: np.ndarray, size: int) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(np.clip(image * 255.0, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if image.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interp)
    return np.ascontiguousarray(image)


def contact_sheet(
    rows: Sequence[dict],
    title: str,
    tile: int = 192,
    columns: Sequence[str] = ("face", "P_M mask", "overlay"),
    pad: int = 6,
) -> np.ndarray:
    """One row per frame: ``row["tiles"]`` (RGB images or [0, 1] maps, one per column), ``row["text"]``
    (the score) written on the first tile, ``row["fake"]`` colouring its border (red fake / green
    real), optional ``row["notes"]`` {column: text} written at the foot of other tiles. Column
    names head the sheet, ``title`` tops it."""
    n_cols = len(columns)
    head = 34 + 24
    width = pad + n_cols * (tile + pad)
    height = head + max(1, len(rows)) * (tile + pad) + pad
    sheet = np.full((height, width, 3), 24, np.uint8)
    label(sheet, title, (pad, 26), scale=0.55)
    for c, name in enumerate(columns):
        label(sheet, name, (pad + c * (tile + pad), head - 6), (220, 220, 220), scale=0.5)
    if not rows:
        label(sheet, "no frame with a face", (pad, head + tile // 2), scale=0.6)
    for r, row in enumerate(rows):
        y = head + r * (tile + pad)
        color = FAKE_RGB if row.get("fake") else REAL_RGB
        for c, image in enumerate(row["tiles"][:n_cols]):
            x = pad + c * (tile + pad)
            sheet[y : y + tile, x : x + tile] = _tile(image, tile)
        cv2.rectangle(sheet, (pad - 3, y - 3), (pad + tile + 2, y + tile + 2), color, 3)
        block = sheet[y : y + tile, pad : pad + tile]
        label(block, row.get("text", ""), (2, 20), color, scale=0.5)
        for c, note in (row.get("notes") or {}).items():  # e.g. a Grad-CAM++ map that is flat
            x = pad + int(c) * (tile + pad)
            label(sheet[y : y + tile, x : x + tile], note, (2, tile - 4), (255, 220, 120), scale=0.42)
    return sheet


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG (cv2 wants BGR); creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    path.write_bytes(data.tobytes())
    return path
