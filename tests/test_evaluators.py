"""Score evaluators (auc, ap, eer, accuracy): sklearn-equal values, stratified bootstrap CIs,
clear errors, undefined (not crashing) on one-class input, and registration as plugins."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from harness.extend.types import ScoreSet
from harness_plugins.evaluators import _counts
from harness_plugins.evaluators.classification import accuracy, ap, auc, eer

FACTORIES = {"auc": auc, "ap": ap, "eer": eer, "accuracy": accuracy}


def scores(n_real: int, n_fake: int, seed: int = 0, separation: float = 1.0, decimals: int | None = 2) -> ScoreSet:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    values = 1 / (1 + np.exp(-rng.normal(labels * separation - separation / 2, 1.0)))
    if decimals is not None:
        values = np.round(values, decimals)  # ties, as real model outputs have
    ids = [f"ffpp/x/c23/{i:03d}" for i in range(labels.size)]
    return ScoreSet("video", ids, labels, values, ["original"] * n_real + ["Deepfakes"] * n_fake)


def sk_eer(labels: np.ndarray, values: np.ndarray) -> float:
    """EER straight from sklearn's ROC, by brute-force search on the interpolated curve."""
    fpr, tpr, _ = skm.roc_curve(labels, values)
    grid = np.linspace(0, 1, 200001)
    fnr = 1 - np.interp(grid, fpr, tpr)
    return float(grid[np.argmin(np.abs(fnr - grid))])


SKLEARN = {
    "auc": skm.roc_auc_score,
    "ap": skm.average_precision_score,
    "eer": sk_eer,
    "accuracy": lambda y, s: skm.accuracy_score(y, s >= 0.5),
}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_count_forms_equal_sklearn_with_ties(seed: int) -> None:
    data = scores(37, 23, seed=seed, decimals=1)  # heavy ties
    levels, pos_level, neg_level = _counts.level_counts(data.scores, data.labels)
    pos = np.bincount(pos_level, minlength=len(levels))
    neg = np.bincount(neg_level, minlength=len(levels))
    assert _counts.auc_from_counts(pos, neg) == pytest.approx(skm.roc_auc_score(data.labels, data.scores), abs=1e-12)
    assert _counts.ap_from_counts(pos, neg) == pytest.approx(
        skm.average_precision_score(data.labels, data.scores), abs=1e-12
    )
    assert _counts.eer_from_counts(pos, neg) == pytest.approx(sk_eer(data.labels, data.scores), abs=2e-5)
    assert _counts.accuracy_counter(levels, 0.5)(pos, neg) == pytest.approx(
        skm.accuracy_score(data.labels, data.scores >= 0.5), abs=1e-12
    )


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_value_equals_sklearn_and_ci_brackets_it(name: str) -> None:
    data = scores(120, 80, seed=5)
    result = FACTORIES[name](n_boot=300)(data, np.random.default_rng(0))
    assert set(result) == {name}
    metric = result[name]
    expected = SKLEARN[name](data.labels, data.scores)
    assert metric["value"] == pytest.approx(expected, abs=2e-5)
    assert metric["n"] == 200
    assert metric["ci_low"] < metric["value"] < metric["ci_high"]
    assert 0.0 <= metric["ci_low"] and metric["ci_high"] <= 1.0
    assert "undefined" not in metric


def test_eer_of_known_cases() -> None:
    perfect = ScoreSet("video", list("abcd"), np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), ["g"] * 4)
    inverted = ScoreSet("video", list("abcd"), np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.8, 0.9]), ["g"] * 4)
    assert eer(n_boot=0)(perfect, np.random.default_rng(0))["eer"]["value"] == pytest.approx(0.0)
    assert eer(n_boot=0)(inverted, np.random.default_rng(0))["eer"]["value"] == pytest.approx(1.0)


def test_bootstrap_is_deterministic_per_rng_and_varies_across_seeds() -> None:
    data = scores(60, 40, seed=1)
    first = auc(n_boot=200)(data, np.random.default_rng(7))
    again = auc(n_boot=200)(data, np.random.default_rng(7))
    other = auc(n_boot=200)(data, np.random.default_rng(8))
    assert first == again
    assert (first["auc"]["ci_low"], first["auc"]["ci_high"]) != (other["auc"]["ci_low"], other["auc"]["ci_high"])


def test_bootstrap_is_stratified() -> None:
    seen = []

    def record(pos: np.ndarray, neg: np.ndarray) -> float:
        seen.append((int(pos.sum()), int(neg.sum())))
        return 0.0

    levels, pos_level, neg_level = _counts.level_counts(np.linspace(0, 1, 13), np.array([1] * 3 + [0] * 10))
    _counts.stratified_bootstrap(record, pos_level, neg_level, len(levels), np.random.default_rng(0), 50)
    assert seen == [(3, 10)] * 50  # every resample keeps both classes at their original counts


def test_ci_width_matches_the_analytic_auc_standard_error() -> None:
    # Hanley & McNeil (1982): the bootstrap CI should be about 2 x 1.96 x SE wide.
    data = scores(400, 400, seed=3, separation=1.5, decimals=None)
    metric = auc(n_boot=1000)(data, np.random.default_rng(0))["auc"]
    a, n1, n2 = metric["value"], 400, 400
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
    width = metric["ci_high"] - metric["ci_low"]
    assert 0.8 * 2 * 1.96 * se < width < 1.2 * 2 * 1.96 * se


@pytest.mark.parametrize("name", ["auc", "ap", "eer"])
def test_one_class_input_is_undefined_not_a_crash(name: str) -> None:
    data = scores(0, 10, seed=0)
    metric = FACTORIES[name]()(data, np.random.default_rng(0))[name]
    assert math.isnan(metric["value"]) and math.isnan(metric["ci_low"]) and math.isnan(metric["ci_high"])
    assert metric["n"] == 10
    assert "0 real and 10 fake" in metric["undefined"]


def test_accuracy_is_defined_on_one_class_input() -> None:
    data = ScoreSet("video", list("abcd"), np.ones(4, int), np.array([0.2, 0.6, 0.7, 0.9]), ["g"] * 4)
    metric = accuracy(n_boot=100)(data, np.random.default_rng(0))["accuracy"]
    assert metric["value"] == pytest.approx(0.75)
    assert "undefined" not in metric
    assert 0.0 <= metric["ci_low"] <= metric["ci_high"] <= 1.0


def test_accuracy_threshold_option() -> None:
    data = ScoreSet("video", list("abcd"), np.array([0, 0, 1, 1]), np.array([0.3, 0.45, 0.5, 0.8]), ["g"] * 4)
    assert accuracy(n_boot=0)(data, np.random.default_rng(0))["accuracy"]["value"] == 1.0  # 0.5 counts as fake
    assert accuracy(n_boot=0, threshold=0.4)(data, np.random.default_rng(0))["accuracy"]["value"] == 0.75


def test_empty_input_is_undefined() -> None:
    empty = ScoreSet("video", [], np.zeros(0, int), np.zeros(0), [])
    metric = auc()(empty, np.random.default_rng(0))["auc"]
    assert metric["n"] == 0 and math.isnan(metric["value"]) and metric["undefined"] == "no items to score"


def test_n_boot_zero_gives_no_ci() -> None:
    metric = auc(n_boot=0)(scores(20, 20), np.random.default_rng(0))["auc"]
    assert not math.isnan(metric["value"]) and math.isnan(metric["ci_low"]) and math.isnan(metric["ci_high"])


def test_bad_input_gets_a_clear_error() -> None:
    data = scores(5, 5)
    with_nan = ScoreSet("video", data.ids, data.labels, np.where(np.arange(10) == 3, np.nan, data.scores), data.groups)
    with pytest.raises(ValueError, match="1 scores are NaN.*no face"):
        auc()(with_nan, np.random.default_rng(0))
    short = ScoreSet("video", data.ids, data.labels, data.scores[:-1], data.groups)
    with pytest.raises(ValueError, match="10 labels but 9 scores"):
        auc()(short, np.random.default_rng(0))
    bad_labels = ScoreSet("video", data.ids, data.labels * 2, data.scores, data.groups)
    with pytest.raises(ValueError, match=r"labels must be 0 \(real\) or 1 \(fake\), found \[2\]"):
        ap()(bad_labels, np.random.default_rng(0))
    with pytest.raises(TypeError, match="needs a harness.extend.types.ScoreSet"):
        eer()([0.1, 0.2], np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_boot"):
        auc(n_boot=-1)
    with pytest.raises(ValueError, match="confidence"):
        auc(confidence=95)


def test_registered_as_plugins(only_plugins) -> None:
    import harness

    registry = only_plugins("classification,localization")
    names = {entry.name: entry for entry in harness.plugins("evaluator")}
    assert set(names) == {"auc", "ap", "eer", "accuracy", "localization"}
    assert names["auc"].package == "deepfake-harness"
    evaluator = harness.plugin("evaluator", "auc", n_boot=10)
    assert evaluator.name == "auc" and evaluator.needs == "scores"
    assert harness.plugin("evaluator", "localization").needs == "masks"
    with pytest.raises(registry.UnknownPluginError, match="did you mean 'accuracy'"):
        harness.plugin("evaluator", "acuracy")
