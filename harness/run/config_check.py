"""The checks of a run that need more than its configuration: the backbone's weights, the loggers'
packages and the run's output paths (the values and names: harness.vocab.config_check)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from harness.vocab.config import RunConfig
from harness.vocab.config_check import ConfigError, check_plugin_options, check_run_names


# ---------------------------------------------------------------------------------- availability
def check_weights(config: RunConfig) -> None:
    """Build the encoder once when weights are asked for, so a missing file or an offline hub is one
    clear line before any data work (the encoder is built again, from the same file, in training)."""
    import harness
    from harness.models.detector import DECODER_OPTIONS
    from harness.models.pretrained import PretrainedWeightsError

    if config.pretrained is False:
        return
    options = {k: v for k, v in config.backbone_options.items() if k not in DECODER_OPTIONS}
    try:
        harness.plugin("backbone", config.backbone, pretrained=config.pretrained, img_size=config.img_size, **options)
    except (PretrainedWeightsError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"--pretrained {config.pretrained}: {exc}") from exc


def check_loggers_run(loggers: typing.Sequence[str]) -> None:
    """Each logger can run here (a logger plugin's ``check`` names what to install)."""
    from harness.training.loggers import check_loggers

    try:
        check_loggers(list(loggers))
    except ImportError as exc:  # a logger's missing package (a plugin's own HarnessError passes as it is)
        raise ConfigError(str(exc)) from exc


def check_before_work(config: RunConfig, loggers: typing.Sequence[str] = ()) -> None:
    """The one check of a run before any work, in order: every name, the options each plugin is
    given, the ImageNet (or file) weights, the loggers' packages."""
    check_run_names(config, loggers)
    check_plugin_options(config)
    check_weights(config)
    check_loggers_run(loggers)


def check_folder(path: Path | None, option: str, writable: bool = True) -> None:
    """``path`` is or can become a folder: neither it nor a parent is a file, and (``writable``) the
    harness can write in it (a read-only folder is one line now, not after the work)."""
    from harness.common.files import unwritable_reason

    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; it must be a folder: pass a folder path")
    reason = unwritable_reason(path, inside=True)
    if reason and (writable or "is inside" in reason):
        raise ConfigError(f"{option} {path} {reason}; it must be a writable folder: pass another path")


def check_file(path: Path | None, option: str) -> None:
    """``path`` is or can become a file the harness renders (a leaderboard): not a folder, in a writable
    folder, and not a file of the user's (one the harness did not generate is never overwritten)."""
    from harness.common.files import OutputError, check_output
    from harness.reporting.leaderboard import is_generated_board

    if path is None:
        return
    if Path(path).is_dir():
        raise ConfigError(f"{option} {path} is a folder; it must be a file: pass a file path such as {Path(path) / 'LEADERBOARD.md'}")
    try:
        check_output(Path(path), option, folder=False, replaceable=is_generated_board, force_flag=None)
    except OutputError as exc:
        raise ConfigError(str(exc)) from None


def check_run_paths(paths: Any) -> None:
    """A RunPaths' folders and leaderboard file are usable before the run begins (not after training),
    and so are the shipped ones a ``--publish`` writes."""
    from harness.run.paths import SHIPPED_LEADERBOARD, SHIPPED_RESULTS

    check_folder(paths.runs_dir, "--runs-dir")
    check_folder(paths.results_dir, "--results-dir")
    check_file(paths.leaderboard, "--leaderboard")
    check_folder(paths.cache_dir, "--cache-dir", writable=False)  # a read-only cache may still serve its faces
    if paths.publish:
        check_folder(SHIPPED_RESULTS, "--publish")
        check_file(SHIPPED_LEADERBOARD, "--publish")
