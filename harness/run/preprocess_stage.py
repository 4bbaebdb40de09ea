"""Stage 2: every record's faces into the run's face cache, cut by the run's crop rule."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from harness.data.crop import CropRule
from harness.vocab.config import RunConfig
from harness.run.datasets import TrainingSplits, records_of

if TYPE_CHECKING:
    from harness.data.preprocess import PreprocessSummary


def preprocess_stage(config: RunConfig, datasets: dict[str, Any], show: bool | None, splits: TrainingSplits,
                     cache: Any, rule: CropRule) -> tuple[Any, float]:
    """Fill the run's face ``cache`` (open, the run's one) with the faces of every record, cut by ``rule``."""
    from harness.data.preprocess import preprocess

    start = time.perf_counter()
    records = splits.train + splits.val  # every record is listed (and every label file checked) before any work
    for name in config.test_datasets:
        records += records_of(datasets[name], "test")
    frames = {"train": config.train.cache_frames, "val": config.train.cache_frames, "test": config.eval.frames_per_video}
    summary = preprocess(records, cache, rule, frames=frames, workers=config.train.workers,
                         progress=show if show is not None else True)
    return summary, time.perf_counter() - start


def summary_line(summary: PreprocessSummary) -> str:
    counts = {"videos": summary.videos, "skipped": summary.skipped, "done": summary.done, "failed": summary.failed,
              "no_face": summary.no_face, "frames": summary.frames, "faces": summary.faces}
    parts = [f"{name} {value}" for name, value in counts.items()]
    if summary.failures_by_cause:
        parts.append("failures: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.failures_by_cause.items())))
    return "preprocessed: " + ", ".join(parts)
