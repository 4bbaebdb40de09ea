"""Claims on videos of a shared face cache: one file per claimed video, safe on network filesystems.

A job claims a video by creating ``<cache>/claims/<sha1(uid)>.claim`` with ``O_CREAT | O_EXCL``
(atomic on NFS v3+, Lustre and GPFS, unlike SQLite's locks), holding its owner, host and pid. While
it works, a heartbeat thread refreshes the file's mtime. A claim is stale when its process is gone
(same host identity only) or its mtime is older than ``claim_stale_seconds()``; a stale claim is
taken over by renaming it aside (atomic: only one taker wins) and claiming afresh.

The host identity is ``$HARNESS_HOST``, else the hostname: tests give each process its own to act
as a cluster on one machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

CLAIMS_DIR = "claims"
SUFFIX = ".claim"


def host_id() -> str:
    """This process's host identity ($HARNESS_HOST overrides the hostname)."""
    return os.environ.get("HARNESS_HOST") or socket.gethostname()


def new_owner() -> str:
    """A claim owner id for this process: ``host:pid:random``."""
    return f"{host_id()}:{os.getpid()}:{os.urandom(4).hex()}"


def owner_host_pid(owner: str) -> tuple[str, int]:
    host, pid, _ = owner.rsplit(":", 2)
    return host, int(pid)


def claim_stale_seconds() -> float:
    """A claim whose heartbeat is older than this is taken over (HARNESS_CLAIM_STALE_S, default 600)."""
    try:
        return max(0.1, float(os.environ.get("HARNESS_CLAIM_STALE_S", "600")))
    except ValueError:
        return 600.0


def heartbeat_seconds() -> float:
    """How often a job refreshes its claims: well inside the stale time."""
    return min(15.0, claim_stale_seconds() / 4.0)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def claim_is_stale(host: str, pid: int, heartbeat: float) -> bool:
    """Dead process on this host, or no heartbeat for ``claim_stale_seconds()``."""
    if host == host_id() and not pid_alive(int(pid)):
        return True
    return time.time() - float(heartbeat) > claim_stale_seconds()


class Claims:
    """The claim files of one cache root."""

    def __init__(self, root: str | Path) -> None:
        self.dir = Path(root) / CLAIMS_DIR

    def path(self, uid: str) -> Path:
        return self.dir / (hashlib.sha1(uid.encode("utf-8")).hexdigest()[:24] + SUFFIX)

    @staticmethod
    def read(path: Path) -> dict[str, Any] | None:
        """The claim's content and heartbeat (mtime); None when it is gone. A claim being written
        (empty yet) has no owner and is judged by its mtime alone."""
        try:
            beat = path.stat().st_mtime
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            info = json.loads(text) if text else {}
        except ValueError:
            info = {}
        info["heartbeat"] = beat
        return info

    @staticmethod
    def stale(info: dict[str, Any]) -> bool:
        if "host" in info and "pid" in info:
            return claim_is_stale(info["host"], int(info["pid"]), info["heartbeat"])
        return time.time() - info["heartbeat"] > claim_stale_seconds()

    def take(self, uid: str, owner: str) -> bool:
        """Claim ``uid`` for ``owner``: True when created (or already ours), or a stale one taken over."""
        path = self.path(uid)
        self.dir.mkdir(parents=True, exist_ok=True)
        host, pid = owner_host_pid(owner)
        for _ in range(4):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = self.read(path)
                if info is None:
                    continue  # released meanwhile: try again
                if info.get("owner") == owner:
                    return True
                if not self.stale(info):
                    return False
                if not self._remove_stale(path, info, owner):
                    return False
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"owner": owner, "uid": uid, "host": host, "pid": pid}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            return True
        return False

    def _remove_stale(self, path: Path, info: dict[str, Any], owner: str) -> bool:
        """Rename the stale claim aside; if what we renamed was a fresh claim another job made
        meanwhile, put it back (link fails if a third job claimed in between: that one wins)."""
        aside = path.with_name(f"{path.name}.{owner.replace(':', '_')}.stale")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return True  # someone else removed it: race for the fresh claim
        moved = self.read(aside) or {}
        if moved.get("owner") != info.get("owner"):
            try:
                os.link(aside, path)
            except OSError:
                pass
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        return True

    def holder(self, uid: str) -> str | None:
        """The owner of a live claim on ``uid`` (None when unclaimed or stale)."""
        info = self.read(self.path(uid))
        if info is None or self.stale(info):
            return None
        return info.get("owner") or "?"

    def release(self, uid: str, owner: str) -> None:
        path = self.path(uid)
        info = self.read(path)
        if info is not None and info.get("owner") == owner:
            path.unlink(missing_ok=True)

    def release_all(self, owner: str) -> None:
        for info, path in self.all():
            if info.get("owner") == owner:
                path.unlink(missing_ok=True)

    def touch(self, uids: list[str]) -> None:
        for uid in uids:
            try:
                os.utime(self.path(uid))
            except FileNotFoundError:
                pass

    def all(self) -> list[tuple[dict[str, Any], Path]]:
        if not self.dir.is_dir():
            return []
        out = []
        for path in sorted(self.dir.glob("*" + SUFFIX)):
            info = self.read(path)
            if info is not None:
                out.append((info, path))
        return out

    def live(self) -> dict[str, str]:
        """uid -> owner of every fresh claim."""
        return {info.get("uid", path.stem): info.get("owner", "?") for info, path in self.all() if not self.stale(info)}


class Heartbeat:
    """A daemon thread that keeps this job's claims fresh while it works (even inside one long video)."""

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harness-claim-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def add(self, uid: str) -> None:
        with self._lock:
            self.held.add(uid)

    def discard(self, uid: str) -> None:
        with self._lock:
            self.held.discard(uid)

    def _run(self) -> None:
        while not self._stop.wait(heartbeat_seconds()):
            with self._lock:
                held = list(self.held)
            self.claims.touch(held)
