"""A face cache filled by a "cluster" on one machine: 4 `harness preprocess --shard K/4` processes,
each with its own host identity (HARNESS_HOST, so no same-host shortcut applies), one SIGKILLed
mid-video at a counted point (harness/common/faults.py) and rerun. The union of the index parts and every
crop's bytes equal one uninterrupted job's; a reader open during the work never sees a half-written
video; a stale claim of a dead host is taken over; --compact folds the parts and refuses while a
claim is fresh; the doctor shows completeness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.builders import build_ffpp
from fixtures.cache_index import crop_bytes, index_rows
from harness.data.cache import FaceCache
from harness.data.claims import Claims

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SPLITS = ["--split", "train", "--split", "val", "--split", "test"]


def _env(tmp: Path, host: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, HARNESS_CACHE=str(tmp / "hc"), HARNESS_PROGRESS="0", OMP_NUM_THREADS="1",
               HARNESS_HOST=host, HARNESS_PLUGINS="dlib_faces,ffpp", **extra)
    env.pop("HARNESS_FAULT", None)
    env.update(extra)
    return env


def _args(data: Path, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness", "preprocess", "ffpp", "--root", str(data), "--methods", "DF", *SPLITS,
            "--frames", "2", "--crop-size", "64", "--cache", str(cache), *extra]


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = _start(args, env, cwd)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0 and "Traceback" not in out, out[-3000:]
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return build_ffpp(tmp_path_factory.mktemp("data") / "ffpp", masks=True)  # the jobs take Deepfakes only


@pytest.fixture(scope="module")
def single(data, tmp_path_factory) -> tuple[list, dict]:
    work = tmp_path_factory.mktemp("single")
    _finish(_args(data, work / "cache"), _env(work, "solo"), work)
    return index_rows(work / "cache"), crop_bytes(work / "cache")


def _shard_sizes(data: Path) -> list[int]:
    from harness.data.preprocess import in_shard
    from harness_plugins.datasets.ffpp import FFPP

    records = [r for s in ("train", "val", "test") for r in FFPP(data, methods=["DF"]).records(s)]
    return [sum(in_shard(r.uid, (k, 4)) for r in records) for k in range(4)]


def _read_everything_done(cache: Path) -> int:
    """Open the cache as `harness run` does and decode+verify every face of every done video."""
    if not FaceCache.exists(cache):
        return 0
    with FaceCache(cache, create=False) as reader:
        done = reader.videos(status="done")
        for video in done:
            faces = reader.faces(video.uid)  # a damaged or half-written crop raises CacheDamageError
            assert len(faces) == video.faces
    return len(done)


def test_four_hosts_one_killed_mid_video_equal_one_job(data, single, tmp_path):
    cache = tmp_path / "cache"
    sizes = _shard_sizes(data)
    victim = max(range(4), key=lambda k: sizes[k])
    assert sizes[victim] >= 2
    jobs = []
    for k in range(4):
        fault = {"HARNESS_FAULT": "preprocess.before_store:2"} if k == victim else {}
        # the victim SIGKILLs itself after writing its 2nd video's crops, before that video's rows
        jobs.append(_start(_args(data, cache, "--shard", f"{k}/4"), _env(tmp_path, f"host{k}", **fault), tmp_path))
    reads = 0
    while any(job.poll() is None for job in jobs):  # a reader busy beside the writers
        reads += _read_everything_done(cache)
    outs = [job.communicate(timeout=600)[0] for job in jobs]
    for k, (job, out) in enumerate(zip(jobs, outs)):
        assert job.returncode == (-signal.SIGKILL if k == victim else 0), out[-3000:]
    assert len(list(Claims(cache).all())) == 1  # the dead job's claim on its half-written video
    assert (cache / "index").is_dir() and len(list((cache / "index").glob("*.sqlite"))) == 4
    # rerun on the same host: its dead process's claim is taken over at once
    _finish(_args(data, cache, "--shard", f"{victim}/4"), _env(tmp_path, f"host{victim}"), tmp_path)
    assert index_rows(cache) == single[0]
    assert crop_bytes(cache) == single[1]
    assert sorted(p.relative_to(cache) for p in (cache / "faces").rglob("*") if p.is_file()) == \
        sorted(Path(name) for name in single[1])  # no leftover file of the killed video
    assert not Claims(cache).all()
    assert _read_everything_done(cache) == sum(1 for row in single[0] if len(row) == 8 and row[1] == "done")

    # the doctor: the Deepfakes videos (and their reals) are done, the other methods' are missing
    doctor = subprocess.run([sys.executable, "-m", "harness", "datasets", "--root", str(data.parent), "--name", "ffpp",
                             "--cache", str(cache)], env=_env(tmp_path, "doc"), cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    import re

    for split, n, done in (("train", 20, 8), ("val", 10, 4), ("test", 10, 4)):
        # videos, done, no face, failed, claimed, missing
        assert re.search(rf"ffpp\W+{split}\W+{n}\W+{done}\W+0\W+0\W+0\W+{n - done}\W", doctor.stdout), doctor.stdout

    # --compact refuses while a claim is fresh, in one line; folds the parts into one afterwards
    assert Claims(cache).take("ffpp/some/video", "otherhost:1:feed")
    refused = subprocess.run([sys.executable, "-m", "harness", "preprocess", "--compact", "--cache", str(cache)],
                             env=_env(tmp_path, "compactor"), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    lines = [line for line in (refused.stdout + refused.stderr).splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "claimed by a live job" in lines[0], lines
    Claims(cache).release("ffpp/some/video", "otherhost:1:feed")
    folded = _finish([sys.executable, "-m", "harness", "preprocess", "--compact", "--cache", str(cache)],
                     _env(tmp_path, "compactor"), tmp_path)
    assert "folded 5 index part(s)" in folded
    assert len(list((cache / "index").glob("*.sqlite"))) == 1
    assert index_rows(cache) == single[0] and crop_bytes(cache) == single[1]


def test_a_stale_claim_of_a_dead_host_is_taken_over(data, single, tmp_path):
    from harness_plugins.datasets.ffpp import FFPP

    cache = tmp_path / "cache"
    uid = next(iter(FFPP(data, methods=["DF"]).records("test"))).uid
    # a host that died while working on it: its claim will not be refreshed again. Its pid means
    # nothing here (another host), so only the heartbeat's age can free it.
    assert Claims(cache).take(uid, f"deadhost:{os.getpid()}:dead")
    old = time.time() - 5
    os.utime(Claims(cache).path(uid), (old, old))
    _finish(_args(data, cache), _env(tmp_path, "alive", HARNESS_CLAIM_STALE_S="2"), tmp_path)
    assert index_rows(cache) == single[0] and crop_bytes(cache) == single[1]
    assert not Claims(cache).all()


def test_a_fresh_claim_of_another_host_is_waited_for_then_taken_over_once_stale(data, single, tmp_path):
    from harness_plugins.datasets.ffpp import FFPP

    cache = tmp_path / "cache"
    uid = next(iter(FFPP(data, methods=["DF"]).records("test"))).uid
    assert Claims(cache).take(uid, f"otherhost:{os.getpid()}:gone")  # fresh now, never refreshed
    out = _finish(_args(data, cache), _env(tmp_path, "alive", HARNESS_CLAIM_STALE_S="1"), tmp_path)
    assert index_rows(cache) == single[0] and crop_bytes(cache) == single[1], out[-2000:]
