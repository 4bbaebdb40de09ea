"""Localization metrics of the predicted mask P_M against a dataset's forgery masks.

Returns ``pixel_auc`` (ROC AUC over every pixel of every mask), ``iou`` and ``f1`` (P_M >= 0.5
against the truth, per frame, averaged over frames), each with a bootstrap CI over frames.

Memory stays bounded whatever the number of frames: each mask is reduced on arrival to a histogram
of predicted values for truth-fake and truth-real pixels (``bins`` levels, 256 by default, which is
exact for 8-bit masks) plus its true/false positive counts. ``accumulate`` takes masks in batches
so a runner can stream them instead of building one huge MaskSet; ``__call__`` is the one-shot form.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from harness.api import EvalContext, MaskSet, Metric, hookimpl

from ._counts import auc_from_counts, check_bootstrap, metric_dict, percentile_ci


class LocalizationEvaluator:
    """Pixel AUC, IoU and F1 of predicted masks, per frame, with a bootstrap CI over frames."""

    name = "localization"
    needs = "masks"

    def __init__(
        self, n_boot: int = 1000, confidence: float = 0.95, threshold: float = 0.5, bins: int = 256
    ) -> None:
        check_bootstrap("localization", n_boot, confidence)
        if not isinstance(bins, int) or bins < 2:
            raise ValueError(f"evaluator 'localization': bins must be an integer >= 2, got {bins!r}")
        self.n_boot = n_boot
        self.confidence = confidence
        self.threshold = threshold
        self.bins = bins
        self.reset()

    def reset(self) -> None:
        """Forget every accumulated mask."""
        self._hists: list[np.ndarray] = []  # per frame: (2, bins) int64, row 0 real pixels, row 1 fake
        self._tp_fp_fn: list[tuple[int, int, int]] = []
        self._groups: list[str] = []

    def groups(self) -> list[str]:
        """The groups seen so far, sorted."""
        return sorted(set(self._groups))

    def __len__(self) -> int:
        return len(self._groups)

    def accumulate(self, data: MaskSet) -> None:
        """Reduce a batch of masks to per-frame statistics (the masks themselves are not kept)."""
        if not hasattr(data, "predicted") or not hasattr(data, "truth"):
            raise TypeError(f"evaluator 'localization' needs a harness.extend.types.MaskSet, got {type(data).__name__}")
        if not len(data.predicted) == len(data.truth) == len(data.groups):
            raise ValueError(
                f"evaluator 'localization': MaskSet has {len(data.predicted)} predicted masks, "
                f"{len(data.truth)} truth masks and {len(data.groups)} groups; they must match one to one"
            )
        for i, (pred, truth, group) in enumerate(zip(data.predicted, data.truth, data.groups)):
            pred = np.asarray(pred, dtype=np.float32)
            truth = np.asarray(truth)
            if pred.shape != truth.shape:
                raise ValueError(
                    f"evaluator 'localization': mask {i} (group {group!r}) predicted shape {pred.shape} != "
                    f"truth shape {truth.shape}; resize the prediction to the truth mask first"
                )
            if not np.isfinite(pred).all() or pred.min(initial=0.0) < -1e-6 or pred.max(initial=0.0) > 1 + 1e-6:
                raise ValueError(
                    f"evaluator 'localization': mask {i} (group {group!r}) has predicted values outside "
                    "[0, 1] or NaN; pass sigmoid probabilities (P_M), not logits"
                )
            fake = truth >= 0.5
            called = pred >= self.threshold
            level = np.rint(np.clip(pred, 0.0, 1.0) * (self.bins - 1)).astype(np.int64)
            hist = np.stack(
                [
                    np.bincount(level[~fake], minlength=self.bins),
                    np.bincount(level[fake], minlength=self.bins),
                ]
            )
            tp = int(np.count_nonzero(called & fake))
            self._tp_fp_fn.append(
                (tp, int(np.count_nonzero(called)) - tp, int(np.count_nonzero(fake)) - tp)
            )
            self._hists.append(hist)
            self._groups.append(str(group))

    def finish(self, rng: np.random.Generator, group: str | None = None) -> dict[str, Metric]:
        """Metrics over the accumulated frames of ``group`` (None: all of them)."""
        keep = [i for i, g in enumerate(self._groups) if group is None or g == group]
        n = len(keep)
        if n == 0:
            reason = "no masks" + (f" in group {group!r}" if group is not None else "")
            return {key: metric_dict(math.nan, 0, undefined=reason) for key in ("pixel_auc", "iou", "f1")}
        hists = np.stack([self._hists[i] for i in keep]).astype(np.float64)  # (n, 2, bins)
        tp, fp, fn = np.array([self._tp_fp_fn[i] for i in keep], dtype=np.float64).T
        union = tp + fp + fn
        # A frame where truth and prediction are both empty agrees perfectly: score it 1.
        iou = np.divide(tp, union, out=np.ones(n), where=union > 0)
        f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.ones(n), where=union > 0)

        total = hists.sum(axis=0)
        auc_value = auc_from_counts(total[1], total[0])
        out: dict[str, Metric] = {
            "pixel_auc": metric_dict(auc_value, n),
            "iou": metric_dict(float(iou.mean()), n),
            "f1": metric_dict(float(f1.mean()), n),
        }
        if math.isnan(auc_value):
            kind = "fake" if total[1].sum() == 0 else "real"
            reason = f"pixel AUC needs both fake and real pixels; the truth masks have no {kind} pixels"
            out["pixel_auc"] = metric_dict(math.nan, n, undefined=reason)
        if self.n_boot:
            samples = self._bootstrap(hists.reshape(n, -1), iou, f1, rng)
            for column, key in enumerate(("pixel_auc", "iou", "f1")):
                if "undefined" not in out[key]:
                    out[key]["ci_low"], out[key]["ci_high"] = percentile_ci(samples[:, column], self.confidence,
                                                                          out[key]["value"])
        return out

    def _bootstrap(self, flat: np.ndarray, iou: np.ndarray, f1: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n_boot, 3) resampled (pixel AUC, IoU, F1): frames redrawn with replacement.

        A resample is a vector of how often each frame was drawn; a block of resamples times the
        per-frame histograms is one matrix product, which keeps 1000 resamples of ~20k frames fast.
        """
        n = len(iou)
        samples = np.empty((self.n_boot, 3))
        block = max(1, min(self.n_boot, 2_000_000 // n))  # at most ~16 MB of weights at a time
        for start in range(0, self.n_boot, block):
            rows = min(block, self.n_boot - start)
            drawn = rng.integers(0, n, (rows, n)) + (np.arange(rows) * n)[:, None]
            weight = np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)
            summed = (weight @ flat).reshape(rows, 2, self.bins)
            for r in range(rows):
                samples[start + r, 0] = auc_from_counts(summed[r, 1], summed[r, 0])
            samples[start : start + rows, 1] = weight @ iou / n
            samples[start : start + rows, 2] = weight @ f1 / n
        return samples

    def __call__(self, data: MaskSet, rng: np.random.Generator) -> dict[str, Metric]:
        self.reset()
        self.accumulate(data)
        result = self.finish(rng)
        self.reset()
        return result


def from_context(context: EvalContext | None = None, **options: Any) -> LocalizationEvaluator:
    """The registered factory: the run's bootstrap size and pixel threshold (P_M >= it is altered)."""
    context = context or EvalContext()
    return LocalizationEvaluator(**{"n_boot": context.n_boot, "threshold": context.mask_threshold, **options})


@hookimpl
def register_evaluators(register: Callable[..., None]) -> None:
    register(
        "localization",
        from_context,
        "pixel AUC, IoU and F1 of P_M (>= 0.5) against the dataset's masks, bootstrap CIs over frames",
    )
