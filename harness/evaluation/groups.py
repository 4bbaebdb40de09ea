"""Metrics per group of one test set: ``all`` and each fake method (or source) against its reals.

The evaluation protocol's grouping (the FF++ per-method rule) and the seeding of each metric's
bootstrap; the results file (harness/reporting/results.py) only stores what comes out.
"""

from __future__ import annotations

import zlib
from typing import Any, Iterable

import numpy as np

from harness.extend.types import ALL, MaskSet, Metric, ScoreSet


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


def _rng(seed: int, *key: str) -> np.random.Generator:
    # One stream per (level, group, metric): a result does not depend on which other evaluators ran.
    return np.random.default_rng([seed, zlib.crc32("/".join(key).encode())])


def evaluate_groups(
    evaluators: Iterable[Any],
    seed: int,
    *,
    video: ScoreSet | None = None,
    frame: ScoreSet | None = None,
    masks: MaskSet | None = None,
) -> dict[str, dict[str, dict[str, Metric]]]:
    """The ``groups`` part of a dataset's results: ``{group: {"video"|"frame"|"pixel": {metric: Metric}}}``.

    Score evaluators (``needs == "scores"``) run on the video and frame ScoreSets per group; mask
    evaluators (``needs == "masks"``) on the MaskSet per group. Seeds are derived per level, group
    and evaluator from ``seed`` (the run's bootstrap seed), so the numbers are reproducible.
    """
    evaluators = list(evaluators)
    out: dict[str, dict[str, dict[str, Metric]]] = {}
    for level, data in (("video", video), ("frame", frame)):
        if data is None:
            continue
        for group, view in score_views(data).items():
            metrics = out.setdefault(group, {}).setdefault(level, {})
            for ev in evaluators:
                if ev.needs == "scores":
                    metrics.update(ev(view, _rng(seed, level, group, ev.name)))
    if masks is not None:
        names = [ALL] + sorted(set(masks.groups))
        for ev in evaluators:
            if ev.needs != "masks":
                continue
            for group in names:
                keep = [i for i, g in enumerate(masks.groups) if group == ALL or g == group]
                view = MaskSet(
                    [masks.predicted[i] for i in keep],
                    [masks.truth[i] for i in keep],
                    [masks.groups[i] for i in keep],
                )
                metrics = out.setdefault(group, {}).setdefault("pixel", {})
                metrics.update(ev(view, _rng(seed, "pixel", group, ev.name)))
    return out
