"""Fault injection for the crash-consistency tests: SIGKILL this process at a named point.

``HARNESS_FAULT="checkpoint.written:2"`` kills the process (SIGKILL, as ``kill -9`` would: no
cleanup, no ``finally``) the 2nd time it reaches ``point("checkpoint.written")``. Several points:
comma-separated. Unset (always, outside tests) it costs one environment lookup per call.

A third field picks another fault: ``train.step:3:TERM`` sends SIGTERM (what a scheduler sends on
pre-emption) to this process the 3rd time, ``checkpoint.written:1:ENOSPC`` raises the OSError of a
full disk there, ``preprocess.stored:4:GROUP`` SIGKILLs the whole process group (as ``kill -9
-PGID`` from a shell or a scheduler would: worker processes die wherever they are). All land at a
counted point, so a test never races a timer.

Points: ``preprocess.before_store`` (a video's crops are written, its rows are not),
``preprocess.stored`` (after a video's rows), ``preprocess.video.<uid>`` (in the worker, before
video ``uid``: an OOM kill of that worker), ``checkpoint.written`` (a checkpoint's files are
complete under their temporary name), ``files.replace_dir`` (between the two renames of a folder
swap), ``train.step`` (after a logged optimizer step), ``run.results_written`` (results JSON written,
run folder not yet marked finished), ``train.collate`` (a training batch being put together),
``evaluate.video`` (before a test video is scored), ``predict.file`` (before an input is scored),
``demo.video`` (after a real video of the demo is written), ``files.output`` (a user-named output,
``--out``, is written under its temporary name, not yet moved into place).
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "HARNESS_FAULT"
_hits: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for part in spec.split(","):
        target, _, rest = part.strip().partition(":")
        count, _, action = rest.partition(":")
        if target == name:
            _hits[name] = _hits.get(name, 0) + 1
            if _hits[name] == int(count or 1):
                _fire(action.strip().upper() or "KILL", name)


def _fire(action: str, name: str) -> None:
    if action == "ENOSPC":
        raise OSError(errno.ENOSPC, f"No space left on device (injected at {name})")
    if action == "GROUP":
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGTERM if action == "TERM" else signal.SIGKILL)
