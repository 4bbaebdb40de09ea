"""`harness report RUN`: redraw a run's figures from its folder and write its one-page report."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.extend.hookspecs import hookimpl


def report(
    run: Path = typer.Argument(..., help="A run folder (runs/<id>) or its id under --runs-dir."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are (for a bare id)."),
) -> None:
    """Redraw the figures of RUN (ROC/PR curves, score histograms, training curves, localization
    examples) from its results, log and score files, write RUN/report.md and print its results table."""
    from harness.reporting.report import write_report
    from harness.vocab.folder import RunFolder

    folder = run if run.is_dir() else runs_dir / run
    if not folder.is_dir():
        typer.echo(f"error: no run folder {run} (nor {runs_dir / run})", err=True)
        raise typer.Exit(2)
    if not RunFolder(folder).is_run_folder():
        typer.echo(f"error: {folder} is not a run folder (no {RunFolder.RESULTS}, {RunFolder.LOG} or {RunFolder.CONFIG})", err=True)
        raise typer.Exit(2)
    from harness.common.bounded import InputFileError
    from harness.reporting.plots import ReportError
    from harness.reporting.results import ResultsError

    try:
        path = write_report(folder)
    except (ReportError, ResultsError, InputFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    figures = sorted(RunFolder(folder).figures.glob("*.png"))
    if RunFolder(folder).results.is_file():  # the numbers it reports, as at the end of the run (read back checked above)
        from harness.common.ui import print_table
        from harness.reporting.results import read_results_file
        from harness.run.summary import summary_table

        print_table(summary_table(read_results_file(RunFolder(folder).results)))
    typer.echo(f"wrote {path} ({len(figures)} figure(s) in {RunFolder(folder).figures})")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("report")(report)
