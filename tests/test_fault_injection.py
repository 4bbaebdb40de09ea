"""Nothing lost under faults: SIGKILL `harness preprocess` (1 and 2 workers) and `harness run --data
demo` at seeded points, rerun, and compare with an uninterrupted run: the cache index and crops,
the weights and the metrics are equal, and no process is left behind.

Kill points are of two kinds: named points inside the code (``harness/common/faults.py``: the process
SIGKILLs itself there, exactly as ``kill -9`` would land at that instant) and kills from outside
once the cache holds a seeded number of videos (landing anywhere in the next one).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

SEED = 13
ROOT = Path(__file__).resolve().parents[1]
TINY = dict(train_pairs=2, val_pairs=1, test_pairs=2, frames=6, size=160)  # = --demo-scale tiny
PREP_ARGS = ["--split", "train", "--methods", "Deepfakes,Face2Face", "--frames", "3", "--crop-size", "64"]
LIVENESS_S = 120  # generous bound for processes to go away: a leak never does


def _env(cache: Path, fault: str | None = None) -> dict[str, str]:
    env = dict(os.environ, HARNESS_CACHE=str(cache), HARNESS_PROGRESS="0", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("HARNESS_PLUGINS", None)
    env.pop("HARNESS_FAULT", None)
    if fault:
        env["HARNESS_FAULT"] = fault
    return env


def _harness(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _group(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _assert_nothing_left(proc: subprocess.Popen) -> None:
    proc.wait()
    deadline = time.monotonic() + LIVENESS_S
    while _group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _group(proc.pid)
    for pid in left:  # do not leak them into the rest of the suite
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left behind after SIGKILL of {proc.pid}: {left}"


def _finish(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 900) -> str:
    proc = _harness(args, env, cwd)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    _assert_nothing_left(proc)
    return out


def _final_count(cache: Path) -> int:
    """Videos with a final row in the union of the cache's index parts."""
    from harness.data.cache import FaceCache

    if not FaceCache.exists(cache):
        return 0
    try:
        with FaceCache(cache, create=False) as index:
            return sum(1 for v in index.videos() if v.status != "pending")
    except sqlite3.Error:
        return 0


def _snapshot(cache: Path) -> dict:
    """Everything a run reads from the cache: index rows of the union of its parts (without timings),
    claims left behind, and every crop's bytes."""
    from fixtures.cache_index import index_rows

    claims = sorted(p.name for p in (cache / "claims").glob("*")) if (cache / "claims").is_dir() else []
    files = {str(p.relative_to(cache)): p.read_bytes() for p in sorted((cache / "faces").rglob("*")) if p.is_file()}
    return {"index": index_rows(cache), "claims": claims, "files": files}


# ------------------------------------------------------------------------------------ preprocess
@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    from harness.data.demo import DemoSpec, ensure_demo

    return ensure_demo(DemoSpec(**TINY), root=tmp_path_factory.mktemp("demo") / "tree", progress=False)


@pytest.fixture(scope="module")
def preprocess_baseline(demo_root, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("prep-baseline")
    cache = work / "faces"
    _finish(["preprocess", "ffpp", "--root", str(demo_root), "--cache", str(cache), *PREP_ARGS], _env(work / "hc"), work)
    snap = _snapshot(cache)
    videos = [row for row in snap["index"] if len(row) == 8]  # (uid, status, ...) rows of index_rows
    assert len(videos) == 12 and all(v[1] in ("done", "no_face") for v in videos)
    return snap


def _prep_kill_points() -> list[tuple[int, str]]:
    """(workers, fault) with fault = '<point>:<n>' (the job SIGKILLs itself there) or
    '<point>:<n>:GROUP' (SIGKILL to its whole process group, as `kill -9 -PGID` from outside: the
    workers die wherever they are in their next videos). Both land at a counted point, never by a
    timer, so the test gives the same outcome on an idle and on a busy machine."""
    rng = np.random.default_rng(SEED)
    points = []
    for workers in (1, 2):
        points.append((workers, f"preprocess.before_store:{int(rng.integers(1, 11))}"))
        points.append((workers, f"preprocess.stored:{int(rng.integers(1, 11))}:GROUP"))
    return points


PREP_POINTS = _prep_kill_points()


@pytest.mark.parametrize("workers,kill", PREP_POINTS, ids=[f"w{w}-{k}" for w, k in PREP_POINTS])
def test_preprocess_killed_and_rerun_equals_an_uninterrupted_run(demo_root, preprocess_baseline, tmp_path, workers, kill):
    cache = tmp_path / "faces"
    args = ["preprocess", "ffpp", "--root", str(demo_root), "--cache", str(cache), "--workers", str(workers), *PREP_ARGS]
    proc = _harness(args, _env(tmp_path / "hc", kill), tmp_path)
    proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    _assert_nothing_left(proc)  # the pool's workers went with their parent
    assert _final_count(cache) < 12  # it really was interrupted
    _finish(args, _env(tmp_path / "hc"), tmp_path)
    assert _snapshot(cache) == preprocess_baseline


def test_two_concurrent_jobs_on_one_cache_share_the_work_and_equal_one_job(demo_root, preprocess_baseline, tmp_path):
    cache = tmp_path / "faces"
    args = ["preprocess", "ffpp", "--root", str(demo_root), "--cache", str(cache), *PREP_ARGS]
    jobs = [_harness([*args, "--workers", str(w)], _env(tmp_path / "hc"), tmp_path) for w in (0, 1)]
    outs = [job.communicate(timeout=900)[0] for job in jobs]
    for job, out in zip(jobs, outs):
        assert job.returncode == 0, out[-3000:]
        _assert_nothing_left(job)
    assert _snapshot(cache) == preprocess_baseline  # no spurious failures, nothing redone wrongly


# ------------------------------------------------------------------------------------ harness run
def _run_config(path: Path) -> Path:
    from harness.vocab.config import RunConfig
    from harness.run.demo_run import demo_config

    c = demo_config(RunConfig())
    c = replace(c, backbone="swin", pretrained=False, img_size=64,  # a small Swin: fast, and stochastic depth on
                backbone_options={"depths": [1, 1, 1, 1], "embed_dim": 24, "num_heads": [1, 2, 3, 6]}, device="cpu",
                train=replace(c.train, epochs=2, max_steps=8, batch_size=4, frames_per_video=2, workers=0),
                eval=replace(c.eval, frames_per_video=2, bootstrap=50))
    path.write_text(json.dumps(c.to_dict()))
    return path


RUN_ARGS = ["run", "--data", "demo", "--demo-scale", "tiny", "--config", "cfg.json"]


def _run_outcome(work: Path) -> dict:
    runs = [p for p in (work / "runs").iterdir() if (p / "config.json").is_file()]  # not runs/results
    assert len(runs) == 1
    run = runs[0]
    assert (run / "results.json").is_file()
    weights = load_file(str(run / "checkpoint" / "model.safetensors"))
    results = json.loads((run / "results.json").read_text())
    board = (work / "runs" / "LEADERBOARD.md").read_text()
    debris = [p.name for p in run.rglob("*") if p.name.endswith((".tmp", ".old"))]
    return {"weights": weights, "datasets": results["datasets"], "training": results["training"],
            "leaderboard_has_run": results["run_id"] in board or results["name"] in board, "debris": debris,
            "losses": [r["loss"] for r in map(json.loads, (run / "train_log.jsonl").read_text().splitlines()) if "loss" in r]}


@pytest.fixture(scope="module")
def run_cache(tmp_path_factory) -> Path:
    """One HARNESS_CACHE (demo tree + faces) for every run: the run kill points hit training and after."""
    return tmp_path_factory.mktemp("run-cache")


@pytest.fixture(scope="module")
def run_baseline(run_cache, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("run-baseline")
    _run_config(work / "cfg.json")
    out = _finish(RUN_ARGS, _env(run_cache), work)
    assert "epoch 2" in out and "step 8/8" in out  # two epochs: a checkpoint is replaced once
    return _run_outcome(work)


def _run_kill_points() -> list[str]:
    rng = np.random.default_rng(SEED + 1)
    return [
        f"train.step:{int(rng.integers(1, 8))}",  # mid-training, between checkpoints
        "checkpoint.written:1",  # the epoch-1 checkpoint complete under its temporary name
        "files.replace_dir:1",  # between the two renames of the final checkpoint's swap
        "run.results_written:1",  # results written, run not yet marked finished
    ]


RUN_POINTS = _run_kill_points()


@pytest.mark.parametrize("fault", RUN_POINTS)
def test_run_killed_and_rerun_equals_an_uninterrupted_run(run_cache, run_baseline, tmp_path, fault):
    _run_config(tmp_path / "cfg.json")
    proc = _harness(RUN_ARGS, _env(run_cache, fault), tmp_path)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == -signal.SIGKILL, out[-3000:]
    _assert_nothing_left(proc)
    _finish(RUN_ARGS, _env(run_cache), tmp_path)
    got = _run_outcome(tmp_path)
    assert got["debris"] == []
    assert got["weights"].keys() == run_baseline["weights"].keys()
    for key in got["weights"]:
        assert torch.equal(got["weights"][key], run_baseline["weights"][key]), key
    assert got["datasets"] == run_baseline["datasets"]
    assert got["training"] == run_baseline["training"]
    assert got["leaderboard_has_run"]


# ------------------------------------------------------------------------------------ SIGTERM, full disk (issue 21)
def test_sigterm_saves_at_the_step_then_a_rerun_resumes_to_bit_identical_weights_and_metrics(run_cache, run_baseline,
                                                                                               tmp_path):
    _run_config(tmp_path / "cfg.json")
    proc = _harness(RUN_ARGS, _env(run_cache, "train.step:3:TERM"), tmp_path)
    out, _ = proc.communicate(timeout=900)
    _assert_nothing_left(proc)
    assert proc.returncode == 143, out[-3000:]
    assert "Traceback" not in out
    assert "SIGTERM: checkpoint saved at step 3" in " ".join(out.split())
    run = next(p for p in (tmp_path / "runs").iterdir() if (p / "config.json").is_file())
    assert json.loads((run / "checkpoint" / "state.json").read_text())["global_step"] == 3
    assert not (run / "run.lock").exists()  # released on the way out: a requeue starts at once
    with open(run / "train_log.jsonl", "a") as fh:
        fh.write('{"step": 4, "lo')  # and the scheduler's SIGKILL landed during a log write
    again = " ".join(_finish(RUN_ARGS, _env(run_cache), tmp_path).split())  # rich wraps at 80 columns
    assert "resuming from step 3" in again and "partial last line" in again
    assert "encoder weights: random initialisation" in again  # the end of the run says where weights came from
    got = _run_outcome(tmp_path)
    assert got["weights"].keys() == run_baseline["weights"].keys()
    for key in got["weights"]:
        assert torch.equal(got["weights"][key], run_baseline["weights"][key]), key
    assert got["datasets"] == run_baseline["datasets"]
    assert got["training"] == run_baseline["training"]
    assert got["losses"][-8:] == run_baseline["losses"][-8:]


def test_a_full_disk_at_checkpoint_save_in_a_run_is_one_line(run_cache, tmp_path):
    _run_config(tmp_path / "cfg.json")
    proc = _harness(RUN_ARGS, _env(run_cache, "checkpoint.written:1:ENOSPC"), tmp_path)
    out, _ = proc.communicate(timeout=900)
    _assert_nothing_left(proc)
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out
    error = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "No space left" in error[0] and "last complete checkpoint there is none" in error[0]
