"""The decision threshold a checkpoint carries: calibrated on its validation self-blends.

A model's scores rarely centre on 0.5 (after a short run they cluster around it), so a fixed 0.5
verdict means little. The threshold where the validation self-blends' false-positive rate equals
their false-negative rate (the EER point) is recorded in model.json; `harness predict` uses it
unless ``--threshold`` is given. Without a validation split there is nothing to calibrate on:
the record says so and predict falls back to 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: predict's threshold when the checkpoint has no calibrated one
FALLBACK = 0.5
RULE = "EER on the validation self-blends"


def eer_threshold(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """``{"value", "rule", "eer", "n_real", "n_fake"}``: the score threshold (fake when score >= it)
    at which the validation FPR and FNR are closest; ``value`` None (and ``reason``) with one class."""
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels).reshape(-1).astype(int)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_fake = int(labels.sum())
    n_real = int(labels.size - n_fake)
    if n_real == 0 or n_fake == 0:
        return none(f"the validation set has {n_real} real and {n_fake} fake images")
    fpr, tpr, thresholds = roc_curve(labels, scores)
    gap = np.abs((1.0 - tpr) - fpr)
    k = int(np.argmin(gap[1:])) + 1  # thresholds[0] is +inf: nothing called fake
    return {"value": float(np.clip(thresholds[k], 0.0, 1.0)), "rule": RULE,
            "eer": float((fpr[k] + 1.0 - tpr[k]) / 2.0), "n_real": n_real, "n_fake": n_fake}


def none(reason: str) -> dict[str, Any]:
    """The record of a checkpoint without a calibrated threshold, and why."""
    return {"value": None, "rule": RULE, "reason": reason}


def threshold_of(meta: dict[str, Any]) -> tuple[float, str]:
    """(threshold, where it came from) for predict: the checkpoint's calibrated value, else 0.5 and why."""
    record = meta.get("threshold")
    if isinstance(record, dict) and isinstance(record.get("value"), (int, float)):
        return float(record["value"]), f"calibrated threshold {record['value']:.3f} ({record.get('rule', RULE)})"
    why = record.get("reason") if isinstance(record, dict) else "the checkpoint predates calibrated thresholds"
    return FALLBACK, f"no calibrated threshold ({why}): using {FALLBACK}"
