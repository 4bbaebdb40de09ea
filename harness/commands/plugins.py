"""`harness plugins`: what is installed, read without building anything."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from harness.extend import registry
from harness.extend.hookspecs import hookimpl


def plugins_command(
    kind: Optional[str] = typer.Option(None, help="Only this kind: blender, backbone, evaluator, dataset, face_detector, logger, importer."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """List every installed plugin: name, kind, version and the package that provides it."""
    from harness.common.ui import console, print_table, say

    entries = registry.entries(kind)
    failures = registry.load_failures(kind)
    if as_json:
        rows = [{"kind": e.kind, "name": e.name, "package": e.package, "version": e.version, "plugin": e.plugin,
                 "description": e.description, "replaces": e.replaces or None} for e in entries]
        print(json.dumps({"plugins": rows, "failures": [f.__dict__ for f in failures]}, indent=2))
        return
    print_table(plugins_table(entries))
    for f in failures:  # a warning, not a row: stderr
        say(f"failed: plugin {f.plugin} ({f.package}) in {f.stage}: {f.error}", "red", to=console)


def plugins_table(entries: list) -> Any:
    """The listing: plugin text is data, never markup (``pip install 'pkg[extra]'`` keeps its [extra])."""
    from harness import __version__
    from harness.common.ui import Column, Listing, cell

    table = Listing([Column("kind"), Column("name"), Column("version"), Column("package", optional=True),
                     Column("plugin", optional=True), Column("description", prose=True)],
                    title=f"harness {__version__} plugins", key_columns=2, more="--json lists them")
    for e in entries:
        replaces = cell(e.description, f"(replaces the {e.replaces})", style="yellow") if e.replaces else e.description
        table.add_row(e.kind, e.name, e.version, e.package, e.plugin, replaces)
    return table

@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("plugins")(plugins_command)
