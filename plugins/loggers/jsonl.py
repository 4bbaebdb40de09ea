"""The built-in training log: ``runs/<id>/train_log.jsonl``, one JSON line per step or validation."""

from __future__ import annotations

from harness.api import JsonlLogger, hookimpl


@hookimpl
def register_loggers(register):
    register("jsonl", JsonlLogger, "train_log.jsonl in the run folder: one JSON line per step (always on)")
