"""Paired comparison of two detectors scored on the same videos: DeLong's test and a paired bootstrap.

DeLong, DeLong and Clarke-Pearson (Biometrics 44, 1988) estimate the covariance of correlated ROC
AUCs from each item's placement values (the structural components V10 of the fakes and V01 of the
reals). They are computed here in O(n log n) from midranks, the way Sun and Xu (IEEE Signal
Processing Letters 21, 2014) showed: with X the fake scores (m of them), Y the real ones (n),
``V10_i = (rank of X_i among all - rank among X) / n`` and ``V01_j = 1 - (rank of Y_j among all -
rank among Y) / m``, ties counted half. The test statistic is ``z = (AUC_b - AUC_a) / sqrt(var)``
with ``var = S10[a,a]/m + S01[a,a]/n + (same for b) - 2 (S10[a,b]/m + S01[a,b]/n)`` and the
two-sided p from the normal. A pair with no difference and no variance (identical scores) gets
z = 0 and p = 1, as pROC reports it.

The bootstrap redraws fakes among fakes and reals among reals (stratified, as the results' CIs) and
uses the SAME draw for both detectors (paired), so the interval of the AUC difference reflects
that the two were scored on the same videos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class DeLong:
    auc_a: float
    auc_b: float
    delta: float  # auc_b - auc_a
    variance: float  # of delta
    z: float
    p: float


def _placements(labels: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and the structural components (V10 over fakes, V01 over reals) of one detector."""
    x, y = scores[labels == 1], scores[labels == 0]
    m, n = len(x), len(y)
    rank_all = rankdata(np.concatenate([x, y]))  # midranks: ties count half
    v10 = (rank_all[:m] - rankdata(x)) / n
    v01 = 1.0 - (rank_all[m:] - rankdata(y)) / m
    return float(v10.mean()), v10, v01


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DeLong:
    """DeLong's test for the AUCs of two detectors on the same items (labels 1 = fake)."""
    labels = np.asarray(labels).astype(int)
    m, n = int((labels == 1).sum()), int((labels == 0).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's test needs at least two fakes and two reals; got {m} fakes and {n} reals")
    auc_a, v10_a, v01_a = _placements(labels, np.asarray(scores_a, np.float64))
    auc_b, v10_b, v01_b = _placements(labels, np.asarray(scores_b, np.float64))
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    cov = s10 / m + s01 / n
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    delta = auc_b - auc_a
    if variance <= 1e-300:
        z = 0.0 if abs(delta) < 1e-15 else math.copysign(math.inf, delta)
    else:
        z = delta / math.sqrt(variance)
    p = math.erfc(abs(z) / math.sqrt(2.0))
    return DeLong(auc_a, auc_b, delta, max(variance, 0.0), z, p)


def _auc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUC of each row of (draws x m) fake and (draws x n) real scores, midranks for ties."""
    m, n = pos.shape[1], neg.shape[1]
    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    return (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)


def paired_bootstrap(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, rng: np.random.Generator,
                     n_boot: int = 1000, confidence: float = 0.95, chunk: int = 200) -> tuple[float, float]:
    """Percentile interval of AUC_b - AUC_a over stratified resamples shared by both detectors."""
    labels = np.asarray(labels).astype(int)
    a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    fakes, reals = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    deltas = []
    for start in range(0, n_boot, chunk):  # bounded memory on DFDC's 5,000 videos
        k = min(chunk, n_boot - start)
        fi = fakes[rng.integers(0, len(fakes), (k, len(fakes)))]
        ri = reals[rng.integers(0, len(reals), (k, len(reals)))]
        deltas.append(_auc_rows(b[fi], b[ri]) - _auc_rows(a[fi], a[ri]))
    d = np.concatenate(deltas)
    tail = 100 * (1 - confidence) / 2
    return float(np.percentile(d, tail)), float(np.percentile(d, 100 - tail))
