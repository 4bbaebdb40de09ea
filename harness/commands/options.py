"""The options `harness run` and `harness evaluate` both take, declared once (``OPTIONS``), and
how each sets the run configuration: the test sets and data (``data_options``), single values
(``value_options``), the robustness conditions, the device and the demo's size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from harness.cli import fail
from harness.common.ui import console
from harness.extend.defaults import defaults

if TYPE_CHECKING:
    from harness.vocab.config import RunConfig


def split(value: str) -> list[str]:
    """A comma-separated option as its non-empty parts."""
    return [v.strip() for v in value.split(",") if v.strip()]


def data_options(recorded: RunConfig, data: str | None, test: str | None, root: Path | None, demo_from_file: bool,
                 user: tuple[Path | None, Path | None, float | None]) -> RunConfig:
    """--data, --test, --root and your own data (--train-dir, --test-csv, --val-fraction)."""
    from harness.run.demo_run import demo_config
    from harness.run.userdata import apply_to_run

    base = recorded
    if data == "demo":
        # Demo sizes only without a config file: a file's sizes are what it recorded.
        demo = demo_config(base)
        base = replace(base, demo=True, train_dataset=demo.train_dataset, test_datasets=demo.test_datasets) if demo_from_file else demo
    elif data is not None:
        base = replace(base, train_dataset=data, demo=False)  # a real dataset is never a demo run
    if test:
        base = replace(base, test_datasets=test_names(split(test), base))
    if root:
        base = replace(base, data_root=str(root))
    return apply_to_run(base, data, test, root, *user)


def test_names(names: list[str], config: RunConfig) -> list[str]:
    """--test's names, ``demo`` being the demo's test set: scored by a demo run (or a demo's checkpoint)."""
    from harness.vocab.config_check import DEMO

    if DEMO not in names:
        return names
    if not config.demo:
        fail(f"--test {DEMO}: the demo's test set goes with the demo's data: add --data {DEMO}")
    return list(dict.fromkeys(defaults().demo_dataset if n == DEMO else n for n in names))


def value_options(base: RunConfig, values: dict[str, Any]) -> RunConfig:
    """The options that set one field each (None: not given, the recorded value stays)."""
    given = {k: v for k, v in values.items() if v is not None}
    train = {k: given.pop(k) for k in ("epochs", "max_steps", "batch_size", "selection", "workers") if k in given}
    if train.get("selection") not in (None, "last", "best-val"):
        fail("--selection must be 'last' or 'best-val' (never test data)")
    if "eval_frames" in given:
        base = replace(base, eval=replace(base.eval, frames_per_video=given.pop("eval_frames")))
    if given.get("pretrained"):
        from harness.vocab.config import pretrained_value

        given["pretrained"] = pretrained_value(given["pretrained"])
    return replace(base, train=replace(base.train, **train), **given)


def perturb_conditions(spec: str | None) -> list[Any]:
    """--perturb as robustness conditions (one error line naming the valid ones on a bad value)."""
    from harness.evaluation.perturb import parse_conditions

    return parse_conditions(spec)  # a bad value: PerturbSpecError, one line naming the valid ones


def check_device(device: str, dry_run: bool) -> None:
    from harness.common.runtime import pick_device

    try:
        pick_device(device)  # a bad --device fails here, before any work
    except ValueError as exc:
        if not dry_run:
            fail(str(exc))
        from rich.markup import escape

        console.print(f"[yellow]warning:[/yellow] {escape(str(exc))}")  # the dry run may be on another machine than the run


def with_demo_scale(config: RunConfig, scale: str | None) -> RunConfig:
    """--demo-scale onto a configuration: a demo run records its scale (given, else the recorded or
    default one), so its config.json reruns the same demo; any other run keeps the neutral value."""
    if not config.demo:
        return replace(config, demo_scale="default")
    return replace(config, demo_scale=scale) if scale is not None else config


#: The options `harness run` shares with `harness evaluate`: declared once, used by both commands.
OPTIONS: dict[str, Any] = {
    "test": typer.Option(None, help="Test datasets (default: ffpp,celebdf,dfdc,dfdcp; demo: ffpp)."),
    "root": typer.Option(None, help="Data root holding the datasets (else $HARNESS_DATA); with --data folder: the folder holding train/ and test.csv."),
    "test_csv": typer.Option(None, "--test-csv", help="Your own test set: a CSV of path,label[,source[,video]] (label 0/real, 1/fake; implies --test folder)."),
    "compression": typer.Option(None, help="FF++ compression: raw (c0), c23 (default) or c40."),
    "eval_frames": typer.Option(None, help="Frames per test video, evenly spaced (paper: 32)."),
    "perturb": typer.Option(None, "--perturb", help="Also score the test faces under DeeperForensics-1.0 perturbations: 'all' (7 distortions x 5 levels), 'all:3' (every distortion at level 3) or e.g. 'jpeg:1-5,blur:3' (saturation, contrast, block, noise, blur, jpeg, video)."),
    "device": typer.Option(None, help="auto (default), cpu, cuda, cuda:1 ..."),
    "name": typer.Option(None, help="A name for the run in the leaderboard."),
    "runs_dir": typer.Option(Path("runs"), help="Where run folders go."),
    "results_dir": typer.Option(None, help="Where results JSON files go (default: RUNS_DIR/results, git-ignored)."),
    "leaderboard": typer.Option(None, help="The markdown rendered after the run (default: RUNS_DIR/LEADERBOARD.md)."),
    "publish": typer.Option(False, "--publish", help="Also add the results to the shipped leaderboards/ (tracked files) and re-render it."),
    "resume": typer.Option(True, help="Continue an interrupted run and skip finished ones."),
    "demo_scale": typer.Option(None, help="Demo size: default or tiny (tests); recorded in the run's config (default: the --config file's or checkpoint's, else default)."),
    "face_detector": typer.Option(None, "--face-detector", help="Face detector plugin for preprocessing: dlib (HOG, fast; default), dlib-fallback (HOG, then a brightened frame, then dlib's CNN where HOG finds nothing), dlib-cnn (small and dark faces, slow on CPU), retinaface, none (each image is one face, already cropped: evaluate only, it has no landmarks to train on)."),
    "dry_run": typer.Option(False, "--dry-run", help="Print the resolved configuration of each run as JSON and exit; touches no data, cache or run folder."),
    "cache_dir": typer.Option(None, "--cache-dir", help="Cache home (face caches, demo data); default $HARNESS_CACHE, else ~/.cache/harness. `harness preprocess --cache-dir` fills the same caches."),
}
