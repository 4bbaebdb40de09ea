"""`harness leaderboard`: render leaderboards/LEADERBOARD.md from the results JSON files.

`harness run` keeps its results in runs/results/ (git-ignored, with runs/LEADERBOARD.md); the
shipped leaderboards/ change only here, when a user publishes a run:

    harness leaderboard --publish runs/<run-id>      # copy its results.json in, re-render
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional

import typer

from harness.hookspecs import hookimpl

DEFAULT_RESULTS = Path("leaderboards/results")
DEFAULT_OUT = Path("leaderboards/LEADERBOARD.md")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    """Add the ``leaderboard`` command to the ``harness`` CLI."""

    @app.command("leaderboard")
    def leaderboard(
        results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of results JSON files (one per run)."),
        out: Path = typer.Option(DEFAULT_OUT, "--out", help="Markdown file to write."),
        check: bool = typer.Option(
            False, "--check", help="Write nothing; exit 1 if OUT differs from what the results render to (CI)."
        ),
        publish: Optional[List[Path]] = typer.Option(
            None, "--publish", help="Add a run to RESULTS first: its run folder (runs/<id>) or results JSON (repeatable)."
        ),
    ) -> None:
        """Render the leaderboard markdown from the results files alone (same files, same bytes)."""
        if publish:
            from harness.pipeline import RunError
            from harness.pipeline import publish as publish_runs

            if check:
                typer.echo("error: --publish writes files; --check only compares", err=True)
                raise typer.Exit(2)
            try:
                folder, board = publish_runs(list(publish), results, out)
            except RunError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"published {len(publish)} run(s) to {folder}; wrote {board}")
            return
        from harness.leaderboard import render, write_markdown
        from harness.results import load_results

        if not results.is_dir() and results == DEFAULT_RESULTS:
            # A fresh checkout has no runs yet: render the reference rows alone.
            runs: list = []
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    runs = load_results(results)
                except FileNotFoundError as exc:
                    typer.echo(f"error: {exc}", err=True)
                    raise typer.Exit(2) from None
            for warning in caught:  # invalid results files: named and skipped
                typer.echo(f"warning: {warning.message}", err=True)
        text = render(runs, link_from=out.parent)
        if check:
            current = out.read_text(encoding="utf-8") if out.is_file() else None
            if current != text:
                typer.echo(f"{out} is out of date; run `harness leaderboard --results {results} --out {out}`", err=True)
                raise typer.Exit(1)
            typer.echo(f"{out} is up to date ({len(runs)} run(s))")
            return
        write_markdown(text, out)
        typer.echo(f"wrote {out} ({len(runs)} run(s))")
