"""Fault injection for the crash-consistency tests: SIGKILL this process at a named point.

``HARNESS_FAULT="checkpoint.written:2"`` kills the process (SIGKILL, as ``kill -9`` would: no
cleanup, no ``finally``) the 2nd time it reaches ``point("checkpoint.written")``. Several points:
comma-separated. Unset (always, outside tests) it costs one environment lookup per call.

Points: ``preprocess.before_store`` (a video's crops are written, its rows are not),
``preprocess.stored`` (after a video's rows), ``preprocess.video.<uid>`` (in the worker, before
video ``uid``: an OOM kill of that worker), ``checkpoint.written`` (a checkpoint's files are
complete under their temporary name), ``files.replace_dir`` (between the two renames of a folder
swap), ``train.step`` (after a logged optimizer step), ``run.results_written`` (results JSON written,
run folder not yet marked finished).
"""

from __future__ import annotations

import os
import signal

ENV = "HARNESS_FAULT"
_hits: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for part in spec.split(","):
        target, _, count = part.strip().partition(":")
        if target == name:
            _hits[name] = _hits.get(name, 0) + 1
            if _hits[name] == int(count or 1):
                os.kill(os.getpid(), signal.SIGKILL)
