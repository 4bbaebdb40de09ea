"""The face cache: crops as files, their metadata in SQLite index parts that many hosts may fill.

Layout::

    root/index/<shard>-<host>-<pid>-<rand>.sqlite   one part per preprocessing job (its only writer)
    root/index.sqlite                               the single index of caches made before parts
    root/claims/<sha1(uid)>.claim                   a job's claim on a video (see harness.data.claims)
    root/faces/<dataset>/<h>/<h16>/                 <frame>_<face>.png (lossless) and <frame>_<face>_mask.png

Why parts in rollback-journal mode: SQLite's WAL needs shared memory, so it breaks when hosts share
the file over NFS/Lustre/GPFS; and two hosts writing one database rely on network file locks. Here
no file has two writers: each job writes only its own part (journal_mode=DELETE, synchronous=FULL:
plain files, fsync'd at every commit), and readers open every part read-only and see their union.
An append-only log would need a parser and a compaction of its own; a part is queryable as it is.

The union: a video's row is the final one (done, no_face, failed) written last (``updated``); a
pending row counts only where no part has a final one. A video's crops are written before its row,
and its row carries each crop's size and CRC-32: a reader checks them, so a half-written or damaged
video is never served (``CacheDamageError``), and preprocessing redoes a video whose files are
missing or truncated. ``harness preprocess --compact`` folds the parts into one when no claim is
fresh. Crops are PNG (lossless, ``crop_format`` in the index); caches written with JPEG q95 still
read and say so. The format is part of the cache folder's name, so a lossless cache never mixes
with an old JPEG one.

Frames asked are frames served: a request for N frames of a video is the N indices
``sample_indices(frames_total, N)`` (linspace over the frames really decoded), and a reader that
scores passes N (``faces(uid, frames=N)``, ``status(uid, frames=N)``). The face finder tracks a face
from one sampled frame to the next, so a crop depends on the frames sampled before it: each frame row
carries that history as its ``chain`` (``frame_chains``; "" for the first frame and for a finder that
does not track), and a request is served only rows cut with its own history, whatever else the cache
holds. Rows of several requests live side by side; a job that fills the missing frames of one copies
the video's rows it keeps into its own part, so the winning part always holds all of a video's rows.
Rows of caches made before chains (NULL) have the history of their own frame set.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np

from harness.data.claims import (Claims, claim_is_stale, claim_stale_seconds, host_id, new_owner,  # noqa: F401
                                 owner_host_pid, pid_alive)
from harness.data.crop import CropRule
from harness.common.errors import HarnessError
from harness.common.files import cache_home, safe_name
from harness.data.video import sample_indices

DB_NAME = "index.sqlite"  # the single index of the old layout
INDEX_DIR = "index"
REFRESH_SECONDS = 0.2
FINAL_STATUSES = ("done", "failed", "no_face")
# A failure whose cause starts with this is an unexpected exception (a bug, a full disk, a race),
# not a property of the video: it is not final, the next run tries the video again.
TRANSIENT_CAUSE_PREFIX = "error:"
# Crop formats: PNG is lossless (what predict scores is what training and evaluation read);
# JPEG q95 is what caches held before.
DEFAULT_FORMAT = "png"
FORMATS = {"png": ".png", "jpeg": ".jpg"}
PNG_PARAMS = (1, 3)  # cv2.IMWRITE_PNG_COMPRESSION=1, cv2.IMWRITE_PNG_STRATEGY=RLE: fast, see bench_preprocess

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    uid TEXT PRIMARY KEY, dataset TEXT NOT NULL, method TEXT NOT NULL, compression TEXT NOT NULL,
    label INTEGER NOT NULL, split TEXT NOT NULL, path TEXT NOT NULL, mask_path TEXT,
    status TEXT NOT NULL, cause TEXT, message TEXT,
    frames_total INTEGER NOT NULL DEFAULT 0, frames_sampled INTEGER NOT NULL DEFAULT 0,
    frames_with_face INTEGER NOT NULL DEFAULT 0, faces INTEGER NOT NULL DEFAULT 0,
    has_mask INTEGER NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0, updated REAL NOT NULL,
    src_size INTEGER, src_mtime REAL, src_sha256 TEXT
);
CREATE INDEX IF NOT EXISTS videos_split ON videos (split, dataset);
CREATE TABLE IF NOT EXISTS frames (
    uid TEXT NOT NULL, frame_index INTEGER NOT NULL, faces INTEGER NOT NULL, chain TEXT,
    PRIMARY KEY (uid, frame_index, chain)
);
CREATE TABLE IF NOT EXISTS faces (
    uid TEXT NOT NULL, frame_index INTEGER NOT NULL, face_index INTEGER NOT NULL,
    file TEXT NOT NULL, mask_file TEXT, landmarks BLOB NOT NULL, box TEXT NOT NULL,
    crop_box TEXT NOT NULL, score REAL NOT NULL,
    size INTEGER, crc INTEGER, mask_size INTEGER, mask_crc INTEGER, chain TEXT,
    PRIMARY KEY (uid, frame_index, chain, face_index)
);
"""


def faces_cache_root(rule: CropRule, home: str | Path | None = None, crop_format: str = DEFAULT_FORMAT) -> Path:
    """The face cache of ``rule`` under the cache home (``home``, else ``harness.common.files.cache_home()``):
    one per detector, crop rule and crop format, shared by `harness run` and `harness preprocess`.
    A JPEG cache keeps the folder name it had before the format was part of it."""
    key = rule.cache_key() if crop_format == "jpeg" else f"{rule.cache_key()}-{crop_format}"
    return Path(home if home is not None else cache_home()).expanduser() / "faces" / key


class CacheError(HarnessError, RuntimeError):
    """A cache problem the user can act on: its message is one line with the fix."""


class CacheMismatchError(CacheError):
    """The cache was made with another crop rule; mixing them would corrupt comparisons."""


class CacheDamageError(CacheError):
    """A cached crop is missing or does not match the size and checksum its index row recorded."""

    def __init__(self, message: str, uid: str = "", path: str = "") -> None:
        super().__init__(message)
        self.uid, self.path = uid, path


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def disk_error(exc: BaseException, root: Path) -> CacheError | None:
    """The one-line CacheError for a read-only cache or a full disk, else None."""
    text = str(exc).lower()
    code = exc.errno if isinstance(exc, OSError) else None
    if code == errno.ENOSPC or "disk is full" in text or "no space" in text:
        return CacheError(f"the disk holding the face cache {root} is full ({exc}); free space or point --cache-dir "
                          "(or --face-cache) at another disk, then rerun the same command: finished videos are kept")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in text or "read-only" in text:
        return CacheError(f"the face cache {root} is read-only ({exc}); point --cache-dir (or $HARNESS_CACHE, or --face-cache) at a "
                          "writable folder, or preprocess everything first where it is writable")
    return None


def check_writable(root: Path, why: str) -> None:
    """A CacheError (one line, starting with ``why``: what needs to write) when nothing can be
    written in the cache folder ``root``: a read-only mount, a full disk. Root ignores permission
    bits, so the folder is tried, not asked."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir=root, prefix=".write-check-")
    except OSError as exc:
        error = disk_error(exc, root) or CacheError(f"cannot write in the face cache {root} ({exc})")
        raise CacheError(f"{why}: {error}") from None
    os.close(fd)
    os.unlink(probe)


def set_aside(path: Path) -> Path:
    """Rename a damaged index part out of the union (never delete it: its rows name crops on disk)."""
    aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    path.rename(aside)
    return aside


@dataclass
class CachedFace:
    uid: str
    frame_index: int
    face_index: int
    image: np.ndarray  # RGB uint8 crop
    landmarks: np.ndarray  # (68, 2) float32, crop pixels; (0, 2) for a pre-cropped face (crop basis "image")
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
    src_size: int | None = None
    src_mtime: float | None = None
    src_sha256: str | None = None


class FrameRow(NamedTuple):
    """One sampled frame of a video as the index holds it."""

    index: int  # decoded frame index
    chain: str  # the sampled frames before it that the face finder saw ("" when none mattered)
    faces: int  # faces found (0: none)


def frame_chains(indices: Iterable[int], tracking: bool = True) -> dict[int, str]:
    """Frame index -> its history key: a short hash of the sampled indices before it (the face
    finder tracks faces from one sampled frame to the next, so they shape its crop); "" for the first
    frame, and for every frame of a finder that does not track."""
    out: dict[int, str] = {}
    history = hashlib.sha1()
    for n, index in enumerate(sorted(int(i) for i in indices)):
        out[index] = history.hexdigest()[:12] if n and tracking else ""
        history.update(f"{index},".encode())
    return out


def pick_frames(rows: Iterable[FrameRow], total: int, frames: int) -> tuple[list[FrameRow], list[int]]:
    """The rows that serve a request for ``frames`` frames of a video of ``total`` decoded frames
    (``sample_indices``, each cut with the request's own history or with none), and the requested
    indices no row serves."""
    wanted = sample_indices(int(total), int(frames)).tolist()
    chains = frame_chains(wanted)
    have = {(r.index, r.chain): r for r in rows}
    chosen, missing = [], []
    for index in wanted:
        row = have.get((index, chains[index])) or have.get((index, ""))
        if row is None:
            missing.append(index)
        else:
            chosen.append(row)
    return chosen, missing


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


def encode_png(image: np.ndarray) -> bytes:
    """Lossless: decoding gives back ``image`` bit for bit."""
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_PNG_COMPRESSION, PNG_PARAMS[0], cv2.IMWRITE_PNG_STRATEGY, PNG_PARAMS[1]])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def encode_crop(image: np.ndarray, crop_format: str) -> bytes:
    return encode_png(image) if crop_format == "png" else encode_jpeg(image)


def encode_mask_png(mask: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def _rank(status: str, updated: float) -> tuple[bool, float]:
    """Which of a video's rows in several parts counts: a final one over a pending one, then the latest."""
    return status != "pending", float(updated)


class _Part:
    """One index file, open read-only (another job's) or read-write (this job's own)."""

    def __init__(self, path: Path, writable: bool) -> None:
        self.path = path
        self.writable = writable
        if writable:
            self.db = sqlite3.connect(str(path), timeout=120.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=DELETE")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        else:
            self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=120.0,
                                      isolation_level=None)
        names = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "videos" not in names:
            self.db.close()
            raise sqlite3.DatabaseError("no videos table")
        self.read_columns()

    def read_columns(self) -> None:
        self.columns = {table: {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                        for table in ("videos", "frames", "faces")}

    def col(self, table: str, name: str) -> str:
        """``name``, or NULL where an old index lacks the column."""
        return name if name in self.columns[table] else f"NULL AS {name}"


class FaceCache:
    """Read (and, for the preprocessing pipeline, write) a face cache rooted at ``root``."""

    def __init__(self, root: str | Path, create: bool = True) -> None:
        self.root = Path(root)
        self.create = create
        if not create and not self.exists(self.root):
            raise FileNotFoundError(
                f"no face cache at {self.root} (no {INDEX_DIR}/ or {DB_NAME}); run `harness preprocess` first "
                "or point at the folder you preprocessed into"
            )
        self.claims = Claims(self.root)
        self.part_tag = "all"
        self.notes: list[str] = []  # one line per damaged index part found (and what was done)
        self.damaged: list[Path] = []  # the damaged index parts left where they are (not set aside)
        self._own: _Part | None = None
        self._parts: dict[Path, _Part] = {}
        self._listed = -1e9
        self._expect: dict[str, tuple[int | None, int | None, str]] = {}  # file -> (size, crc, uid) of the last rows read
        self._refresh()

    @staticmethod
    def exists(root: Path) -> bool:
        return (root / DB_NAME).is_file() or any((root / INDEX_DIR).glob("*.sqlite"))

    # -- the parts ---------------------------------------------------------------------------------
    def part_paths(self) -> list[Path]:
        legacy = [self.root / DB_NAME] if (self.root / DB_NAME).is_file() else []
        folder = self.root / INDEX_DIR
        return legacy + (sorted(folder.glob("*.sqlite")) if folder.is_dir() else [])

    def _refresh(self) -> list[_Part]:
        """Open the parts that appeared since the last look; report (and, when writing, set aside) a
        damaged one: its videos are then missing and redone. The folder is listed at most every
        REFRESH_SECONDS (a per-video lookup must not list it each time)."""
        if time.monotonic() - self._listed < REFRESH_SECONDS:
            return list(self._parts.values())
        self._listed = time.monotonic()
        present = set(self.part_paths())
        for path in list(self._parts):
            if path not in present and self._parts[path] is not self._own:
                self._parts.pop(path).db.close()
        for path in sorted(present - set(self._parts)):
            try:
                if path == self.root / DB_NAME:
                    part = self._open_legacy(path)
                else:
                    part = _Part(path, writable=False)
            except sqlite3.DatabaseError as exc:
                if "locked" in str(exc):
                    continue  # a writer is in the middle of creating it: next look
                self._damaged(path, exc)
                continue
            self._parts[path] = part
        return list(self._parts.values())

    def _open_legacy(self, path: Path) -> _Part:
        """The old single index, in WAL mode: opened read-write (WAL readers need its -shm file),
        or as immutable where the folder is read-only. Never written."""
        part = object.__new__(_Part)
        part.path, part.writable = path, False
        try:
            part.db = sqlite3.connect(str(path), timeout=120.0, isolation_level=None)
            part.db.execute("SELECT count(*) FROM videos").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "no such table" in str(exc):
                raise
            part.db = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True, isolation_level=None)
            part.db.execute("SELECT count(*) FROM videos").fetchone()
        part.read_columns()
        return part

    def _damaged(self, path: Path, exc: BaseException) -> None:
        note = f"index part {path} is damaged ({exc})"
        if self.create:
            try:
                aside = set_aside(path)
                note += f"; set aside as {aside.name}, its videos will be preprocessed again"
            except OSError as error:
                note += (f"; it cannot be set aside here ({error.strerror or error}): its videos are not served "
                         "until `harness preprocess ... --repair` runs where the cache is writable")
        else:
            note += "; run `harness preprocess ... --repair` to set it aside and redo its videos"
        if path not in self.damaged and path.exists():
            self.damaged.append(path)
        if note not in self.notes:
            self.notes.append(note)

    def _writer(self) -> _Part:
        """This job's own part, created on its first write."""
        if self._own is None:
            name = f"{safe_name(self.part_tag)}-{safe_name(host_id())}-{os.getpid()}-{os.urandom(3).hex()}.sqlite"
            path = self.root / INDEX_DIR / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                # made under another name, then renamed: readers never open a part being initialised
                init = path.with_name(path.name + ".init")
                _Part(init, writable=True).db.close()
                os.replace(init, path)
                self._own = _Part(path, writable=True)
            except (OSError, sqlite3.Error) as exc:
                raise disk_error(exc, self.root) or CacheError(f"cannot write the face cache index {path}: {exc}") from exc
            self._parts[path] = self._own
        return self._own

    def _write(self, sql_batches: list[tuple[str, Any]]) -> None:
        """One transaction on this job's own part (statements with their rows: executemany)."""
        db = self._writer().db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in sql_batches:
                    db.executemany(sql, rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise disk_error(exc, self.root) or exc

    # -- meta / crop rule / format ----------------------------------------------------------------
    def meta(self, key: str) -> Any:
        parts = self._refresh()
        for part in ([self._own] if self._own else []) + parts:
            row = part.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row:
                return json.loads(row[0])
        return None

    def set_meta(self, key: str, value: Any) -> None:
        self._write([("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [(key, json.dumps(value))])])

    def check_crop_rule(self, rule: CropRule) -> None:
        """Record the crop rule on first use; refuse a different one later (a field the cache did not
        record counts as the value the harness used then)."""
        stored = self.meta("crop_rule")
        if stored is None:
            self.set_meta("crop_rule", rule.to_dict())
        elif CropRule.from_dict(stored) != rule:
            raise CacheMismatchError(
                f"the face cache at {self.root} was made with crop rule {stored}, not {rule.to_dict()}; "
                "use another cache folder (--face-cache DIR) or the same detector/margin/crop size"
            )
        if self._own is not None and self._own.db.execute("SELECT 1 FROM meta WHERE key = 'crop_rule'").fetchone() is None:
            self.set_meta("crop_rule", stored)

    @property
    def crop_rule(self) -> dict[str, Any] | None:
        return self.meta("crop_rule")

    @property
    def crop_format(self) -> str | None:
        """``png`` or ``jpeg`` (an old single index that recorded none was written as JPEG q95); None
        when nothing says (no crop written yet)."""
        stored = self.meta("crop_format")
        if stored:
            return str(stored)
        legacy = [p for p in self._refresh() if p.path.name == DB_NAME and p.path.parent == self.root]
        return "jpeg" if any(p.db.execute("SELECT 1 FROM faces LIMIT 1").fetchone() for p in legacy) else None

    def writing_format(self) -> str:
        """The format this job writes: the cache's own (an old JPEG cache stays JPEG), else lossless PNG."""
        fmt = self.crop_format or DEFAULT_FORMAT
        self.set_meta("crop_format", fmt)
        return fmt

    # -- claims: several jobs (hosts) on one cache ---------------------------------------------------
    def claim(self, uid: str, owner: str, redo_after: float | None = None, frames: int | None = None) -> bool:
        """Claim ``uid`` for ``owner`` (see ``new_owner``). False when the video is final (and its
        files intact) or another live job holds it; a dead or silent job's claim is taken over.
        ``redo_after``: the video is to be done again (damaged, or changed since it was cached): a
        final row counts only when written after this time (by another job that redid it meanwhile).
        ``frames``: final means every frame of a request for that many is cached (see ``is_final``)."""
        if self._final_since(uid, redo_after, frames):
            return False
        if not self.claims.take(uid, owner):
            return False
        if self._final_since(uid, redo_after, frames):  # another job finished it between the look and the claim
            self.claims.release(uid, owner)
            return False
        return True

    def claim_holder(self, uid: str) -> str | None:
        """The owner of a live claim on ``uid`` (None when unclaimed or the claim is stale)."""
        return self.claims.holder(uid)

    def heartbeat(self, owner: str) -> None:
        for info, path in self.claims.all():
            if info.get("owner") == owner:
                os.utime(path)

    def release(self, owner: str, uid: str | None = None) -> None:
        """Drop ``owner``'s claim on ``uid``, or all of them (unfinished videos go back to the pool)."""
        if uid is None:
            self.claims.release_all(owner)
        else:
            self.claims.release(uid, owner)

    # -- writing (preprocessing) ---------------------------------------------------------------
    @staticmethod
    def _final_row(video: CachedVideo) -> bool:
        return video.status in FINAL_STATUSES and not (
            video.status == "failed" and str(video.cause or "").startswith(TRANSIENT_CAUSE_PREFIX))

    def is_final(self, uid: str, frames: int | None = None) -> bool:
        """Whether ``uid`` needs no more work: failed for a reason of its own, or (for a request of
        ``frames`` frames, else for whatever it holds) every frame cached with its crop files intact."""
        video, problems = self.inspect(uid, frames)
        return video is not None and self._final_row(video) and not problems

    def inspect(self, uid: str, frames: int | None = None, deep: bool = False) -> tuple[CachedVideo | None, list[str]]:
        """``status(uid, frames)`` and, for a done video, the ``problems`` of the crops it is served,
        from one look at the index."""
        found = self._winner(uid)
        if found is None:
            return None, []
        video = self._as_asked(self._video(found[0]), found[1], frames)
        if video.status != "done":
            return video, []
        return video, [p for row in self._face_rows(found, None, frames) for p in self._row_problems(row, deep)]

    def _final_since(self, uid: str, after: float | None, frames: int | None = None) -> bool:
        if after is None:
            return self.is_final(uid, frames)
        found = self._winner(uid)
        return found is not None and float(found[0][-1]) > after and self.is_final(uid, frames)

    def mark_pending(self, records: list[Any]) -> None:
        now = time.time()
        self._write([(
            "INSERT OR IGNORE INTO videos (uid, dataset, method, compression, label, split, path,"
            " mask_path, status, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            [(r.uid, r.dataset, r.method, r.compression, int(r.label), r.split, str(r.path),
              str(r.mask_path) if r.mask_path else None, now) for r in records],
        )])

    def reusable(self, uid: str, deep: bool = False) -> tuple[list[FrameRow], list[dict[str, Any]], int | None]:
        """What a job filling ``uid``'s missing frames keeps: the frames (and their faces) of its cached
        rows whose crop files are intact (``deep``: checksums too), and the frame count decoded then.
        Nothing for a video that is not done or faceless."""
        found = self._winner(uid)
        video = self._video(found[0]) if found else None
        if video is None or video.status not in ("done", "no_face"):
            return [], [], None
        faces = self.face_rows(uid)
        broken = {(r["frame_index"], r["chain"]) for r in faces if self._row_problems(r, deep)}
        frames = [f for f in self.frame_rows(uid) if (f.index, f.chain) not in broken]
        return frames, [r for r in faces if (r["frame_index"], r["chain"]) not in broken], video.frames_total

    def write_video(self, record: Any, result: dict[str, Any],
                    kept: tuple[list[FrameRow], list[dict[str, Any]]] = ([], [])) -> None:
        """Store one processed video (its files are written) in one transaction of this job's own
        part: its status row, its sampled frames and faces with each crop's size and CRC-32, and the
        rows it ``kept`` of the video (``reusable``), so this part holds every row of the video. The
        status row's counts are those of the request it answered (``result["request"]`` frames)."""
        src_size = src_mtime = None
        try:
            st = os.stat(record.path)
            src_size, src_mtime = int(st.st_size), float(st.st_mtime)
        except OSError:
            pass
        frames = [FrameRow(int(i), str(c), int(n)) for i, c, n in [*kept[0], *result["frames"]]]
        faces = [*kept[1], *result["faces"]]
        status, counted = self._request_counts(result, frames)
        self._write([
            ("DELETE FROM faces WHERE uid = ?", [(record.uid,)]),
            ("DELETE FROM frames WHERE uid = ?", [(record.uid,)]),
            ("INSERT OR REPLACE INTO frames (uid, frame_index, chain, faces) VALUES (?, ?, ?, ?)",
             [(record.uid, f.index, f.chain, f.faces) for f in frames]),
            ("INSERT OR REPLACE INTO faces (uid, frame_index, chain, face_index, file, mask_file, landmarks, box,"
             " crop_box, score, size, crc, mask_size, mask_crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             [(record.uid, f["frame_index"], f.get("chain", ""), f["face_index"], f["file"], f.get("mask_file"),
               np.asarray(f["landmarks"], dtype=np.float32).tobytes(), json.dumps(list(f["box"])),
               json.dumps(list(f["crop_box"])), float(f["score"]), f.get("size"), f.get("crc"),
               f.get("mask_size"), f.get("mask_crc")) for f in faces]),
            ("INSERT OR REPLACE INTO videos (uid, dataset, method, compression, label, split, path,"
             " mask_path, status, cause, message, frames_total, frames_sampled, frames_with_face,"
             " faces, has_mask, seconds, updated, src_size, src_mtime, src_sha256)"
             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             [(record.uid, record.dataset, record.method, record.compression, int(record.label),
               record.split, str(record.path), str(record.mask_path) if record.mask_path else None,
               status, result.get("cause") if status == result["status"] else None,
               result.get("message") if status == result["status"] else None,
               int(result.get("frames_total", 0)), *counted,
               int(any(f.get("mask_file") for f in faces)), float(result.get("seconds", 0.0)), time.time(),
               src_size, src_mtime, result.get("sha256"))]),
        ])

    @staticmethod
    def _request_counts(result: dict[str, Any], frames: list[FrameRow]) -> tuple[str, tuple[int, int, int]]:
        """The status and (frames, frames with a face, faces) of the request ``result`` answered."""
        if result["status"] in ("done", "no_face") and result.get("request"):
            frames, _ = pick_frames(frames, int(result.get("frames_total", 0)), int(result["request"]))
        faces = sum(f.faces for f in frames)
        status = result["status"] if result["status"] not in ("done", "no_face") else ("done" if faces else "no_face")
        return status, (len(frames), sum(1 for f in frames if f.faces > 0), faces)

    # -- reading -------------------------------------------------------------------------------
    _VIDEO_COLUMNS = ("uid", "dataset", "method", "compression", "label", "split", "path", "status", "cause",
                      "message", "frames_total", "frames_sampled", "frames_with_face", "faces", "has_mask",
                      "src_size", "src_mtime", "src_sha256", "updated")

    def _select_videos(self, part: _Part, where: str, args: tuple) -> Iterator[tuple]:
        cols = ", ".join(part.col("videos", c) for c in self._VIDEO_COLUMNS)
        yield from part.db.execute(f"SELECT {cols} FROM videos{where}", args)

    def _union(self, where: str = "", args: tuple = ()) -> dict[str, tuple[tuple, _Part]]:
        """uid -> (winning row, its part) over every part."""
        best: dict[str, tuple[tuple, _Part]] = {}
        for part in self._refresh():
            try:
                rows = list(self._select_videos(part, where, args))
            except sqlite3.DatabaseError as exc:
                self._damaged(part.path, exc)
                continue
            for row in rows:
                old = best.get(row[0])
                if old is None or _rank(row[7], row[-1]) > _rank(old[0][7], old[0][-1]):
                    best[row[0]] = (row, part)
        return best

    @staticmethod
    def _video(row: tuple) -> CachedVideo:
        (uid, dataset, method, compression, label, split, path, status, cause, message,
         frames_total, frames_sampled, frames_with_face, faces, has_mask, src_size, src_mtime, src_sha256, _) = row
        return CachedVideo(
            uid=uid, dataset=dataset, method=method, compression=compression, label=int(label),
            split=split, status=status, cause=cause, frames_total=int(frames_total),
            frames_sampled=int(frames_sampled), frames_with_face=int(frames_with_face),
            has_mask=bool(has_mask), faces=int(faces), path=path, message=message,
            src_size=src_size, src_mtime=src_mtime, src_sha256=src_sha256,
        )

    def videos(self, split: str | None = None, dataset: str | None = None, status: str | None = None,
               frames: int | None = None) -> list[CachedVideo]:
        """Video rows (metadata only) of the union of the index parts, optionally filtered, by uid;
        with ``frames``, as a request for that many frames sees them (see ``status``)."""
        clauses, args = [], []
        for column, value in (("split", split), ("dataset", dataset)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        videos = [self._as_asked(self._video(row), part, frames) for row, part in self._union(where, tuple(args)).values()]
        return sorted((v for v in videos if status is None or v.status == status), key=lambda v: v.uid)

    def _winner(self, uid: str) -> tuple[tuple, _Part] | None:
        return self._union(" WHERE uid = ?", (uid,)).get(uid)

    def status(self, uid: str, frames: int | None = None) -> CachedVideo | None:
        """The video's row (status, cause, counts), or None if it was never queued. With ``frames``,
        as a request for that many frames sees it: its counts are those of the requested frames, its
        status "done" or "no_face" by their faces, and "pending" while one of them is not cached."""
        found = self._winner(uid)
        return self._as_asked(self._video(found[0]), found[1], frames) if found else None

    def _as_asked(self, video: CachedVideo, part: _Part, frames: int | None) -> CachedVideo:
        if frames is None or video.status not in ("done", "no_face"):
            return video
        rows, missing = pick_frames(self._frame_rows(part, video.uid), video.frames_total, frames)
        faces = sum(r.faces for r in rows)
        status = "pending" if missing else ("done" if faces else "no_face")
        return replace(video, status=status, frames_sampled=len(rows), faces=faces,
                       frames_with_face=sum(1 for r in rows if r.faces > 0))

    def _frame_rows(self, part: _Part, uid: str) -> list[FrameRow]:
        rows = part.db.execute(f"SELECT frame_index, {part.col('frames', 'chain')}, faces FROM frames WHERE uid = ?"
                               " ORDER BY frame_index", (uid,)).fetchall()
        legacy = frame_chains(i for i, c, _ in rows if c is None)  # rows written before chains: their own history
        return [FrameRow(int(i), legacy[int(i)] if c is None else str(c), int(n)) for i, c, n in rows]

    def _asked(self, found: tuple[tuple, _Part], frames: int | None) -> tuple[list[FrameRow], set[tuple[int, str]] | None]:
        """The winner's frame rows, and the (index, chain) keys a request for ``frames`` is served (None:
        every row); none while one of its frames is not cached (never a part of the request)."""
        rows = self._frame_rows(found[1], found[0][0])
        if frames is None:
            return rows, None
        chosen, missing = pick_frames(rows, self._video(found[0]).frames_total, frames)
        return rows, set() if missing else {(r.index, r.chain) for r in chosen}

    def frame_rows(self, uid: str, frames: int | None = None) -> list[FrameRow]:
        """Every sampled frame of the video, faceless ones included (with ``frames``: those a request
        for that many frames is served), by frame index."""
        found = self._winner(uid)
        if found is None:
            return []
        rows, keep = self._asked(found, frames)
        return [r for r in rows if keep is None or (r.index, r.chain) in keep]

    def frames(self, uid: str, frames: int | None = None) -> list[tuple[int, int]]:
        """``[(frame_index, faces_found), ...]`` for every sampled frame (see ``frame_rows``)."""
        return [(r.index, r.faces) for r in self.frame_rows(uid, frames)]

    def face_rows(self, uid: str, face_index: int | None = None, frames: int | None = None) -> list[dict[str, Any]]:
        """Face metadata without decoding images (cheap); only face ``face_index`` of each frame
        when given (0 is the largest), filtered in SQL; with ``frames``, only the faces of the frames
        a request for that many frames is served. Each row has the crop's recorded size and CRC-32
        (None in caches written before they were recorded) and its frame's history (``chain``)."""
        found = self._winner(uid)
        return [] if found is None else self._face_rows(found, face_index, frames)

    def _face_rows(self, found: tuple[tuple, _Part], face_index: int | None, frames: int | None) -> list[dict[str, Any]]:
        uid, part = found[0][0], found[1]
        frame_rows, keep = self._asked(found, frames)
        legacy = {r.index: r.chain for r in frame_rows}  # a row written before chains (a video's rows are all of one kind)
        where, args = ("uid = ?", (uid,)) if face_index is None else ("uid = ? AND face_index = ?", (uid, face_index))
        extra = ", ".join(part.col("faces", c) for c in ("size", "crc", "mask_size", "mask_crc", "chain"))
        rows = part.db.execute(
            f"SELECT frame_index, face_index, file, mask_file, landmarks, box, crop_box, score, {extra} FROM faces"
            f" WHERE {where} ORDER BY frame_index, face_index", args)
        out = [
            dict(frame_index=int(fi), face_index=int(fa), file=file, mask_file=mask_file,
                 landmarks=np.frombuffer(lm, dtype=np.float32).reshape(-1, 2).copy(),
                 box=tuple(json.loads(box)), crop_box=tuple(json.loads(cbox)), score=float(score),
                 size=size, crc=crc, mask_size=msize, mask_crc=mcrc,
                 chain=legacy.get(int(fi), "") if chain is None else str(chain))
            for fi, fa, file, mask_file, lm, box, cbox, score, size, crc, msize, mcrc, chain in rows
        ]
        out = [r for r in out if keep is None or (r["frame_index"], r["chain"]) in keep]
        # load_image checks what it reads against these (callers pass only the file name)
        self._expect = {r["file"]: (r["size"], r["crc"], uid) for r in out}
        self._expect.update({r["mask_file"]: (r["mask_size"], r["mask_crc"], uid) for r in out if r["mask_file"]})
        return out

    def faces(self, uid: str, face_index: int | None = None, frames: int | None = None) -> list[CachedFace]:
        """Every cached face of a video (or only face ``face_index`` of each frame; with ``frames``,
        of the frames a request for that many is served) with its crop decoded and checked, by frame
        then face (largest first). A reader that scores passes ``frames``."""
        out = []
        for row in self.face_rows(uid, face_index, frames):
            out.append(CachedFace(
                uid=uid, frame_index=row["frame_index"], face_index=row["face_index"],
                image=self.load_image(row["file"]), landmarks=row["landmarks"], box=row["box"],
                crop_box=row["crop_box"],
                mask=self.load_mask(row["mask_file"]) if row["mask_file"] else None, score=row["score"],
            ))
        return out

    def _checked_bytes(self, relative: str) -> bytes:
        size, crc, uid = self._expect.get(relative, (None, None, ""))
        path = self.root / relative
        fix = (f"rerun the same command (it redoes damaged videos) or `harness preprocess <dataset> --repair "
               f"--face-cache {self.root}`")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CacheDamageError(f"cached crop {path} of video {uid or '?'} is missing ({exc.strerror}); {fix}",
                                   uid, str(path)) from None
        if (size is not None and len(data) != size) or (crc is not None and crc32(data) != crc):
            raise CacheDamageError(f"cached crop {path} of video {uid or '?'} is damaged ({len(data)} bytes, "
                                   f"expected {size}, checksum mismatch); {fix}", uid, str(path))
        return data

    def load_image(self, relative: str) -> np.ndarray:
        import cv2

        image = cv2.imdecode(np.frombuffer(self._checked_bytes(relative), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CacheDamageError(f"cached crop {self.root / relative} is unreadable; rerun `harness preprocess "
                                   "<dataset> --repair`", "", str(self.root / relative))
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def load_mask(self, relative: str) -> np.ndarray:
        import cv2

        mask = cv2.imdecode(np.frombuffer(self._checked_bytes(relative), np.uint8), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise CacheDamageError(f"cached mask {self.root / relative} is unreadable; rerun `harness preprocess "
                                   "<dataset> --repair`", "", str(self.root / relative))
        return mask.astype(np.float32) / 255.0

    def problems(self, uid: str, deep: bool = False, frames: int | None = None) -> list[str]:
        """What is wrong with a done video's crop files (with ``frames``: those a request for that
        many frames is served): missing, or not at their recorded size (``deep``: checksums too,
        which reads every byte). Empty when intact."""
        return self.inspect(uid, frames, deep)[1]

    def _row_problems(self, row: dict[str, Any], deep: bool) -> list[str]:
        out = []
        for name, size, crc in ((row["file"], row["size"], row["crc"]), (row["mask_file"], row["mask_size"], row["mask_crc"])):
            if name is None:
                continue
            path = self.root / name
            try:
                if deep:
                    data = path.read_bytes()
                    got, ok = len(data), crc is None or crc32(data) == crc
                else:
                    got, ok = path.stat().st_size, True
            except OSError:
                out.append(f"{name}: missing")
                continue
            if (size is not None and got != size) or (size is None and got == 0):
                out.append(f"{name}: {got} bytes, expected {size}")
            elif not ok:
                out.append(f"{name}: checksum mismatch")
        return out

    def summary(self) -> dict[str, Any]:
        """Counts for reports: videos by status, causes of failure, frames and faces."""
        videos = self.videos()
        by_status: dict[str, int] = {}
        causes: dict[str, int] = {}
        for v in videos:
            by_status[v.status] = by_status.get(v.status, 0) + 1
            if v.cause is not None:
                causes[v.cause] = causes.get(v.cause, 0) + 1
        return {
            "root": str(self.root),
            "videos": len(videos),
            "by_status": by_status,
            "failures_by_cause": causes,
            "frames": sum(v.frames_sampled for v in videos),
            "frames_with_face": sum(v.frames_with_face for v in videos),
            "faces": sum(v.faces for v in videos),
            "crop_rule": self.crop_rule,
            "crop_format": self.crop_format,
            "index_parts": len(self._parts),
        }

    def close(self) -> None:
        for part in self._parts.values():
            part.db.close()
        self._parts.clear()
        self._own = None

    def __enter__(self) -> "FaceCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
