"""Detection metrics on frame- or video-level scores: AUC, AP, EER and accuracy at 0.5.

Each evaluator returns ``{name: Metric}`` with the scikit-learn value and a stratified bootstrap
confidence interval (fakes redrawn among fakes, reals among reals, so every resample has both
classes). Values are fractions in [0, 1]; the leaderboard prints them as percentages. A metric that
needs both classes but gets one (e.g. a real-only folder) reports ``value`` NaN and an
``undefined`` reason instead of raising: one odd subset must not sink a whole run.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from harness.api import EvalContext, Metric, ScoreSet, hookimpl

from ._counts import (
    CountMetric,
    accuracy_counter,
    ap_from_counts,
    auc_from_counts,
    check_bootstrap,
    eer_from_counts,
    eer_from_roc,
    level_counts,
    metric_dict,
    percentile_ci,
    single_item_class,
    stratified_bootstrap,
)



def _skm() -> Any:
    """scikit-learn's metrics, imported on first use (1 s of imports `harness plugins` does not need)."""
    from sklearn import metrics

    return metrics

def _sk_eer(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = _skm().roc_curve(labels, scores)
    return eer_from_roc(fpr, tpr)


def check_scores(data: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    """The (labels, scores) of a ScoreSet as arrays, or a ValueError that says what is wrong."""
    if not hasattr(data, "labels") or not hasattr(data, "scores"):
        raise TypeError(f"evaluator {who!r} needs a harness.extend.types.ScoreSet, got {type(data).__name__}")
    labels = np.asarray(data.labels).reshape(-1)
    scores = np.asarray(data.scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(
            f"evaluator {who!r}: {labels.size} labels but {scores.size} scores; give one score per item"
        )
    if labels.size and not np.isin(labels, (0, 1)).all():
        bad = sorted(set(np.unique(labels).tolist()) - {0, 1})[:5]
        raise ValueError(f"evaluator {who!r}: labels must be 0 (real) or 1 (fake), found {bad}")
    if not np.isfinite(scores).all():
        raise ValueError(
            f"evaluator {who!r}: {int((~np.isfinite(scores)).sum())} scores are NaN/inf; items without a "
            "score (no face, decode failure) must be counted and left out of the ScoreSet, not scored"
        )
    return labels.astype(np.int64), scores


class ScoreEvaluator:
    """One threshold metric with a bootstrap CI. ``needs_both``: undefined on one-class input."""

    needs = "scores"

    def __init__(
        self,
        name: str,
        point: Callable[[np.ndarray, np.ndarray], float],
        counter: Callable[[np.ndarray], CountMetric],
        *,
        needs_both: bool = True,
        n_boot: int = 1000,
        confidence: float = 0.95,
    ) -> None:
        check_bootstrap(name, n_boot, confidence)
        self.name = name
        self._point = point
        self._counter = counter
        self.needs_both = needs_both
        self.n_boot = n_boot
        self.confidence = confidence

    def __repr__(self) -> str:
        return f"ScoreEvaluator({self.name!r}, n_boot={self.n_boot}, confidence={self.confidence})"

    def __call__(self, data: ScoreSet, rng: np.random.Generator) -> dict[str, Metric]:
        labels, scores = check_scores(data, self.name)
        n = int(labels.size)
        n_fake = int(labels.sum())
        n_real = n - n_fake
        reason = None
        if n == 0:
            reason = "no items to score"
        elif self.needs_both and (n_fake == 0 or n_real == 0):
            reason = f"needs both real and fake items; got {n_real} real and {n_fake} fake"
        counts = {"n_real": n_real, "n_fake": n_fake}
        if reason is not None:
            return {self.name: metric_dict(math.nan, n, undefined=reason, **counts)}  # type: ignore[dict-item]
        value = float(self._point(labels, scores))
        low = high = math.nan
        single = single_item_class(n_real, n_fake)
        if single:
            counts["no_ci"] = f"{single} item: a bootstrap redraws it every time, so no interval is given"
        elif self.n_boot:
            levels, pos_level, neg_level = level_counts(scores, labels)
            samples = stratified_bootstrap(
                self._counter(levels), pos_level, neg_level, len(levels), rng, self.n_boot
            )
            low, high = percentile_ci(samples, self.confidence, value)
        return {self.name: metric_dict(value, n, low, high, **counts)}  # type: ignore[dict-item]


def _fixed(metric: CountMetric) -> Callable[[np.ndarray], CountMetric]:
    return lambda levels: metric


def auc(n_boot: int = 1000, confidence: float = 0.95) -> ScoreEvaluator:
    """ROC AUC (ties count half)."""
    return ScoreEvaluator("auc", _skm().roc_auc_score, _fixed(auc_from_counts), n_boot=n_boot, confidence=confidence)


def ap(n_boot: int = 1000, confidence: float = 0.95) -> ScoreEvaluator:
    """Average precision with fake as the positive class."""
    return ScoreEvaluator(
        "ap", _skm().average_precision_score, _fixed(ap_from_counts), n_boot=n_boot, confidence=confidence
    )


def eer(n_boot: int = 1000, confidence: float = 0.95) -> ScoreEvaluator:
    """Equal error rate on the linearly interpolated ROC (lower is better)."""
    return ScoreEvaluator("eer", _sk_eer, _fixed(eer_from_counts), n_boot=n_boot, confidence=confidence)


def accuracy(n_boot: int = 1000, confidence: float = 0.95, threshold: float = 0.5) -> ScoreEvaluator:
    """Accuracy when score >= threshold means fake. Defined on one-class input too."""

    def point(labels: np.ndarray, scores: np.ndarray) -> float:
        return _skm().accuracy_score(labels, (scores >= threshold).astype(np.int64))

    return ScoreEvaluator(
        "accuracy",
        point,
        lambda levels: accuracy_counter(levels, threshold),
        needs_both=False,
        n_boot=n_boot,
        confidence=confidence,
    )


def _from_context(make: Callable[..., ScoreEvaluator], **fields: str) -> Callable[..., ScoreEvaluator]:
    """The registered factory: ``factory(context)`` reads the run's bootstrap size (and threshold)."""

    def factory(context: EvalContext | None = None, **options: Any) -> ScoreEvaluator:
        context = context or EvalContext()
        return make(**{"n_boot": context.n_boot, **{arg: getattr(context, f) for arg, f in fields.items()}, **options})

    factory.__doc__ = make.__doc__
    return factory


@hookimpl
def register_evaluators(register: Callable[..., None]) -> None:
    register("auc", _from_context(auc), "ROC AUC of fake-vs-real scores with a stratified bootstrap 95% CI")
    register("ap", _from_context(ap), "average precision (fake = positive) with a stratified bootstrap 95% CI")
    register("eer", _from_context(eer), "equal error rate (lower is better) with a stratified bootstrap 95% CI")
    register("accuracy", _from_context(accuracy, threshold="threshold"),
             "accuracy at score >= the model's calibrated threshold (else 0.5) = fake, with a stratified bootstrap 95% CI")
