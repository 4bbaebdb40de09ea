"""Score a test set: cached faces -> model -> face scores -> frame scores -> video scores -> metrics.

Protocol (the paper's evaluation; docs/protocol.md, "Protocol choices"): frames were sampled evenly over each
whole video by preprocessing; frames are grouped into videos by the full unique id; a frame score is the max over
its faces, a video score the mean over its frames (both selectable); videos that failed to decode or
where no face was found are counted and reported, never scored 0.5 or silently dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import cv2
import numpy as np
import torch

from harness.vocab.config import EvalConfig, RunConfig
from harness.data.crop import resize_crop
from harness.models.bundle import check_finite_scores
from harness.models.inputs import DEFAULT_SCALE, model_input
from harness.common import faults, runtime as dd
from harness.vocab.folder import RunFolder
from harness.extend.types import MaskSet, ScoreSet, video_uid
from harness.common.ui import progress

#: Pixel metrics are computed on masks resized to this side: bounded memory on all of FF++.
MASK_EVAL_SIZE = 64
MAX_LISTED_FAILURES = 50
#: Localization examples kept per dataset: this many most and least confident test fakes, at this side.
EXAMPLES_PER_END = 4
EXAMPLE_SIZE = 96

AGGREGATORS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda v: float(np.mean(v)),
    "max": lambda v: float(np.max(v)),
    "median": lambda v: float(np.median(v)),
}


@dataclass(frozen=True)
class EvalSetup:
    """What evaluation needs: the eval section (frames, aggregation, bootstrap), the model's input
    size and scaling (its bundle's), whether it has a mask head, and the seed the bootstrap
    intervals derive from. One settings object, so a new evaluation option is one field here."""

    eval: EvalConfig = field(default_factory=EvalConfig)
    img_size: int = 224
    seed: int = 0
    input_scale: str = DEFAULT_SCALE
    mask_head: bool = True
    #: robustness conditions (harness.evaluation.perturb.Condition) also scored; () = clean only
    perturb: tuple[Any, ...] = ()
    #: the verdict threshold of the threshold metrics (accuracy) and where it came from: the bundle's
    #: calibrated one (what `harness predict` uses), else eval.threshold (for_bundle sets it)
    verdict: tuple[float, str] | None = None

    @classmethod
    def from_run(cls, config: RunConfig) -> "EvalSetup":
        return cls(eval=config.eval, img_size=config.img_size, seed=config.seed)

    def for_bundle(self, meta: dict[str, Any]) -> "EvalSetup":
        """These settings with the input size, scaling and heads the model bundle declares."""
        from dataclasses import replace

        from harness.models.threshold import threshold_of
        from harness.models.bundle import bundle_heads, input_scale

        size = int(meta.get("img_size") or meta.get("model", {}).get("img_size") or self.img_size)
        return replace(self, img_size=size, input_scale=input_scale(meta), mask_head="mask" in bundle_heads(meta),
                       verdict=threshold_of(meta, fallback=self.eval.threshold))

    def context(self) -> Any:
        """What every evaluator factory gets (harness.extend.types.EvalContext): the bootstrap size,
        the verdict threshold, the pixel threshold of P_M (eval.threshold) and the seed."""
        from harness.extend.types import EvalContext

        return EvalContext(n_boot=self.eval.bootstrap, threshold=self.threshold_record()["value"], seed=self.seed,
                           mask_threshold=self.eval.threshold)

    def threshold_record(self) -> dict[str, Any]:
        """``{"value", "source"}``: the threshold of the verdicts in the results (accuracy)."""
        value, source = self.verdict or (self.eval.threshold, f"eval.threshold {self.eval.threshold:g} of the run configuration")
        return {"value": value, "source": source}

    def key(self) -> dict[str, Any]:
        """What changes the numbers (a stored dataset block is reused only under the same key):
        every field, so a new option (e.g. a perturbation) keys the stored blocks without more code."""
        from dataclasses import asdict

        return asdict(self)


@dataclass
class VideoScores:
    """Everything scored for one dataset, before metrics."""

    video: dict[str, float] = field(default_factory=dict)  # uid -> score
    frame: dict[str, float] = field(default_factory=dict)  # uid#frame -> score
    label: dict[str, int] = field(default_factory=dict)
    method: dict[str, str] = field(default_factory=dict)
    path: dict[str, str] = field(default_factory=dict)  # uid -> its media file (a video of frames: its first frame)
    masks: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)  # (method, pred, truth)
    mask_keys: list[tuple[str, int]] = field(default_factory=list)  # (record uid, frame index) of each mask
    #: the EXAMPLES_PER_END highest- and lowest-scored fake videos: (score, uid, method, crop, truth | None, P_M)
    examples: list[tuple[float, str, str, np.ndarray, np.ndarray | None, np.ndarray]] = field(default_factory=list)


def keep_extremes(examples: list[Any], k: int = EXAMPLES_PER_END) -> list[Any]:
    """The k lowest- and k highest-scored of ``examples`` (score first), sorted by score: memory
    stays bounded however many fakes a test set holds."""
    ranked = sorted(examples, key=lambda e: (e[0], e[1]))
    return ranked if len(ranked) <= 2 * k else ranked[:k] + ranked[-k:]


def _example(score: float, video: Any, face: Any, crop: np.ndarray, pm: np.ndarray) -> tuple[Any, ...]:
    """One localization example at EXAMPLE_SIZE: the face crop, its ground-truth mask (None when the
    dataset has none) and P_M, as uint8."""
    size = (EXAMPLE_SIZE, EXAMPLE_SIZE)
    image = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    pred = (255 * np.clip(cv2.resize(pm.astype(np.float32), size, interpolation=cv2.INTER_AREA), 0, 1)).astype(np.uint8)
    truth = None
    if face.mask is not None:
        truth = (cv2.resize(face.mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5).astype(np.uint8) * 255
    return (score, video.uid, video.method, image, truth, pred)


@torch.no_grad()
def predict_faces(model: torch.nn.Module, crops: list[np.ndarray], img_size: int, device: torch.device, batch_size: int = 32,
                  scale: str = DEFAULT_SCALE, masks: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Fake probability and P_M mask (img_size square) for each RGB uint8 face crop; the masks are
    None for a model without a mask head (an imported classifier) and when ``masks`` is False (the
    mask head is then not run: the probabilities are the same bits)."""
    from harness.models.detector import forward_heads

    model.eval()
    scores, maps = [], []
    for i in range(0, len(crops), batch_size):
        out = forward_heads(model, model_input(crops[i : i + batch_size], img_size, device, scale), masks)
        check_finite_scores(out.logit)  # a NaN score never reaches a file, a metric or a verdict
        scores.append(torch.sigmoid(out.logit.float()).cpu().numpy())
        if masks and out.mask_logits is not None:
            maps.append(torch.sigmoid(out.mask_logits.float())[:, 0].cpu().numpy())
    if not scores:
        return np.zeros(0, np.float32), np.zeros((0, img_size, img_size), np.float32)
    return np.concatenate(scores), (np.concatenate(maps) if maps else None)


#: what a perturbation does to one video's face crops: (crops, their cached faces, the video record)
#: -> the crops the model sees (harness.evaluation.robustness); None: the crops as cached
CropTransform = Callable[[list[np.ndarray], list[Any], Any], list[np.ndarray]]


def score_videos(model: torch.nn.Module, cache: Any, videos: Iterable[Any], setup: EvalSetup, device: torch.device, show: bool | None = None, label: str = "evaluate") -> VideoScores:
    """Score the given cached videos (this rank's share), every head the model has. Videos without
    faces are skipped here and counted by the caller from the cache's statuses."""
    return score_variants(model, cache, videos, setup, device, {label: None}, show, label)[label]


def score_variants(model: torch.nn.Module, cache: Any, videos: Iterable[Any], setup: EvalSetup, device: torch.device,
                   variants: Mapping[str, CropTransform | None], show: bool | None = None, label: str = "evaluate") -> dict[str, VideoScores]:
    """The scores of the given cached videos under each variant (key -> crop transform): each
    video's faces are read once for all of them. The crops as cached (transform None) get every
    head (P_M, localization examples); a transformed variant gets the classification alone."""
    results = {key: VideoScores() for key in variants}
    pooled: dict[str, dict[str, list[float]]] = {key: defaultdict(list) for key in variants}  # video uid -> frame scores
    videos = list(videos)
    with progress(disable=None if show is None else not show) as bar:
        task = bar.add_task(label, total=len(videos), info="")
        for video in videos:
            bar.advance(task)
            faults.point("evaluate.video")
            faces = cache.faces(video.uid, frames=setup.eval.frames_per_video)  # exactly the frames asked
            if not faces:
                continue
            for key, transform in variants.items():
                crops = [f.image for f in faces]
                if transform is not None:
                    crops = transform(crops, faces, video)
                _score_video(model, video, faces, crops, setup, device, results[key], pooled[key], maps=transform is None)
    video_agg = AGGREGATORS[setup.eval.video_aggregation]
    for key, result in results.items():
        result.video = {vid: video_agg(np.array(values)) for vid, values in pooled[key].items()}
    return results


def _score_video(model: torch.nn.Module, video: Any, faces: list[Any], crops: list[np.ndarray], setup: EvalSetup,
                 device: torch.device, result: VideoScores, pooled: dict[str, list[float]], maps: bool) -> None:
    """One video's face crops scored into ``result`` (frame scores, labels, paths; with ``maps``
    its P_M masks and localization example) and its frame scores into ``pooled`` (video uid -> the
    frame scores of its records: a record that is one frame of a video joins its video's score)."""
    face_agg = AGGREGATORS[setup.eval.frame_aggregation]
    probs, pred_masks = predict_faces(model, crops, setup.img_size, device, setup.eval.batch_size, setup.input_scale, maps)
    per_frame: dict[int, list[float]] = defaultdict(list)
    for face, p in zip(faces, probs):
        per_frame[face.frame_index].append(float(p))
    frame_scores = {idx: face_agg(np.array(v)) for idx, v in sorted(per_frame.items())}
    for idx, s in frame_scores.items():
        result.frame[f"{video.uid}#{idx}"] = s
    vid = video_uid(video.uid)
    pooled[vid].extend(frame_scores.values())
    if pred_masks is not None and video.label == 1:
        _keep_masks(result, video, faces, pred_masks)
        best = int(np.argmax(probs))  # its most fake-looking face stands for the record
        record_score = AGGREGATORS[setup.eval.video_aggregation](np.array(list(frame_scores.values())))
        example_crop = resize_crop(crops[best], setup.img_size)
        result.examples.append(_example(record_score, video, faces[best], example_crop, pred_masks[best]))
        result.examples = keep_extremes(result.examples)
    for key in {video.uid, vid}:
        result.label[key] = int(video.label)
        result.method[key] = video.method
    result.path.setdefault(vid, str(video.path))  # what `harness predict` takes (a video of frames: its first)
    result.path[video.uid] = str(video.path)


def _keep_masks(result: VideoScores, video: Any, faces: list[Any], pred_masks: np.ndarray) -> None:
    """P_M and the truth of a fake record's first face in each frame, at MASK_EVAL_SIZE (pixel metrics)."""
    small = (MASK_EVAL_SIZE, MASK_EVAL_SIZE)
    for face, pm in zip(faces, pred_masks):
        if face.mask is not None and face.face_index == 0:
            truth = cv2.resize(face.mask.astype(np.float32), small, interpolation=cv2.INTER_AREA)
            pred = cv2.resize(pm.astype(np.float32), small, interpolation=cv2.INTER_AREA)
            result.masks.append((video.method, pred, (truth >= 0.5).astype(np.float32)))
            result.mask_keys.append((video.uid, int(face.frame_index)))


def merge(parts: list[VideoScores]) -> VideoScores:
    out = VideoScores()
    for p in parts:
        out.video.update(p.video)
        out.frame.update(p.frame)
        out.label.update(p.label)
        out.method.update(p.method)
        for uid, path in p.path.items():
            out.path.setdefault(uid, path)
        out.masks.extend(p.masks)
        out.mask_keys.extend(p.mask_keys)
        out.examples = keep_extremes(out.examples + p.examples)
    if len(out.mask_keys) == len(out.masks):
        # one order whatever the ranks' shares: the bootstrap of pixel metrics resamples by position
        order = sorted(range(len(out.masks)), key=lambda i: out.mask_keys[i])
        out.masks, out.mask_keys = [out.masks[i] for i in order], [out.mask_keys[i] for i in order]
    return out


def score_set(level: str, scores: VideoScores) -> ScoreSet:
    """All scored items of one level; groups are the fake method (or "original"/the real method)."""
    table = scores.video if level == "video" else scores.frame
    ids = sorted(table)
    uids = [k.split("#", 1)[0] for k in ids]
    return ScoreSet(
        level,
        ids,
        np.array([scores.label[u] for u in uids], dtype=int),
        np.array([table[k] for k in ids], dtype=np.float64),
        [scores.method[u] for u in uids],
    )


def make_evaluators(setup: EvalSetup) -> list[Any]:
    """Every registered evaluator, each built by ``factory(context)`` with the run's bootstrap size,
    thresholds and seed (``EvalSetup.context``)."""
    from harness.extend import registry

    context = setup.context()
    return [registry.create("evaluator", entry.name, context) for entry in registry.entries("evaluator")]


def compute_metrics(scores: VideoScores, setup: EvalSetup) -> dict[str, dict[str, Any]]:
    """{group: {"video": {...}, "frame": {...}, "pixel": {...}}}: "all", and per fake method its
    fakes against every real video (the FF++ per-method protocol)."""
    from harness.evaluation.groups import evaluate_groups

    masks = None
    if scores.masks:
        masks = MaskSet([p for _, p, _ in scores.masks], [t for _, _, t in scores.masks], [m for m, _, _ in scores.masks])
    return evaluate_groups(
        make_evaluators(setup),
        setup.seed,
        video=score_set("video", scores),
        frame=score_set("frame", scores),
        masks=masks,
    )


def write_scores(scores: VideoScores, dataset: str, run_dir: Path) -> list[Path]:
    """What the figures are drawn from, in the run folder: ``scores/<dataset>.csv`` (one row per
    scored video: uid, path (its media file, for `harness predict`), label, group, score) and ``examples/<dataset>.npz`` (the localization
    examples: frames, truth, has_truth, pred, scores, uids, groups)."""
    import csv
    import io

    from harness.common.files import atomic_write_text

    folder = RunFolder(run_dir)
    out = []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["uid", "path", "label", "group", "score"])
    for uid in sorted(scores.video):
        writer.writerow([uid, scores.path.get(uid, ""), scores.label[uid], scores.method[uid], repr(float(scores.video[uid]))])
    path = folder.scores_file(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buf.getvalue())
    out.append(path)
    if scores.examples:
        ex = keep_extremes(scores.examples)
        blank = np.zeros((EXAMPLE_SIZE, EXAMPLE_SIZE), np.uint8)
        path = folder.examples_file(dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            frames=np.stack([e[3] for e in ex]),
            truth=np.stack([blank if e[4] is None else e[4] for e in ex]),
            has_truth=np.array([e[4] is not None for e in ex]),
            pred=np.stack([e[5] for e in ex]),
            scores=np.array([e[0] for e in ex], np.float64),
            uids=np.array([e[1] for e in ex], dtype=str),
            groups=np.array([e[2] for e in ex], dtype=str),
        )
        out.append(path)
    return out


@dataclass
class ScoredDataset:
    """One test dataset's clean evaluation: its listed records, this rank's share of the scorable
    ones (whole videos per rank) and every rank's scores. The robustness block scores the same share
    perturbed and reuses ``scores`` as its clean column."""

    videos: list[Any]
    mine: list[Any]
    scores: VideoScores


def score_dataset(model: torch.nn.Module, cache: Any, dataset: str, setup: EvalSetup, device: torch.device,
                  show: bool | None = None, uids: set[str] | None = None, run_dir: Path | None = None) -> ScoredDataset:
    """Score one test dataset's cached records (``uids``: only these; the cache may hold older
    ones), this rank's share, gathered; with ``run_dir``, the scores and examples are written there
    (``write_scores``)."""
    # as a request for the evaluation's frame count sees them: its frames, counts and status
    videos = [v for v in cache.videos(split="test", dataset=dataset, frames=setup.eval.frames_per_video)
              if uids is None or v.uid in uids]
    scorable = [v for v in videos if v.status == "done"]
    # Each rank scores whole videos: the frames of one video (FRAME_SEPARATOR) stay on one rank.
    order = {vid: i for i, vid in enumerate(sorted({video_uid(v.uid) for v in scorable}))}
    mine = [v for v in scorable if order[video_uid(v.uid)] % dd.world_size() == dd.rank()]
    part = score_videos(dd.unwrap(model), cache, mine, setup, device, show, label=f"evaluate {dataset}")
    scores = merge(dd.all_gather_objects(part))
    if run_dir is not None and dd.is_main():
        write_scores(scores, dataset, Path(run_dir))
    return ScoredDataset(videos, mine, scores)


def dataset_block(scored: ScoredDataset, setup: EvalSetup, compression: str | None) -> dict[str, Any]:
    """The results block of one scored test dataset (see harness/schemas/results.schema.json)."""
    videos, scores = scored.videos, scored.scores
    scorable = [v for v in videos if v.status == "done"]
    failed = [v for v in videos if v.status not in ("done", "no_face")]
    no_face = [v for v in videos if v.status == "no_face" or (v.status == "done" and v.uid not in scores.label)]
    all_videos = {video_uid(v.uid) for v in videos}
    failed_videos = {video_uid(v.uid) for v in failed} - set(scores.video)
    block: dict[str, Any] = {
        "compression": compression,
        "frames_per_video": setup.eval.frames_per_video,
        "frame_aggregation": setup.eval.frame_aggregation,
        "video_aggregation": setup.eval.video_aggregation,
        "counts": {
            "videos": len(all_videos),
            "videos_scored": len(scores.video),
            "videos_failed": len(failed_videos),
            "videos_no_face": len(all_videos) - len(scores.video) - len(failed_videos),
            # frame counts of the frames asked, for every scorable video (the ranks' shares together)
            "frames": sum(v.frames_sampled for v in scorable),
            "frames_no_face": sum(max(0, v.frames_sampled - v.frames_with_face) for v in scorable),
            "fake_frames_with_mask": len(scores.masks),
        },
        "failures": [{"uid": v.uid, "cause": v.cause or v.status} for v in (failed + no_face)[:MAX_LISTED_FAILURES]],
        "groups": compute_metrics(scores, setup),
        "threshold": setup.threshold_record(),  # of the accuracy; `harness predict` gives the same verdicts
    }
    if len(all_videos) != len(videos):
        block["counts"]["frame_records"] = len(videos)  # images that are frames of a listed video
    return block


def evaluate_dataset(
    model: torch.nn.Module, cache: Any, dataset: str, setup: EvalSetup, device: torch.device, compression: str | None,
    show: bool | None = None, uids: set[str] | None = None, run_dir: Path | None = None,
) -> dict[str, Any]:
    """The results block of one test dataset, clean (``score_dataset``, then ``dataset_block``)."""
    return dataset_block(score_dataset(model, cache, dataset, setup, device, show, uids, run_dir), setup, compression)
