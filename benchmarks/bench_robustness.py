"""The robustness suite's cost on the demo: the 35 conditions (``--perturb all``) against 36 full
forward passes over the same test faces, measured in one process (issue 34).

Trains nothing worth scoring: one `harness run --data demo` step in a temporary folder gives a
checkpoint and the demo's face cache (timing does not depend on the weights; pass ``--run`` and
``--cache`` to reuse a finished demo run). Then, with the model warm, on the test set's cached faces:

* ``full_pass_s``: one clean evaluation pass with every head (``runner.score_videos``: cache read,
  model with its mask decoder, aggregation), the median of ``--repeat`` passes before the suite and
  ``--repeat`` after it;
* ``suite_s``: ``robustness_block`` under all 35 conditions, its clean column included (the code
  that runs here: before issue 34 it scored the clean faces again and ran the mask decoder on every
  condition; after, it reuses the clean pass's scores and runs the classification head alone);
* ``perturb_only_s``: the 35 perturbations applied to every video's crops, no model (the floor).

Each in wall-clock and in CPU seconds of the process (``time.process_time``, one torch thread by
default: on a machine shared with other work the CPU time is the steady number).

Target: ``suite_s <= 0.6 x 36 x full_pass_s`` (about 1.0 x before). The same script runs on older
code (it calls ``robustness_block`` with the signature it finds), so before and after are measured
alike: ``/work/main/.venv/bin/python benchmarks/bench_robustness.py`` from a checkout of each.
Run: ``python benchmarks/bench_robustness.py`` (``--scale tiny --threads 1 --repeat 2 --json out.json``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.6
CONDITIONS = 35


def demo_run(work: Path, scale: str) -> tuple[Path, Path]:
    """A one-step demo run in ``work``: its run folder and its HARNESS_CACHE."""
    cache = work / "cache"
    env = dict(os.environ, HARNESS_CACHE=str(cache), HARNESS_PROGRESS="0")
    command = [sys.executable, "-m", "harness", "run", "--data", "demo", "--demo-scale", scale, "--max-steps", "1",
               "--workers", "0", "--runs-dir", str(work / "runs")]
    subprocess.run(command, env=env, cwd=work, check=True, capture_output=True, text=True)
    return next((work / "runs").glob("*/results.json")).parent, cache


def open_test_set(run: Path, cache_home: Path) -> tuple[Any, Any, list[Any], Any]:
    """The run's model (on the CPU), its face cache, the cached test videos and the evaluation settings."""
    import torch

    from harness.data.cache import FaceCache, faces_cache_root
    from harness.data.crop import CropRule
    from harness.evaluation.runner import EvalSetup
    from harness.models.bundle import load_model, resolve

    try:
        from harness.vocab.config import RunConfig
    except ImportError:  # the code before issue 34 kept it in harness/run
        from harness.run.config import RunConfig  # type: ignore[no-redef]

    config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    model, meta = load_model(resolve(run), torch.device("cpu"))
    rule = CropRule.from_dict(meta["crop"], detector=meta.get("face_detector"))
    cache = FaceCache(faces_cache_root(rule, cache_home)).__enter__()
    frames = config.eval.frames_per_video
    videos = [v for name in config.test_datasets for v in cache.videos(split="test", dataset=name, frames=frames)
              if v.status == "done"]
    return model, cache, videos, EvalSetup.from_run(config).for_bundle(meta)


def suite(model: Any, cache: Any, videos: list[Any], setup: Any, clean: Any, conditions: list[Any]) -> dict[str, Any]:
    """``robustness_block`` as the code at hand defines it (before issue 34: conditions given, no
    clean scores; after: the clean scores given, the conditions in ``setup.perturb``)."""
    import torch

    from harness.evaluation.robustness import robustness_block

    device = torch.device("cpu")
    if "clean" in inspect.signature(robustness_block).parameters:
        return robustness_block(model, cache, videos, replace(setup, perturb=tuple(conditions)), device, clean, show=False)
    return robustness_block(model, cache, videos, setup, device, conditions, show=False)


def perturb_only(cache: Any, videos: list[Any], setup: Any, conditions: list[Any]) -> float:
    from harness.evaluation.perturb import perturb_video

    start = time.perf_counter()
    for video in videos:
        faces = cache.faces(video.uid, frames=setup.eval.frames_per_video)
        for c in conditions:
            perturb_video([f.image for f in faces], [f.face_index for f in faces], c, setup.seed, video.uid)
    return time.perf_counter() - start


class Clock:
    """Wall and CPU seconds of a block: on a shared machine the process's CPU time (one torch
    thread) is the number that does not move with the other work; both are reported."""

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def full_passes(model: Any, cache: Any, videos: list[Any], setup: Any, repeat: int) -> tuple[list[Clock], Any]:
    import torch

    from harness.evaluation.runner import score_videos

    clocks, clean = [], None
    for _ in range(repeat):
        with Clock() as clock:
            clean = score_videos(model, cache, videos, setup, torch.device("cpu"), show=False)
        clocks.append(clock)
    return clocks, clean


def measure(model: Any, cache: Any, videos: list[Any], setup: Any, repeat: int) -> dict[str, Any]:
    """Full passes before and after the suite (the median of all: the machine's state drifts)."""
    import torch

    from harness.evaluation.perturb import parse_conditions
    from harness.evaluation.runner import score_videos

    conditions = parse_conditions("all")
    assert len(conditions) == CONDITIONS, len(conditions)
    score_videos(model, cache, videos[:2], setup, torch.device("cpu"), show=False)  # warm: allocator, first calls
    before, clean = full_passes(model, cache, videos, setup, repeat)
    with Clock() as run:
        block = suite(model, cache, videos, setup, clean, conditions)
    after, _ = full_passes(model, cache, videos, setup, repeat)
    with Clock() as floor:
        perturb_only(cache, videos, setup, conditions)
    full = {kind: statistics.median(getattr(c, kind) for c in before + after) for kind in ("wall", "cpu")}
    faces = sum(len(cache.faces(v.uid, frames=setup.eval.frames_per_video)) for v in videos)
    return {"videos": len(videos), "faces": faces, "img_size": setup.img_size,
            "full_pass_s": {kind: round(v, 3) for kind, v in full.items()},
            "full_passes_wall_s": [round(c.wall, 3) for c in before + after],
            "suite_s": {"wall": round(run.wall, 3), "cpu": round(run.cpu, 3)},
            "ratio_to_36_full_passes": {kind: round(getattr(run, kind) / (36 * full[kind]), 3) for kind in full},
            "perturb_only_s": {"wall": round(floor.wall, 3), "cpu": round(floor.cpu, 3)},
            "clean_auc": block["clean"]["value"],
            # the numbers themselves: before and after must agree (issue 34 changes the cost only)
            "auc": {f"{name}:{level}": entry["auc"]["value"] for name, levels in block["conditions"].items()
                    for level, entry in levels.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="default", help="demo scale (default: 24 test videos, 12 frames, 128 px)")
    parser.add_argument("--run", type=Path, default=None, help="a finished demo run folder (else one is made)")
    parser.add_argument("--cache", type=Path, default=None, help="its HARNESS_CACHE (with --run)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time measures the work alone)")
    parser.add_argument("--repeat", type=int, default=2, help="full passes timed before and after the suite (median)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        run, cache_home = (args.run, args.cache) if args.run else demo_run(Path(d), args.scale)
        row = measure(*open_test_set(run, cache_home or Path(os.environ.get("HARNESS_CACHE", "."))), args.repeat)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    summary = {"target_ratio": TARGET_RATIO, "threads": args.threads, "cpus": os.cpu_count(), "load_avg_1m": load, **row}
    print(json.dumps(summary, indent=2))
    for kind in ("cpu", "wall"):
        ratio = row["ratio_to_36_full_passes"][kind]
        print(f"{kind:4}: 35-condition suite {row['suite_s'][kind]:.1f} s = {ratio:.2f} x 36 full passes "
              f"({row['full_pass_s'][kind]:.2f} s each; perturbations alone {row['perturb_only_s'][kind]:.1f} s): "
              f"target <= {TARGET_RATIO} x, {'ok' if ratio <= TARGET_RATIO else 'ABOVE TARGET'}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
