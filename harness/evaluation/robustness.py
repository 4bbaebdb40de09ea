"""The robustness block of one test dataset: video AUC under each perturbation, clean included.

Perturbations (harness/evaluation/perturb.py) are applied to the cached test face crops at scoring
time: face detection, landmarks and crops are those of the clean video, so the table measures the
detector, not the face detector. Each video's crops are read from the cache once; every condition is
scored from that copy in memory (the clean one too, through the same path as the main results).
"""

from __future__ import annotations

import time
import zlib
from collections import defaultdict
from typing import Any, Iterable

import numpy as np
import torch

from harness.common import runtime as dd
from harness.evaluation.perturb import Condition, perturb_video
from harness.vocab.conditions import DISTORTIONS
from harness.extend.types import ScoreSet, video_uid
from harness.common.ui import progress

CLEAN = "clean"
APPLIED_TO = "cached test face crops at scoring time; detection fixed"
REFERENCE = ("DeeperForensics-1.0 (Jiang et al., CVPR 2020), perturbation/ of github.com/EndlessSora/DeeperForensics-1.0: "
             "seven distortions, five levels each")


def _score_share(model: torch.nn.Module, cache: Any, videos: list[Any], setup: Any, device: torch.device,
                 conditions: list[Condition], show: bool | None) -> dict[str, Any]:
    """Video scores per condition key (and clean) for this rank's videos, with labels and groups."""
    from harness.evaluation.runner import AGGREGATORS, predict_faces

    face_agg = AGGREGATORS[setup.eval.frame_aggregation]
    keys: list[tuple[str, Condition | None]] = [(CLEAN, None)] + [(c.key, c) for c in conditions]
    frames: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k, _ in keys}
    labels: dict[str, int] = {}
    groups: dict[str, str] = {}
    with progress(disable=None if show is None else not show) as bar:
        task = bar.add_task(f"robustness ({len(keys)} conditions)", total=len(videos), info="")
        for video in videos:
            bar.advance(task)
            faces = cache.faces(video.uid, frames=setup.eval.frames_per_video)  # decoded once for every condition
            if not faces:
                continue
            crops = [f.image for f in faces]
            tracks = [f.face_index for f in faces]
            vid = video_uid(video.uid)
            labels[vid], groups[vid] = int(video.label), video.method
            for key, condition in keys:
                images = crops if condition is None else perturb_video(crops, tracks, condition, setup.seed, video.uid)
                probs, _ = predict_faces(model, images, setup.img_size, device, setup.eval.batch_size, setup.input_scale)
                per_frame: dict[int, list[float]] = defaultdict(list)
                for face, p in zip(faces, probs):
                    per_frame[face.frame_index].append(float(p))
                frames[key][vid].extend(face_agg(np.array(v)) for _, v in sorted(per_frame.items()))
    return {"frames": {k: dict(v) for k, v in frames.items()}, "labels": labels, "groups": groups}


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"frames": defaultdict(dict), "labels": {}, "groups": {}}
    for part in parts:
        for key, table in part["frames"].items():
            out["frames"][key].update(table)
        out["labels"].update(part["labels"])
        out["groups"].update(part["groups"])
    return out


def _auc(scores: dict[str, float], labels: dict[str, int], groups: dict[str, str], setup: Any, key: str) -> dict[str, Any]:
    """Video AUC with the run's bootstrap CI, by the registered ``auc`` evaluator (as the main tables)."""
    from harness.extend import registry
    from harness.reporting.results import to_json_ready

    ids = sorted(scores)
    data = ScoreSet("video", ids, np.array([labels[u] for u in ids], int),
                    np.array([scores[u] for u in ids], np.float64), [groups[u] for u in ids])
    evaluator = registry.create("evaluator", "auc", setup.context())
    rng = np.random.default_rng([setup.seed, zlib.crc32(f"robustness/{key}/auc".encode())])  # one stream per condition
    return to_json_ready(evaluator(data, rng)["auc"])


def robustness_block(model: torch.nn.Module, cache: Any, videos: Iterable[Any], setup: Any, device: torch.device,
                     conditions: list[Condition], show: bool | None = None) -> dict[str, Any]:
    """The ``robustness`` block of a dataset's results (harness/schemas/results.schema.json).

    ``videos``: the dataset's scorable cached test records (status "done"); ``setup``: the run's
    ``EvalSetup``; ``conditions``: from ``perturb.parse_conditions``. Each rank scores whole videos;
    the AUCs are computed on the gathered scores."""
    start = time.perf_counter()
    videos = list(videos)
    order = {vid: i for i, vid in enumerate(sorted({video_uid(v.uid) for v in videos}))}
    mine = [v for v in videos if order[video_uid(v.uid)] % dd.world_size() == dd.rank()]
    inner = dd.unwrap(model)
    merged = _merge(dd.all_gather_objects(_score_share(inner, cache, mine, setup, device, conditions, show)))
    from harness.evaluation.runner import AGGREGATORS

    video_agg = AGGREGATORS[setup.eval.video_aggregation]
    labels, groups = merged["labels"], merged["groups"]

    def auc_of(key: str) -> dict[str, Any]:
        scores = {vid: video_agg(np.array(v)) for vid, v in merged["frames"][key].items()}
        return _auc(scores, labels, groups, setup, key)

    table: dict[str, dict[str, Any]] = {}
    for c in conditions:
        table.setdefault(c.name, {})[str(c.level)] = {"param": c.param, "auc": auc_of(c.key)}
    means = {}
    for name, levels in table.items():
        values = [lv["auc"]["value"] for lv in levels.values()]
        ok = [v for v in values if v is not None and v == v]
        means[name] = {"auc": float(np.mean(ok)) if len(ok) == len(values) and ok else None, "levels": len(values)}
    seconds = time.perf_counter() - start
    return {
        "applied_to": APPLIED_TO,
        "reference": REFERENCE,
        "level": "video",
        "metric": "auc",
        "seed": setup.seed,
        "videos": len(labels),
        "clean": auc_of(CLEAN),
        "conditions": table,
        "mean_over_levels": means,
        "descriptions": {name: DISTORTIONS[name][1] for name in table},
        "seconds": {"total": round(seconds, 2), "per_condition": round(seconds / (len(conditions) + 1), 3)},
    }
