"""The results dict of a run or an evaluation: its configuration as run, the plugins' provenance, the
environment, training (or the checkpoint's provenance) and the per-dataset blocks (the schema is
harness/schemas/results.schema.json). ``results_record`` is the one builder; harness.run.evaluate
fills it for an evaluation."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from harness.data.demo import NOT_A_BENCHMARK
from harness.vocab.config import RunConfig
from harness.run.datasets import TrainingSplits

if TYPE_CHECKING:
    from harness.data.preprocess import PreprocessSummary
    from harness.training.trainer import TrainOutcome


def results_record(config: RunConfig, rid: str, *, name: str, config_dict: dict[str, Any], used: set[tuple[str, str]],
                   seeds: dict[str, Any], selection_rule: str, sections: dict[str, Any], timings: dict[str, Any],
                   blocks: dict[str, Any]) -> dict[str, Any]:
    """The results dict of a run or an evaluation, the one builder both use: what every results file
    records, around ``sections`` (a run's ``selected`` and ``training``; an evaluation's ``kind``,
    ``provenance`` and ``identity``). ``used``: the plugins it ran besides the evaluators."""
    import harness
    from harness.reporting.results import collect_environment

    env = collect_environment()
    used = used | {("evaluator", e.name) for e in harness.plugins("evaluator")}
    return {
        "schema_version": 1,
        "run_id": rid,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "demo": config.demo,
        "note": NOT_A_BENCHMARK if config.demo else "",
        "name": name,
        "config": config_dict,
        "plugins": harness.extend.registry.provenance(used),
        "versions": env["versions"],
        "git": env["git"],
        "hardware": env["hardware"],
        "seeds": seeds,
        "selection_rule": selection_rule,
        **sections,
        "timings": timings,
        "datasets": blocks,
    }


def build_results(config: RunConfig, rid: str, outcome: TrainOutcome, blocks: dict[str, Any], timings: dict[str, float],
                  preprocess_summary: PreprocessSummary, splits: TrainingSplits | None = None) -> dict[str, Any]:
    """A training run's results (``results_record``): its configuration as run and its training."""
    from harness.vocab.recipes import recipe_name

    used = {("blender", config.blender), ("backbone", config.backbone), ("face_detector", config.face_detector)}
    used |= {("dataset", n) for n in [config.train_dataset, *config.test_datasets]}
    crop = preprocess_summary.crop_rule
    config_dict = config.to_dict()
    # Record what the blender really ran with: its defaults plus what the user set.
    config_dict["blender_options"] = resolved_options(config.blender, config.blender_options)
    config_dict["crop"] = dict(crop) if crop else {"size": config.crop_size, "margin": config.crop_margin}
    config_dict["batch_convention"] = "batch_size images per step = batch_size/2 reals + their self-blended fakes"
    training = {
        "steps": outcome.steps, "epochs_completed": outcome.epochs,
        "final_loss": outcome.history[-1]["loss"] if outcome.history else None,
        "init_weights": outcome.init_weights,
        "validation_spread": outcome.collapse,
        "recipe": recipe_name(config.train),
    }
    if splits is not None:
        # what the model was trained and validated on (the split a dataset without one got, or lacks)
        training.update({"train_videos": len(splits.train), "val_videos": len(splits.val), "notes": splits.notes})
    return results_record(
        config, rid, name=config.label(), config_dict=config_dict, used=used,
        seeds={"train": config.seed, "eval": config.seed, "bootstrap": config.seed},
        selection_rule=outcome.selection_rule, sections={"selected": outcome.selected, "training": training},
        timings={k: round(v, 2) for k, v in timings.items()}, blocks=blocks)


def resolved_options(blender: str, options: dict[str, Any]) -> dict[str, Any]:
    """Blender plugin ``blender``'s JSON-friendly option defaults, overridden by ``options``."""
    from harness.extend import contracts, registry

    return {**contracts.defaults(registry.get("blender", blender)), **options}


#: what build_results adds to a results file's config block: derived from the configuration, not a setting
DERIVED_KEYS = ("crop", "batch_convention")


def recorded_config(data: Any) -> RunConfig:
    """The RunConfig a record holds, the one reader of them: a run's config.json, a results file (the
    config block build_results wrote, without DERIVED_KEYS and with the blender options it resolved
    set back to those given), or the ``run`` a bundle's model.json records. ConfigError, ValueError or
    TypeError when it holds none."""
    if isinstance(data, dict) and "schema_version" in data and isinstance(data.get("config"), dict):
        data = {k: v for k, v in data["config"].items() if k not in DERIVED_KEYS}
        data["blender_options"] = _set_options(data.get("blender", RunConfig().blender), data.get("blender_options", {}))
    return RunConfig.from_dict(data)


def _set_options(blender: str, resolved: dict[str, Any]) -> dict[str, Any]:
    """A results file records the blender's options with its defaults filled in; the ones equal to
    the installed blender's defaults are dropped, which changes nothing it does but keeps the run
    id (and label) of the published run. A value whose default has changed since stays."""
    from harness.extend.registry import PluginError

    try:
        defaults = resolved_options(blender, {})
    except PluginError:
        return dict(resolved)  # not installed: the plugin check says so later
    return {k: v for k, v in resolved.items() if k not in defaults or defaults[k] != v}
