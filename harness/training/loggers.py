"""Training loggers: where the per-step scalars (loss terms, lr) and validation AUC go.

A logger is a plugin (hook ``register_loggers``): ``factory(run_dir, config, **opts)`` returns an
object with ``log(record)`` and ``close()``. A record is a flat dict: ``step`` and ``epoch``, then
scalars, either a training step (``lr``, ``loss`` and each loss term: ``cls``, ``mask``, ...) or a
validation (``val_auc``). A step also carries ``time``: ``{"data": s, "step": s}``, the seconds spent
waiting for its batch and computing it (not a scalar: loggers that plot scalars skip it; see
benchmarks/gpu_check.py for steps/s and the data-wait share read from it). Only the main process logs.

The JSONL log (``runs/<id>/train_log.jsonl``, one JSON line per record) is always written: the
harness reads it back to resume and to draw the training curves. Others are added with
``harness run --logger tensorboard`` (the built-in TensorBoard one, ``pip install
'deepfake-harness[tensorboard]'``), or any logger a third-party plugin registers (W&B, MLflow).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from harness.extend.defaults import defaults
from harness.vocab.folder import RunFolder
from harness.extend.types import TrainLogger  # noqa: F401  (the contract, re-exported where loggers live)

KIND = "logger"


class JsonlLogger:
    """One JSON line per record in ``run_dir/train_log.jsonl``, appended and closed at once (a
    crash loses at most the line being written; a resumed run appends)."""

    def __init__(self, run_dir: Path, config: Any = None) -> None:
        self.path = RunFolder(run_dir).log

    def log(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def close(self) -> None:
        pass


def _split(names: Iterable[str] | str | None) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = names.split(",")
    return [n.strip() for n in names if n and n.strip()]


def check_loggers(names: Iterable[str] | str | None) -> list[str]:
    """The logger names, each known (else PluginError with a suggestion) and able to run here (a
    factory's optional ``check()`` raises with what to install): called before any data work."""
    from harness.extend import registry

    out = []
    for name in _split(names):
        if name == defaults().run_log:
            continue  # always on
        check = registry.get(KIND, name).extra.get("check")  # register(..., check=fn)
        if check is not None:
            check()
        out.append(name)
    return out


def make_loggers(names: Iterable[str] | str | None, run_dir: Path, config: Any) -> list[Any]:
    """The JSONL logger first, then each named logger plugin, built for ``run_dir``."""
    from harness.extend import registry

    try:
        jsonl = registry.create(KIND, defaults().run_log, run_dir, config)
    except registry.PluginError:  # a restricted plugin set (HARNESS_PLUGINS): the log is still kept
        jsonl = JsonlLogger(run_dir, config)
    return [jsonl] + [registry.create(KIND, n, run_dir, config) for n in check_loggers(names)]
