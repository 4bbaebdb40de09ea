"""`harness leaderboard`: render leaderboards/LEADERBOARD.md from the results JSON files."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

DEFAULT_RESULTS = Path("leaderboards/results")
DEFAULT_OUT = Path("leaderboards/LEADERBOARD.md")


def register(app: typer.Typer) -> None:
    """Add the ``leaderboard`` command to the ``harness`` CLI."""

    @app.command("leaderboard")
    def leaderboard(
        results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of results JSON files (one per run)."),
        out: Path = typer.Option(DEFAULT_OUT, "--out", help="Markdown file to write."),
        check: bool = typer.Option(
            False, "--check", help="Write nothing; exit 1 if OUT differs from what the results render to (CI)."
        ),
    ) -> None:
        """Render the leaderboard markdown from the results files alone (same files, same bytes)."""
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
