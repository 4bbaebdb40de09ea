"""The evaluation stage: one opened model bundle scored on test datasets -> one results block each.

`harness run` (after training) and `harness evaluate` (a checkpoint you already have) both call
``evaluate_model``, so there is one scoring path: the same faces from the same cache, the same input
preparation (harness.models.inputs.model_input), the same aggregation and metrics.

Each finished dataset block is stored in the run folder (``blocks/<dataset>.json``, keyed by the
bundle's identity (its tensors and model.json: harness.models.bundle.bundle_identity), the settings
it was scored under and the test set (its videos, and the fingerprint of its files where the caller
gives one)), so an evaluation killed half-way resumes dataset by dataset and never mixes numbers of
two models, two model.json files, two settings or two versions of the test files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from harness.common import runtime as dd
from harness.models.bundle import Bundle
from harness.evaluation.robustness import robustness_block
from harness.evaluation.runner import EvalSetup, dataset_block, score_dataset
from harness.extend.contracts import dataset_compression, dataset_notes
from harness.vocab.folder import RunFolder
from harness.common.ui import console

#: what a localization metric reads for a model that has no mask head (never 0)
NO_MASK_HEAD = "n/a (no mask head)"


def evaluate_model(bundle: Bundle, cache: Any, datasets: Mapping[str, Any], setup: EvalSetup,
                   run_dir: Path | None = None, show: bool | None = None,
                   tests: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One results block per test dataset (``datasets``: name -> opened dataset plugin, in order),
    scored from ``cache`` (filled with the bundle's crop rule). ``setup`` is completed with the input
    size, scaling and heads the bundle declares. With ``run_dir``, per-video scores, examples and the
    finished blocks are written there; a block stored under the same bundle, settings and test set
    (``tests``: dataset name -> fingerprint of its test files, where known) is reused."""
    from harness.models.bundle import NonFiniteScores

    dd.init_from_env(bundle.device)  # no-op outside torchrun, or when training already joined the group
    setup = setup.for_bundle(bundle.meta)
    try:
        return _evaluate_all(bundle, cache, datasets, setup, run_dir, show, tests)
    except NonFiniteScores as exc:  # before any score of that dataset is written or a block stored
        raise NonFiniteScores(f"{bundle.directory}: {exc}") from None


def _evaluate_all(bundle: Bundle, cache: Any, datasets: Mapping[str, Any], setup: EvalSetup,
                  run_dir: Path | None, show: bool | None, tests: Mapping[str, Any] | None) -> dict[str, Any]:
    detection = _detection_note(cache)
    blocks: dict[str, Any] = {}
    for name, dataset in datasets.items():
        uids = {r.uid for r in dataset.records("test")}
        # as JSON reads it back (tuples become lists), so a stored key compares equal
        key = json.loads(json.dumps({"sha256": bundle.sha256, "setup": setup.key(), "videos": sorted(uids),
                                     "test": (tests or {}).get(name)}, default=str))
        stored = _stored(run_dir, name, key)
        if stored is not None:
            console.print(f"{name}: scored before with this model and settings (kept from {RunFolder(run_dir).blocks})")
            blocks[name] = stored
            continue
        scored = score_dataset(bundle.model, cache, name, setup, bundle.device, show, uids=uids, run_dir=run_dir)
        block = dataset_block(scored, setup, dataset_compression(dataset))
        notes = dataset_notes(dataset)
        if notes:
            block["notes"] = notes
        if detection:  # the no-face count is 0 by construction: say why
            block["face_detection"] = detection
        if not setup.mask_head:
            block["localization"] = NO_MASK_HEAD
        if setup.perturb:  # the clean share perturbed; the clean column is the scores above
            block["robustness"] = robustness_block(bundle.model, cache, scored.mine, setup, bundle.device, scored.scores, show)
        if run_dir is not None and dd.is_main():
            _store(run_dir, name, key, block)
        blocks[name] = block
    return blocks


def _detection_note(cache: Any) -> str | None:
    """What the results say when the cache's crop rule looked for no face (``--face-detector none``)."""
    from harness.data.crop import CropRule

    recorded = cache.crop_rule
    return CropRule.from_dict(recorded).detection_note() if recorded else None


def _path(run_dir: Path, name: str) -> Path:
    return RunFolder(run_dir).block_file(name)


def _stored(run_dir: Path | None, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
    if run_dir is None or not _path(run_dir, name).is_file():
        return None
    try:
        data = json.loads(_path(run_dir, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a torn write: score the dataset again
    return data.get("block") if isinstance(data, dict) and data.get("key") == key else None


def _store(run_dir: Path, name: str, key: dict[str, Any], block: dict[str, Any]) -> None:
    from harness.common.files import atomic_write_text

    path = _path(run_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"key": key, "block": block}, default=str))
