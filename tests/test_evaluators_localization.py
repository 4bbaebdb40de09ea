"""The localization evaluator: pixel AUC / IoU / F1 of P_M against truth masks, bounded memory."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from sklearn import metrics as skm

from harness.extend.types import MaskSet
from harness_plugins.evaluators.localization import LocalizationEvaluator


def masks(n: int, size: int = 32, seed: int = 0, groups: tuple[str, ...] = ("Deepfakes", "Face2Face")) -> MaskSet:
    """Rectangular truth masks and noisy 8-bit predictions that roughly follow them."""
    rng = np.random.default_rng(seed)
    predicted, truth = [], []
    for _ in range(n):
        t = np.zeros((size, size), np.float32)
        y, x = rng.integers(0, size // 2, 2)
        t[y : y + size // 2, x : x + size // 3] = 1.0
        p = np.clip(0.3 * t + 0.7 * rng.random((size, size)), 0, 1)
        predicted.append((np.round(p * 255) / 255).astype(np.float32))
        truth.append(t)
    return MaskSet(predicted, truth, [groups[i % len(groups)] for i in range(n)])


def test_values_equal_sklearn() -> None:
    data = masks(12)
    result = LocalizationEvaluator(n_boot=200)(data, np.random.default_rng(0))
    assert set(result) == {"pixel_auc", "iou", "f1"}
    all_truth = np.concatenate([t.ravel() for t in data.truth])
    all_pred = np.concatenate([p.ravel() for p in data.predicted])
    # 8-bit predictions are exact under the 256-level histogram.
    assert result["pixel_auc"]["value"] == pytest.approx(skm.roc_auc_score(all_truth, all_pred), abs=1e-12)
    ious = [skm.jaccard_score(t.ravel() >= 0.5, p.ravel() >= 0.5) for p, t in zip(data.predicted, data.truth)]
    f1s = [skm.f1_score(t.ravel() >= 0.5, p.ravel() >= 0.5) for p, t in zip(data.predicted, data.truth)]
    assert result["iou"]["value"] == pytest.approx(np.mean(ious), abs=1e-12)
    assert result["f1"]["value"] == pytest.approx(np.mean(f1s), abs=1e-12)
    for metric in result.values():
        assert metric["n"] == 12
        assert metric["ci_low"] <= metric["value"] <= metric["ci_high"]
        assert metric["ci_low"] < metric["ci_high"]


def test_continuous_predictions_are_close_to_exact_auc() -> None:
    data = masks(6, seed=3)
    smooth = MaskSet([np.clip(p + 0.001, 0, 1) for p in data.predicted], data.truth, data.groups)
    exact = skm.roc_auc_score(
        np.concatenate([t.ravel() for t in smooth.truth]), np.concatenate([p.ravel() for p in smooth.predicted])
    )
    value = LocalizationEvaluator(n_boot=0, bins=1024)(smooth, np.random.default_rng(0))["pixel_auc"]["value"]
    assert value == pytest.approx(exact, abs=2e-3)


def test_streaming_batches_equal_one_shot_and_groups_filter() -> None:
    data = masks(10)
    one_shot = LocalizationEvaluator(n_boot=50)(data, np.random.default_rng(4))
    streaming = LocalizationEvaluator(n_boot=50)
    for start in range(0, 10, 3):
        sl = slice(start, start + 3)
        streaming.accumulate(MaskSet(data.predicted[sl], data.truth[sl], data.groups[sl]))
    assert len(streaming) == 10 and streaming.groups() == ["Deepfakes", "Face2Face"]
    assert streaming.finish(np.random.default_rng(4)) == one_shot
    only_df = [i for i, g in enumerate(data.groups) if g == "Deepfakes"]
    direct = LocalizationEvaluator(n_boot=50)(
        MaskSet([data.predicted[i] for i in only_df], [data.truth[i] for i in only_df], ["Deepfakes"] * len(only_df)),
        np.random.default_rng(4),
    )
    assert streaming.finish(np.random.default_rng(4), group="Deepfakes") == direct
    missing = streaming.finish(np.random.default_rng(4), group="NeuralTextures")
    assert missing["iou"]["n"] == 0 and "no masks in group 'NeuralTextures'" in missing["iou"]["undefined"]


def test_perfect_and_empty_frames() -> None:
    truth = np.zeros((8, 8), np.float32)
    truth[2:5, 2:6] = 1
    empty = np.zeros((8, 8), np.float32)
    data = MaskSet([truth.copy(), empty.copy()], [truth, empty], ["a", "a"])
    result = LocalizationEvaluator(n_boot=0)(data, np.random.default_rng(0))
    assert result["pixel_auc"]["value"] == 1.0
    assert result["iou"]["value"] == 1.0 and result["f1"]["value"] == 1.0  # both-empty frame agrees
    assert math.isnan(result["iou"]["ci_low"])  # n_boot=0: no CI


def test_no_fake_pixels_makes_pixel_auc_undefined_only() -> None:
    empty = np.zeros((8, 8), np.float32)
    result = LocalizationEvaluator(n_boot=20)(MaskSet([empty + 0.2], [empty], ["a"]), np.random.default_rng(0))
    assert math.isnan(result["pixel_auc"]["value"]) and "no fake pixels" in result["pixel_auc"]["undefined"]
    assert result["iou"]["value"] == 1.0 and "undefined" not in result["iou"]


def test_bad_masks_get_clear_errors() -> None:
    ev = LocalizationEvaluator()
    good = np.zeros((8, 8), np.float32)
    with pytest.raises(ValueError, match=r"mask 0 \(group 'x'\) predicted shape \(4, 4\) != truth shape \(8, 8\)"):
        ev(MaskSet([np.zeros((4, 4))], [good], ["x"]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="not logits"):
        ev(MaskSet([good + 3.0], [good], ["x"]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="must match one to one"):
        ev(MaskSet([good, good], [good], ["x"]), np.random.default_rng(0))
    with pytest.raises(TypeError, match="needs a harness.extend.types.MaskSet"):
        ev({"predicted": []}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="bins"):
        LocalizationEvaluator(bins=1)


def test_memory_stays_bounded_by_frames_not_pixels() -> None:
    # 40 masks of 512x512 (80 MB of float32 in and out) must leave well under 1 MB of state behind.
    ev = LocalizationEvaluator(n_boot=10)
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        for _ in range(40):
            truth = (rng.random((512, 512)) > 0.7).astype(np.float32)
            pred = rng.random((512, 512)).astype(np.float32)
            ev.accumulate(MaskSet([pred], [truth], ["Deepfakes"]))
            del truth, pred
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert retained < 1_000_000
    assert ev.finish(np.random.default_rng(0))["pixel_auc"]["value"] == pytest.approx(0.5, abs=0.01)
