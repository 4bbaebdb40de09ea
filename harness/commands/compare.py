"""`harness compare RUN_A RUN_B [...]`: is one run's AUC really different from another's?"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from harness.cli import fail
from harness.extend.hookspecs import hookimpl


def compare(
    runs: list[Path] = typer.Argument(..., help="Run folders (runs/<id>) or ids under --runs-dir; the first is the baseline."),
    intersect: bool = typer.Option(False, "--intersect", help="Compare on the videos both runs scored when their sets differ (else refused)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of markdown."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Paired bootstrap draws for the ΔAUC interval."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap draws."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are (for a bare id)."),
) -> None:
    """Per test dataset and group, on the videos both runs scored: ΔAUC with a paired stratified bootstrap
    95% CI, DeLong's p-value for correlated ROC AUCs, and the count of shared videos."""
    from harness.evaluation.compare import compare_runs, load_run, to_markdown

    if len(runs) < 2:
        fail("harness compare needs at least two runs: RUN_A RUN_B [...] (the first is the baseline)")
    from harness.vocab.config_check import MAX_BOOTSTRAP, Range, check_number, check_seed

    check_number(bootstrap, Range(100, MAX_BOOTSTRAP, fix="paired bootstrap draws (default 1000)"), "bootstrap",
                 "--bootstrap", integer=True)
    check_seed(seed)  # before any run is read
    report = compare_runs([load_run(r, runs_dir) for r in runs], intersect, bootstrap, seed)
    if as_json:
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        typer.echo(to_markdown(report), nl=False)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("compare")(compare)
