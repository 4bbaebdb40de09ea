"""The results dict of a run: its configuration as run, the plugins' provenance, the environment,
training and the per-dataset blocks (the schema is harness/schemas/results.schema.json)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from harness.data.demo import NOT_A_BENCHMARK
from harness.vocab.config import RunConfig
from harness.run.datasets import TrainingSplits

if TYPE_CHECKING:
    from harness.data.preprocess import PreprocessSummary
    from harness.training.trainer import TrainOutcome


def build_results(config: RunConfig, rid: str, outcome: TrainOutcome, blocks: dict[str, Any], timings: dict[str, float],
                  preprocess_summary: PreprocessSummary, splits: TrainingSplits | None = None) -> dict[str, Any]:
    import harness
    from harness.reporting.results import collect_environment
    from harness.vocab.recipes import recipe_name

    env = collect_environment()
    used = {("blender", config.blender), ("backbone", config.backbone), ("face_detector", config.face_detector)}
    used |= {("dataset", n) for n in [config.train_dataset, *config.test_datasets]}
    used |= {("evaluator", e.name) for e in harness.plugins("evaluator")}
    crop = preprocess_summary.crop_rule
    config_dict = config.to_dict()
    # Record what the blender really ran with: its defaults plus what the user set.
    config_dict["blender_options"] = resolved_options(config.blender, config.blender_options)
    config_dict["crop"] = dict(crop) if crop else {"size": config.crop_size, "margin": config.crop_margin}
    config_dict["batch_convention"] = "batch_size images per step = batch_size/2 reals + their self-blended fakes"
    results = {
        "schema_version": 1,
        "run_id": rid,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "demo": config.demo,
        "note": NOT_A_BENCHMARK if config.demo else "",
        "name": config.label(),
        "config": config_dict,
        "plugins": harness.extend.registry.provenance(used),
        "versions": env["versions"],
        "git": env["git"],
        "hardware": env["hardware"],
        "seeds": {"train": config.seed, "eval": config.seed, "bootstrap": config.seed},
        "selection_rule": outcome.selection_rule,
        "selected": outcome.selected,
        "training": {
            "steps": outcome.steps, "epochs_completed": outcome.epochs,
            "final_loss": outcome.history[-1]["loss"] if outcome.history else None,
            "init_weights": outcome.init_weights,
            "validation_spread": outcome.collapse,
            "recipe": recipe_name(config.train),
        },
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "datasets": blocks,
    }
    if splits is not None:
        # what the model was trained and validated on (the split a dataset without one got, or lacks)
        results["training"].update({"train_videos": len(splits.train), "val_videos": len(splits.val), "notes": splits.notes})
    return results


def resolved_options(blender: str, options: dict[str, Any]) -> dict[str, Any]:
    """Blender plugin ``blender``'s JSON-friendly option defaults, overridden by ``options``."""
    from harness.extend import contracts, registry

    return {**contracts.defaults(registry.get("blender", blender)), **options}
