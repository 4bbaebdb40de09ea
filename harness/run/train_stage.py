"""Stage 3: training on the cached real faces of the training split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.crop import CropRule
from harness.extend.types import VideoRecord
from harness.vocab.config import RunConfig
from harness.run.datasets import TrainingSplits
from harness.run.paths import RunError


def items_for(cache: Any, records: list[VideoRecord], frames: int) -> list[Any]:
    """Training items for exactly these records (the cache's split column may come from an earlier
    run with another validation split: the records decide), each drawing from the ``frames`` frames
    the run cached per training video, whatever else the cache holds."""
    from harness.training.samples import TrainingItem

    items = []
    for record in records:
        video = cache.status(record.uid, frames)
        if video is not None and video.label == 0 and video.status == "done" and video.frames_with_face > 0:
            items.append(TrainingItem(video.uid, video.frames_with_face, frames))
    return items


def train_stage(config: RunConfig, run_dir: Path, resume: bool, show: bool | None, splits: TrainingSplits,
                cache: Any, rule: CropRule, loggers: list[str] | None = None) -> Any:
    """Train on the real faces of ``splits`` in ``cache``; the trainer sees only its part of the config."""
    from harness.training.trainer import Trainer, TrainSpec

    frames = config.train.cache_frames
    train_items, val_items = items_for(cache, splits.train, frames), items_for(cache, splits.val, frames)
    if not train_items:
        raise RunError(f"no face was found in any training video of {config.train_dataset}; see the preprocessing summary")
    trainer = Trainer(TrainSpec.from_run(config, rule), run_dir, cache.root, train_items, val_items,
                      show_progress=show, loggers=loggers)
    return trainer.fit(resume=resume)
