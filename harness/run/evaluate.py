"""`harness evaluate`: score a model you already have (a run's checkpoint, or an imported one) on
the test sets you choose, without training. Writes what a run writes: a run folder with
results.json (same schema), scores/, figures, report.md and a leaderboard row.

In place of the training section the results carry ``provenance``: the bundle's sha256, where the
checkpoint came from (a harness run id, checked against the run stamp in its weights, or the
importer and file name) and the training data it records. The evaluation id is a hash of everything
that determines its numbers (``identity_record``, recorded in the results as ``identity``): the
bundle's tensors and model.json, the crop rule, the evaluation settings and the test files' content
(for the demo, its generator's version and scale). Evaluating again is the same id (a finished one is
reported, a killed one resumes dataset by dataset: see harness.evaluation.stage); anything that
changes the numbers is another id. One process per id: the second refuses (harness/run/lock.py).
Faces are cut by the checkpoint's own crop rule, so the face cache of the run that trained it is
reused and its numbers come out identical.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from harness.common import runtime as dd
from harness.vocab.config import RunConfig
from harness.data.crop import CropRule
from harness.data.demo import NOT_A_BENCHMARK
from harness.run.paths import RunError, RunPaths
from harness.vocab.folder import RunFolder
from harness.common.ui import console, heading

if TYPE_CHECKING:
    from harness.models.bundle import Bundle


def open_checkpoint(text: str, cache_dir: Path | None = None, dry_run: bool = False) -> Bundle:
    """Resolve ``--checkpoint`` (a run or checkpoint folder, NAME:FILE, or a file an importer knows);
    a model.json beside another run's weights is refused (``check_run_stamp``). ``dry_run``: write
    nothing; a foreign file is imported into a scratch folder that is removed before returning, and
    the checkpoint is reported at the cache folder it would be imported to."""
    from harness.models.bundle import open_bundle
    from harness.models.importing import resolve_checkpoint

    if not dry_run:
        found = open_bundle(resolve_checkpoint(text, cache_dir))
    else:
        found = _dry_run_checkpoint(text, cache_dir)
    check_run_stamp(found)
    return found


def _dry_run_checkpoint(text: str, cache_dir: Path | None) -> Bundle:
    """``open_checkpoint`` writing nothing: an import goes to a scratch folder, removed at once."""
    import tempfile

    from harness.common.files import cache_home
    from harness.models.bundle import open_bundle
    from harness.models.importing import resolve_checkpoint

    with tempfile.TemporaryDirectory(prefix="harness-dry-run-") as scratch:
        directory = resolve_checkpoint(text, Path(scratch))
        found = open_bundle(directory)
    if Path(scratch) in directory.parents:
        home = Path(cache_dir if cache_dir is not None else cache_home()).expanduser()
        found.directory = home / directory.relative_to(scratch)
    return found


def check_run_stamp(checkpoint: Bundle) -> None:
    """The run model.json names must be the run whose save stamped the weights: a model.json copied
    next to another run's weights would report that run's provenance. CheckpointError, one line."""
    from harness.models.bundle import MODEL_FILE, MODEL_META, CheckpointError, run_stamp

    run, stamped = checkpoint.meta.get("run"), checkpoint.identity.run_key
    if checkpoint.imported or stamped is None or not isinstance(run, dict) or run_stamp(run) == stamped:
        return
    from harness.run.stages import run_id

    raise CheckpointError(
        f"{checkpoint.directory}: {MODEL_META} names run {run_id(checkpoint_config(checkpoint))} (run stamp "
        f"{run_stamp(run)}) but {MODEL_FILE} was saved by another run (stamp {stamped}); the two files come from "
        "different checkpoints: copy both from one run's checkpoint folder")


def checkpoint_config(checkpoint: Bundle) -> RunConfig:
    """The settings the checkpoint brings: a harness run's whole configuration (the ``run`` its
    model.json records, read as every recorded configuration is: harness.run.build.recorded_config),
    or, for an imported model, the defaults with its evaluation rule (frames, aggregation) and face detector."""
    from harness.run.build import recorded_config

    meta = checkpoint.meta
    run = meta.get("run") if isinstance(meta.get("run"), dict) else {}
    if not checkpoint.imported and "train_dataset" in run:
        try:
            return recorded_config(run)
        except (TypeError, ValueError):
            pass  # written by another version: its evaluation fields below still apply
    base = RunConfig()
    known = {f.name for f in fields(base.eval)}
    evaluation = {k: v for k, v in (run.get("eval") or {}).items() if k in known}
    return replace(base, eval=replace(base.eval, **evaluation), name=str(meta.get("label") or ""),
                   face_detector=str(meta.get("face_detector", base.face_detector)),
                   img_size=int(meta.get("img_size") or base.img_size))


#: RunConfig fields only training reads (the bundle's model.json records what training built); every
#: other field enters an evaluation's id, so a field added later keys evaluations without more code
TRAINING_ONLY = ("blender", "blender_options", "backbone", "backbone_options", "pretrained", "train_dataset", "train", "loss")
#: bump when what an evaluation id covers changes: ids of the same inputs differ across this change
IDENTITY_VERSION = 2


def eval_settings(config: RunConfig) -> dict[str, Any]:
    """The configuration an evaluation's numbers depend on: the run configuration without how and
    where it runs (RunConfig.experiment) and without what only training reads; dataset options of
    the test datasets only."""
    settings = {k: v for k, v in config.experiment().items() if k not in TRAINING_ONLY}
    settings["dataset_options"] = {n: config.dataset_options.get(n, {}) for n in config.test_datasets}
    return settings


def demo_test_sets(config: RunConfig) -> list[str]:
    """The test datasets the demo tree serves (harness.run.datasets.dataset_options: the demo's root
    where the configuration names none)."""
    from harness.data import demo

    if not config.demo:
        return []
    served = demo.dataset_options(Path("."))
    return [n for n in config.test_datasets if n in served and "root" not in config.dataset_options.get(n, {})]


def fingerprint_test_sets(config: RunConfig, datasets: dict[str, Any]) -> dict[str, Any]:
    """What each test set *is*: the sha256 of its records (uid, label, media and mask content:
    harness.data.fingerprint.records_fingerprint) or, for the demo's, the generator's version and
    scale. ``datasets``: the opened test datasets (the demo's need not be among them)."""
    from dataclasses import asdict

    from harness.data.demo import DEMO_VERSION, spec_for
    from harness.data.fingerprint import records_fingerprint

    demo_sets = demo_test_sets(config)
    out: dict[str, Any] = {}
    for name in config.test_datasets:
        if name in demo_sets:
            out[name] = {"demo_version": DEMO_VERSION, "demo": asdict(spec_for(config.demo_scale))}
        else:
            records = list(datasets[name].records("test"))
            if not records:
                raise RunError(nothing_to_score(config, name))
            out[name] = records_fingerprint(records)
    return out


def nothing_to_score(config: RunConfig, name: str) -> str:
    """The one line for a test set without a single video: an evaluation of nothing is no result."""
    skipped = config.dataset_options.get(name, {}).get("allow_missing")
    why = ("every video it lists is missing on disk (--allow-missing skipped them all)" if skipped
           else "it lists no test video")
    return f"test dataset {name}: nothing to score: {why}; check its paths and label file, or test on another dataset"


def scores_the_demo(config: RunConfig) -> bool:
    """Whether an evaluation scores the demo's test set: a demo checkpoint tested on other data
    (--test-csv, --test with a root) is not a demo evaluation."""
    return bool(demo_test_sets(config))


def identity_record(checkpoint: Bundle, config: RunConfig, rule: CropRule, test: dict[str, Any],
                    perturb: Sequence[Any] = ()) -> dict[str, Any]:
    """Everything that determines an evaluation's numbers, as the results record it ("identity"):
    the bundle (tensors and model.json), the crop rule, the evaluation settings and the test files'
    fingerprints (``fingerprint_test_sets``). ``perturb`` (robustness conditions) enters only when given."""
    record = {"version": IDENTITY_VERSION, "bundle_sha256": checkpoint.identity.sha256,
              "tensors_sha256": checkpoint.identity.tensors, "model_json_sha256": checkpoint.identity.model_json,
              "crop": rule.to_dict(), "eval": eval_settings(config), "test": test}
    if perturb:
        record["perturb"] = [c.key for c in perturb]
    return json.loads(json.dumps(record, default=str))  # as a results file reads it back


def planned_identity(checkpoint: Bundle, config: RunConfig, rule: CropRule,
                     perturb: Sequence[Any] = ()) -> dict[str, Any]:
    """The ``identity_record`` of an evaluation not run yet (``--dry-run``): the test sets other than
    the demo's are opened and fingerprinted (a missing one is the run's own one-line error)."""
    from harness.run.datasets import open_datasets

    names = [n for n in config.test_datasets if n not in demo_test_sets(config)]
    datasets = open_datasets(config, None, names=names) if names else {}
    return identity_record(checkpoint, config, rule, fingerprint_test_sets(config, datasets), perturb)


def evaluation_key(record: dict[str, Any]) -> str:
    """A short hash of an ``identity_record``: the same inputs, the same key; other numbers, another."""
    from harness.common.digest import sha256_json

    return sha256_json(record)[:10]


def evaluation_id(checkpoint: Bundle, config: RunConfig, record: dict[str, Any]) -> str:
    label = config.name or str(checkpoint.meta.get("label") or "") or checkpoint.directory.parent.name
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()[:50] or "model"
    return f"eval-{slug}-{evaluation_key(record)}"


def provenance(checkpoint: Bundle) -> dict[str, Any]:
    """Where the model comes from and what it was trained on, as the checkpoint records it."""
    from harness.models.bundle import bundle_heads, input_scale

    meta = checkpoint.meta
    origin = dict(meta.get("origin") or {})
    training = dict(meta.get("training") or {})
    if not checkpoint.imported:
        from harness.run.stages import run_id

        recorded = checkpoint_config(checkpoint)
        origin.setdefault("harness_run", run_id(recorded))
        options = recorded.dataset_options.get(recorded.train_dataset, {})
        training = {"datasets": [recorded.train_dataset], "split": "train", "videos": "real only (self-blended fakes)",
                    "compression": recorded.compression, "demo": recorded.demo,
                    **({"options": options} if options else {})}
    return {"checkpoint": str(checkpoint.directory), "sha256": checkpoint.sha256, "origin": origin,
            "origin_check": _origin_check(checkpoint), "training": training, "heads": list(bundle_heads(meta)),
            "input_scale": input_scale(meta)}


def _origin_check(checkpoint: Bundle) -> str:
    """How far the recorded origin is proven by the bundle's content (``check_run_stamp``)."""
    if checkpoint.imported:
        return "as the importer recorded it in model.json"
    if checkpoint.identity.run_key is None:
        return "model.json alone: the weights carry no run stamp (saved before stamps existed)"
    return f"the weights carry the run's stamp {checkpoint.identity.run_key}"


def training_files(checkpoint: Bundle, cache_dir: Path | None = None) -> tuple[set[str], str | None]:
    """Real paths of the files the checkpoint records it was trained (and validated) on (a demo run's:
    those of the demo of the size its config records), and a note when they cannot be listed here
    (the training data is not on this machine)."""
    from harness.run.datasets import open_datasets
    from harness.extend.contracts import dataset_splits
    from harness.run.stages import demo_options

    if checkpoint.imported:
        return set(), "an imported checkpoint records no training file list"
    recorded = checkpoint_config(checkpoint)
    try:
        extra = demo_options(recorded, cache_dir, show=False) if recorded.demo else None
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


def evaluate_checkpoint(checkpoint: Bundle, config: RunConfig, rule: CropRule, paths: RunPaths = RunPaths(),
                        resume: bool = True, show: bool | None = None, perturb: Sequence[Any] = ()) -> dict[str, Any]:
    """Preprocess the test sets with the checkpoint's crop rule, score them (the evaluation stage
    `harness run` uses; ``perturb``: robustness conditions scored too), write results, figures,
    report and leaderboard row. A demo evaluation scores the demo of ``config.demo_scale``."""
    from harness.models.bundle import finite_weights
    from harness.reporting.leaderboard import write_leaderboard
    from harness.run.datasets import open_datasets
    from harness.run.outputs import finished_results, show_finished, write_outputs
    from harness.run.stages import demo_options, lock_folder

    extra = demo_options(config, paths.cache_dir, show) if config.demo else None
    datasets = open_datasets(config, extra, names=list(config.test_datasets))
    record = identity_record(checkpoint, config, rule, fingerprint_test_sets(config, datasets), perturb)
    rid = evaluation_id(checkpoint, config, record)
    run_dir = paths.runs_dir / rid
    finished = RunFolder(run_dir).results
    if resume and finished.is_file():
        console.print(f"[green]{rid}[/green] already evaluated: {finished} (delete it or pass --no-resume to redo)")
        results = finished_results(finished)
        if dd.is_main():
            write_leaderboard(paths.results_dir, paths.leaderboard)
            show_finished(results, run_dir, paths)
        return results
    trained, note = training_files(checkpoint, paths.cache_dir)
    check_overlap(trained, datasets)
    finite_weights(checkpoint.directory)  # damaged weights: one line before any face is cut
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_folder(run_dir)  # one process per evaluation id, as for `harness run`
    if config.demo:
        console.print(f"[yellow]{NOT_A_BENCHMARK}[/yellow]")
    try:
        results = _evaluate(checkpoint, config, rule, paths, show, perturb, datasets, run_dir, record, note)
        if dd.is_main():
            write_outputs(config, results, run_dir, paths)
    finally:
        if lock is not None:
            lock.release()
    return results


def _evaluate(checkpoint: Bundle, config: RunConfig, rule: CropRule, paths: RunPaths, show: bool | None,
              perturb: Sequence[Any], datasets: dict[str, Any], run_dir: Path, record: dict[str, Any],
              note: str | None) -> dict[str, Any]:
    """Preprocess and score the opened test ``datasets`` into ``run_dir``: the results dict."""
    from harness.data.cache import FaceCache, faces_cache_root
    from harness.evaluation.runner import EvalSetup
    from harness.evaluation.stage import evaluate_model
    from harness.run.datasets import TrainingSplits
    from harness.run.preprocess_stage import preprocess_stage, summary_line

    if dd.is_main():  # what was asked, beside the results (config.json's counterpart)
        RunFolder(run_dir).evaluation.write_text(json.dumps({"checkpoint": str(checkpoint.directory),
                                                             "config": evaluation_config(checkpoint, config, rule),
                                                             "crop": rule.to_dict()}, indent=2, sort_keys=True, default=str))
    timings: dict[str, float] = {}
    device = dd.pick_device(config.device)
    with FaceCache(faces_cache_root(rule, paths.cache_dir)) as cache:
        heading("1/4 preprocess (the checkpoint's crop rule)")
        summary, timings["preprocess_s"] = preprocess_stage(config, datasets, show, TrainingSplits([], [], []), cache, rule)
        console.print(summary_line(summary))
        heading("2/4 train: none (an existing checkpoint)")
        heading("3/4 evaluate")
        start = time.perf_counter()
        bundle = checkpoint.load(device)  # the bundle opened and hashed once, by open_checkpoint
        setup = replace(EvalSetup.from_run(config), perturb=tuple(perturb))
        blocks = evaluate_model(bundle, cache, datasets, setup, run_dir, show, tests=record["test"])
        timings["eval_s"] = time.perf_counter() - start
    return build_results(checkpoint, config, rule, run_dir.name, blocks, timings, record, note)


#: the configuration fields of a harness training run: an imported model was not trained by the
#: harness, so its results and evaluation.json leave them out (the schema refuses them there)
TRAINING_FIELDS = ("blender_options", "backbone_options", "pretrained", "train_dataset", "train", "loss",
                   "crop_size", "crop_margin")


def evaluation_config(checkpoint: Bundle, config: RunConfig, rule: CropRule) -> dict[str, Any]:
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


def build_results(checkpoint: Bundle, config: RunConfig, rule: CropRule, rid: str, blocks: dict[str, Any],
                  timings: dict[str, float], identity: dict[str, Any], note: str | None = None) -> dict[str, Any]:
    """An evaluation's results (harness.run.build.results_record): the checkpoint's provenance and
    what the evaluation id is a hash of, in place of a training section."""
    from harness.run.build import results_record

    meta = checkpoint.meta
    used = {("face_detector", rule.detector)} | {("dataset", n) for n in config.test_datasets}
    if checkpoint.imported:
        used.add(("importer", str(meta["importer"])))
    record = provenance(checkpoint)
    if note:
        record["overlap_check"] = note
    label = config.name or (f"{meta.get('label') or meta['importer']} ({checkpoint.meta.get('origin', {}).get('file', 'imported')}, evaluated here)"
                            if checkpoint.imported else f"{checkpoint_config(checkpoint).label()} (checkpoint, evaluated here)")
    return results_record(
        config, rid, name=label, config_dict=evaluation_config(checkpoint, config, rule), used=used,
        # the training seed where the checkpoint records one (a harness run), else null
        seeds={"train": None if checkpoint.imported else checkpoint_config(checkpoint).seed, "eval": config.seed,
               "bootstrap": config.seed},
        selection_rule=("made when the checkpoint was trained" if checkpoint.imported
                        else f"{checkpoint_config(checkpoint).train.selection} (when the checkpoint was trained)"),
        # what the id is a hash of (identity): the bundle, crop rule, settings, test files
        sections={"kind": "evaluation", "provenance": record, "identity": identity},
        timings={"train_s": None, **{k: round(v, 2) for k, v in timings.items()}},  # not trained here
        blocks=blocks)
