"""Publishing: a run's results and figures copied into the shipped (tracked) leaderboards/, the
one step that changes tracked files, taken only when a user asks (``--publish``).

What is published is checked first: the results file holds the schema, its run's scores files
(where present) give the numbers it records (harness.reporting.scores.check_results), and a row
already published under its id is never replaced by other numbers: one id, one set of numbers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.vocab.folder import RunFolder
from harness.run.paths import SHIPPED_LEADERBOARD, SHIPPED_RESULTS, RunError


def ship_figures(results: dict[str, Any], run_folder: Path, shipped_root: Path) -> dict[str, Any]:
    """Copy a published run's report and figures next to the shipped leaderboard
    (``<shipped_root>/figures/<run_id>/``) and point its results there, relative to the leaderboard:
    the run folder is not part of the repository, so links into it would break in every clone."""
    import shutil

    figures = results.get("figures")
    if not isinstance(figures, dict):
        return results
    source = run_folder if RunFolder(run_folder).figures.is_dir() else Path(str(figures.get("run_dir", "")))
    target = Path(RunFolder.FIGURES) / safe_run_id(  # the shipped copy keeps the folder name
        str(results.get("run_id", "run")))
    names = [n for n in [figures.get("report"), *figures.get("files", [])] if isinstance(n, str)]
    kept = []
    for name in names:
        if (source / name).is_file() and not Path(name).is_absolute() and ".." not in Path(name).parts:
            (shipped_root / target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, shipped_root / target / name)
            kept.append(name)
    shipped = {"run_dir": target.as_posix(), "relative_to": "leaderboard",
               "files": [n for n in kept if n != figures.get("report")]}
    if figures.get("report") in kept:
        shipped["report"] = figures["report"]
    return {**results, "figures": shipped}


def safe_run_id(rid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", rid).strip("-.") or "run"


def publish(sources: list[Path], results_dir: Path = SHIPPED_RESULTS, leaderboard: Path = SHIPPED_LEADERBOARD) -> tuple[Path, Path]:
    """Copy runs' results (a results JSON, or a run folder holding results.json) into the shipped
    ``leaderboards/results/`` and re-render ``leaderboards/LEADERBOARD.md``: the one step that changes
    the tracked leaderboard, taken only when a user asks (``--publish``). Every source is checked
    before anything is copied (``checked_results``); one that fails publishes nothing."""
    from harness.reporting.leaderboard import write_leaderboard
    from harness.reporting.results import write_results

    checked: list[tuple[Path, dict[str, Any]]] = []
    for source in sources:
        file, results = checked_results(Path(source), results_dir, [r for _, r in checked])
        checked.append((file, results))
    for file, results in checked:
        write_results(ship_figures(results, file.parent, Path(results_dir).parent), results_dir)
    return Path(results_dir), write_leaderboard(results_dir, leaderboard)


def checked_results(source: Path, results_dir: Path, others: list[dict[str, Any]] = ()) -> tuple[Path, dict[str, Any]]:
    """The results file of ``source`` and its content, when it may be published: it holds the schema,
    its scores files (where present) give its numbers, and no row already published under its id
    (in ``results_dir``, or among ``others`` published with it) holds other numbers. RunError, one
    line, otherwise."""
    from harness.reporting.results import ResultsError, read_results_file
    from harness.reporting.scores import ReportError, check_results

    file = RunFolder.results_of(source)
    if not file.is_file():
        raise RunError(f"{source}: no results to publish (expected a results JSON or a run folder with results.json; "
                       "finish the run first)")
    try:
        results = read_results_file(file)
        check_results(results, file, folder=file.parent)  # an edited number is not published
        _check_same_numbers(results, Path(results_dir), others)
    except (ResultsError, ReportError) as exc:
        raise RunError(f"{exc}; nothing published") from exc
    except ValueError as exc:
        raise RunError(f"{file}: not a valid results file, nothing published: {exc}") from exc
    return file, results


def _check_same_numbers(results: dict[str, Any], results_dir: Path, others: list[dict[str, Any]]) -> None:
    """One id, one set of numbers: a published row is never replaced by other numbers under its id
    (republishing the same numbers is fine)."""
    from harness.reporting.results import first_difference, files_of_run, numbers, read_results_file

    rid = str(results["run_id"])
    fix = "one id must always mean the same numbers, so it is not replaced"
    for before in [r for r in others if str(r.get("run_id")) == rid]:
        difference = first_difference(numbers(before), numbers(results))
        if difference:
            raise RunError(f"two of the files given hold run {rid} with other numbers (first difference: {difference}); "
                           f"{fix}: publish the right one alone; nothing published")
    for path in files_of_run(results_dir, rid) if results_dir.is_dir() else []:
        difference = first_difference(numbers(read_results_file(path)), numbers(results))
        if difference:
            raise RunError(f"{path} already publishes run {rid} with other numbers (first difference: {difference}); "
                           f"{fix}: if the new numbers are the right ones, delete {path} and publish again; nothing published")
