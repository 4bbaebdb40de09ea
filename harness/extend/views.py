"""The views of one test set's scores: ``all`` and each fake method (or source) against its reals.

The evaluation protocol's grouping (the FF++ per-method rule), read from the ScoreSet contract it
sits beside, for the results tables, the paired comparison and the leaderboard's significance marks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.extend.types import ALL, ScoreSet


def _subset(data: ScoreSet, keep: np.ndarray) -> ScoreSet:
    index = np.flatnonzero(keep)
    return ScoreSet(
        level=data.level,
        ids=[data.ids[i] for i in index],
        labels=np.asarray(data.labels)[index],
        scores=np.asarray(data.scores)[index],
        groups=[data.groups[i] for i in index],
    )


def view_masks(labels: Any, groups: Any) -> dict[str, np.ndarray]:
    """Which items each view holds, as boolean masks: ``all`` plus one view for every group holding
    fakes. The one definition of the views, for the results tables, the paired comparison and the
    leaderboard's significance marks alike.

    A group holding fakes only is a manipulation method: its fakes with ALL the real items (the FF++
    per-method protocol: DF = every real test video + the Deepfakes fakes). A group holding reals
    and fakes is a source (domain, e.g. the ``source`` column of a folder dataset's CSV): its own
    reals and fakes only, so reals from one source are never compared with fakes from another.
    """
    labels = np.asarray(labels).reshape(-1)
    groups = np.asarray(list(groups), dtype=object)
    if ALL in set(groups.tolist()):
        raise ValueError(f"group name {ALL!r} is reserved for the whole set; rename it")
    views = {ALL: np.ones(len(labels), bool)}
    real_groups = set(groups[labels == 0].tolist())
    for group in sorted(set(groups[labels == 1].tolist())):
        mine = groups == group
        views[group] = mine if group in real_groups else (labels == 0) | ((labels == 1) & mine)
    return views


def score_views(data: ScoreSet) -> dict[str, ScoreSet]:
    """``all`` plus one view for every group holding fakes (``view_masks``)."""
    labels = np.asarray(data.labels).reshape(-1)
    if not len(data.groups) == len(labels) == len(data.ids) == len(np.asarray(data.scores).reshape(-1)):
        raise ValueError(
            f"ScoreSet ({data.level}): ids, labels, scores and groups must have one entry per item "
            f"(got {len(data.ids)}, {len(labels)}, {np.asarray(data.scores).size}, {len(data.groups)})"
        )
    try:
        masks = view_masks(labels, data.groups)
    except ValueError as exc:
        raise ValueError(f"ScoreSet ({data.level}): {exc}") from None
    return {group: data if group == ALL else _subset(data, keep) for group, keep in masks.items()}
