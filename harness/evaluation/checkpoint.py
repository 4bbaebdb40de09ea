"""`harness evaluate`: score a model you already have (a run's checkpoint, or an imported one) on
the test sets you choose, without training. Writes what a run writes: a run folder with
results.json (same schema), scores/, figures, report.md and a leaderboard row.

In place of the training section the results carry ``provenance``: the weights' sha256, where the
checkpoint came from (a harness run id, or the importer and file name) and the training data it
records. The evaluation id is a hash of the weights' sha256 and the evaluation settings: evaluating
again is the same id (a finished one is reported, a killed one resumes dataset by dataset: see
harness.evaluation.stage). Faces are cut by the checkpoint's own crop rule, so the face cache of the
run that trained it is reused and its numbers come out identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from harness.common import runtime as dd
from harness.run.config import RunConfig
from harness.data.crop import CropRule
from harness.data.demo import NOT_A_BENCHMARK, DemoSpec
from harness.run.paths import RunError, RunPaths
from harness.run.folder import RunFolder
from harness.common.ui import console


@dataclass
class Checkpoint:
    """The bundle ``--checkpoint`` names, read without loading weights."""

    directory: Path
    meta: dict[str, Any]
    sha256: str

    @property
    def imported(self) -> bool:
        return bool(self.meta.get("importer"))


def open_checkpoint(text: str, cache_dir: Path | None = None) -> Checkpoint:
    """Resolve ``--checkpoint`` (a run or checkpoint folder, NAME:FILE, or a file an importer knows)."""
    from harness.models.importing import resolve_checkpoint
    from harness.models.bundle import load_meta, weights_sha256

    directory = resolve_checkpoint(text, cache_dir)
    return Checkpoint(directory, load_meta(directory), weights_sha256(directory))


def recorded_config(checkpoint: Checkpoint) -> RunConfig:
    """The settings the checkpoint brings: a harness run's whole configuration, or, for an imported
    model, the defaults with its evaluation rule (frames, aggregation) and face detector."""
    meta = checkpoint.meta
    run = meta.get("run") if isinstance(meta.get("run"), dict) else {}
    if not checkpoint.imported and "train_dataset" in run:
        try:
            return RunConfig.from_dict(run)
        except (TypeError, ValueError):
            pass  # written by another version: its evaluation fields below still apply
    base = RunConfig()
    known = {f.name for f in fields(base.eval)}
    evaluation = {k: v for k, v in (run.get("eval") or {}).items() if k in known}
    return replace(base, eval=replace(base.eval, **evaluation), name=str(meta.get("label") or ""),
                   face_detector=str(meta.get("face_detector", base.face_detector)),
                   img_size=int(meta.get("img_size") or base.img_size))


def crop_rule(checkpoint: Checkpoint, detector: str) -> CropRule:
    """The checkpoint's crop rule, with ``detector`` in place of its own when the user chose another."""
    rule = CropRule.from_dict(checkpoint.meta.get("crop"), detector=str(checkpoint.meta.get("face_detector", detector)))
    if detector == rule.detector:
        return rule
    if rule.basis == "landmarks":
        fresh = CropRule.for_detector(detector, crop_size=rule.crop_size, margin=rule.margin, forehead=rule.forehead)
        return replace(rule, detector=detector, landmark_model=fresh.landmark_model)
    return replace(rule, detector=detector)


def evaluation_key(checkpoint: Checkpoint, config: RunConfig, rule: CropRule, perturb: Sequence[Any] = ()) -> str:
    """Hash of the weights and of every setting that changes the numbers (not the device or paths);
    ``perturb`` (robustness conditions) enters only when given, so a clean evaluation keeps its id."""
    from dataclasses import asdict

    settings = {
        "sha256": checkpoint.sha256, "test": config.test_datasets, "compression": config.compression,
        "datasets": {n: config.dataset_options.get(n, {}) for n in config.test_datasets},
        "eval": asdict(config.eval), "seed": config.seed, "crop": rule.to_dict(), "demo": config.demo,
    }
    if perturb:
        settings["perturb"] = [c.key for c in perturb]
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def evaluation_id(checkpoint: Checkpoint, config: RunConfig, rule: CropRule, perturb: Sequence[Any] = ()) -> str:
    label = config.name or str(checkpoint.meta.get("label") or "") or checkpoint.directory.parent.name
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()[:50] or "model"
    return f"eval-{slug}-{evaluation_key(checkpoint, config, rule, perturb)}"


def provenance(checkpoint: Checkpoint) -> dict[str, Any]:
    """Where the model comes from and what it was trained on, as the checkpoint records it."""
    from harness.models.bundle import bundle_heads, input_scale

    meta = checkpoint.meta
    origin = dict(meta.get("origin") or {})
    training = dict(meta.get("training") or {})
    if not checkpoint.imported:
        from harness.run.stages import run_id

        recorded = recorded_config(checkpoint)
        origin.setdefault("harness_run", run_id(recorded))
        options = recorded.dataset_options.get(recorded.train_dataset, {})
        training = {"datasets": [recorded.train_dataset], "split": "train", "videos": "real only (self-blended fakes)",
                    "compression": recorded.compression, "demo": recorded.demo,
                    **({"options": options} if options else {})}
    return {"checkpoint": str(checkpoint.directory), "sha256": checkpoint.sha256, "origin": origin,
            "training": training, "heads": list(bundle_heads(meta)), "input_scale": input_scale(meta)}


def training_files(checkpoint: Checkpoint, extra: dict[str, Any] | None) -> tuple[set[str], str | None]:
    """Real paths of the files the checkpoint records it was trained (and validated) on, and a note
    when they cannot be listed here (the training data is not on this machine)."""
    from harness.run.datasets import dataset_splits, open_datasets

    if checkpoint.imported:
        return set(), "an imported checkpoint records no training file list"
    recorded = recorded_config(checkpoint)
    try:
        opened = open_datasets(recorded, extra, names=[recorded.train_dataset])
        dataset = opened[recorded.train_dataset]
        splits = [s for s in ("train", "val") if s in dataset_splits(dataset)]
        return {os.path.realpath(r.path) for s in splits for r in dataset.records(s)}, None
    except Exception as exc:  # noqa: BLE001 - the check is best effort where the data is elsewhere
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return set(), f"training files of {recorded.train_dataset} not found here, overlap not checked ({first[:120]})"


def check_overlap(trained: set[str], datasets: dict[str, Any]) -> None:
    """Refuse a test set holding a file the checkpoint was trained on (as the folder dataset refuses
    a test CSV that lists a training file)."""
    for name, dataset in datasets.items():
        for record in dataset.records("test"):
            if os.path.realpath(record.path) in trained:
                raise RunError(f"test dataset {name}: {record.path} is one of the checkpoint's training files; "
                               "a test item must not be trained on: remove it from the test set")


def evaluate_checkpoint(checkpoint: Checkpoint, config: RunConfig, rule: CropRule, paths: RunPaths = RunPaths(),
                        resume: bool = True, demo_spec: DemoSpec | None = None, show: bool | None = None,
                        perturb: Sequence[Any] = ()) -> dict[str, Any]:
    """Preprocess the test sets with the checkpoint's crop rule, score them (the evaluation stage
    `harness run` uses; ``perturb``: robustness conditions scored too), write results, figures,
    report and leaderboard row."""
    from harness.data import demo
    from harness.data.cache import FaceCache, faces_cache_root
    from harness.evaluation.runner import EvalSetup
    from harness.evaluation.stage import evaluate_model, open_bundle
    from harness.reporting.leaderboard import write_leaderboard
    from harness.run.datasets import TrainingSplits, open_datasets
    from harness.run.preprocess_stage import preprocess_stage, summary_line
    from harness.run.stages import finished_results, write_outputs

    rid = evaluation_id(checkpoint, config, rule, perturb)
    run_dir = paths.runs_dir / rid
    finished = RunFolder(run_dir).results
    if resume and finished.is_file():
        console.print(f"[green]{rid}[/green] already evaluated: {finished} (delete it or pass --no-resume to redo)")
        if dd.is_main():
            write_leaderboard(paths.results_dir, paths.leaderboard)
        return finished_results(finished)
    extra = None
    if config.demo:
        console.print(f"[yellow]{NOT_A_BENCHMARK}[/yellow]")
        spec = demo_spec or DemoSpec()
        extra = demo.dataset_options(demo.ensure_demo(spec, demo.demo_root(spec, paths.cache_dir), progress=show is not False))
    datasets = open_datasets(config, extra, names=list(config.test_datasets))
    trained, note = training_files(checkpoint, extra)
    check_overlap(trained, datasets)
    run_dir.mkdir(parents=True, exist_ok=True)
    if dd.is_main():  # what was asked, beside the results (config.json's counterpart)
        RunFolder(run_dir).evaluation.write_text(json.dumps({"checkpoint": str(checkpoint.directory),
                                                             "config": evaluation_config(checkpoint, config, rule),
                                                             "crop": rule.to_dict()}, indent=2, sort_keys=True, default=str))
    timings: dict[str, float] = {}
    device = dd.pick_device(config.device)
    with FaceCache(faces_cache_root(rule, paths.cache_dir)) as cache:
        console.rule("[bold]1/4 preprocess (the checkpoint's crop rule)")
        summary, timings["preprocess_s"] = preprocess_stage(config, datasets, show, TrainingSplits([], [], []), cache, rule)
        console.print(summary_line(summary))
        console.rule("[bold]2/4 train: none (an existing checkpoint)")
        console.rule("[bold]3/4 evaluate")
        start = time.perf_counter()
        bundle = open_bundle(checkpoint.directory, device)
        setup = replace(EvalSetup.from_run(config), perturb=tuple(perturb))
        blocks = evaluate_model(bundle, cache, datasets, setup, run_dir, show)
        timings["eval_s"] = time.perf_counter() - start
    results = build_results(checkpoint, config, rule, rid, blocks, timings, note)
    if dd.is_main():
        write_outputs(config, results, run_dir, paths)
    return results


#: the configuration fields of a harness training run: an imported model was not trained by the
#: harness, so its results and evaluation.json leave them out (the schema refuses them there)
TRAINING_FIELDS = ("blender_options", "backbone_options", "pretrained", "train_dataset", "train", "loss",
                   "crop_size", "crop_margin")


def evaluation_config(checkpoint: Checkpoint, config: RunConfig, rule: CropRule) -> dict[str, Any]:
    """The ``config`` an evaluation records: the evaluation's settings with the checkpoint's input
    size and crop rule; for an imported model no harness training recipe, and the method and
    network its importer names (never this harness's default blender and backbone)."""
    meta = checkpoint.meta
    config_dict = config.to_dict()
    config_dict["img_size"] = int(meta.get("img_size") or config.img_size)
    config_dict["face_detector"] = rule.detector
    config_dict["crop"] = rule.to_dict()
    if checkpoint.imported:
        recorded_run = meta.get("run") if isinstance(meta.get("run"), dict) else {}
        for key in TRAINING_FIELDS:
            config_dict.pop(key, None)
        config_dict["blender"] = str(recorded_run.get("blender") or "none")
        config_dict["backbone"] = str(recorded_run.get("backbone") or meta.get("architecture") or meta["importer"])
    return config_dict


def build_results(checkpoint: Checkpoint, config: RunConfig, rule: CropRule, rid: str, blocks: dict[str, Any],
                  timings: dict[str, float], note: str | None) -> dict[str, Any]:
    import harness
    from harness.reporting.results import collect_environment

    env = collect_environment()
    meta = checkpoint.meta
    config_dict = evaluation_config(checkpoint, config, rule)
    used = {("face_detector", rule.detector)} | {("dataset", n) for n in config.test_datasets}
    used |= {("evaluator", e.name) for e in harness.plugins("evaluator")}
    if checkpoint.imported:
        used.add(("importer", str(meta["importer"])))
    record = provenance(checkpoint)
    if note:
        record["overlap_check"] = note
    label = config.name or (f"{meta.get('label') or meta['importer']} ({checkpoint.meta.get('origin', {}).get('file', 'imported')}, evaluated here)"
                            if checkpoint.imported else f"{recorded_config(checkpoint).label()} (checkpoint, evaluated here)")
    return {
        "schema_version": 1,
        "run_id": rid,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "demo": config.demo,
        "note": NOT_A_BENCHMARK if config.demo else "",
        "name": label,
        "kind": "evaluation",
        "config": config_dict,
        "plugins": harness.extend.registry.provenance(used),
        "versions": env["versions"],
        "git": env["git"],
        "hardware": env["hardware"],
        # the training seed where the checkpoint records one (a harness run), else null
        "seeds": {"train": None if checkpoint.imported else recorded_config(checkpoint).seed, "eval": config.seed,
                  "bootstrap": config.seed},
        "selection_rule": ("made when the checkpoint was trained" if checkpoint.imported
                           else f"{recorded_config(checkpoint).train.selection} (when the checkpoint was trained)"),
        "provenance": record,
        "timings": {"train_s": None, **{k: round(v, 2) for k, v in timings.items()}},  # not trained here
        "datasets": blocks,
    }
