"""Stage 4: every test dataset scored with the trained checkpoint (the scoring path `harness
evaluate` uses too)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.common import runtime as dd
from harness.vocab.config import RunConfig


def evaluate_stage(config: RunConfig, checkpoint: Path, datasets: dict[str, Any], show: bool | None, cache: Any,
                   run_dir: Path | None = None, perturb: list[Any] | None = None) -> tuple[dict[str, Any], float]:
    """Score every test dataset's cached faces with the checkpoint (harness.evaluation.stage, the one
    scoring path `harness evaluate` uses too); one results block per dataset. ``perturb``: robustness
    conditions (harness.evaluation.perturb.parse_conditions) scored too."""
    from harness.evaluation.runner import EvalSetup
    from harness.evaluation.stage import evaluate_model
    from harness.models.bundle import open_bundle

    start = time.perf_counter()
    bundle = open_bundle(checkpoint).load(dd.pick_device(config.device))
    tests = {name: datasets[name] for name in config.test_datasets}
    setup = replace(EvalSetup.from_run(config), perturb=tuple(perturb or ()))
    blocks = evaluate_model(bundle, cache, tests, setup, run_dir, show)
    return blocks, time.perf_counter() - start
