"""The `harness` command line. Subcommands live in harness/commands/; plugins may add their own."""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from harness import __version__
from harness import registry as plugin_registry
from harness.ui import console

app = typer.Typer(
    name="harness",
    help="Deepfake detection and localization trained without fake samples: train, score, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _fail(message: str, code: int = 2) -> None:
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


@app.command("run")
def run_command(
    blender: str = typer.Option("multipart", help="Blender plugin(s), comma-separated for a sweep."),
    backbone: str = typer.Option("swin", help="Backbone plugin(s), comma-separated for a sweep."),
    preset: Optional[str] = typer.Option(None, help="Blender-option preset(s): base, deform, multipart, full, or 'ablation' (all four, paper Table 4)."),
    data: Optional[str] = typer.Option(None, help="Training dataset plugin (default ffpp, or the --config file's), or 'demo' for the embedded demo (FF++ layout)."),
    test: Optional[str] = typer.Option(None, help="Test datasets (default: ffpp,celebdf,dfdc,dfdcp; demo: ffpp)."),
    root: Optional[Path] = typer.Option(None, help="Data root holding the datasets (else $HARNESS_DATA)."),
    compression: Optional[str] = typer.Option(None, help="FF++ compression: raw (c0), c23 (default) or c40."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (paper: 100)."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Images per step, half real half fake (paper: 16)."),
    img_size: Optional[int] = typer.Option(None, help="Model input side in pixels (paper: 224)."),
    pretrained: Optional[str] = typer.Option(None, help="'timm' for timm's ImageNet weights, or a local weights file."),
    selection: Optional[str] = typer.Option(None, help="Checkpoint rule: 'last' or 'best-val' (self-blended val AUC)."),
    eval_frames: Optional[int] = typer.Option(None, help="Frames per test video, evenly spaced (paper: 32)."),
    workers: Optional[int] = typer.Option(None, help="Data-loading / preprocessing worker processes."),
    seed: Optional[str] = typer.Option(None, help="Seed for training, blending and the bootstrap (default 0); comma-separated (0,1,2) runs one per seed."),
    device: Optional[str] = typer.Option(None, help="auto (default), cpu, cuda, cuda:1 ..."),
    name: Optional[str] = typer.Option(None, help="A name for the run in the leaderboard."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="A RunConfig JSON (e.g. runs/<id>/config.json)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run folders go."),
    results_dir: Path = typer.Option(Path("leaderboards/results"), help="Where results JSON files go."),
    leaderboard: Path = typer.Option(Path("leaderboards/LEADERBOARD.md"), help="The markdown rendered after the run."),
    resume: bool = typer.Option(True, help="Continue an interrupted run and skip finished ones."),
    demo_scale: str = typer.Option("default", help="Demo size: default or tiny (tests)."),
) -> None:
    """Train on real faces + self-blends, then score on the test datasets; writes results and leaderboard."""
    from harness.config import ABLATION_PRESETS, RunConfig, load_config
    from harness.demo import DemoSpec
    from harness.pipeline import RunError, RunPaths, demo_config, run
    from harness.types import DatasetLayoutError, DatasetNotFoundError

    base = load_config(config_file) if config_file else RunConfig()
    is_demo = data == "demo" or (data is None and config_file is not None and base.demo)
    if is_demo:
        # Demo sizes unless a config file says otherwise.
        base = replace(base, demo=True, train_dataset="ffpp", test_datasets=["ffpp"]) if config_file else demo_config(base)
    elif data is not None:
        base = replace(base, train_dataset=data, demo=False)  # a real dataset is never a demo run
    if test:
        base = replace(base, test_datasets=_split(test))
    if root:
        base = replace(base, data_root=str(root))
    train_over = {k: v for k, v in {"epochs": epochs, "max_steps": max_steps, "batch_size": batch_size, "selection": selection, "workers": workers}.items() if v is not None}
    if train_over.get("selection") not in (None, "last", "best-val"):
        _fail("--selection must be 'last' or 'best-val' (never test data)")
    try:
        seeds = [int(s) for s in _split(seed or "")] or [base.seed]
    except ValueError:
        _fail(f"--seed {seed!r}: give integers, comma-separated for several runs (e.g. --seed 0,1,2)")
    # Options left out keep the --config file's values (or the defaults).
    top_over = {k: v for k, v in {"device": device, "name": name, "compression": compression}.items() if v is not None}
    base = replace(base, train=replace(base.train, **train_over), **top_over)
    name = base.name
    try:
        from harness.training.distributed import pick_device

        pick_device(base.device)  # a bad --device fails here, before any work
    except ValueError as exc:
        _fail(str(exc))
    if eval_frames:
        base = replace(base, eval=replace(base.eval, frames_per_video=eval_frames))
    if img_size:
        base = replace(base, img_size=img_size)
    if pretrained:
        base = replace(base, pretrained=True if pretrained == "timm" else pretrained)

    presets: list[str | None] = [None]
    if preset:
        presets = list(ABLATION_PRESETS) if preset == "ablation" else _split(preset)
        unknown = [p for p in presets if p not in ABLATION_PRESETS]
        if unknown:
            hint = plugin_registry.suggest(unknown[0], list(ABLATION_PRESETS))
            _fail(f"unknown preset {unknown[0]!r}" + (f"; did you mean {hint!r}?" if hint else "") + f" Presets: {', '.join(ABLATION_PRESETS)}, ablation.")
    try:
        for kind, names in (("blender", _split(blender)), ("backbone", _split(backbone))):
            for n in names:
                plugin_registry.get(kind, n)  # fail fast, with a suggestion, before any work
    except plugin_registry.PluginError as exc:
        _fail(str(exc))

    configs = []
    for b, bb, p, s in itertools.product(_split(blender), _split(backbone), presets, seeds):
        options = dict(base.blender_options)
        if p is not None:
            options.update(ABLATION_PRESETS[p])
        configs.append(replace(base, blender=b, backbone=bb, blender_options=options, seed=s, name=(f"{name}-{p}" if name and p else name)))
    paths = RunPaths(runs_dir, results_dir, leaderboard)
    spec = DemoSpec(train_pairs=2, val_pairs=1, test_pairs=2, frames=6, size=160) if demo_scale == "tiny" else DemoSpec()
    try:
        for i, cfg in enumerate(configs, 1):
            if len(configs) > 1:
                console.rule(f"[bold]run {i}/{len(configs)}: {cfg.label()}")
            run(cfg, paths, resume=resume, demo_spec=spec if is_demo else None)
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
    for module_name in ("blend", "datasets", "preprocess", "leaderboard", "predict"):
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
