"""DeLong's test and the paired bootstrap (harness/evaluation/paired.py) against references."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from harness.evaluation.paired import _placements, delong_test, paired_bootstrap


def auc_variance(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """AUC and its DeLong variance for one detector (from the placements delong_test uses)."""
    auc, v10, v01 = _placements(np.asarray(labels).astype(int), np.asarray(scores, np.float64))
    return auc, float(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01))


def pair(seed: int, n: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1] * n)
    a = rng.normal(size=2 * n) + labels
    b = 0.6 * a + 0.8 * rng.normal(size=2 * n) + 0.8 * labels
    return labels, a, b


def literal_delong(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) as printed: psi over every (fake, real) pair, O(m n)."""
    comps = []
    for s in (a, b):
        x, y = s[labels == 1], s[labels == 0]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        comps.append((psi.mean(), psi.mean(1), psi.mean(0)))
    m, n = len(comps[0][1]), len(comps[0][2])
    s10 = np.cov(np.vstack([comps[0][1], comps[1][1]]))
    s01 = np.cov(np.vstack([comps[0][2], comps[1][2]]))
    cov = s10 / m + s01 / n
    return comps[1][0] - comps[0][0], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


def test_fast_delong_matches_the_printed_definition_with_ties():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 301)
    a = np.round(rng.normal(size=301) + labels, 1)  # rounded: many ties, counted half
    b = np.round(0.5 * a + rng.normal(size=301) + 0.5 * labels, 1)
    test = delong_test(labels, a, b)
    delta, variance = literal_delong(labels, a, b)
    assert abs(test.delta - delta) < 1e-12 and abs(test.variance - variance) < 1e-12
    assert abs(test.auc_a - roc_auc_score(labels, a)) < 1e-12 and abs(test.auc_b - roc_auc_score(labels, b)) < 1e-12


def test_hanley_mcneil_ct_ratings_give_the_published_auc():
    # Hanley & McNeil (Radiology 1982), Table 1: 5-point ratings of 58 normal and 51 abnormal CT images; AUC 0.893.
    normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    labels = np.r_[np.zeros(58, int), np.ones(51, int)]
    auc, variance = auc_variance(labels, np.r_[normal, abnormal].astype(float))
    assert round(auc, 3) == 0.893
    assert 0.02 < np.sqrt(variance) < 0.04  # Hanley-McNeil's approximation printed SE 0.032


def test_identical_scores_give_zero_difference_and_p_one():
    labels, a, _ = pair(0)
    test = delong_test(labels, a, a)
    assert test.delta == 0 and test.z == 0 and test.p == 1.0
    assert paired_bootstrap(labels, a, a, np.random.default_rng(0), 200) == (0.0, 0.0)


def test_delong_p_is_close_to_an_exact_paired_permutation_test_on_small_samples():
    """All 2^16 swaps of the two detectors' scores per item: the exact null of equal detectors."""
    flips = np.array(list(itertools.product([False, True], repeat=16)))
    for seed in range(4):
        labels, a, b = pair(seed)
        m, n = int(labels.sum()), int((labels == 0).sum())

        def auc_rows(s: np.ndarray) -> np.ndarray:
            return (rankdata(s, axis=1)[:, labels == 1].sum(1) - m * (m + 1) / 2) / (m * n)

        deltas = auc_rows(np.where(flips, a, b)) - auc_rows(np.where(flips, b, a))
        test = delong_test(labels, a, b)
        exact = float((np.abs(deltas) >= abs(test.delta) - 1e-12).mean())
        assert abs(test.p - exact) < 0.1, (seed, test.p, exact)


def test_a_real_difference_is_significant_and_its_interval_excludes_zero():
    rng = np.random.default_rng(1)
    labels = np.array([0, 1] * 150)
    weak = rng.normal(size=300) + 0.3 * labels
    strong = weak + 1.5 * labels + 0.3 * rng.normal(size=300)
    test = delong_test(labels, weak, strong)
    low, high = paired_bootstrap(labels, weak, strong, np.random.default_rng(0), 500)
    assert test.delta > 0 and test.p < 1e-6 and 0 < low < test.delta < high
    assert paired_bootstrap(labels, weak, strong, np.random.default_rng(0), 500) == (low, high)  # seeded
