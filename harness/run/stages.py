"""`harness run`: dataset plugins -> preprocessing -> training -> evaluation -> results JSON -> leaderboard.

Each stage is a module of harness/run/ with one job; this module only wires them (the run folder's
layout is harness/vocab/folder.py):

    runs/<run_id>/config.json       the resolved RunConfig
    runs/<run_id>/train_log.jsonl   one line per step
    runs/<run_id>/checkpoint/       safetensors bundle (see harness/training/checkpoint.py)
    runs/<run_id>/scores/, examples/ per-video test scores and localization examples (harness/reporting/plots.py)
    runs/<run_id>/figures/          ROC/PR curves, score histograms, training curves, examples
    runs/<run_id>/results.json      the same JSON that goes to runs/results/
    runs/<run_id>/report.md         one page: setup, numbers, figures (`harness report RUN` redraws)
    runs/results/<date>_<run_id>.json and runs/LEADERBOARD.md: this clone's own results and board

A run never changes tracked files: the shipped leaderboards/ change only when a user publishes a
run (``harness run --publish`` or ``harness leaderboard --publish RUN``, see ``publish``).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.common import runtime as dd
from harness.common.kernels import pinned_kernels
from harness.common.ui import console, heading, say
from harness.data import demo
from harness.data.crop import CropRule
from harness.data.demo import NOT_A_BENCHMARK
from harness.run.build import build_results
from harness.vocab.config import RunConfig, save_config
from harness.run.datasets import dataset_names, open_datasets, training_splits
from harness.run.evaluate_stage import evaluate_stage
from harness.vocab.folder import RunFolder
from harness.run.paths import RunError, RunPaths
from harness.run.preprocess_stage import preprocess_stage, summary_line
from harness.run.outputs import finished_results, show_finished, write_outputs
from harness.run.train_stage import train_stage


def crop_rule(config: RunConfig, checkpoint_meta: Mapping[str, Any] | None = None) -> CropRule:
    """The one crop rule of a run or an evaluation, built once. A run's comes from its configuration
    (it keys the face cache and travels in the checkpoint to predict); an evaluation's is the one the
    checkpoint records (``checkpoint_meta``, its model.json), with the configuration's face detector
    in place of its own when the user chose another (``CropRule.with_detector``: ``none`` takes each
    image whole)."""
    if checkpoint_meta is None:
        return CropRule.for_detector(config.face_detector, crop_size=config.crop_size, margin=config.crop_margin)
    detector = str(checkpoint_meta.get("face_detector", config.face_detector))
    return CropRule.from_dict(checkpoint_meta.get("crop"), detector=detector).with_detector(config.face_detector)


def run_id(config: RunConfig) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", config.experiment_label()).strip("-").lower()[:60]
    return f"{slug}-{config.run_key()}"


def run(config: RunConfig, paths: RunPaths = RunPaths(), resume: bool = True, show: bool | None = None, loggers: list[str] | None = None,
        perturb: list[Any] | None = None) -> dict[str, Any]:
    """Run every stage; returns the results dict (also written to JSON and rendered). ``loggers``:
    training logger plugins besides train_log.jsonl (e.g. ["tensorboard"]); they do not change the
    results, so they are not part of the config or the run id. ``perturb``: robustness conditions
    scored after the clean evaluation (the results' ``robustness`` blocks); not part of the run id
    either: they add numbers, they change none. A demo run's data is the demo of ``config.demo_scale``;
    it trains with fixed threads and kernels (harness/common/kernels.py), so its weights are the
    same on any machine."""
    from harness.run.config_check import check_before_work, check_run_paths
    from harness.reporting.leaderboard import write_leaderboard

    config.validate()  # the Python API refuses what the command line refuses, before any work
    check_run_paths(paths)
    rid = run_id(config)
    run_dir = paths.runs_dir / rid
    finished = RunFolder(run_dir).results
    if resume and finished.is_file():
        console.print(f"[green]{rid}[/green] already finished: {finished} (delete it or pass --no-resume to redo)")
        results = finished_results(finished)
        if dd.is_main():
            show_finished(results, run_dir, paths)
        if perturb and not any("robustness" in b for b in results.get("datasets", {}).values()):
            console.print("[yellow]--perturb not applied to a finished run:[/yellow] score its checkpoint under "
                          f"the perturbations with `harness evaluate --checkpoint {run_dir} --perturb ...` (no retraining)")
        if dd.is_main() and Path(paths.results_dir).is_dir():  # killed after its results, before the leaderboard
            write_leaderboard(paths.results_dir, paths.leaderboard)
        return results
    check_before_work(config, loggers or [])  # names, plugin options, weights, loggers: one line, nothing written
    names = dataset_names(config)
    on_disk = [n for n in names if not (config.demo and n == demo.DATASET)]
    opened = open_datasets(config, names=on_disk)  # a missing dataset is said before the demo is built or a folder made
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_folder(run_dir)  # one process per run folder; left by an exception, this process retakes it
    save_config(config, RunFolder(run_dir).config)
    if len(on_disk) < len(names):
        console.print(f"[yellow]{NOT_A_BENCHMARK}[/yellow]")
        opened.update(open_datasets(config, demo_options(config, paths.cache_dir, show), names=[demo.DATASET]))
    datasets = {n: opened[n] for n in names}  # in the run's order: training dataset first
    results = _run_stages(config, rid, run_dir, datasets, paths.cache_dir, resume, show, loggers, perturb)
    if dd.is_main():
        write_outputs(config, results, run_dir, paths)
    if lock is not None:
        lock.release()
    return results


def demo_options(config: RunConfig, cache_dir: Path | None, show: bool | None = None) -> dict[str, Any]:
    """The dataset options that point a demo run's datasets at its demo tree (made when missing), the
    one of the size its config records."""
    spec = demo.spec_for(config.demo_scale)
    return demo.dataset_options(demo.ensure_demo(spec, demo.demo_root(spec, cache_dir), progress=show is not False))


def lock_folder(run_dir: Path) -> Any:
    """The run folder's lock (harness/run/lock.py), taken by the launching process only: under torchrun
    every rank runs this, before the process group exists, so the rank comes from the environment."""
    import os

    from harness.run.lock import RunLockedError, lock_run

    if int(os.environ.get("RANK", "0")) != 0:
        return None
    try:
        return lock_run(run_dir)
    except RunLockedError as exc:
        raise RunError(str(exc)) from None


def _run_stages(config: RunConfig, rid: str, run_dir: Path, datasets: dict[str, Any], cache_dir: Path | None,
                resume: bool, show: bool | None, loggers: list[str] | None, perturb: list[Any] | None = None) -> dict[str, Any]:
    """Preprocess, train, evaluate with the run's one crop rule and one open face cache."""
    from harness.data.cache import FaceCache, faces_cache_root

    rule = crop_rule(config)
    timings: dict[str, float] = {}
    splits = training_splits(config, datasets)
    with FaceCache(faces_cache_root(rule, cache_dir)) as cache:
        heading("1/4 preprocess")
        summary, timings["preprocess_s"] = preprocess_stage(config, datasets, show, splits, cache, rule)
        console.print(summary_line(summary))
        heading("2/4 train")
        with demo_kernels(config.demo, config.demo_scale):
            outcome = train_stage(config, run_dir, resume, show, splits, cache, rule, loggers)
        timings["train_s"] = outcome.seconds
        console.print(f"trained {outcome.steps} steps in {outcome.seconds:.0f}s; selection: {outcome.selection_rule}")
        heading("3/4 evaluate")
        blocks, timings["eval_s"] = evaluate_stage(config, outcome.checkpoint, datasets, show, cache, run_dir, perturb)
    return build_results(config, rid, outcome, blocks, timings, summary, splits)


@contextmanager
def demo_kernels(is_demo: bool, scale: str) -> Iterator[None]:
    """A demo's training on fixed threads and kernels: 150 steps amplify a CPU's last bits into
    other scores, and the shipped demo numbers must be everyone's (harness/common/kernels.py)."""
    if not is_demo:
        yield
        return
    with pinned_kernels(demo.TRAIN_THREADS[scale]) as kernels:
        if kernels.note():
            say(f"note: {kernels.note()}", "yellow", to=console)
        yield
