"""`harness run` on a damaged face cache (issue 21, item 1): truncated and missing crops are redone
and the run's scores equal the undamaged run's exactly; a crop that is intact in size but fails its
checksum is never scored: the run stops with one line naming the video and the repair command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.data.cache import FaceCache

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _run(tmp: Path, runs: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HARNESS_CACHE=str(tmp / "home"), HARNESS_PROGRESS="0", OMP_NUM_THREADS="1")
    env.pop("HARNESS_PLUGINS", None)
    env.pop("HARNESS_FAULT", None)
    args = [sys.executable, "-m", "harness", "run", "--data", "demo", "--demo-scale", "tiny", "--backbone", "resnet50",
            "--pretrained", "none", "--img-size", "64", "--max-steps", "2", "--batch-size", "4", "--eval-frames", "3",
            "--workers", "0", "--runs-dir", str(tmp / runs), "--results-dir", str(tmp / runs / "results"),
            "--leaderboard", str(tmp / runs / "LB.md")]
    return subprocess.run(args, env=env, cwd=tmp, capture_output=True, text=True, timeout=900)


def _scores(tmp: Path, runs: str) -> dict:
    (path,) = (tmp / runs / "results").glob("*.json")
    return {name: block["groups"] for name, block in json.loads(path.read_text())["datasets"].items()}


def _cache(tmp: Path) -> Path:
    (root,) = [p for p in (tmp / "home" / "faces").iterdir() if p.name.endswith("-png")]
    return root


def test_a_run_on_damaged_crops_repairs_them_or_stops_in_one_line(tmp_path):
    first = _run(tmp_path, "a")
    assert first.returncode == 0, first.stderr[-3000:]
    cache = _cache(tmp_path)
    with FaceCache(cache, create=False) as index:
        test = [v for v in index.videos(split="test", status="done")]
        rows = [index.face_rows(v.uid)[0] for v in test[:3]]
    (cache / rows[0]["file"]).write_bytes((cache / rows[0]["file"]).read_bytes()[:50])  # truncated
    (cache / rows[1]["file"]).unlink()  # missing
    second = _run(tmp_path, "b")
    assert second.returncode == 0, second.stderr[-3000:]
    assert _scores(tmp_path, "b") == _scores(tmp_path, "a")  # redone to the same bytes: the same scores

    damaged = cache / rows[2]["file"]
    data = bytearray(damaged.read_bytes())
    data[-20] ^= 0xFF  # same size: only the checksum can tell
    damaged.write_bytes(bytes(data))
    third = _run(tmp_path, "c")
    last = [line for line in third.stderr.splitlines() if line.strip()][-1]
    assert third.returncode == 2 and "Traceback" not in third.stderr, third.stderr[-3000:]
    assert test[2].uid in last and "is damaged" in last and "--repair" in last
    assert not (tmp_path / "c" / "results").is_dir() or not list((tmp_path / "c" / "results").glob("*.json"))
