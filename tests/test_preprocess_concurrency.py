"""Two preprocessing jobs on one cache: claims with owner and heartbeat, never touching another
live job's video, taking over a dead job's claims; transient failures are not final."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import harness.data.preprocess as pre
from fixtures.builders import build_ffpp
from harness.data.cache import FaceCache, new_owner, video_dir_name
from harness.data.crop import CropRule
from harness_plugins.datasets.ffpp import FFPP

FRAMES = 2


def final_uids(cache: FaceCache) -> set[str]:
    """The videos that need no more work (FaceCache.is_final of each)."""
    return {video.uid for video in cache.videos() if cache.is_final(video.uid)}


pytestmark = pytest.mark.usefixtures("face_detector_plugin_only")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = build_ffpp(tmp_path_factory.mktemp("ffpp"), methods=("Deepfakes",), masks=False)
    return list(FFPP(root, methods=["DF"]).records("test"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _owner_of(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:feedbeef"


def test_a_live_claim_is_respected_and_a_dead_one_taken_over(tmp_path, records):
    cache = FaceCache(tmp_path / "c")
    cache.mark_pending(records[:1])
    uid = records[0].uid
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert cache.claim(uid, _owner_of(holder.pid))
        assert not cache.claim(uid, new_owner())  # another live job holds it
        assert cache.claim_holder(uid) == _owner_of(holder.pid)
    finally:
        holder.kill()
        holder.wait()
    mine = new_owner()
    assert cache.claim(uid, mine)  # its process is gone: taken over
    cache.release(mine)
    assert cache.claim_holder(uid) is None
    cache.close()


def test_a_transient_failure_is_not_final(tmp_path, records):
    cache = FaceCache(tmp_path / "c")
    bad, corrupt = records[0], records[1]
    cache.write_video(bad, dict(status="failed", cause="error:FileNotFoundError", message="x", frames=[], faces=[]))
    cache.write_video(corrupt, dict(status="failed", cause="corrupt_video", message="x", frames=[], faces=[]))
    assert final_uids(cache) == {corrupt.uid}
    cache.close()


def test_a_job_waits_for_another_jobs_video_never_touches_it_and_takes_it_over_when_that_job_dies(tmp_path, records, monkeypatch):
    monkeypatch.setattr(pre, "WAIT_POLL_SECONDS", 0.05)
    root = tmp_path / "c"
    cache = FaceCache(root)
    held = records[0]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    cache.mark_pending([held])
    assert cache.claim(held.uid, _owner_of(holder.pid))
    # the other job's half-written crops
    in_progress = root / video_dir_name(held.uid)
    in_progress.mkdir(parents=True)
    (in_progress / "000000_00.jpg").write_bytes(b"the other job is writing this")
    waiting = threading.Event()
    real_sleep = time.sleep

    def sleep(seconds):
        waiting.set()
        real_sleep(seconds)

    monkeypatch.setattr(pre.time, "sleep", sleep)
    result = {}
    job = threading.Thread(target=lambda: result.update(s=pre.preprocess(records, root, frames=FRAMES, rule=CropRule(crop_size=64), progress=False)))
    try:
        job.start()
        assert waiting.wait(300), "the job never started waiting"
        others = {r.uid for r in records} - {held.uid}
        assert others <= final_uids(FaceCache(root))  # it did all the rest
        assert (in_progress / "000000_00.jpg").read_bytes() == b"the other job is writing this"
        assert FaceCache(root).status(held.uid).status == "pending"
    finally:
        holder.kill()
        holder.wait()
    job.join(300)
    assert not job.is_alive()
    summary = result["s"]
    assert summary.done + summary.no_face == len(records) and summary.failed == 0
    assert FaceCache(root).status(held.uid).status == "done"
    assert not (in_progress / "000000_00.jpg").exists()  # the dead job's leftovers are gone
    assert (in_progress / "000000_00.png").read_bytes().startswith(b"\x89PNG")
