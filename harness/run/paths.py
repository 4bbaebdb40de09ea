"""Where `harness run` writes: the runs folder, this clone's results and board, and the shipped
(tracked) ones a publish copies to; and the error a run stops with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.common.errors import HarnessError


class RunError(HarnessError, RuntimeError):
    """A run cannot start or continue; the message says why and what to do."""


#: where `harness run` writes by default (git-ignored) and where publishing copies to (tracked)
RUNS_DIR = Path("runs")


LOCAL_RESULTS = RUNS_DIR / "results"


LOCAL_LEADERBOARD = RUNS_DIR / "LEADERBOARD.md"


SHIPPED_RESULTS = Path("leaderboards/results")


SHIPPED_LEADERBOARD = Path("leaderboards/LEADERBOARD.md")


@dataclass
class RunPaths:
    runs_dir: Path = RUNS_DIR
    results_dir: Path = LOCAL_RESULTS
    leaderboard: Path = LOCAL_LEADERBOARD
    publish: bool = False  # also copy the results into the shipped leaderboard (publish)
    cache_dir: Path | None = None  # the cache home (face caches below it); None: harness.common.files.cache_home()
