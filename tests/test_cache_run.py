"""`harness run` on a damaged face cache (issue 21, item 1): truncated and missing crops are redone
and the run's scores equal the undamaged run's exactly; a crop that is intact in size but fails its
checksum is never scored: the run stops with one line naming the video and the repair command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.tiny_demo import TINY, TinyDemo, harness
from harness.data.cache import FaceCache

pytestmark = pytest.mark.slow


def _run(tmp: Path, cache: Path, runs: str):
    return harness("run", *TINY, "--runs-dir", tmp / runs, "--results-dir", tmp / runs / "results",
                   "--leaderboard", tmp / runs / "LB.md", cache=cache, cwd=tmp, check=False)


def _groups(results: dict) -> dict:
    return {name: block["groups"] for name, block in results["datasets"].items()}


def _faces(cache: Path) -> Path:
    (root,) = [p for p in (cache / "faces").iterdir() if p.name.endswith("-png")]
    return root


def test_a_run_on_damaged_crops_repairs_them_or_stops_in_one_line(tiny_demo: TinyDemo, tmp_path):
    """The shared demo's seed 0, run again (scored clean only) on a copy of its cache."""
    cache = tiny_demo.copy_cache(tmp_path / "home")
    faces = _faces(cache)
    with FaceCache(faces, create=False) as index:
        test = [v for v in index.videos(split="test", status="done")]
        rows = [index.face_rows(v.uid)[0] for v in test[:3]]
    (faces / rows[0]["file"]).write_bytes((faces / rows[0]["file"]).read_bytes()[:50])  # truncated
    (faces / rows[1]["file"]).unlink()  # missing
    second = _run(tmp_path, cache, "b")
    assert second.returncode == 0, second.stderr[-3000:]
    (results,) = (tmp_path / "b" / "results").glob("*.json")
    assert _groups(json.loads(results.read_text())) == _groups(tiny_demo.results(0))  # redone to the same bytes

    damaged = faces / rows[2]["file"]
    data = bytearray(damaged.read_bytes())
    data[-20] ^= 0xFF  # same size: only the checksum can tell
    damaged.write_bytes(bytes(data))
    third = _run(tmp_path, cache, "c")
    last = [line for line in third.stderr.splitlines() if line.strip()][-1]
    assert third.returncode == 2 and "Traceback" not in third.stderr, third.stderr[-3000:]
    assert test[2].uid in last and "is damaged" in last and "--repair" in last
    assert not (tmp_path / "c" / "results").is_dir() or not list((tmp_path / "c" / "results").glob("*.json"))
