"""Which leaderboard rows are not significantly different from a column's best (DeLong, p >= 0.05).

Needs each run's per-video scores (``<run folder>/scores/<dataset>.csv``, found through the results'
``figures.run_dir``); a row without them, and every paper's reported row, cannot be tested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

ALPHA = 0.05
BEST, TIED, UNTESTABLE = "best", "tied", "untestable"


def scores_file(run: Mapping[str, Any], dataset: str, link_from: Path | None) -> Path | None:
    """The run's scores CSV for ``dataset``, where its run folder is reachable."""
    from harness.reporting.scores import scores_file_of

    return scores_file_of(run, dataset, link_from=link_from)


def _view(path: Path, group: str) -> dict[str, tuple[int, float]]:
    """uid -> (label, score) of the group's view, as the results tables hold it (``view_masks``)."""
    from harness.extend.views import view_masks
    from harness.reporting.scores import read_scores

    s = read_scores(path)
    keep = view_masks(s.labels, s.groups).get(group, np.zeros(len(s.uids), bool))
    return {s.uids[i]: (int(s.labels[i]), float(s.scores[i])) for i in np.flatnonzero(keep)}


def column_marks(runs: list[Mapping[str, Any]], values: list[float | None], dataset: str, group: str,
                 link_from: Path | None) -> list[str | None]:
    """Per run: BEST (highest value), TIED (DeLong p >= ALPHA against the best on the videos both
    scored), UNTESTABLE (no per-video scores, here or for the best), or None (significantly worse)."""
    from harness.evaluation.paired import delong_test

    scored = [i for i, v in enumerate(values) if v is not None]
    if not scored:
        return [None] * len(runs)
    best = max(scored, key=lambda i: values[i])
    marks: list[str | None] = [None] * len(runs)
    marks[best] = BEST
    best_file = scores_file(runs[best], dataset, link_from)
    best_view = _view(best_file, group) if best_file else None
    for i in scored:
        if i == best:
            continue
        path = scores_file(runs[i], dataset, link_from)
        if best_view is None or path is None:
            marks[i] = UNTESTABLE
            continue
        view = _view(path, group)
        shared = sorted(set(view) & set(best_view))
        labels = np.array([best_view[u][0] for u in shared])
        try:
            test = delong_test(labels, np.array([best_view[u][1] for u in shared]), np.array([view[u][1] for u in shared]))
        except ValueError:
            marks[i] = UNTESTABLE
            continue
        marks[i] = TIED if test.p >= ALPHA else None
    return marks
