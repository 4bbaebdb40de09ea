"""SIGTERM, honoured within moments wherever the program is.

Schedulers stop a job with SIGTERM, then SIGKILL it a grace period later. Python's default for
SIGTERM kills the process on the spot (no ``finally``, no message); a handler that only sets a flag
waits for whoever reads it. Here SIGTERM raises ``Terminated`` (a KeyboardInterrupt, so
``except Exception`` never swallows it) in the main thread at once: temporary files are removed on
the way out, claims released, and the command line prints one line and exits with 143 (128 +
SIGTERM). Work that must not be cut in half (an optimizer step, a checkpoint save) runs inside
``critical()``: a SIGTERM arriving there is raised as soon as the block ends.

``harness.cli.main`` installs the handler for every command; the trainer installs it for the
Python API too (``handling()``). Worker processes forked from a handled process call
``default_in_worker()`` (or ignore SIGTERM, as DataLoader workers do): the parent stops them.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

#: the exit status of a terminated command: 128 + SIGTERM, what a scheduler expects
EXIT = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop where we are (after the current critical block)."""


_state = {"depth": 0, "pending": False}


def _on_sigterm(signum: int, frame: Any) -> None:
    if _state["depth"]:
        _state["pending"] = True  # raised when the critical block ends
        return
    raise Terminated()


def install() -> None:
    """Raise Terminated on SIGTERM from now on (the main thread only: signals reach no other)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


@contextmanager
def handling() -> Iterator[None]:
    """``install()`` for the duration of the block, then the previous handler again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def critical() -> Iterator[None]:
    """A block SIGTERM does not cut: a signal arriving inside it is raised when it ends (unless the
    block ends with an exception of its own, which then goes on up)."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
    if not _state["depth"] and _state["pending"]:
        _state["pending"] = False
        raise Terminated()


def default_in_worker() -> None:
    """In a forked worker process: SIGTERM kills it at once, as it would any process (the parent,
    which holds the claims and the index, does the orderly part)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
