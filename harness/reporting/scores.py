"""A run's per-video scores files (``scores/<dataset>.csv``: uid, path, label, group, score; files
written before the path column was added read the same, with no paths), read back
validated, and checked against the results file of the same run.

Every reader of scores files (`harness compare`, `harness report`, the leaderboard's significance
marks, `--publish`) reads them here, so a damaged file is refused in one line wherever it is read: a
uid listed twice, a label other than 0 or 1, a score that is not a finite number in [0, 1].
``check_results`` recomputes each group's video AUC from the scores and refuses a results file
that records other numbers (an edited results file, or scores of another run).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from harness.common.errors import HarnessError
from harness.extend.views import score_views
from harness.extend.types import ALL, ScoreSet
from harness.vocab.folder import RunFolder

#: how far a recorded AUC may lie from the one its scores give (the scores are written exactly, with
#: repr: the two differ only by the order of float sums)
AUC_TOLERANCE = 1e-9


class ReportError(HarnessError, ValueError):
    """A run folder file the figures cannot be drawn from; the one-line message names it and the fix."""


@dataclass
class Scores:
    """One test dataset's per-video scores, as ``scores/<dataset>.csv`` holds them."""

    uids: list[str] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    groups: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    paths: list[str] = field(default_factory=list)  # each video's media file ("" where the file predates them)

    def views(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{group: (labels, scores)}``: exactly the views the metrics use
        (``harness.extend.views.score_views``), so a curve and its table row share data and n."""
        data = ScoreSet("video", list(self.uids), self.labels, self.scores, list(self.groups))
        return {g: (np.asarray(v.labels), np.asarray(v.scores)) for g, v in score_views(data).items()}


def read_scores(path: Path) -> Scores:
    """``scores/<dataset>.csv``, validated; ReportError, one line naming the file and the first
    problem, when it is not what a run writes."""
    fix = "restore it from the run, or delete it to go without it"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        labels = np.array([int(r["label"]) for r in rows], dtype=int)
        scores = np.array([float(r["score"]) for r in rows], dtype=np.float64)
        out = Scores([str(r["uid"]) for r in rows], labels, [str(r["group"]) for r in rows], scores,
                     [str(r.get("path") or "") for r in rows])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"{path} is not a scores file the run wrote ({type(exc).__name__}: {exc}); {fix}") from None
    problem = _problem(out)
    if problem:
        raise ReportError(f"{path} {problem}; {fix}")
    return out


def _problem(scores: Scores) -> str | None:
    """The first way ``scores`` cannot be what a run wrote, or None."""
    twice = [u for u, n in Counter(scores.uids).items() if n > 1]
    if twice:
        return f"lists video {twice[0]!r} {scores.uids.count(twice[0])} times ({len(twice)} uid(s) repeated): one row per video"
    if any(not u for u in scores.uids):
        return "has a row without a uid"
    bad = [i for i, label in enumerate(scores.labels) if label not in (0, 1)]
    if bad:
        return f"gives video {scores.uids[bad[0]]!r} the label {int(scores.labels[bad[0]])} (0 real, 1 fake)"
    bad = [i for i, s in enumerate(scores.scores) if not (math.isfinite(s) and 0.0 <= s <= 1.0)]
    if bad:
        return f"gives video {scores.uids[bad[0]]!r} the score {float(scores.scores[bad[0]])!r}, not a finite number in [0, 1]"
    return None


def scores_file_of(results: Mapping[str, Any], dataset: str, folder: Path | None = None,
                   link_from: Path | None = None) -> Path | None:
    """The scores CSV of ``dataset`` for a results dict: in ``folder`` (the run folder that holds the
    results file) when there, else in the run folder its figures name (relative to ``link_from`` for a
    published copy); None where neither is reachable."""
    if folder is not None and RunFolder(folder).scores_file(dataset).is_file():
        return RunFolder(folder).scores_file(dataset)
    figures = results.get("figures")
    if not isinstance(figures, Mapping) or not figures.get("run_dir"):
        return None
    run_dir = Path(str(figures["run_dir"]))
    if figures.get("relative_to") == "leaderboard":
        run_dir = (link_from or Path(".")) / run_dir
    path = RunFolder(run_dir).scores_file(dataset)
    return path if path.is_file() else None


def check_results(results: Mapping[str, Any], source: Path | str, folder: Path | None = None,
                  link_from: Path | None = None) -> None:
    """Every dataset of ``results`` whose scores file is reachable (``scores_file_of``) must give
    the video AUC and n the results record for each group; else ReportError in one line naming both
    files and the first number that differs."""
    for dataset in sorted((results.get("datasets") or {})):
        path = scores_file_of(results, dataset, folder, link_from)
        if path is not None:
            check_against_results(read_scores(path), path, results, dataset, source)


def check_against_results(scores: Scores, path: Path, results: Mapping[str, Any], dataset: str,
                          source: Path | str = RunFolder.RESULTS) -> None:
    """ReportError when ``results`` record, for a group of ``dataset``, a video AUC (or a count of
    videos) that ``scores`` do not give."""
    recorded = ((results.get("datasets") or {}).get(dataset) or {}).get("groups") or {}
    views = scores.views()
    for group in sorted(recorded, key=lambda g: (g != ALL, g)):  # the whole set first, as the tables
        metric = ((recorded.get(group) or {}).get("video") or {}).get("auc")
        if not isinstance(metric, Mapping) or not _number(metric.get("value")):
            continue  # undefined in the results: nothing to hold the scores to
        given = _auc(views.get(group))
        if group not in views or given is None or abs(given - float(metric["value"])) > AUC_TOLERANCE \
                or (_number(metric.get("n")) and int(metric["n"]) != len(views[group][0])):
            found = ("no such group" if group not in views else
                     f"AUC {'undefined' if given is None else f'{given:.4f}'} over {len(views[group][0])} videos")
            raise ReportError(
                f"{source} records video AUC {float(metric['value']):.4f} (n {metric.get('n', '?')}) for {dataset}/{group} "
                f"but its scores file {path} gives {found}: one of the two files was changed after the run; "
                "restore both from the run (or rerun it)")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _auc(view: tuple[np.ndarray, np.ndarray] | None) -> float | None:
    """The ROC AUC of one view, None when it does not hold both classes."""
    if view is None or len(set(view[0].tolist())) != 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(view[0], view[1]))
