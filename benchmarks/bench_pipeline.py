"""Pipeline throughput: does data loading keep up with the model, and how fast is evaluation?

    python benchmarks/bench_pipeline.py [--img-size 224] [--batch-size 16] [--steps 6] [--workers 2]

Reports, on the embedded demo's cached faces:
- the bare model step (SAM: two forward+backward passes) on one pre-built batch, no data loading;
- the full training step (DataLoader with N workers blending on the fly + the same model step);
- their ratio (target: within 1.10x on CPU with 2 workers, issue 6);
- evaluation throughput in face crops per second (model + aggregation, faces already cached).
Numbers are medians after one warm-up step. Speed targets are reported here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16, help="images per step (half real, half fake)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backbone", default="swin")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    os.environ.setdefault("HARNESS_CACHE", str(workdir / "cache"))
    os.environ.setdefault("HARNESS_PROGRESS", "0")

    import harness
    from harness.vocab.config import EvalConfig, RunConfig, TrainConfig
    from harness.data.cache import FaceCache
    from harness.data.preprocess import preprocess
    from harness.data.demo import METHODS, DemoSpec, ensure_demo
    from harness.data.crop import CropRule
    from harness.evaluation.runner import EvalSetup, score_videos
    from harness.run.train_stage import items_for
    from harness.training.samples import collate_pairs, quiet_worker
    from harness.training.trainer import EpochBatches, Trainer, TrainSpec

    data = ensure_demo(DemoSpec(), progress=False)
    ffpp = harness.plugin("dataset", "ffpp", root=data, check_counts=False, methods=list(METHODS))
    records = [r for r in ffpp.records("train") if r.label == 0] + list(ffpp.records("test"))
    cache_root = workdir / "faces"
    t0 = time.perf_counter()
    rule = CropRule(crop_size=256)
    summary = preprocess(records, cache_root, rule, frames={"train": 12, "test": 8}, progress=False)
    print(f"preprocess: {summary.frames} frames in {time.perf_counter() - t0:.1f}s")

    config = RunConfig(
        backbone=args.backbone, img_size=args.img_size, device="cpu", test_datasets=["ffpp"],
        train=TrainConfig(batch_size=args.batch_size, frames_per_video=64, workers=args.workers, epochs=1),
        eval=EvalConfig(batch_size=32, frames_per_video=8),  # the test frames preprocessed above
    )
    cache = FaceCache(cache_root)
    items = items_for(cache, [r for r in records if r.split == "train"], 12)
    trainer = Trainer(TrainSpec.from_run(config, rule), workdir / "run", cache_root, items, [], show_progress=False)

    pairs = args.batch_size // 2
    fixed = collate_pairs([trainer.train_set[i] for i in range(pairs)])
    bare = []
    for i in range(args.steps + 1):
        start = time.perf_counter()
        trainer.train_step(fixed, i)
        bare.append(time.perf_counter() - start)
    bare_s = statistics.median(bare[1:])

    # The data side alone, in this process: one real + its fake per item, then collation.
    t0 = time.perf_counter()
    n_items = 4 * pairs
    made = [trainer.train_set[i] for i in range(n_items)]
    collate_pairs(made[:pairs])
    data_item_s = (time.perf_counter() - t0) / n_items

    sampler = EpochBatches(len(trainer.train_set), pairs, 0, 0)
    loader = torch.utils.data.DataLoader(
        trainer.train_set, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=args.workers,
        worker_init_fn=quiet_worker if args.workers else None,
    )
    full = []
    start = time.perf_counter()
    for i, batch in enumerate(loader):
        trainer.train_step(batch, i)
        now = time.perf_counter()
        full.append(now - start)
        start = now
        if i >= args.steps:
            break
    full_s = statistics.median(full[1:])

    test_videos = [v for v in cache.videos(split="test", frames=8) if v.status == "done"]
    model = trainer.model
    t0 = time.perf_counter()
    scores = score_videos(model, cache, test_videos, EvalSetup.from_run(config), trainer.device, show=False)
    eval_s = time.perf_counter() - t0
    faces = sum(len(cache.faces(v.uid, frames=8)) for v in test_videos)
    cache.close()

    print(f"\nbackbone {args.backbone}, {args.img_size} px, batch {args.batch_size} images, "
          f"{args.workers} workers, torch threads {torch.get_num_threads()}")
    print(f"{'bare model step (SAM, 2 fwd+bwd)':40s} {bare_s * 1000:9.0f} ms  {args.batch_size / bare_s:7.1f} img/s")
    print(f"{'full step (loader + blending + model)':40s} {full_s * 1000:9.0f} ms  {args.batch_size / full_s:7.1f} img/s")
    print(f"{'ratio full / bare (target <= 1.10)':40s} {full_s / bare_s:9.2f}x")
    print(f"{'data per step, one core (blend+augment)':40s} {data_item_s * pairs * 1000:9.0f} ms  "
          f"({data_item_s * 1000:.1f} ms per real+fake pair; {data_item_s * pairs / bare_s:.1%} of the bare step)")
    print(f"{'evaluation':40s} {faces / eval_s:9.1f} faces/s ({len(scores.video)} videos, {faces} faces)")


if __name__ == "__main__":
    main()
