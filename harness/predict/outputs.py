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
    explain_paths: list[str] = []
    rows = []
    for k, (fr, face) in enumerate(picks):
        tiles: list[np.ndarray] = [face.crop, face.mask, heat_overlay(face.crop, face.mask)]
        if cams is not None:
            cam_view = heat_overlay(face.crop, cams[k], strength=0.6)
            tiles.append(cam_view)
            pair = np.concatenate([face.crop, cam_view, colorize(cams[k])], axis=1)
            explain_paths.append(str(save_png(folder / f"explain_{fr.index:06d}.png", pair)))
        rows.append({"tiles": tiles, "text": f"#{fr.index} P={face.score:.2f}", "fake": face.score >= threshold})
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
