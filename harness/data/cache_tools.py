"""Whole-cache operations: verify every crop, fold the index parts into one, count completeness."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.common.files import safe_name
from harness.data.cache import DB_NAME, INDEX_DIR, CacheError, FaceCache, _Part, check_writable, disk_error, host_id, set_aside


@dataclass
class VerifyReport:
    videos: int = 0  # done videos checked
    crops: int = 0
    damaged: dict[str, list[str]] = field(default_factory=dict)  # uid -> what is wrong
    notes: list[str] = field(default_factory=list)  # damaged index parts
    set_aside: list[str] = field(default_factory=list)  # damaged parts set aside earlier (kept, not read)


def verify(cache: FaceCache) -> VerifyReport:
    """Read every crop of every done video and check it against its recorded size and CRC-32."""
    report = VerifyReport()
    for video in cache.videos(status="done"):
        report.videos += 1
        report.crops += video.faces
        problems = cache.problems(video.uid, deep=True)
        if problems:
            report.damaged[video.uid] = problems
    report.notes = list(cache.notes)
    report.set_aside = sorted(p.name for p in (cache.root / INDEX_DIR).glob("*.damaged-*")) if (cache.root / INDEX_DIR).is_dir() else []
    return report


def compact(root: Path) -> str:
    """Fold every index part (and an old single index) into one new part; refuse while a claim is
    fresh (a job is working) or where the cache cannot be written. A damaged part is set aside
    (renamed ``*.damaged-<time>``, as preprocessing does), never deleted: its rows name crops on
    disk. Returns what was done, in one line."""
    check_writable(root, "--compact writes a new index part")  # read-only: one line, before any work
    with FaceCache(root, create=False) as cache:
        live = cache.claims.live()
        if live:
            owners = sorted(set(live.values()))
            raise CacheError(f"cannot compact {root}: {len(live)} video(s) are claimed by a live job "
                             f"({', '.join(owners[:3])}); run --compact when every preprocess job has finished")
        parts = cache.part_paths()
        if len(parts) <= 1 and not (root / DB_NAME).is_file() and not cache.notes:
            return f"{root}: already one index part ({parts[0].name if parts else 'none'}); nothing to do"
        winners = cache._union()
        folded = [p for p in cache._parts if p not in cache.damaged]  # what the union read, whole
        damaged = list(cache.damaged)
        meta = {k: cache.meta(k) for k in ("crop_rule", "crop_format")}
        if meta["crop_format"] is None and winners:
            meta["crop_format"] = "jpeg"
        target = _write_part(root, winners, meta)
    aside = [set_aside(path).name for path in damaged]
    for path in folded:
        _remove_part(path)
    for stale in (root / "claims").glob("*") if (root / "claims").is_dir() else ():
        stale.unlink(missing_ok=True)
    return (f"folded {len(folded)} index part(s) ({len(winners)} videos) of {root} into {INDEX_DIR}/{target.name}"
            + ("; the old single index.sqlite was converted" if (root / DB_NAME) in folded else "")
            + (f"; set aside {len(aside)} damaged part(s) as {', '.join(aside)} (kept, not deleted: its videos "
               "are preprocessed again by the next `harness preprocess` or run)" if aside else ""))


def _write_part(root: Path, winners: dict[str, tuple[tuple, _Part]], meta: dict[str, Any]) -> Path:
    """The folded index, written under a temporary name and renamed into place."""
    target = root / INDEX_DIR / f"compact-{safe_name(host_id())}-{os.getpid()}-{os.urandom(3).hex()}.sqlite"
    tmp = target.with_suffix(".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        out = _Part(tmp, writable=True)
        try:
            _copy(out, winners, meta)
        finally:
            out.db.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error) as exc:
        tmp.unlink(missing_ok=True)
        raise disk_error(exc, root) or CacheError(f"cannot compact {root}: {exc}") from None
    return target


def _remove_part(path: Path) -> None:
    for extra in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
                  path.with_name(path.name + "-journal")):
        extra.unlink(missing_ok=True)


def _copy(out: _Part, winners: dict[str, tuple[tuple, _Part]], meta: dict[str, Any]) -> None:
    db = out.db
    db.execute("BEGIN IMMEDIATE")
    for key, value in meta.items():
        if value is not None:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))
    video_cols = ("uid", "dataset", "method", "compression", "label", "split", "path", "mask_path", "status", "cause",
                  "message", "frames_total", "frames_sampled", "frames_with_face", "faces", "has_mask", "seconds",
                  "updated", "src_size", "src_mtime", "src_sha256")
    face_cols = ("uid", "frame_index", "face_index", "file", "mask_file", "landmarks", "box", "crop_box", "score",
                 "size", "crc", "mask_size", "mask_crc", "chain")
    marks_v, marks_f = ",".join("?" * len(video_cols)), ",".join("?" * len(face_cols))
    for uid, (_, part) in sorted(winners.items()):
        cols = ", ".join(part.col("videos", c) for c in video_cols)
        row = part.db.execute(f"SELECT {cols} FROM videos WHERE uid = ?", (uid,)).fetchone()
        db.execute(f"INSERT OR REPLACE INTO videos ({', '.join(video_cols)}) VALUES ({marks_v})", row)
        db.executemany("INSERT OR REPLACE INTO frames (uid, frame_index, faces, chain) VALUES (?, ?, ?, ?)",
                       part.db.execute(f"SELECT uid, frame_index, faces, {part.col('frames', 'chain')} FROM frames"
                                       " WHERE uid = ?", (uid,)).fetchall())
        cols = ", ".join(part.col("faces", c) for c in face_cols)
        db.executemany(f"INSERT OR REPLACE INTO faces ({', '.join(face_cols)}) VALUES ({marks_f})",
                       part.db.execute(f"SELECT {cols} FROM faces WHERE uid = ?", (uid,)).fetchall())
    db.execute("COMMIT")


COMPLETENESS = ("done", "no face", "failed", "claimed", "missing")


def completeness(cache: FaceCache, records: Iterable[Any]) -> dict[tuple[str, str], dict[str, int]]:
    """Per (dataset, split): how many listed videos are done, have no face, failed, are claimed by a
    live job, or are missing (never preprocessed, pending, or with damaged crop files)."""
    videos = {v.uid: v for v in cache.videos()}
    live = cache.claims.live()
    out: dict[tuple[str, str], dict[str, int]] = {}
    for record in records:
        counts = out.setdefault((record.dataset, record.split), dict.fromkeys(COMPLETENESS, 0))
        counts[_state(cache, record.uid, videos.get(record.uid), record.uid in live)] += 1
    return out


def _state(cache: FaceCache, uid: str, video: Any, claimed: bool) -> str:
    if claimed:
        return "claimed"
    if video is None or video.status == "pending":
        return "missing"
    if video.status == "done":
        return "missing" if cache.problems(uid) else "done"
    return "no face" if video.status == "no_face" else "failed"
