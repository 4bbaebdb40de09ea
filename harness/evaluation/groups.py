"""Metrics per group of one test set: ``all`` and each fake method (or source) against its reals.

The seeding of each metric's bootstrap over the views of the protocol's grouping (the FF++
per-method rule: harness.extend.views); the results file (harness/reporting/results.py) only stores what comes out.
"""

from __future__ import annotations

import zlib
from typing import Any, Iterable

import numpy as np

from harness.extend.types import ALL, MaskSet, Metric, ScoreSet
from harness.extend.views import score_views


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
