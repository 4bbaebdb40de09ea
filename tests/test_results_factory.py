"""``make_results(...)``: schema-valid results dicts for the results and leaderboard tests.

Lives in a test module (collected, with a few tests of its own) so other test files can import it
with ``from test_results_factory import make_results``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.reporting.results import validate

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")


def metric(value: float | None, half_width: float = 0.01, n: int = 280, undefined: str | None = None) -> dict[str, Any]:
    """A Metric with a symmetric CI clipped to [0, 1] (value None: undefined)."""
    if value is None:
        out: dict[str, Any] = {"value": None, "ci_low": None, "ci_high": None, "n": n}
        out["undefined"] = undefined or "needs both real and fake items; got 0 real and 10 fake"
        return out
    return {"value": value, "ci_low": max(0.0, value - half_width), "ci_high": min(1.0, value + half_width), "n": n}


def score_metrics(auc: float, n: int = 280) -> dict[str, Any]:
    return {
        "auc": metric(auc, n=n),
        "ap": metric(min(1.0, auc + 0.005), n=n),
        "eer": metric(max(0.0, 1.0 - auc - 0.02), n=n),
        "accuracy": metric(max(0.0, auc - 0.05), n=n),
    }


def dataset_entry(
    aucs: dict[str, float],
    compression: str | None = "c23",
    frame_offset: float | None = -0.02,
    pixel: dict[str, float] | None = None,
    failures: int = 0,
) -> dict[str, Any]:
    """A dataset result with video (and frame, unless frame_offset is None) metrics per group."""
    groups: dict[str, Any] = {}
    for group, auc in aucs.items():
        groups[group] = {"video": score_metrics(auc)}
        if frame_offset is not None:
            groups[group]["frame"] = score_metrics(max(0.0, auc + frame_offset), n=280 * 32)
    for group, value in (pixel or {}).items():
        groups.setdefault(group, {})["pixel"] = {
            "pixel_auc": metric(value, n=4480),
            "iou": metric(value - 0.3, n=4480),
            "f1": metric(value - 0.2, n=4480),
        }
    videos = 280
    return {
        "compression": compression,
        "frames_per_video": 32,
        "video_aggregation": "mean",
        "frame_aggregation": "max",
        "counts": {
            "videos": videos,
            "videos_scored": videos - failures,
            "videos_failed": failures,
            "videos_no_face": 0,
            "frames": (videos - failures) * 32,
            "frames_no_face": 3,
        },
        "failures": [{"uid": f"ffpp/Deepfakes/c23/00{i}_00{i + 1}", "cause": "decode error"} for i in range(failures)],
        "groups": groups,
    }


def ffpp_entry(df: float = 0.99, f2f: float = 0.97, fs: float = 0.98, nt: float = 0.95, **kwargs: Any) -> dict[str, Any]:
    aucs = dict(zip(FFPP_METHODS, (df, f2f, fs, nt)))
    aucs["all"] = sum(aucs.values()) / 4
    return dataset_entry(aucs, **kwargs)


def make_results(
    run_id: str = "run-0001",
    name: str = "swin multipart",
    *,
    blender: str = "multipart",
    backbone: str = "swin",
    blender_options: dict[str, Any] | None = None,
    datasets: dict[str, Any] | None = None,
    demo: bool = False,
    created: str = "2025-03-01T12:00:00+00:00",
    commit: str | None = "0123456789abcdef0123456789abcdef01234567",
) -> dict[str, Any]:
    """A complete, schema-valid results dict; every part can be overridden after the call."""
    if datasets is None:
        datasets = {"ffpp": ffpp_entry(pixel={m: 0.9 for m in FFPP_METHODS})}
    return {
        "schema_version": 1,
        "run_id": run_id,
        "created": created,
        "demo": demo,
        "name": name,
        "config": {
            "blender": blender,
            "blender_options": {} if blender_options is None else dict(blender_options),
            "backbone": backbone,
            "backbone_options": {},
            "pretrained": False,
            "img_size": 224,
            "train": {"epochs": 100, "batch_size": 16, "lr": 0.001, "optimizer": "sam"},
            "eval": {"frames_per_video": 32, "n_boot": 1000},
            "loss": {"a": 1.0, "b": 1.0, "c": 1.0},
            "face_detector": "dlib",
            "crop": {"margin": 1.3, "size": 224},
        },
        "plugins": [
            {"kind": "blender", "name": blender, "package": "deepfake-harness", "version": "0.1.0"},
            {"kind": "backbone", "name": backbone, "package": "deepfake-harness", "version": "0.1.0"},
        ],
        "versions": {"python": "3.11.7", "torch": "2.4.0", "timm": "1.0.0", "harness": "0.1.0", "numpy": "2.0.0"},
        "git": {"commit": commit, "dirty": None if commit is None else False},
        "hardware": {"cpu": "Test CPU", "cpu_count": 2, "gpu": None, "cuda": None},
        "seeds": {"train": 0, "eval": 0, "bootstrap": 0},
        "selection_rule": "last epoch",
        "timings": {"preprocess_s": 10.0, "train_s": 3600.0, "eval_s": 120.5},
        "datasets": copy.deepcopy(datasets),
    }


def test_make_results_is_schema_valid() -> None:
    validate(make_results())
    validate(make_results(datasets={"celebdf": dataset_entry({"all": 0.8}, compression=None)}, commit=None))


@pytest.mark.parametrize(
    "break_it",
    [
        lambda r: r.pop("selection_rule"),
        lambda r: r["datasets"]["ffpp"]["groups"]["Deepfakes"]["video"]["auc"].pop("ci_low"),
        lambda r: r["datasets"]["ffpp"]["groups"]["Deepfakes"].update(bogus_level={}),
        lambda r: r.update(run_id="../escape"),
    ],
)
def test_broken_results_are_rejected(break_it: Any) -> None:
    from harness.reporting.results import ResultsError

    results = make_results()
    break_it(results)
    with pytest.raises(ResultsError):
        validate(results)
