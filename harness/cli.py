"""The `harness` command line: the root app, its one error rule, and the mounting of commands.

Every subcommand, the core's own included (harness/commands/), is added through the
``register_commands`` hook, exactly as a third-party plugin adds one (datasette mounts its
``publish`` commands this way). Nothing heavy is imported here: `harness --help` loads typer and
the command modules, which import torch only inside the commands that need it.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any, Callable, NoReturn, Optional

import typer

from harness.extend import registry as plugin_registry
from harness.common.errors import HarnessError
from harness.common.ui import console

STARTED = time.perf_counter()  # when the command line began (commands report their time from here)

app = typer.Typer(
    name="harness",
    help="Deepfake detection and localization trained without fake samples: train, score, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on one line (markup escaped) and exit with ``code``."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/bold red] {escape(str(message))}", soft_wrap=True)  # one line, whatever the width
    raise typer.Exit(code)


def interrupted(exc: KeyboardInterrupt, kept: str) -> NoReturn:
    """Ctrl-C (exit 130) or SIGTERM (exit 143, harness.common.signals): one line saying what is kept."""
    from harness.common import signals

    if isinstance(exc, signals.Terminated):
        fail(f"terminated (SIGTERM); {kept}", signals.EXIT)
    fail(f"interrupted; {kept}", 130)


_guarded: set[Callable[..., Any]] = set()  # the wrappers _guard made (mounting twice wraps once)


def _guard(callback):
    """The CLI's one rule: a user error (a HarnessError) is its one line and exit code, never a
    traceback; so is SIGTERM (exit 143)."""
    if callback in _guarded:
        return callback

    @functools.wraps(callback)
    def guarded(*args, **kwargs):
        from harness.common.signals import Terminated

        try:
            return callback(*args, **kwargs)
        except HarnessError as exc:
            fail(exc.line, exc.exit_code)
        except Terminated as exc:  # a command without its own word on what is kept
            interrupted(exc, "nothing half-written is left: run the same command again")

    _guarded.add(guarded)
    return guarded


def _guard_all(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = _guard(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _guard_all(group.typer_instance)


_mounted = False


def _mount_subcommands() -> None:
    """Every command plugin's commands, the core's first (registry.DEFAULT_PLUGINS)."""
    global _mounted
    if _mounted:
        return
    _mounted = True
    for plugin, package, register_commands in plugin_registry.command_hooks():
        try:
            register_commands(app=app)
        except Exception as exc:  # one broken plugin must not break the CLI
            plugin_registry.command_failure(plugin, package, exc)
            from rich.markup import escape

            console.print(f"[red]plugin {escape(str(plugin))} ({escape(str(package))}) failed to add its commands:[/red] "
                          f"{escape(str(exc))}", markup=True)
    _guard_all(app)


def build_app() -> typer.Typer:
    """The root app with every subcommand mounted (tests use it with typer's CliRunner)."""
    _mount_subcommands()
    return app


def main(argv: Optional[list[str]] = None) -> None:
    from harness.common import signals

    signals.install()  # SIGTERM: one line and exit 143 within moments, wherever the command is
    build_app()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="harness")


if __name__ == "__main__":
    main()
