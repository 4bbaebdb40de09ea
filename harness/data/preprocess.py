"""Cached, resumable, parallel, shardable face preprocessing.

For each video record: decode it sequentially keeping ``frames`` evenly sampled frames, find
every face (largest first) with 68 landmarks, cut the crop of ``CropRule``, and store crops +
landmarks + boxes (and the mask crop, when the record has a mask video) in a ``FaceCache``.

* resumable / idempotent: a video's rows are committed in one transaction after its files; videos
  with a final status (done, failed, no_face) are skipped on the next run;
* parallel: ``workers`` processes do the decoding and detection and write the crop files; the
  parent is the only SQLite writer;
* shardable: ``shard=(k, n)`` keeps the records whose stable uid hash is k mod n, so N machines
  (SLURM array, shell loop) split a dataset without talking to each other;
* corrupt and faceless videos are recorded with their cause and never stop the run;
* concurrent, across hosts: jobs sharing one cache claim each video before working on it (a claim
  file, ``harness.data.claims``; a heartbeat thread keeps it fresh); a video another live job holds
  is left to it and waited for at the end, a dead job's claims are taken over, and no job touches
  the files of a video it has not claimed. Each job writes only its own index part;
* verified: a done video whose crop files are missing or truncated is redone (``repair``: checked
  against their checksums too), and a failed video whose file changed since (size, mtime) is retried;
* no orphans: pool workers die with their parent, even when it is killed with SIGKILL; a worker
  that dies (an OOM kill) costs only its video, recorded as failed with cause ``worker_died``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from harness.common import faults
from harness.data.cache import FaceCache, crc32, encode_crop, encode_mask_png, video_dir_name
from harness.data.claims import Heartbeat, new_owner
from harness.data.crop import CropRule, crop_mask, landmarks_to_crop, mask_from_frame
from harness.data.faces import FaceFinder
from harness.data.video import VideoDecodeError, read_frames_indexed
from harness.extend.types import VideoRecord

DEFAULT_FRAMES = 32
WAIT_POLL_SECONDS = 0.5  # how often a job waiting for another job's videos looks again


@dataclass
class PreprocessSummary:
    videos: int = 0  # records in this run (after sharding)
    done: int = 0
    failed: int = 0
    no_face: int = 0
    skipped: int = 0  # already final in the cache
    redone: list[str] = field(default_factory=list)  # final videos found damaged (or changed) and done again
    crop_format: str = ""
    notes: list[str] = field(default_factory=list)  # damaged index parts found, and what was done
    frames: int = 0  # sampled frames processed in this run
    frames_with_face: int = 0
    faces: int = 0
    failures_by_cause: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)  # first few, with messages
    crop_rule: dict[str, Any] = field(default_factory=dict)
    shard: tuple[int, int] | None = None
    seconds: float = 0.0
    cache_root: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` (0 <= K < N) -> (K, N); None stays None."""
    if text is None or text == "":
        return None
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like K/N with integers (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {text}: need N >= 1 and 0 <= K < N (shards are numbered 0..N-1)")
    return k, n


def in_shard(uid: str, shard: tuple[int, int] | None) -> bool:
    """Stable across machines and Python runs (unlike ``hash()``)."""
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha1(uid.encode("utf-8")).hexdigest()[:12], 16) % n == k


def frames_for(split: str, frames: int | dict[str, int]) -> int:
    if isinstance(frames, dict):
        return int(frames.get(split, frames.get("default", DEFAULT_FRAMES)))
    return int(frames)


# --------------------------------------------------------------------------------------------
# Worker side: one video -> files on disk + a small result dict
# --------------------------------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(config: dict[str, Any]) -> None:
    """Build the detector once per process."""
    from harness.extend.registry import create

    import cv2

    cv2.setNumThreads(1)  # one worker = one core; also avoids OpenCV's pool across fork
    if _worker.get("config") == config and "finder" in _worker:
        return  # inherited through fork, ready
    _worker.clear()
    _worker["config"] = config
    detector = create("face_detector", config["detector"])
    _worker["finder"] = FaceFinder(detector, fast=config["fast"])


def _die_with_parent() -> None:
    """Make this pool worker exit when its parent dies, whatever killed it: Linux's parent-death
    signal, and a watchdog thread for the rest (the worker is re-parented, getppid changes)."""
    import signal

    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="harness-parent-watch", daemon=True).start()


def _init_pool_worker(config: dict[str, Any]) -> None:
    from harness.common import signals

    signals.default_in_worker()  # forked from a parent that turns SIGTERM into Terminated: not here
    _die_with_parent()
    _init_worker(config)


def _fail(status: str, cause: str, message: str, t0: float, frames_total: int = 0) -> dict[str, Any]:
    return dict(status=status, cause=cause, message=message, frames=[], faces=[],
                frames_total=frames_total, has_mask=False, seconds=time.perf_counter() - t0)


def process_video(record: VideoRecord) -> dict[str, Any]:
    """Process one record in this worker; never raises for a bad video (returns its cause)."""
    t0 = time.perf_counter()
    config = _worker["config"]
    faults.point("preprocess.video." + record.uid)  # tests: this video kills its worker (an OOM kill)
    try:
        return _process(record, config, _worker["finder"], t0)
    except VideoDecodeError as exc:
        missing = not Path(record.path).exists()
        return _fail("failed", "missing_file" if missing else "corrupt_video", str(exc), t0)
    except Exception as exc:  # one odd video must not stop a 100k-video run
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return _fail("failed", f"error:{type(exc).__name__}", f"{record.path}: {detail}", t0)


def _process(record: VideoRecord, config: dict[str, Any], finder: FaceFinder, t0: float) -> dict[str, Any]:
    rule = CropRule.from_dict(config["rule"])
    frames, total = read_frames_indexed(record.path, count=frames_for(record.split, config["frames"]))
    masks, cause, message = _read_masks(record, [i for i, _ in frames])
    vdir = video_dir_name(record.uid)
    out_dir = Path(config["cache_root"]) / vdir
    if out_dir.exists():
        shutil.rmtree(out_dir)  # leftovers of a killed run
    out_dir.mkdir(parents=True, exist_ok=True)
    finder.reset()
    frame_rows: list[tuple[int, int]] = []
    face_rows: list[dict[str, Any]] = []
    for index, frame in frames:
        crops = list(rule.crops(finder.find(frame), frame))
        frame_rows.append((index, len(crops)))
        for face_index, (face, box, image) in enumerate(crops):
            row, fits = _write_face(out_dir, vdir, rule, (index, face_index), face, box, image, frame, masks.get(index),
                                    config.get("crop_format", "png"))
            if not fits and cause is None:
                cause, message = "mask_size_mismatch", f"{record.mask_path}: mask frames are not the video's size"
            face_rows.append(row)
    status = "done" if face_rows else "no_face"
    if status == "no_face":
        cause, message = "no_face", f"no face found in {len(frame_rows)} sampled frames of {record.path}"
    return dict(status=status, cause=cause, message=message, frames=frame_rows, faces=face_rows,
                frames_total=total, has_mask=any(r["mask_file"] for r in face_rows),
                seconds=time.perf_counter() - t0)


def _read_masks(record: VideoRecord, indices: list[int]) -> tuple[dict[int, np.ndarray], str | None, str | None]:
    """The record's mask frames at ``indices`` (none without a mask video), and the cause when the
    mask video is unreadable: the faces are still usable then."""
    if record.mask_path is None:
        return {}, None, None
    try:
        found, _ = read_frames_indexed(record.mask_path, indices=indices)
    except VideoDecodeError as exc:
        return {}, "mask_unreadable", str(exc)
    return {i: mask_from_frame(m, record.mask_kind) for i, m in found}, None, None


def _write_face(out_dir: Path, vdir: str, rule: CropRule, at: tuple[int, int], face: Any, box: Any, image: np.ndarray,
                frame: np.ndarray, mask: np.ndarray | None, crop_format: str = "png") -> tuple[dict[str, Any], bool]:
    """Write one face's crop (and mask crop) files; its index row (with each file's size and
    CRC-32) and whether its mask fit the frame."""
    index, face_index = at
    name = f"{index:06d}_{face_index:02d}"
    ext = ".png" if crop_format == "png" else ".jpg"
    data = encode_crop(image, crop_format)
    (out_dir / f"{name}{ext}").write_bytes(data)
    row = dict(frame_index=index, face_index=face_index, file=f"{vdir}/{name}{ext}", mask_file=None,
               landmarks=landmarks_to_crop(face.landmarks, box, rule.crop_size), box=face.box, crop_box=box,
               score=face.score, size=len(data), crc=crc32(data))
    if mask is None:
        return row, True
    if mask.shape[:2] != frame.shape[:2]:
        return row, False
    data = encode_mask_png(crop_mask(mask, box, rule.crop_size))
    (out_dir / f"{name}_mask.png").write_bytes(data)
    row.update(mask_file=f"{vdir}/{name}_mask.png", mask_size=len(data), mask_crc=crc32(data))
    return row, True


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------
def preprocess(
    records: Iterable[VideoRecord],
    cache: FaceCache | str | Path,
    rule: CropRule = CropRule(),
    frames: int | dict[str, int] = DEFAULT_FRAMES,
    workers: int = 0,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    fast: bool = True,
    retry_failed: bool = False,
    repair: bool = False,
) -> PreprocessSummary:
    """Preprocess ``records`` into the face ``cache`` with crop ``rule`` (see module docstring).

    ``cache``: an open FaceCache (the caller's, left open) or its folder (opened and closed here).
    workers=0 runs in this process. ``repair``: also check every done video's crops against their
    checksums (reads them all) and redo the damaged ones. Returns what this run did; ``cache.summary()``
    has the totals.
    """
    t_start = time.perf_counter()
    owned = not isinstance(cache, FaceCache)
    cache = FaceCache(cache) if owned else cache
    summary = PreprocessSummary(crop_rule=rule.to_dict(), shard=shard, cache_root=str(cache.root))
    owner = new_owner()
    if shard is not None:
        cache.part_tag = f"{shard[0]}of{shard[1]}"
    try:
        todo, summary.videos, summary.skipped, redo = _select(records, cache, shard, retry_failed, repair)
        summary.redone = [uid for uid in redo if not (retry_failed and videos_failed(cache, uid))]
        summary.notes = list(cache.notes)
        summary.crop_format = cache.crop_format or ""
        if todo:  # nothing is written (no index part) when everything is cached: a read-only cache still serves
            cache.check_crop_rule(rule)
            summary.crop_format = cache.writing_format()
            cache.mark_pending(todo)
        elif cache.crop_rule is not None:
            cache.check_crop_rule(rule)
        config = dict(cache_root=str(cache.root), detector=rule.detector, rule=rule.to_dict(), frames=frames, fast=fast,
                      crop_format=summary.crop_format)
        from harness.common.ui import progress as progress_bar

        with progress_bar(disable=not progress) as bar, Heartbeat(cache.claims) as heart:  # the shared stderr bar
            task = bar.add_task("preprocess", total=summary.videos, completed=summary.skipped, info="")
            job = _Job(cache, owner, summary, config, workers, bar, task, heart, redo)
            job.run(todo)
        summary.failures_by_cause = dict(job.causes)
    finally:
        try:
            cache.release(owner)  # whatever was not finished goes back to the pool
        finally:
            if owned:
                cache.close()
    summary.seconds = time.perf_counter() - t_start
    return summary


class _Job:
    """One preprocess call's work on a shared cache: claim, process, store, wait for other jobs."""

    def __init__(self, cache: FaceCache, owner: str, summary: PreprocessSummary, config: dict[str, Any],
                 workers: int, bar: Any, task: Any, heart: Heartbeat, redo: list[str] = ()) -> None:
        self.cache, self.owner, self.summary, self.config, self.workers = cache, owner, summary, config, workers
        self.bar, self.task, self.heart = bar, task, heart
        self.redo, self.redo_after = set(redo), time.time()  # final rows older than this are redone
        self.causes: Counter[str] = Counter()
        self.deferred: list[VideoRecord] = []  # held by another live job: waited for at the end

    def run(self, todo: list[VideoRecord]) -> None:
        self.run_batch(todo)
        told = False
        while self.deferred:
            # Videos another job is working on: wait for it to finish them, or take them over
            # when it is gone. Never touch their files meanwhile.
            if not told:
                self._tell_waiting()
                told = True
            time.sleep(WAIT_POLL_SECONDS)
            waiting, self.deferred = self.deferred, []
            self.run_batch(waiting)

    def _tell_waiting(self) -> None:
        from harness.common.ui import console

        holders = sorted({h for h in (self.cache.claim_holder(r.uid) for r in self.deferred) if h})
        console.print(f"{len(self.deferred)} video(s) are being preprocessed by another job "
                      f"({', '.join(holders) or 'just finished'}); waiting for them")

    def run_batch(self, records: list[VideoRecord]) -> None:
        if self.workers <= 0:
            _init_worker(self.config)
            for record in self.claimed(records):
                self.store(record, process_video(record))
                self.advance()
        else:
            _run_pool(self.claimed(records), self.config, self.workers, self.store, self.advance)

    def claimed(self, records: list[VideoRecord]) -> Iterator[VideoRecord]:
        """The records this job may work on, claimed one at a time as they are needed."""
        for record in records:
            if self.cache.claim(record.uid, self.owner, self.redo_after if record.uid in self.redo else None):
                self.heart.add(record.uid)
                yield record
            elif self.cache.is_final(record.uid):
                self.summary.skipped += 1  # another job finished it meanwhile
                self.advance()
            else:
                self.deferred.append(record)  # another live job holds it

    def advance(self) -> None:
        self.bar.advance(self.task)

    def store(self, record: VideoRecord, result: dict[str, Any]) -> None:
        faults.point("preprocess.before_store")
        self.cache.write_video(record, result)
        self.cache.release(self.owner, record.uid)
        self.heart.discard(record.uid)
        faults.point("preprocess.stored")
        summary = self.summary
        summary.frames += len(result["frames"])
        summary.frames_with_face += sum(1 for _, n in result["frames"] if n)
        summary.faces += len(result["faces"])
        if result["status"] == "done":
            summary.done += 1
        elif result["status"] == "no_face":
            summary.no_face += 1
        else:
            summary.failed += 1
        if result.get("cause"):
            self.causes[result["cause"]] += 1
            if len(summary.failures) < 20:
                summary.failures.append({"uid": record.uid, "cause": result["cause"],
                                         "message": result.get("message") or ""})


def videos_failed(cache: FaceCache, uid: str) -> bool:
    video = cache.status(uid)
    return video is not None and video.status == "failed"


def _changed(video: Any) -> bool:
    """Whether a failed video's file differs (size or mtime) from when it failed: worth a retry."""
    if video.src_size is None:
        return False
    try:
        st = os.stat(video.path)
    except OSError:
        return False
    return int(st.st_size) != int(video.src_size) or float(st.st_mtime) != float(video.src_mtime)


def _select(records: Iterable[VideoRecord], cache: FaceCache, shard: tuple[int, int] | None,
            retry_failed: bool, repair: bool = False) -> tuple[list[VideoRecord], int, int, list[str]]:
    """(records to do, records in this run, skipped as final, final videos redone because their
    crops are damaged or their failed file changed)."""
    videos = {v.uid: v for v in cache.videos()}
    final = {uid for uid, v in videos.items() if cache._final_row(v)}
    redo = {uid for uid in final if videos[uid].status == "failed" and (retry_failed or _changed(videos[uid]))}
    final -= redo
    todo: list[VideoRecord] = []
    seen: set[str] = set()
    total = skipped = 0
    for record in records:
        if not in_shard(record.uid, shard):
            continue
        if record.uid in seen:
            raise ValueError(f"duplicate video uid {record.uid!r}: uids must be unique (dataset/method/compression/name)")
        seen.add(record.uid)
        total += 1
        if record.uid in final and videos[record.uid].status == "done" and cache.problems(record.uid, deep=repair):
            final.discard(record.uid)
            redo.add(record.uid)
        if record.uid in final:
            skipped += 1
        else:
            todo.append(record)  # records are small metadata; media is never held
    return todo, total, skipped, sorted(redo & seen)  # with --retry-failed, its videos too


def _run_pool(todo: Iterable[VideoRecord], config: dict[str, Any], workers: int,
              store: Callable[[VideoRecord, dict[str, Any]], None], advance: Callable[[], None]) -> None:
    """Process ``todo`` in a pool. When a worker dies (killed, out of memory), the videos in flight
    are tried again one by one, each in a pool of its own: the one that kills its worker again is
    recorded as failed (``worker_died``), the others are done, and the rest of the queue goes on."""
    queue = iter(todo)
    while True:
        in_flight = _pool_pass(queue, config, workers, store, advance)
        if in_flight is None:
            return
        for record in in_flight:
            if _pool_pass(iter([record]), config, 1, store, advance) is not None:
                store(record, _fail("failed", "worker_died", f"{record.path}: the worker process preprocessing it "
                                    "died (killed, or out of memory); --retry-failed tries it again", time.perf_counter()))
                advance()


def _pool_pass(queue: Iterator[VideoRecord], config: dict[str, Any], workers: int,
               store: Callable[[VideoRecord, dict[str, Any]], None], advance: Callable[[], None]) -> list[VideoRecord] | None:
    """One pool over ``queue``: None when it is drained, else the records in flight when a worker died."""
    first = next(queue, None)
    if first is None:
        return None  # nothing to do: no pool
    with _worker_pool(config, workers) as pool:
        pending: dict[Future, VideoRecord] = {pool.submit(process_video, first): first}
        lost: list[VideoRecord] = []
        for _ in range(workers * 2 - 1):  # bounded in-flight work
            if not _submit(pool, pending, queue, lost):
                break
        while pending and not lost:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                record = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    return [record, *pending.values()]
                store(record, result)
                advance()
                _submit(pool, pending, queue, lost)
        return [*lost, *pending.values()] if lost else None


@contextmanager
def _worker_pool(config: dict[str, Any], workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` processes. Ctrl-C or SIGTERM in this process stops them at once (their
    videos in flight are redone by the next run: no row is written for them), instead of waiting
    for each to finish its video."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(config), initializer=_init_pool_worker,
                               initargs=(config,))
    try:
        yield pool
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list((pool._processes or {}).values()):  # no public way to stop a busy worker
            process.kill()
        raise
    finally:
        pool.shutdown(wait=True)


def _submit(pool: ProcessPoolExecutor, pending: dict[Future, VideoRecord], queue: Iterator[VideoRecord],
            lost: list[VideoRecord]) -> bool:
    """Submit the queue's next record; False when the queue is empty or the pool is broken (the
    record then goes to ``lost``, to be tried again)."""
    record = next(queue, None)
    if record is None:
        return False
    try:
        pending[pool.submit(process_video, record)] = record
    except BrokenProcessPool:
        lost.append(record)
        return False
    return True


def _mp_context(config: dict[str, Any]) -> Any:
    """fork where the OS has it: workers inherit the loaded models and plugin registry (spawn
    would pay ~4 s of dlib model loading plus every plugin import per worker). Workers never call
    torch, so a torch already imported (or used) by the parent does not matter; OpenCV is kept
    single-threaded in workers. HARNESS_MP_START=spawn|forkserver overrides."""
    import multiprocessing as mp
    import os

    method = os.environ.get("HARNESS_MP_START") or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    if method == "fork":
        _init_worker(config)  # load the models once, before forking
    return mp.get_context(method)

