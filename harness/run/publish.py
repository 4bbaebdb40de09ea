"""Publishing: a run's results and figures copied into the shipped (tracked) leaderboards/, the
one step that changes tracked files, taken only when a user asks (``--publish``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.run.folder import RunFolder
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
    the tracked leaderboard, taken only when a user asks (``--publish``)."""
    from harness.reporting.leaderboard import write_leaderboard
    from harness.reporting.results import ResultsError, read_results_file, write_results

    for source in sources:
        source = Path(source)
        file = RunFolder.results_of(source)
        if not file.is_file():
            raise RunError(f"{source}: no results to publish (expected a results JSON or a run folder with results.json; "
                           "finish the run first)")
        try:
            data = ship_figures(read_results_file(file), file.parent, Path(results_dir).parent)
            write_results(data, results_dir)
        except (ValueError, ResultsError) as exc:
            raise RunError(f"{exc}; nothing published" if isinstance(exc, ResultsError) else
                           f"{file}: not a valid results file, nothing published: {exc}") from exc
    return Path(results_dir), write_leaderboard(results_dir, leaderboard)
