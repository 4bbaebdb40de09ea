"""The files `harness predict --out DIR` writes for one input (one folder per input):

    frame_<index>.png     each analysed frame: P_M heat overlay pasted back, face boxes and scores
    overlay.mp4           (videos) the analysed frames in order, H.264 via PyAV
    contact_sheet.png     the most suspicious frames: face | P_M | overlay [| Grad-CAM++], score on each
    explain_<index>.png   (--explain) face crop next to its Grad-CAM++ heatmap, for the sheet's frames
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from harness.predict.inference import FaceResult, FrameResult, MediaResult
from harness.predict.overlay import colorize, contact_sheet, heat_overlay, label, render_frame, save_png

OVERLAY_FPS = 4  # the overlay video shows the sampled frames only: a slow, readable flip-book


def output_names(files: Sequence[Path]) -> dict[Path, str]:
    """A distinct folder name per input: the file stem, with parent folders prepended where stems
    collide (FF++ fakes share names across methods: Deepfakes/000_003 vs Face2Face/000_003)."""
    names: dict[Path, str] = {}
    depth = {f: 0 for f in files}
    while True:
        for f in files:
            parts = [p for p in f.resolve().parent.parts[-depth[f]:]] if depth[f] else []
            names[f] = "_".join(parts + [f.stem]).replace("/", "_") if parts else f.stem
        seen: dict[str, list[Path]] = {}
        for f, n in names.items():
            seen.setdefault(n, []).append(f)
        clashes = [group for group in seen.values() if len(group) > 1]
        if not clashes:
            return names
        grew = False
        for group in clashes:
            for f in group:
                if depth[f] < len(f.resolve().parent.parts):
                    depth[f] += 1
                    grew = True
        if not grew:  # identical paths given twice: number them
            for group in clashes:
                for k, f in enumerate(group[1:], 2):
                    names[f] = f"{names[f]}_{k}"
            return names


def suspicious_frames(result: MediaResult, top: int) -> list[tuple[FrameResult, FaceResult]]:
    """The ``top`` frames with the highest score, each with its most suspicious face."""
    scored = [fr for fr in result.frames if fr.faces and fr.score is not None]
    scored.sort(key=lambda fr: (-fr.score, fr.index))
    return [(fr, max(fr.faces, key=lambda f: f.score)) for fr in scored[: max(0, top)]]


EXPLAIN_SIDE = 256  # explain PNG panels are enlarged to this side when the model input is smaller


def _explain_panel(crop: np.ndarray, overlay: np.ndarray, cam: np.ndarray, index: int) -> np.ndarray:
    """Face | Grad-CAM++ over the face | the map alone, side by side."""
    import cv2

    side = max(EXPLAIN_SIDE, crop.shape[0])
    panels = [cv2.resize(p, (side, side), interpolation=cv2.INTER_LINEAR) for p in (crop, overlay, colorize(cam))]
    out = np.concatenate(panels, axis=1)
    label(out, f"frame {index}", (4, 22), scale=0.55)
    label(out, "Grad-CAM++ (P_C)", (side + 4, 22), scale=0.55)
    if float(cam.max()) < 1e-6:
        label(out, "flat: no evidence for fake", (side + 4, side - 6), (255, 220, 120), scale=0.5)
    return out


def _sheet_rows(picks: list[tuple[FrameResult, FaceResult]], cams: np.ndarray | None, folder: Path,
                threshold: float) -> tuple[list[dict[str, Any]], list[str]]:
    """The contact sheet's rows for the picked faces, and the Grad-CAM++ panels written (with ``cams``)."""
    explain_paths: list[str] = []
    rows = []
    for k, (fr, face) in enumerate(picks):
        tiles: list[np.ndarray] = [face.crop, face.mask, heat_overlay(face.crop, face.mask)]
        notes: dict[int, str] = {}
        if cams is not None:
            cam_view = heat_overlay(face.crop, cams[k], strength=0.6)
            tiles.append(cam_view)
            if float(cams[k].max()) < 1e-6:
                # Grad-CAM++ keeps positive evidence only: a flat map means nothing pushed P_C up.
                notes[3] = "flat: no evidence for fake"
            explain_paths.append(str(save_png(folder / f"explain_{fr.index:06d}.png", _explain_panel(face.crop, cam_view, cams[k], fr.index))))
        rows.append({"tiles": tiles, "text": f"#{fr.index} P={face.score:.2f}", "fake": face.score >= threshold, "notes": notes})
    return rows, explain_paths


def write_outputs(
    result: MediaResult,
    folder: Path,
    threshold: float,
    explainer: Callable[[list[np.ndarray]], np.ndarray] | None = None,
    top: int = 8,
    fps: int = OVERLAY_FPS,
) -> dict[str, Any]:
    """Write the pictures of one scored input; returns their paths for the JSON report."""
    from harness.data.video import write_video

    folder.mkdir(parents=True, exist_ok=True)
    overlays: list[str] = []

    def rendered() -> Iterator[np.ndarray]:
        # One frame at a time: each PNG is written as the video encoder consumes it.
        for fr in result.frames:
            image = render_frame(fr.frame, fr.faces, threshold, fr.score, caption=f"frame {fr.index}")
            if not fr.faces:
                label(image, f"frame {fr.index}: no face", (4, image.shape[0] - 4))
            overlays.append(str(save_png(folder / f"frame_{fr.index:06d}.png", image)))
            yield image

    video = None
    if result.kind == "video" and result.frames:
        video = str(write_video(folder / "overlay.mp4", rendered(), fps=fps))
    else:
        for _ in rendered():
            pass

    picks = suspicious_frames(result, top)
    cams = explainer([face.crop for _, face in picks]) if explainer is not None and picks else None
    rows, explain_paths = _sheet_rows(picks, cams, folder, threshold)
    columns = ["face", "P_M mask", "P_M overlay"] + (["Grad-CAM++"] if cams is not None else [])
    verdict = f"{result.verdict} (score {result.score:.2f}, threshold {threshold:g})" if result.score is not None else result.status
    sheet = contact_sheet(rows, f"{result.path.name}: {verdict}", columns=columns)
    return {
        "folder": str(folder),
        "overlays": overlays,
        "video": video,
        "contact_sheet": str(save_png(folder / "contact_sheet.png", sheet)),
        "explain": explain_paths,
    }
