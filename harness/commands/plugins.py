"""`harness plugins`: what is installed, read without building anything."""

from __future__ import annotations

import json
from typing import Optional

import typer

from harness.extend import registry
from harness.extend.hookspecs import hookimpl


def plugins_command(
    kind: Optional[str] = typer.Option(None, help="Only this kind: blender, backbone, evaluator, dataset, face_detector, logger, importer."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """List every installed plugin: name, kind, version and the package that provides it."""
    from rich.markup import escape
    from rich.table import Table

    from harness import __version__
    from harness.common.ui import console

    entries = registry.entries(kind)
    failures = registry.load_failures(kind)
    if as_json:
        rows = [{"kind": e.kind, "name": e.name, "package": e.package, "version": e.version, "plugin": e.plugin,
                 "description": e.description, "replaces": e.replaces or None} for e in entries]
        print(json.dumps({"plugins": rows, "failures": [f.__dict__ for f in failures]}, indent=2))
        return
    table = Table(title=f"harness {__version__} plugins")
    for col in ("kind", "name", "version", "package", "plugin", "description"):
        table.add_column(col)
    for e in entries:
        note = f" [yellow](replaces the {escape(e.replaces)})[/yellow]" if e.replaces else ""
        # plugin text is data, not markup: "pip install 'pkg[extra]'" must print its [extra]
        table.add_row(*(escape(v) for v in (e.kind, e.name, e.version, e.package, e.plugin)), escape(e.description) + note)
    console.print(table)
    for f in failures:
        console.print(f"[red]failed:[/red] plugin {escape(f.plugin)} ({escape(f.package)}) in {escape(f.stage)}: {escape(f.error)}")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("plugins")(plugins_command)
