"""One process per run folder: ``runs/<id>/run.lock`` holds the owner's pid, host and a heartbeat.

Two processes on one run id would destroy each other (the second's resume clean-up removes the
first's checkpoint in progress), so the second one refuses in one line naming the owner. A lock
left by a process that is gone is taken over: on this host when its pid is dead, on another host
(a shared file system; the host identity is $HARNESS_HOST, else the hostname, as for the
face cache's claims) when its heartbeat is older than ``STALE_AFTER_S``. The owner refreshes the
heartbeat from a daemon thread every ``HEARTBEAT_S``.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from harness.common.errors import HarnessError
from harness.data.claims import host_id, pid_alive
from harness.vocab.folder import RunFolder

HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0


class RunLockedError(HarnessError, RuntimeError):
    """Another live process holds the run folder; the one-line message names it and what to do."""


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stale(owner: dict[str, Any] | None, now: float) -> bool:
    """True when the lock's owner is gone (or the file is unreadable: a write cut short)."""
    if owner is None:
        return True
    pid, host = owner.get("pid"), owner.get("host")
    if not isinstance(pid, int):
        return True
    if host == host_id():
        return pid == os.getpid() or not pid_alive(pid)  # our own (an earlier run() of this process) or dead
    beat = owner.get("heartbeat")
    return not isinstance(beat, (int, float)) or now - beat > STALE_AFTER_S


class RunLock:
    """Held from ``acquire`` to ``release`` (or the end of the process)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = RunFolder(run_dir).lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": host_id(), "heartbeat": time.time()})

    def acquire(self) -> "RunLock":
        for _ in range(3):  # a taken-over lock is re-checked: two takers, one wins
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _read(self.path)
                if not _stale(owner, time.time()):
                    raise RunLockedError(self._busy(owner)) from None
                self.path.unlink(missing_ok=True)  # the owner is gone: take over
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self._record())
            self._thread = threading.Thread(target=self._beat, name="harness-run-lock", daemon=True)
            self._thread.start()
            atexit.register(self.release)  # a run that ends in an error (or SIGTERM's exit) frees it too
            return self
        raise RunLockedError(f"{self.path}: another process keeps taking this run's lock; run one process per run")

    def _busy(self, owner: dict[str, Any] | None) -> str:
        owner = owner or {}
        beat = owner.get("heartbeat")
        ago = f", heartbeat {time.time() - beat:.0f} s ago" if isinstance(beat, (int, float)) else ""
        return (f"run folder {self.path.parent} is in use by pid {owner.get('pid')} on {owner.get('host')}{ago}; "
                f"wait for it to finish (then rerun to reuse its result), or if that process is gone delete {self.path}")

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                tmp = self.path.with_name(f".{RunFolder.LOCK}.{os.getpid()}.tmp")
                tmp.write_text(self._record(), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError:
                pass  # a full disk must not kill the run; the pid still proves it alive on this host

    def release(self) -> None:
        atexit.unregister(self.release)
        self._stop.set()
        owner = _read(self.path)
        if owner and owner.get("pid") == os.getpid() and owner.get("host") == host_id():
            self.path.unlink(missing_ok=True)


def lock_run(run_dir: Path) -> RunLock:
    """Take ``run_dir``'s lock or raise RunLockedError (one line)."""
    return RunLock(run_dir).acquire()
