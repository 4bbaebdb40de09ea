"""`harness evaluate` (score a model you already have) and `harness import` (a foreign checkpoint ->
a harness bundle). The test-set, output and device options are the ones `harness run` takes (options.OPTIONS)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import typer

from harness.cli import fail, interrupted
from harness.commands.options import OPTIONS, check_device, data_options, perturb_conditions, split, value_options, with_demo_scale
from harness.extend.hookspecs import hookimpl
from harness.common.ui import console

CHECKPOINT_HELP = (
    "The model to score: a run folder (runs/<id>), its checkpoint/ folder, a folder written by `harness import`, "
    "or a foreign file as [IMPORTER:]FILE[?KEY=VALUE&...] (e.g. sbi:FFc23.tar, mesonet:Meso4_DF.h5, "
    "deepfakebench:ckpt.pth?arch=core; without IMPORTER: the importer that accepts the file; see `harness plugins --kind importer`).")


def evaluate_command(
    checkpoint: list[str] = typer.Option(..., "--checkpoint", metavar="CHECKPOINT", help=CHECKPOINT_HELP + " Repeat it to score several models and compare them with the first (one run folder each, one table)."),
    data: Optional[str] = typer.Option(None, help="'demo': score the embedded demo test set (the default for a demo run's checkpoint)."),
    test: Optional[str] = OPTIONS["test"],
    test_csv: Optional[Path] = OPTIONS["test_csv"],
    root: Optional[Path] = OPTIONS["root"],
    compression: Optional[str] = OPTIONS["compression"],
    eval_frames: Optional[int] = OPTIONS["eval_frames"],
    perturb: Optional[str] = OPTIONS["perturb"],
    face_detector: Optional[str] = OPTIONS["face_detector"],
    device: Optional[str] = OPTIONS["device"],
    name: Optional[str] = OPTIONS["name"],
    cache_dir: Optional[Path] = OPTIONS["cache_dir"],
    runs_dir: Path = OPTIONS["runs_dir"],
    results_dir: Optional[Path] = OPTIONS["results_dir"],
    leaderboard: Optional[Path] = OPTIONS["leaderboard"],
    publish: bool = OPTIONS["publish"],
    resume: bool = OPTIONS["resume"],
    demo_scale: Optional[str] = OPTIONS["demo_scale"],
    dry_run: bool = OPTIONS["dry_run"],
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Skip (and report) listed test videos missing on disk, as `harness preprocess --allow-missing` does."),
) -> None:
    """Score a checkpoint you already have on the test sets you choose, without training.

    Faces are cut with the checkpoint's own crop rule and face detector (--face-detector overrides the detector) and frames aggregated by its own rule. Writes a run folder like `harness run` (results.json with the model's provenance in place of training, scores/, figures, report.md) and a leaderboard row. The id is a hash of the checkpoint's content (weights and model.json), the crop rule, the settings and the test files: the same inputs are the same id (a finished evaluation is reported, a killed one resumes dataset by dataset), other inputs another id. One process per id.

    Several --checkpoint: each is scored as alone (faces cut once per distinct crop rule), then one table gives each model's AUC with its CI and ΔAUC against the first with the paired bootstrap CI and DeLong p of `harness compare`. A model that fails is one line; the others are scored.

    Examples: harness evaluate --checkpoint runs/<id> --test celebdf,dfdcp  |  harness evaluate --checkpoint sbi:FFc23.tar --test-csv my_videos.csv  |  harness evaluate --checkpoint runs/<id> --checkpoint mesonet:Meso4_DF.h5 --checkpoint deepfakebench:xception_best.pth --test-csv faces.csv  |  harness import sbi FFc23.tar --out models/sbi (once; then --checkpoint models/sbi)
    """
    from harness.models.importing import parse_spec
    from harness.run.config_check import check_run_paths
    from harness.vocab.config_check import DEMO, check_frames, check_names
    from harness.run.paths import RunPaths

    check_names(data=data, tests=split(test or ""), face_detector=face_detector or None)
    for text in checkpoint:
        parse_spec(text)  # then the importer it names: one line with a suggestion, no file read
    if data is None and split(test or "") == [DEMO]:
        data, test = DEMO, None  # --test demo: the demo's test set, as --data demo
    conditions = perturb_conditions(perturb)  # options first: a bad value costs no checkpoint read
    if eval_frames is not None:
        check_frames(eval_frames, "--eval-frames")  # its memory is checked with the model's sizes below
    if data not in (None, "demo"):
        fail(f"--data {data!r}: evaluate takes --data demo only; choose test sets with --test or --test-csv")
    _check_several(checkpoint, name)
    choices = {"data": data, "test": test, "test_csv": test_csv, "root": root, "demo_scale": demo_scale,
               "allow_missing": allow_missing, "values": {"device": device, "name": name, "compression": compression,
                                                          "eval_frames": eval_frames, "face_detector": face_detector or None}}
    paths = RunPaths(runs_dir, results_dir or runs_dir / "results", leaderboard or runs_dir / "LEADERBOARD.md", publish, cache_dir)
    check_run_paths(paths)
    if len(checkpoint) > 1:
        return _evaluate_several(checkpoint, choices, paths, resume, conditions, dry_run)
    plan = _plan(checkpoint[0], choices, cache_dir, dry_run)
    if dry_run:
        print(json.dumps(_dry_run_report(plan, conditions), indent=2, sort_keys=True, default=str))
        return
    from harness.run.evaluate import evaluate_checkpoint

    try:
        evaluate_checkpoint(plan.checkpoint, plan.config, plan.rule, paths, resume=resume, perturb=conditions)
    except KeyboardInterrupt as exc:  # Ctrl-C (130) or SIGTERM (143)
        interrupted(exc, "finished datasets are kept: run the same command again to resume")


def _check_several(checkpoints: list[str], name: str | None) -> None:
    """Several --checkpoint: each once, and no --name (it names one evaluation's row)."""
    seen = [c for i, c in enumerate(checkpoints) if c in checkpoints[:i]]
    if seen:
        fail(f"--checkpoint {seen[0]} is given twice; name each model once")
    if len(checkpoints) > 1 and name:
        fail("--name names one evaluation; with several --checkpoint each keeps its own name (drop --name)")


def _plan(text: str, choices: dict[str, Any], cache_dir: Path | None, dry_run: bool) -> Any:
    """One --checkpoint resolved (imported on the fly where it is a foreign file) with the
    configuration and crop rule it is scored with: its recorded settings under the options given."""
    from harness.run.evaluate import checkpoint_config, open_checkpoint, scores_the_demo
    from harness.run.several import Planned
    from harness.run.stages import crop_rule
    from harness.vocab.config_check import check_eval_config, check_names

    found = open_checkpoint(text, cache_dir, dry_run=dry_run)
    recorded = replace(checkpoint_config(found), name="")  # the run's own name is its row, not this one's
    base = data_options(recorded, choices["data"], choices["test"], choices["root"], True, (None, choices["test_csv"], None))
    base = replace(base, demo=scores_the_demo(base))  # a demo checkpoint on your data is no demo evaluation
    base = with_demo_scale(base, choices["demo_scale"])  # not given: the demo the checkpoint was trained on
    base = value_options(base, choices["values"])
    if choices["allow_missing"]:  # a dataset option: it enters the evaluation id (other videos, other numbers)
        options = {n: {**base.dataset_options.get(n, {}), "allow_missing": True} for n in base.test_datasets}
        base = replace(base, dataset_options={**base.dataset_options, **options})
    check_names(tests=base.test_datasets, face_detector=base.face_detector)  # the checkpoint's recorded ones too
    check_eval_config(base)
    check_device(base.device, dry_run)
    return Planned(text, found, base, crop_rule(base, found.meta))


def _dry_run_report(plan: Any, conditions: list[Any]) -> dict[str, Any]:
    """The id the evaluation will have: the test files are read and hashed, nothing is written."""
    from harness.data.fingerprint import memo_read_only
    from harness.run.evaluate import evaluation_config, evaluation_id, planned_identity

    found, base, rule = plan.checkpoint, plan.config, plan.rule
    with memo_read_only():
        record = planned_identity(found, base, rule, conditions)
    return {"run_id": evaluation_id(found, base, record), "checkpoint": str(found.directory), "sha256": found.sha256,
            "crop": rule.to_dict(), "config": evaluation_config(found, base, rule), "perturb": [c.key for c in conditions],
            "identity": record}


def _evaluate_several(checkpoints: list[str], choices: dict[str, Any], paths: Any, resume: bool,
                      conditions: list[Any], dry_run: bool) -> None:
    """Plan every model (one that cannot be opened is its one line), score them, print one table."""
    from harness.common import runtime
    from harness.common.errors import HarnessError
    from harness.run.several import check_same_test_data, evaluate_several, failed

    plans, outcomes = [], []
    for text in checkpoints:
        try:
            plans.append(_plan(text, choices, paths.cache_dir, dry_run))
        except HarnessError as exc:
            outcomes.append(failed(text, exc.line))
    if plans:
        check_same_test_data(plans)
    if dry_run:
        print(json.dumps([_dry_run_report(p, conditions) for p in plans], indent=2, sort_keys=True, default=str))
    else:
        try:
            outcomes += evaluate_several(plans, paths, resume, conditions)
        except KeyboardInterrupt as exc:  # Ctrl-C (130) or SIGTERM (143)
            interrupted(exc, "finished models and datasets are kept: run the same command again to resume")
        if runtime.is_main():
            _print_comparison(outcomes)
    errors = [o for o in outcomes if o.error]
    if errors:
        fail(f"{len(errors)} of {len(checkpoints)} checkpoints failed ({', '.join(o.text for o in errors)}); "
             "the others' run folders are written")


def _print_comparison(outcomes: list[Any]) -> None:
    from harness.run.several import comparison
    from harness.run.summary import comparison_table

    from harness.common.ui import heading, print_table

    done = [o for o in outcomes if o.folder is not None]
    if done:
        heading("comparison")
        print_table(comparison_table([(o.results, str(o.folder)) for o in done], comparison(outcomes)))


def import_command(
    importer: str = typer.Argument(..., metavar="IMPORTER", help="The importer plugin (sbi, mesonet, deepfakebench, or one a plugin adds: `harness plugins --kind importer`) then the file; or the file alone as --checkpoint takes it, [IMPORTER:]FILE[?KEY=VALUE] (the importer that accepts it is used)."),
    source: Optional[str] = typer.Argument(None, metavar="[FILE]", help="The foreign checkpoint file, FILE[?KEY=VALUE&...] with the importer's options (e.g. model.pth?arch=core). Each importer reads its own format; a torch file that needs a pickle is refused, never executed."),
    out: Path = typer.Option(..., "--out", help="The bundle folder to write (model.safetensors + model.json), new or empty unless --force; then pass it to `harness evaluate --checkpoint` or `harness predict`."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out folder that is not empty (never the input file)."),
) -> None:
    """Turn a foreign checkpoint into a harness model bundle (its crop rule, input scaling, heads and
    frame aggregation recorded), for `harness evaluate --checkpoint OUT` and `harness predict OUT`.

    Examples: harness import mesonet Meso4_DF.h5 --out models/meso4-df  |  harness import deepfakebench xception_best.pth --out models/dfb-xception  |  harness import "deepfakebench:core_best.pth?arch=core" --out models/dfb-core
    """
    from harness.models.bundle import bundle_sha256
    from harness.models.importing import detect, import_checkpoint, parse_spec

    spec = parse_spec(importer if source is None else f"{importer}:{source}")
    name = spec.importer or detect(spec.path)
    folder = import_checkpoint(name, spec.path, out, spec.options, option="--out", force=force)
    console.print(f"imported {spec.path} with {name} -> {folder} (bundle sha256 {bundle_sha256(folder)[:16]})")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
    app.command("import")(import_command)
