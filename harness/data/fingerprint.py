"""What a data file *is*, independent of where it lies: the sha256 of its bytes.

A video's frames are sampled, and an evaluation is identified, by the content of its files, so a
dataset copied to another disk or machine keeps its ids and its cached faces, and an edited file
never passes for the one it replaced. Hashing a large test set once costs about a second per GB;
the digests are remembered under the cache home, keyed by (real path, size, mtime, inode), so
later calls cost a ``stat``. The memo is only a shortcut: when it cannot be read or written the
digest is computed again, never guessed.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterable, Iterator

from harness.common.digest import sha256_file, sha256_json
from harness.common.files import cache_home
from harness.extend.types import VideoRecord

MEMO_FILE = "digests.sqlite"
#: False inside ``memo_read_only``: digests are read from the memo but never added to it
_REMEMBER: ContextVar[bool] = ContextVar("harness_remember_digests", default=True)


@contextmanager
def memo_read_only() -> Iterator[None]:
    """Digests computed inside are not remembered: a dry run writes nothing, not even the memo."""
    token = _REMEMBER.set(False)
    try:
        yield
    finally:
        _REMEMBER.reset(token)


def _memo_path() -> Path:
    return cache_home() / MEMO_FILE


def _stat_key(path: Path) -> tuple[str, int, int, int]:
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino


def _connect(create: bool) -> sqlite3.Connection | None:
    memo = _memo_path()
    try:
        if create:
            memo.parent.mkdir(parents=True, exist_ok=True)
        elif not memo.is_file():
            return None
        db = sqlite3.connect(str(memo), timeout=10)
        db.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                    " inode INTEGER, sha256 TEXT)")
        return db
    except (OSError, sqlite3.Error):
        return None  # a read-only or damaged memo: hash without it


def content_digest(path: str | Path) -> str:
    """sha256 of ``path``'s bytes, remembered while the file's size, mtime and inode stay the same."""
    path = Path(path)
    key = _stat_key(path)
    db = _connect(create=False)
    if db is not None:
        try:
            row = db.execute("SELECT size, mtime_ns, inode, sha256 FROM digests WHERE path = ?", (key[0],)).fetchone()
            if row is not None and tuple(row[:3]) == key[1:]:
                return str(row[3])
        except sqlite3.Error:
            pass
        finally:
            db.close()
    digest = sha256_file(path)
    db = _connect(create=True) if _REMEMBER.get() else None
    if db is not None:
        try:
            with db:
                db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)", (*key, digest))
        except sqlite3.Error:
            pass
        finally:
            db.close()
    return digest


def record_fingerprint(record: VideoRecord) -> dict[str, Any]:
    """What of one video record determines its numbers: id, label and the content of its media
    (and of its mask video, where it has one)."""
    return {"uid": record.uid, "label": int(record.label), "sha256": content_digest(record.path),
            "mask_sha256": content_digest(record.mask_path) if record.mask_path else None}


def records_fingerprint(records: Iterable[VideoRecord]) -> str:
    """One sha256 for a set of video records (order does not matter)."""
    return sha256_json(sorted((record_fingerprint(r) for r in records), key=lambda f: f["uid"]))
