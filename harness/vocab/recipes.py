"""Named training recipes: the optimizer settings of TrainConfig a run trains with.

``harness run --recipe NAME`` sets all of them at once; ``--optimizer``, ``--lr``, ``--weight-decay``,
``--warmup`` and ``--sam-rho`` then change single values. Results and the report name the recipe a
run's settings match, or "custom".
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from harness.vocab.config import TrainConfig
from harness.vocab.config_check import OPTIMIZERS  # noqa: F401 - the words --optimizer takes, imported from here

#: The settings a recipe fixes (every other TrainConfig field is left as it is).
RECIPE_FIELDS = ("optimizer", "lr", "momentum", "weight_decay", "sam_rho", "warmup", "lr_schedule")

#: name -> settings. "adamw" is TrainConfig's default (measured on the demo: see docs/protocol.md,
#: "Training recipe"); "paper" is the paper's SGD + SAM recipe, one option away.
RECIPES: dict[str, dict[str, Any]] = {
    "adamw": {"optimizer": "adamw", "lr": 5e-4, "momentum": 0.9, "weight_decay": 0.0, "sam_rho": 0.05, "warmup": 0,
              "lr_schedule": "cosine"},
    "paper": {"optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0, "sam_rho": 0.05, "warmup": 0,
              "lr_schedule": "cosine"},
}


def recipe_name(train: TrainConfig | dict[str, Any]) -> str:
    """The recipe whose settings ``train`` holds, else "custom"."""
    values = asdict(train) if not isinstance(train, dict) else train
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for name, recipe in RECIPES.items():
        # a config recorded before a field existed ran with that field's default
        if all(values.get(k, defaults[k]) == v for k, v in recipe.items()):
            return name
    return "custom"


def describe(train: TrainConfig | dict[str, Any]) -> str:
    """``adamw (AdamW lr 0.0005, weight decay 0, SAM rho 0.05, warmup 0 steps, cosine)``."""
    values = asdict(train) if not isinstance(train, dict) else train
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    get = lambda k: values.get(k, defaults[k])  # noqa: E731
    opt = {"sgd": f"SGD (momentum {get('momentum')})", "adamw": "AdamW"}.get(get("optimizer"), str(get("optimizer")))
    sam = f"SAM rho {get('sam_rho')}" if get("sam_rho") else "no SAM"
    return (f"{recipe_name(values)} ({opt} lr {get('lr')}, weight decay {get('weight_decay')}, {sam}, "
            f"warmup {get('warmup')} steps, {get('lr_schedule')})")
