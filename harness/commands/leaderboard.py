"""`harness leaderboard`: render leaderboards/LEADERBOARD.md from the results JSON files.

`harness run` keeps its results in runs/results/ (git-ignored, with runs/LEADERBOARD.md); the
shipped leaderboards/ change only here, when a user publishes a run:

    harness leaderboard --publish runs/<run-id>      # copy its results.json in, re-render
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from harness.extend.hookspecs import hookimpl

DEFAULT_RESULTS = Path("leaderboards/results")
DEFAULT_OUT = Path("leaderboards/LEADERBOARD.md")


def leaderboard(
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="Folder of results JSON files (one per run)."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Markdown file to write (a board the harness rendered is re-rendered; any other file needs --force)."),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if OUT differs from what the results render to (CI)."
    ),
    publish: Optional[List[Path]] = typer.Option(
        None, "--publish", help="Add a run to RESULTS first: its run folder (runs/<id>) or results JSON (repeatable)."
    ),
    protocol: Optional[List[Path]] = typer.Option(
        None, "--protocol", help="A protocol JSON file merged over the shipped one: dataset display names, groups, "
        "tables of its own (repeatable; see harness/reference/protocol.json).",
    ),
    significance: bool = typer.Option(
        False, "--significance", help="Mark in each video-AUC column the rows not significantly different from its best "
        "(DeLong's test, p >= 0.05, on the per-video scores in each run folder); reported rows are marked not testable.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an --out file that is not a board the harness rendered."),
) -> None:
    """Render the leaderboard markdown from the results files alone (same files, same bytes)."""
    if publish:
        if check:
            typer.echo("error: --publish writes files; --check only compares", err=True)
            raise typer.Exit(2)
        if protocol:
            typer.echo("error: --publish renders the shipped layout; re-render with --protocol after it", err=True)
            raise typer.Exit(2)
        _check_out(out, results, list(publish), force)  # where it writes is usable before anything is copied
        _publish(list(publish), results, out)
        return
    from harness.evaluation.significance import column_marks
    from harness.reporting.leaderboard import render
    from harness.reporting.scores import ReportError

    board_protocol = _protocol(protocol or [])  # the options' files first
    _require_results(results)
    runs = _load_runs(results)
    if not check:
        _check_out(out, results, [], force)
    try:
        text = render(runs, link_from=out.parent, protocol=board_protocol, significance=column_marks if significance else None,
                      source=results)
    except ReportError as exc:  # --significance reads each run's scores files: a damaged one is one line
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if check:
        _check(text, results, out, len(runs))
        return
    _write(text, out, results, force)
    typer.echo(f"wrote {out} ({len(runs)} run(s))")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("leaderboard")(leaderboard)


def _publish(runs: List[Path], results: Path, out: Path) -> None:
    from harness.run.paths import RunError
    from harness.run.publish import publish as publish_runs
    from harness.reporting.results import ResultsError

    try:  # every run is checked before any copy (harness.run.publish.checked_results)
        if results.is_dir():
            _load_runs(results)  # and so does every file already published: the board renders them all
        folder, board = publish_runs(runs, results, out)
    except ResultsError as exc:
        typer.echo(f"error: {exc}; nothing published", err=True)
        raise typer.Exit(2) from None
    except RunError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # a full disk while copying: the files are written atomically, one by one
        typer.echo(f"error: could not write into {results} or {out} ({exc.strerror or exc}); free space and publish again", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"published {len(runs)} run(s) to {folder}; wrote {board}")


def _check_out(out: Path, results: Path, publish: List[Path], force: bool) -> None:
    """``--out`` is a file the harness may write (never a user's file without --force, never inside
    an input), and with ``--publish`` the results folder is writable: one line, exit 2, otherwise."""
    from harness.common.files import OutputError, check_output
    from harness.reporting.leaderboard import is_generated_board
    from harness.run.config_check import check_folder
    from harness.vocab.config_check import ConfigError

    try:
        check_output(out, "--out", folder=False, force=force, inputs=_input_files(results, publish),
                     replaceable=is_generated_board)
        if publish:
            check_folder(results, "--results")
    except (OutputError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _input_files(results: Path, publish: List[Path]) -> list[Path]:
    """The files a board is rendered from (the results JSON files, the ones published): never its
    --out. A board beside them in the results folder is fine: only *.json is read there."""
    found = sorted(results.glob("*.json")) if results.is_dir() else []
    return found + [p for p in publish if p.is_file()]


def _write(text: str, out: Path, results: Path, force: bool) -> None:
    from harness.common.files import OutputError, write_output_file
    from harness.reporting.leaderboard import is_generated_board

    try:
        write_output_file(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), "--out", force=force,
                          inputs=_input_files(results, []), replaceable=is_generated_board)
    except OutputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _protocol(extra: List[Path]) -> Any:
    """The shipped protocol with the ``--protocol`` files merged over it; a bad file exits 2."""
    from harness.reporting.leaderboard_protocol import ProtocolError, load_protocol

    try:
        return load_protocol(extra)
    except ProtocolError as exc:
        typer.echo(f"error: --protocol: {exc}", err=True)
        raise typer.Exit(2) from None


def _require_results(results: Path) -> None:
    """A board is rendered from results files: none is one line naming where it looked (exit 2)."""
    if not results.is_dir() or not any(results.glob("*.json")):
        # one line naming where it looked: an empty board would say nothing of where the runs are
        where = "no such folder" if not results.is_dir() else "no *.json file in it"
        typer.echo(f"error: no results in {results} ({where}); `harness run` writes them to runs/results "
                   "(harness leaderboard --results runs/results --out runs/LEADERBOARD.md), the shipped ones are in "
                   "leaderboards/results of the project folder: pass --results DIR", err=True)
        raise typer.Exit(2)


def _load_runs(results: Path) -> list:
    """The results files of ``results``; one that breaks the schema (an impossible metric, a value
    outside its CI, truncated JSON) is refused in one line naming the file and the field: a board
    never renders it, and never silently drops it either."""
    from harness.reporting.results import ResultsError, load_results

    try:
        return load_results(results, strict=True)
    except (FileNotFoundError, ResultsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _check(text: str, results: Path, out: Path, n_runs: int) -> None:
    """Exit 1 when ``out`` is not exactly ``text`` (CI: the shipped board is stale)."""
    current = out.read_text(encoding="utf-8") if out.is_file() else None
    if current != text:
        typer.echo(f"{out} is out of date; run `harness leaderboard --results {results} --out {out}`", err=True)
        raise typer.Exit(1)
    typer.echo(f"{out} is up to date ({n_runs} run(s))")
