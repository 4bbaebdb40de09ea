"""The face cache: crops as files, everything else in one SQLite index (root/index.sqlite).

Layout::

    root/index.sqlite                 videos (one status row per uid), frames, faces, meta
    root/faces/<dataset>/<h>/<h16>/   <frame>_<face>.jpg (JPEG q95) and <frame>_<face>_mask.png

Only the index grows with the dataset; reads go one video at a time, so memory stays bounded.
A video's rows are written in one transaction, after its files: a run killed mid-video leaves no
row for it and the next run redoes it (resumable, idempotent). Several processes may write the
same cache (WAL journal + busy timeout); the preprocessing parent process is the only writer of a
local run.

Several preprocessing jobs may share one cache: before working on a video a job *claims* it (a row
in ``claims`` with its owner, host, pid and a heartbeat) and only the claim's owner writes the
video's files and rows. A claim whose process is gone (same host) or whose heartbeat is older than
``claim_stale_seconds()`` (other hosts) is taken over, so a killed job never blocks the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.crop import CropRule
from harness.files import cache_home

DB_NAME = "index.sqlite"
FINAL_STATUSES = ("done", "failed", "no_face")
# A failure whose cause starts with this is an unexpected exception (a bug, a full disk, a race),
# not a property of the video: it is not final, the next run tries the video again.
TRANSIENT_CAUSE_PREFIX = "error:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    uid TEXT PRIMARY KEY, dataset TEXT NOT NULL, method TEXT NOT NULL, compression TEXT NOT NULL,
    label INTEGER NOT NULL, split TEXT NOT NULL, path TEXT NOT NULL, mask_path TEXT,
    status TEXT NOT NULL, cause TEXT, message TEXT,
    frames_total INTEGER NOT NULL DEFAULT 0, frames_sampled INTEGER NOT NULL DEFAULT 0,
    frames_with_face INTEGER NOT NULL DEFAULT 0, faces INTEGER NOT NULL DEFAULT 0,
    has_mask INTEGER NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS videos_split ON videos (split, dataset);
CREATE TABLE IF NOT EXISTS frames (
    uid TEXT NOT NULL, frame_index INTEGER NOT NULL, faces INTEGER NOT NULL,
    PRIMARY KEY (uid, frame_index)
);
CREATE TABLE IF NOT EXISTS claims (
    uid TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    uid TEXT NOT NULL, frame_index INTEGER NOT NULL, face_index INTEGER NOT NULL,
    file TEXT NOT NULL, mask_file TEXT, landmarks BLOB NOT NULL, box TEXT NOT NULL,
    crop_box TEXT NOT NULL, score REAL NOT NULL,
    PRIMARY KEY (uid, frame_index, face_index)
);
"""


def faces_cache_root(rule: CropRule, home: str | Path | None = None) -> Path:
    """The face cache of ``rule`` under the cache home (``home``, else ``harness.files.cache_home()``):
    one per detector and crop rule, shared by `harness run` and `harness preprocess`."""
    return Path(home if home is not None else cache_home()).expanduser() / "faces" / rule.cache_key()


def new_owner() -> str:
    """A claim owner id for this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def owner_host_pid(owner: str) -> tuple[str, int]:
    host, pid, _ = owner.rsplit(":", 2)
    return host, int(pid)


def claim_stale_seconds() -> float:
    """A claim from another host with no heartbeat for this long is taken over (HARNESS_CLAIM_STALE_S)."""
    try:
        return float(os.environ.get("HARNESS_CLAIM_STALE_S", "600"))
    except ValueError:
        return 600.0


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
    if host == socket.gethostname():
        return not pid_alive(int(pid))
    return time.time() - float(heartbeat) > claim_stale_seconds()


class CacheMismatchError(RuntimeError):
    """The cache was made with another crop rule; mixing them would corrupt comparisons."""


@dataclass
class CachedFace:
    uid: str
    frame_index: int
    face_index: int
    image: np.ndarray  # RGB uint8 crop
    landmarks: np.ndarray  # (68, 2) float32, crop pixels
    box: tuple[float, float, float, float]  # detector box, frame pixels
    crop_box: tuple[float, float, float, float]  # the crop's square, frame pixels
    mask: np.ndarray | None  # float32 HxW in [0, 1], or None
    score: float = 0.0


@dataclass
class CachedVideo:
    uid: str
    dataset: str
    method: str
    compression: str
    label: int
    split: str
    status: str  # "done" | "failed" | "no_face" | "pending"
    cause: str | None
    frames_total: int
    frames_sampled: int
    frames_with_face: int
    has_mask: bool
    faces: int = 0
    path: str = ""
    message: str | None = None


def safe_name(text: str) -> str:
    """``text`` with every character but letters, digits and ``-_.`` replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def video_dir_name(uid: str) -> str:
    """A short, filesystem-safe folder for a uid (uids contain '/' and arbitrary names)."""
    digest = hashlib.sha1(uid.encode("utf-8")).hexdigest()
    return f"faces/{safe_name(uid.split('/', 1)[0] or '_')}/{digest[:2]}/{digest[:16]}"


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def encode_mask_png(mask: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


class FaceCache:
    """Read (and, for the preprocessing pipeline, write) a face cache rooted at ``root``."""

    def __init__(self, root: str | Path, create: bool = True) -> None:
        self.root = Path(root)
        db = self.root / DB_NAME
        if not create and not db.is_file():
            raise FileNotFoundError(
                f"no face cache at {self.root} ({DB_NAME} is missing); run `harness preprocess` first "
                "or point at the folder you preprocessed into"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(db), timeout=120.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    # -- meta / crop rule ----------------------------------------------------------------------
    def meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def check_crop_rule(self, rule: CropRule) -> None:
        """Record the crop rule on first use; refuse a different one later (a field the cache did not
        record counts as the value the harness used then)."""
        stored = self.meta("crop_rule")
        if stored is None:
            self.set_meta("crop_rule", rule.to_dict())
        elif CropRule.from_dict(stored) != rule:
            raise CacheMismatchError(
                f"the face cache at {self.root} was made with crop rule {stored}, not {rule.to_dict()}; "
                "use another cache folder (--cache DIR) or the same detector/margin/crop size"
            )

    @property
    def crop_rule(self) -> dict[str, Any] | None:
        return self.meta("crop_rule")

    # -- writing (preprocessing) ---------------------------------------------------------------
    def final_uids(self) -> set[str]:
        """Videos that need no more work: done, no face, or failed for a reason of the video's own."""
        marks = ",".join("?" * len(FINAL_STATUSES))
        rows = self._db.execute(
            f"SELECT uid FROM videos WHERE status IN ({marks}) AND NOT (status = 'failed' AND cause LIKE ?)",
            (*FINAL_STATUSES, TRANSIENT_CAUSE_PREFIX + "%"))
        return {r[0] for r in rows}

    def is_final(self, uid: str) -> bool:
        row = self._db.execute("SELECT status, cause FROM videos WHERE uid = ?", (uid,)).fetchone()
        return bool(row) and row[0] in FINAL_STATUSES and not (
            row[0] == "failed" and str(row[1] or "").startswith(TRANSIENT_CAUSE_PREFIX))

    # -- claims: several jobs on one cache -------------------------------------------------------
    def claim(self, uid: str, owner: str) -> bool:
        """Claim ``uid`` for ``owner`` (see ``new_owner``). False when the video is final or another
        live job holds it; a dead or silent job's claim is taken over."""
        with self._transaction():
            if self.is_final(uid):
                return False
            row = self._db.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE uid = ?", (uid,)).fetchone()
            if row is not None and row[0] != owner and not claim_is_stale(*row[1:]):
                return False
            host, pid = owner_host_pid(owner)
            self._db.execute("INSERT OR REPLACE INTO claims (uid, owner, host, pid, heartbeat) VALUES (?, ?, ?, ?, ?)",
                             (uid, owner, host, pid, time.time()))
            return True

    def claim_holder(self, uid: str) -> str | None:
        """The owner of a live claim on ``uid`` (None when unclaimed or the claim is stale)."""
        row = self._db.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE uid = ?", (uid,)).fetchone()
        return row[0] if row is not None and not claim_is_stale(*row[1:]) else None

    def heartbeat(self, owner: str) -> None:
        self._db.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), owner))

    def release(self, owner: str) -> None:
        """Drop every claim of ``owner`` (its videos not finished go back to the pool)."""
        self._db.execute("DELETE FROM claims WHERE owner = ?", (owner,))

    def mark_pending(self, records: list[Any]) -> None:
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO videos (uid, dataset, method, compression, label, split, path,"
                " mask_path, status, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                [
                    (r.uid, r.dataset, r.method, r.compression, int(r.label), r.split, str(r.path),
                     str(r.mask_path) if r.mask_path else None, now)
                    for r in records
                ],
            )

    def write_video(self, record: Any, result: dict[str, Any]) -> None:
        """Store one processed video: its status row, sampled frames and faces, atomically (and
        drop the claim on it, if any, in the same transaction)."""
        with self._transaction():
            self._db.execute("DELETE FROM claims WHERE uid = ?", (record.uid,))
            self._db.execute("DELETE FROM faces WHERE uid = ?", (record.uid,))
            self._db.execute("DELETE FROM frames WHERE uid = ?", (record.uid,))
            self._db.executemany(
                "INSERT INTO frames (uid, frame_index, faces) VALUES (?, ?, ?)",
                [(record.uid, int(i), int(n)) for i, n in result["frames"]],
            )
            self._db.executemany(
                "INSERT INTO faces (uid, frame_index, face_index, file, mask_file, landmarks, box,"
                " crop_box, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (record.uid, f["frame_index"], f["face_index"], f["file"], f.get("mask_file"),
                     np.asarray(f["landmarks"], dtype=np.float32).tobytes(), json.dumps(list(f["box"])),
                     json.dumps(list(f["crop_box"])), float(f["score"]))
                    for f in result["faces"]
                ],
            )
            self._db.execute(
                "INSERT OR REPLACE INTO videos (uid, dataset, method, compression, label, split, path,"
                " mask_path, status, cause, message, frames_total, frames_sampled, frames_with_face,"
                " faces, has_mask, seconds, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.uid, record.dataset, record.method, record.compression, int(record.label),
                    record.split, str(record.path), str(record.mask_path) if record.mask_path else None,
                    result["status"], result.get("cause"), result.get("message"),
                    int(result.get("frames_total", 0)), len(result["frames"]),
                    sum(1 for _, n in result["frames"] if n > 0), len(result["faces"]),
                    int(bool(result.get("has_mask"))), float(result.get("seconds", 0.0)), time.time(),
                ),
            )

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type, exc, tb) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _transaction(self) -> "FaceCache._Tx":
        return FaceCache._Tx(self._db)

    # -- reading -------------------------------------------------------------------------------
    def _video(self, row: tuple) -> CachedVideo:
        (uid, dataset, method, compression, label, split, path, status, cause, message,
         frames_total, frames_sampled, frames_with_face, faces, has_mask) = row
        return CachedVideo(
            uid=uid, dataset=dataset, method=method, compression=compression, label=int(label),
            split=split, status=status, cause=cause, frames_total=int(frames_total),
            frames_sampled=int(frames_sampled), frames_with_face=int(frames_with_face),
            has_mask=bool(has_mask), faces=int(faces), path=path, message=message,
        )

    _VIDEO_COLUMNS = (
        "uid, dataset, method, compression, label, split, path, status, cause, message, frames_total,"
        " frames_sampled, frames_with_face, faces, has_mask"
    )

    def videos(self, split: str | None = None, dataset: str | None = None, status: str | None = None) -> list[CachedVideo]:
        """Video rows (metadata only), optionally filtered, ordered by uid."""
        clauses, args = [], []
        for column, value in (("split", split), ("dataset", dataset), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(f"SELECT {self._VIDEO_COLUMNS} FROM videos{where} ORDER BY uid", args)
        return [self._video(r) for r in rows]

    def status(self, uid: str) -> CachedVideo | None:
        """The video's row (status, cause, counts), or None if it was never queued."""
        row = self._db.execute(f"SELECT {self._VIDEO_COLUMNS} FROM videos WHERE uid = ?", (uid,)).fetchone()
        return self._video(row) if row else None

    def frames(self, uid: str) -> list[tuple[int, int]]:
        """``[(frame_index, faces_found), ...]`` for every sampled frame, faceless ones included."""
        return [tuple(r) for r in self._db.execute(
            "SELECT frame_index, faces FROM frames WHERE uid = ? ORDER BY frame_index", (uid,))]

    def face_rows(self, uid: str, face_index: int | None = None) -> list[dict[str, Any]]:
        """Face metadata without decoding images (cheap); only face ``face_index`` of each frame
        when given (0 is the largest), filtered in SQL."""
        where, args = ("uid = ?", (uid,)) if face_index is None else ("uid = ? AND face_index = ?", (uid, face_index))
        rows = self._db.execute(
            "SELECT frame_index, face_index, file, mask_file, landmarks, box, crop_box, score FROM faces"
            f" WHERE {where} ORDER BY frame_index, face_index", args)
        return [
            dict(frame_index=int(fi), face_index=int(fa), file=file, mask_file=mask_file,
                 landmarks=np.frombuffer(lm, dtype=np.float32).reshape(-1, 2).copy(),
                 box=tuple(json.loads(box)), crop_box=tuple(json.loads(cbox)), score=float(score))
            for fi, fa, file, mask_file, lm, box, cbox, score in rows
        ]

    def faces(self, uid: str, face_index: int | None = None) -> list[CachedFace]:
        """Every cached face of a video (or only face ``face_index`` of each frame) with its crop
        decoded, by frame then face (largest first)."""
        out = []
        for row in self.face_rows(uid, face_index):
            out.append(CachedFace(
                uid=uid, frame_index=row["frame_index"], face_index=row["face_index"],
                image=self.load_image(row["file"]), landmarks=row["landmarks"], box=row["box"],
                crop_box=row["crop_box"],
                mask=self.load_mask(row["mask_file"]) if row["mask_file"] else None, score=row["score"],
            ))
        return out

    def load_image(self, relative: str) -> np.ndarray:
        import cv2

        path = self.root / relative
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cached crop {path} is missing or unreadable; rerun `harness preprocess`")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def load_mask(self, relative: str) -> np.ndarray:
        import cv2

        path = self.root / relative
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise FileNotFoundError(f"cached mask {path} is missing or unreadable; rerun `harness preprocess`")
        return mask.astype(np.float32) / 255.0

    def summary(self) -> dict[str, Any]:
        """Counts for reports: videos by status, causes of failure, frames and faces."""
        by_status = dict(self._db.execute("SELECT status, COUNT(*) FROM videos GROUP BY status").fetchall())
        causes = dict(self._db.execute(
            "SELECT cause, COUNT(*) FROM videos WHERE cause IS NOT NULL GROUP BY cause").fetchall())
        frames, with_face = self._db.execute(
            "SELECT COALESCE(SUM(frames_sampled), 0), COALESCE(SUM(frames_with_face), 0) FROM videos").fetchone()
        faces = self._db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        return {
            "root": str(self.root),
            "videos": sum(by_status.values()),
            "by_status": by_status,
            "failures_by_cause": causes,
            "frames": int(frames),
            "frames_with_face": int(with_face),
            "faces": int(faces),
            "crop_rule": self.crop_rule,
        }

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "FaceCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
