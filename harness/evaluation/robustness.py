"""The robustness block of one test dataset: video AUC under each perturbation, clean included.

Perturbations (harness/evaluation/perturb.py) are applied to the cached test face crops at scoring
time: face detection, landmarks and crops are those of the clean video, so the table measures the
detector, not the face detector. The perturbed crops are scored by the runner's own scoring
(harness.evaluation.runner.score_variants: the same face -> frame -> video aggregation as the main
results, each video's crops read once for every condition, the classification head alone); the
clean column is the main results' own scores, not a second pass.
"""

from __future__ import annotations

import time
import zlib
from functools import partial
from typing import Any

import numpy as np
import torch

from harness.common import runtime as dd
from harness.common.errors import HarnessError
from harness.evaluation.perturb import Condition, perturb_video
from harness.evaluation.runner import EvalSetup, VideoScores, make_evaluators, merge, score_set, score_variants
from harness.vocab.conditions import DISTORTIONS

CLEAN = "clean"
#: the results vocabulary's metric the block reports (harness/schemas/results.schema.json)
METRIC = "auc"
APPLIED_TO = "cached test face crops at scoring time; detection fixed"
REFERENCE = ("DeeperForensics-1.0 (Jiang et al., CVPR 2020), perturbation/ of github.com/EndlessSora/DeeperForensics-1.0: "
             "seven distortions, five levels each")


class RobustnessError(HarnessError, ValueError):
    """No evaluator of the run gives the metric the robustness block reports."""


def _perturbed(condition: Condition, seed: int, crops: list[np.ndarray], faces: list[Any], video: Any) -> list[np.ndarray]:
    """One video's crops under ``condition`` (a runner.CropTransform)."""
    return perturb_video(crops, [f.face_index for f in faces], condition, seed, video.uid)


def _score_conditions(model: torch.nn.Module, cache: Any, videos: list[Any], setup: EvalSetup, device: torch.device,
                      conditions: list[Condition], show: bool | None) -> dict[str, VideoScores]:
    """Every rank's video scores under each condition (condition key -> scores): this rank scores
    ``videos`` (its share of the clean evaluation's), then the shares are gathered."""
    variants = {c.key: partial(_perturbed, c, setup.seed) for c in conditions}
    mine = score_variants(dd.unwrap(model), cache, videos, setup, device, variants, show,
                          label=f"robustness ({len(conditions)} conditions)")
    parts = dd.all_gather_objects(mine)
    return {key: merge([part[key] for part in parts]) for key in variants}


def _metric(scores: VideoScores, setup: EvalSetup, key: str) -> dict[str, Any]:
    """The video-level METRIC with the run's bootstrap CI, by the run's own score evaluators (the
    registered ones, as the main tables): one random stream per condition and evaluator."""
    from harness.reporting.results import to_json_ready

    data = score_set("video", scores)
    for evaluator in make_evaluators(setup):
        if evaluator.needs != "scores":
            continue
        rng = np.random.default_rng([setup.seed, zlib.crc32(f"robustness/{key}/{evaluator.name}".encode())])
        found = evaluator(data, rng).get(METRIC)
        if found is not None:
            return to_json_ready(found)
    raise RobustnessError(f"the robustness table reports video {METRIC!r}, which none of the registered evaluators gives; "
                          "install or register the evaluator plugin that does (`harness plugins` lists them)")


def _mean_over_levels(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    means = {}
    for name, levels in table.items():
        values = [lv[METRIC]["value"] for lv in levels.values()]
        ok = [v for v in values if v is not None and v == v]
        means[name] = {METRIC: float(np.mean(ok)) if len(ok) == len(values) and ok else None, "levels": len(values)}
    return means


def robustness_block(model: torch.nn.Module, cache: Any, videos: list[Any], setup: EvalSetup, device: torch.device,
                     clean: VideoScores, show: bool | None = None) -> dict[str, Any]:
    """The ``robustness`` block of a dataset's results (harness/schemas/results.schema.json) under
    ``setup.perturb`` (from ``perturb.parse_conditions``).

    ``videos``: this rank's share of the dataset's scorable cached test records, as the clean
    evaluation split them; ``clean``: that evaluation's scores (every rank's), the clean column."""
    start = time.perf_counter()
    conditions = list(setup.perturb)
    scored = _score_conditions(model, cache, videos, setup, device, conditions, show)
    table: dict[str, dict[str, Any]] = {}
    for c in conditions:
        table.setdefault(c.name, {})[str(c.level)] = {"param": c.param, METRIC: _metric(scored[c.key], setup, c.key)}
    seconds = time.perf_counter() - start
    return {
        "applied_to": APPLIED_TO,
        "reference": REFERENCE,
        "level": "video",
        "metric": METRIC,
        "seed": setup.seed,
        "videos": len(clean.video),
        "clean": _metric(clean, setup, CLEAN),
        "conditions": table,
        "mean_over_levels": _mean_over_levels(table),
        "descriptions": {name: DISTORTIONS[name][1] for name in table},
        "seconds": {"total": round(seconds, 2), "per_condition": round(seconds / max(1, len(conditions)), 3)},
    }
