"""The one writer of a run folder, for `harness run` and `harness evaluate` alike: figures, the results
JSON (runs/results and the run folder), the leaderboard, the report, the terminal summary, and
publishing when asked; and a finished one read back and shown again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.common.ui import console, heading, say
from harness.data.demo import NOT_A_BENCHMARK
from harness.run.paths import SHIPPED_RESULTS, RunError, RunPaths
from harness.run.publish import publish
from harness.run.summary import print_outcome
from harness.vocab.config import RunConfig
from harness.vocab.folder import RunFolder


def finished_results(path: Path) -> dict[str, Any]:
    """A finished run's results.json; a damaged one is a RunError line (delete it, or --no-resume)."""
    from harness.reporting.results import ResultsError, read_results_file

    try:
        return read_results_file(path)
    except ResultsError as exc:
        raise RunError(f"{exc}, or pass --no-resume to redo the run") from None


def show_finished(results: dict[str, Any], run_dir: Path, paths: RunPaths) -> None:
    """A finished run or evaluation asked again: its table and files, as at its end."""
    report, board = RunFolder(run_dir).report, Path(paths.leaderboard)
    print_outcome(results, run_dir, RunFolder(run_dir).results, board if board.is_file() else None,
                  report if report.is_file() else None, hint=publish_hint(paths))


def publish_hint(paths: RunPaths) -> bool:
    """Whether the end of a run prints the command that publishes it (not when it was, or its results are the shipped ones)."""
    return not paths.publish and Path(paths.results_dir) != SHIPPED_RESULTS


def write_outputs(config: RunConfig, results: dict[str, Any], run_dir: Path, paths: RunPaths) -> None:
    """Figures, results JSON (runs/results and the run folder), leaderboard, report; publish if asked."""
    from harness.common import faults
    from harness.common.files import atomic_write_text
    from harness.reporting.leaderboard import write_leaderboard
    from harness.reporting.results import write_results

    heading("4/4 results")
    figures = draw_figures(run_dir, results)
    if figures:
        results["figures"] = figures
    path = write_results(results, paths.results_dir)
    faults.point("run.results_written")
    atomic_write_text(RunFolder(run_dir).results, path.read_text(encoding="utf-8"))  # the run folder keeps the same bytes
    board = write_leaderboard(paths.results_dir, paths.leaderboard)
    report = None
    if figures:
        from harness.reporting.report import write_report

        report = write_report(run_dir, redraw=False)
    print_outcome(results, run_dir, path, board, report, hint=publish_hint(paths))
    if paths.publish:
        shipped, shipped_board = publish([path])
        say(f"published to {shipped} and {shipped_board}")
    if config.demo:
        console.print(f"[yellow]{NOT_A_BENCHMARK}[/yellow]")
    from harness.reporting.notes import predict_hint

    hint = predict_hint(run_dir)
    if hint:  # from the numbers to one file: the verdict, and with --out where the face was altered
        console.print(hint, markup=False, soft_wrap=True)


def draw_figures(run_dir: Path, results: dict[str, Any]) -> dict[str, Any] | None:
    """Draw the run's figures (harness/reporting/plots.py) from its folder; ``{"run_dir", "report", "files"}``
    for results.json (the leaderboard links them), None when drawing failed: a figure never fails a run."""
    from rich.markup import escape

    from harness.reporting.plots import draw_run, figure_index

    try:
        draw_run(run_dir, results)
    except Exception as exc:  # noqa: BLE001 - the numbers are already computed; say why, keep them
        console.print(f"[yellow]warning:[/yellow] figures not drawn ({type(exc).__name__}: {escape(str(exc))}); "
                      f"retry with `harness report {run_dir}`")
        return None
    files = [f for group in figure_index(run_dir).values() for f in group]
    return {"run_dir": run_dir.as_posix(), "report": RunFolder.REPORT, "files": files}
