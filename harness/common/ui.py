"""Terminal output: one rich console on stderr (stdout stays clean for --json), progress bars."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, highlight=False)


def progress_enabled() -> bool:
    """Bars on a terminal, off in CI logs unless HARNESS_PROGRESS=1."""
    forced = os.environ.get("HARNESS_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false")
    return sys.stderr.isatty()


def progress(transient: bool = False, disable: bool | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=(not progress_enabled()) if disable is None else disable,
    )
