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
import typer.core

from harness.extend import registry as plugin_registry
from harness.common.errors import HarnessError
from harness.common.ui import console

STARTED = time.perf_counter()  # when the command line began (commands report their time from here)

#: The one spelling of each option, across commands: ``--face-detector`` (and
#: ``--face-detector-option``), ``--cache-dir`` (the cache home) and ``--face-cache`` (one face cache
#: folder), ``--frames`` (frames per video of a command that samples once: predict, preprocess) and
#: ``--eval-frames`` (frames per test video of a run or an evaluation: run, evaluate), ``--json`` (a
#: flag: JSON on stdout) and ``--json-out PATH``. Other spellings still work, hidden from --help: old
#: -> the one spelling, in any command that has the one spelling and no option of the old name.
ALIASES: dict[str, str] = {
    "--detector": "--face-detector",
    "--detector-option": "--face-detector-option",
    "--cache": "--face-cache",
    "--frames": "--eval-frames",
    "--eval-frames": "--frames",
}
#: Options that took a PATH and are now flags: followed by a value, they are still the PATH option.
VALUE_ALIASES: dict[str, str] = {"--json": "--json-out"}
#: What a flag followed by a word means (``--publish true``): the flag is given (True) or not (False).
BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _flags_as_flags(params: list[Any]) -> None:
    """A boolean flag shows as ``--publish`` in --help, not ``--publish <bool>``: it takes no value."""
    for param in params:
        if isinstance(param, typer.core.TyperOption) and param.is_flag and not param.count and param.metavar is None:
            param.metavar = ""


def _flag_word(param: Any, name: str, word: str, out: list[str]) -> bool:
    """``--publish true`` / ``--resume false``: the flag's own spelling for that value, appended to
    ``out``; False when ``word`` is no boolean word (it stays an argument)."""
    value = BOOL_WORDS.get(word.lower())
    if value is None:
        return False
    if name in param.secondary_opts:
        value = not value  # --no-resume false is --resume
    if value:
        out.append(param.opts[0])
    elif param.secondary_opts:
        out.append(param.secondary_opts[0])
    return True


def respell(params: list[Any], args: list[str]) -> list[str]:
    """``args`` of the command of ``params`` with every old spelling replaced by the one spelling
    (ALIASES, VALUE_ALIASES) and a boolean word after a flag folded into it. Option values are never
    changed: the token after an option that takes a value is copied as it is."""
    options = {opt: p for p in params if isinstance(p, typer.core.TyperOption) for opt in (*p.opts, *p.secondary_opts)}
    aliases = {old: new for old, new in ALIASES.items() if new in options and old not in options}
    value_aliases = {old: new for old, new in VALUE_ALIASES.items() if new in options}
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return out + args[i:]
        name, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        following = args[i + 1] if i + 1 < len(args) else None
        if name in value_aliases and (eq or (following is not None and not following.startswith("-"))):
            name = value_aliases[name]  # the old PATH form
        name = aliases.get(name, name)
        param = options.get(name)
        i += 1
        if param is not None and param.is_flag and not eq and following is not None and _flag_word(param, name, following, out):
            i += 1
            continue
        out.append(name + eq + value)
        if param is not None and not param.is_flag and not eq and following is not None:
            out.append(following)  # its value, verbatim
            i += 1
    return out


class HarnessGroup(typer.core.TyperGroup):
    """The root group (and ``blend``): flags shown as flags, old spellings of options still taken."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _flags_as_flags(params)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            _flags_as_flags(cmd.get_params(ctx))
        return cmd

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None and not isinstance(cmd, typer.core.TyperGroup):
            rest = respell(cmd.get_params(ctx), rest)
        return name, cmd, rest


app = typer.Typer(
    name="harness",
    cls=HarnessGroup,
    help="Deepfake detection and localization trained without fake samples: train, score, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    """--version: the installed distribution's version (what a bug report needs), then exit."""
    if value:
        import importlib.metadata as md

        from harness.extend.registry import BUILTIN_PACKAGE

        try:
            version = md.version(BUILTIN_PACKAGE)
        except md.PackageNotFoundError:  # run from a source tree that was never installed
            version = "unknown (not installed)"
        typer.echo(f"harness {version} ({BUILTIN_PACKAGE}, Python {sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                       help="Print the version and exit.")) -> None:
    """Deepfake detection and localization trained without fake samples: train, score, compare."""


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
    from harness.common import kernels, signals

    args = argv if argv is not None else sys.argv[1:]
    kernels.select_at_start()  # before the first torch kernel: a CPU's numbers are the same on any x86-64 machine
    signals.install()  # SIGTERM: one line and exit 143 within moments, wherever the command is
    build_app()
    app(args=args, prog_name="harness")


if __name__ == "__main__":
    main()
