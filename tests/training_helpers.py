"""Shared by the training tests and the torchrun worker: a tiny cache of real demo faces + a config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.vocab.config import EvalConfig, LossConfig, RunConfig, TrainConfig
from harness.data.demo import DemoSpec, ensure_demo

# Per-sample stochastic depth draws differ between one batch of 4 and two of 2: off for DDP checks.
NO_DROP_PATH = {"drop_path_rate": 0.0}

TINY = DemoSpec(train_pairs=2, val_pairs=1, test_pairs=1, frames=4, size=160)


def build_cache(root: Path) -> Path:
    """Demo reals (train + val) preprocessed into a face cache under ``root``; returns the cache root."""
    import harness
    from harness.data.crop import CropRule
    from harness.data.preprocess import preprocess

    data = ensure_demo(TINY, root=root / "demo", progress=False)
    ffpp = harness.plugin("dataset", "ffpp", root=data, check_counts=False, methods=["Deepfakes", "Face2Face"])
    records = [r for split in ("train", "val") for r in ffpp.records(split) if r.label == 0]
    cache = root / "faces"
    preprocess(records, cache, frames=4, rule=CropRule(crop_size=96), progress=False)
    return cache


def tiny_config(backbone_options: dict | None = None, **train: object) -> RunConfig:
    base = TrainConfig(epochs=2, batch_size=4, frames_per_video=2, cache_frames=4, optimizer="sgd", lr=0.01, workers=0, max_steps=4)
    return RunConfig(
        backbone="swin", backbone_options=backbone_options or {}, pretrained=False, img_size=64, seed=3, device="cpu", test_datasets=["ffpp"],
        train=replace(base, **train), eval=EvalConfig(batch_size=8), loss=LossConfig(),
    )


def trainer_for(config: RunConfig, run_dir: Path, cache: Path, **options):
    from harness.data.cache import FaceCache
    from harness.data.crop import CropRule
    from harness.training.trainer import Trainer, TrainSpec

    fc = FaceCache(cache)
    try:
        train, val = training_items(fc, "ffpp", "train"), training_items(fc, "ffpp", "val")
    finally:
        fc.close()
    spec = TrainSpec.from_run(config, CropRule(crop_size=96))  # the rule build_cache preprocessed with
    return Trainer(spec, run_dir, cache, train, val, show_progress=False, **options)


def training_items(cache, dataset: str, split: str) -> list:
    """Training items (real videos with a face) of one split of ``dataset`` in an open face cache."""
    from harness.training.samples import TrainingItem

    return [TrainingItem(v.uid, v.frames_with_face) for v in cache.videos(split=split, dataset=dataset)
            if v.label == 0 and v.status == "done" and v.frames_with_face > 0]
