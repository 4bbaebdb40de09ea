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


def threshold_of(meta: dict[str, Any], fallback: float = FALLBACK) -> tuple[float, str]:
    """(threshold, where it came from) of a model's verdicts, the same in `harness predict` and in the
    accuracy of results.json: the checkpoint's calibrated value, else ``fallback`` (0.5) and why."""
    record = meta.get("threshold")
    if isinstance(record, dict) and isinstance(record.get("value"), (int, float)):
        return float(record["value"]), calibrated_source(record)
    why = record.get("reason") if isinstance(record, dict) else "the checkpoint predates calibrated thresholds"
    return float(fallback), f"default {fallback:g} (no calibrated threshold: {why})"


def calibrated_source(record: dict[str, Any]) -> str:
    """``calibrated at the EER of 8 validation images (4 real, 4 self-blended fakes)``."""
    real, fake = record.get("n_real"), record.get("n_fake")
    if record.get("rule", RULE) != RULE:
        return f"calibrated ({record.get('rule')})"
    if isinstance(real, int) and isinstance(fake, int):
        return f"calibrated at the EER of {real + fake} validation images ({real} real, {fake} self-blended fakes)"
    return "calibrated at the EER of the validation self-blends"


#: where a threshold given on the command line comes from
GIVEN = "--threshold"
