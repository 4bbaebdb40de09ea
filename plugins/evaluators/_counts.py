"""Threshold metrics computed from per-score-level class counts, and the stratified bootstrap.

Every score metric here (AUC, AP, EER, accuracy at a threshold) depends on the data only through
how many real and fake items sit at each distinct score. A bootstrap resample changes those counts
and nothing else, so one resample costs a ``bincount`` plus O(levels) work instead of a sort: that
keeps 1000 resamples of 100k+ frame scores within seconds. The point values reported are computed
with scikit-learn (see ``classification.py``); tests check these count forms agree with it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: f(pos_counts, neg_counts) -> metric, both indexed by ascending distinct score level
CountMetric = Callable[[np.ndarray, np.ndarray], float]


def check_bootstrap(name: str, n_boot: object, confidence: float) -> None:
    """Refuse bootstrap options an evaluator cannot use, naming the evaluator."""
    if not isinstance(n_boot, int) or n_boot < 0:
        raise ValueError(f"evaluator {name!r}: n_boot must be an integer >= 0 (0 = no CI), got {n_boot!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"evaluator {name!r}: confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")


def metric_dict(value: float, n: int, low: float = math.nan, high: float = math.nan, undefined: str | None = None,
                **extra: object) -> dict:
    """One metric entry of a results file; ``undefined`` says why there is no value; ``extra``: e.g.
    the class counts ``n_real``/``n_fake`` and ``no_ci`` (why there is no CI)."""
    out = {"value": value, "ci_low": low, "ci_high": high, "n": n}
    if undefined is not None:
        out["undefined"] = undefined
    out.update(extra)
    return out


def single_item_class(n_real: int, n_fake: int) -> str | None:
    """``"1 real"`` / ``"1 fake"`` when a class holds one item: a class-stratified bootstrap redraws
    that one item every time, so its interval would print false certainty; there is no CI then."""
    ones = [f"1 {name}" for name, count in (("real", n_real), ("fake", n_fake)) if count == 1]
    return " and ".join(ones) or None


def auc_from_counts(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC with ties counted half (Mann-Whitney), as ``sklearn.metrics.roc_auc_score``."""
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan
    neg_below = np.cumsum(neg) - neg
    return float(np.dot(pos, neg_below + 0.5 * neg) / (n_pos * n_neg))


def _descending_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Thresholds from the highest score down: items at or above each level are called fake.
    return np.cumsum(pos[::-1]), np.cumsum(neg[::-1])


def ap_from_counts(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision (step sum, no interpolation), as ``sklearn.metrics.average_precision_score``."""
    n_pos = pos.sum()
    if n_pos == 0 or neg.sum() == 0:
        return math.nan
    tp, fp = _descending_rates(pos, neg)
    called = tp + fp
    precision = np.divide(tp, called, out=np.zeros(len(tp)), where=called > 0)
    return float(np.dot(pos[::-1], precision) / n_pos)


def eer_from_roc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Equal error rate: where the piecewise-linear ROC crosses FPR = FNR (= 1 - TPR).

    ``fpr``/``tpr`` run from (0, 0) to (1, 1) with thresholds descending, as ``roc_curve`` returns.
    """
    diff = (1.0 - tpr) - fpr  # > 0 at the start, < 0 at the end
    k = int(np.argmax(diff <= 0))
    if k == 0:
        return float(fpr[0])
    d0, d1 = diff[k - 1], diff[k]
    t = d0 / (d0 - d1)
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def eer_from_counts(pos: np.ndarray, neg: np.ndarray) -> float:
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan
    tp, fp = _descending_rates(pos, neg)
    fpr = np.concatenate(([0.0], fp / n_neg))
    tpr = np.concatenate(([0.0], tp / n_pos))
    return eer_from_roc(fpr, tpr)


def accuracy_counter(levels: np.ndarray, threshold: float) -> CountMetric:
    """Accuracy when scores >= threshold are called fake, from counts over ``levels`` (ascending)."""
    fake_from = int(np.searchsorted(levels, threshold, side="left"))

    def accuracy(pos: np.ndarray, neg: np.ndarray) -> float:
        total = pos.sum() + neg.sum()
        if total == 0:
            return math.nan
        return float((pos[fake_from:].sum() + neg[:fake_from].sum()) / total)

    return accuracy


def level_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``levels`` (ascending distinct scores) and the level index of every fake and every real item."""
    levels, inverse = np.unique(scores, return_inverse=True)
    inverse = inverse.reshape(-1)
    return levels, inverse[labels == 1], inverse[labels == 0]


def percentile_ci(samples: np.ndarray, confidence: float, point: float | None = None) -> tuple[float, float]:
    """Percentile interval of the finite bootstrap samples (NaN, NaN if there are none), widened to
    hold ``point``: a biased statistic (AP, small n) can put its estimate outside the percentiles,
    and a results file requires ci_low <= value <= ci_high."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    low, high = (float(v) for v in np.quantile(finite, [alpha, 1.0 - alpha]))
    if point is not None and math.isfinite(point):
        low, high = min(low, point), max(high, point)
    return low, high


def stratified_bootstrap(
    metric: CountMetric,
    pos_level: np.ndarray,
    neg_level: np.ndarray,
    n_levels: int,
    rng: np.random.Generator,
    n_boot: int,
) -> np.ndarray:
    """``n_boot`` values of ``metric`` over resamples that redraw fakes among fakes and reals among
    reals (so every resample keeps both classes and the original class balance)."""
    out = np.empty(n_boot)
    empty = np.zeros(n_levels, dtype=np.int64)

    def redraw(level: np.ndarray) -> np.ndarray:
        if len(level) == 0:
            return empty
        return np.bincount(level[rng.integers(0, len(level), len(level))], minlength=n_levels)

    for b in range(n_boot):
        pos = redraw(pos_level)
        out[b] = metric(pos, redraw(neg_level))
    return out
