"""Compare the predicted localization with a ground-truth mask video/image (FF++ masks, the demo's).

The prediction is P_M pasted back on each analysed frame (max over faces) and thresholded; the
truth is the same frame of the mask video, binarised as the data pipeline does. IoU is computed in
frame pixels, so it measures the whole chain: detection, crop rule, model, paste-back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.data.crop import mask_from_frame
from harness.data.video import VideoDecodeError, is_media, read_frames_indexed
from harness.predict.inference import MediaResult
from harness.predict.overlay import frame_heat

MASK_THRESHOLD = 0.5


def find_mask(media: Path, mask: Path | None, single_input: bool) -> tuple[Path | None, str | None]:
    """The mask for ``media``: ``mask`` itself when it is a file (one input only), or the file with
    the same stem inside ``mask`` when it is a folder (FF++ masks share their video's name).
    Returns (path, problem)."""
    if mask is None:
        return None, None
    if mask.is_dir():
        found = sorted(p for p in mask.glob(f"{media.stem}.*") if is_media(p))
        if not found:
            return None, f"no mask named {media.stem}.* in {mask}"
        return found[0], None
    if not mask.exists():
        return None, f"--mask {mask}: no such file or folder"
    if not single_input:
        return None, f"--mask {mask} is a single file but several inputs were given; pass a folder of masks named like the inputs"
    return mask, None


def localization_scores(result: MediaResult, mask_path: Path, kind: str = "binary", threshold: float = MASK_THRESHOLD) -> dict[str, Any]:
    """IoU, precision and recall of the thresholded pasted-back P_M against the truth mask."""
    block: dict[str, Any] = {"mask": str(mask_path), "mask_kind": kind, "threshold": threshold}
    frames = result.frames
    try:
        found, _ = read_frames_indexed(mask_path, indices=[fr.index for fr in frames])
    except VideoDecodeError as exc:
        block["error"] = str(exc)
        return block
    truth_by_index = dict(found)
    inter = union = pred_sum = truth_sum = 0
    ious: list[float] = []
    areas: list[float] = []
    heat_in: list[float] = []  # threshold-free: is P_M higher on the altered pixels than elsewhere?
    heat_out: list[float] = []
    compared = 0
    for fr in frames:
        raw = truth_by_index.get(fr.index)
        if raw is None:
            continue
        truth = mask_from_frame(raw, kind) > 0.5
        if truth.shape != fr.frame.shape[:2]:
            block["error"] = f"{mask_path}: mask frames are {truth.shape[1]}x{truth.shape[0]}, the video's are {fr.frame.shape[1]}x{fr.frame.shape[0]}"
            return block
        heat = frame_heat(fr.frame.shape, ((f.mask, f.crop_box) for f in fr.faces))
        pred = heat >= threshold
        compared += 1
        if truth.any():
            heat_in.append(float(heat[truth].mean()))
        if not truth.all():
            heat_out.append(float(heat[~truth].mean()))
        areas.append(float(pred.mean()))
        i, u = int(np.logical_and(pred, truth).sum()), int(np.logical_or(pred, truth).sum())
        inter, union = inter + i, union + u
        pred_sum, truth_sum = pred_sum + int(pred.sum()), truth_sum + int(truth.sum())
        if truth.any():
            ious.append(i / u)
    block.update(
        frames_compared=compared,
        frames_with_truth=len(ious),
        iou=float(np.mean(ious)) if ious else None,  # mean over frames whose truth is not empty
        iou_pooled=(inter / union) if union and truth_sum else None,
        precision=(inter / pred_sum) if pred_sum else None,
        recall=(inter / truth_sum) if truth_sum else None,
        predicted_area=float(np.mean(areas)) if areas else None,  # for reals: should be ~0
        heat_in_mask=float(np.mean(heat_in)) if heat_in else None,
        heat_outside_mask=float(np.mean(heat_out)) if heat_out else None,
    )
    return block
