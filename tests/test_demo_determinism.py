"""The demo is reproducible: identical frames encode to identical bytes, whatever the state of the
process's memory (libx264's default rate control read it and varied from run to run); its data does
not depend on the CPU's OpenCV paths; and a demo run computes with fixed threads and kernels, so two
runs in fresh caches give the same numbers whatever the environment asks for."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures.tiny_demo import TINY, harness_env
from harness.data import demo
from harness.data.video import write_video


def _frames() -> list[np.ndarray]:
    spec = demo.DemoSpec(train_pairs=1, val_pairs=1, test_pairs=1, frames=6, size=160)
    rng = np.random.default_rng(0)
    photo = demo._Photo()
    ident = demo._identity(rng)
    frame_rng = np.random.default_rng([0, 0])
    frames, lms = zip(*[demo._render(photo, photo.face, ident, t, spec.size, frame_rng) for t in range(spec.frames)])
    other = demo._identity(rng)
    src = [demo._render(photo, photo.face, other, t, spec.size, frame_rng) for t in range(spec.frames)]
    return [demo.face_swap(f, lm, s, slm)[0] for f, lm, (s, slm) in zip(frames, lms, src)]


def test_identical_frames_encode_to_identical_bytes_whatever_the_heap_holds(tmp_path):
    frames = _frames()
    rng = np.random.default_rng(1)
    digests = set()
    for trial in range(6):
        # leave different garbage in freed memory before each encode
        junk = [rng.integers(0, 255, int(rng.integers(1_000, 400_000)), dtype=np.uint8) for _ in range(30)]
        del junk
        path = write_video(tmp_path / f"{trial}.mp4", frames, fps=25, deterministic=True)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_demo_version_names_the_deterministic_encoding():
    assert demo.DEMO_VERSION >= 5  # trees written by the old encoder settings or OpenCV paths are regenerated


def test_demo_data_is_made_by_opencvs_baseline_code_whatever_the_caller_set(tmp_path):
    """The generator's warps, blurs and clones round differently on OpenCV's dispatched SIMD paths,
    so it turns them off itself: a caller's OpenCV settings do not change the demo's bytes."""
    import cv2

    spec = demo.DemoSpec(train_pairs=1, val_pairs=0, test_pairs=0, frames=2, size=96)
    digests = []
    for optimized in (True, False):
        cv2.setUseOptimized(optimized)
        root = demo.ensure_demo(spec, tmp_path / str(optimized), progress=False)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.mp4"))])
    cv2.setUseOptimized(True)
    assert digests[0] == digests[1] and len(digests[0]) == 10  # 2 reals, 4 fakes, 4 masks


def _kernels(*code: str, env: dict[str, str] | None = None) -> dict:
    script = "; ".join(["import json", *code, "from harness.common.kernels import pin_kernels",
                        "p = pin_kernels()", "print(json.dumps({'cap': p.capability, 'threads': p.threads, 'note': p.note()}))"])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


AVX2_ONLY = pytest.mark.skipif("avx2" not in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else True,
                               reason="the pinned kernels are AVX2's: an x86-64 CPU with AVX2 only")


@AVX2_ONLY
def test_the_demo_pins_threads_and_kernels_unless_the_process_already_computed():
    pinned = _kernels(env={"OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default"})
    assert pinned == {"cap": "AVX2", "threads": 2, "note": None}
    late = _kernels("import torch", "torch.ones(64).exp()", env={"ATEN_CPU_CAPABILITY": "default"})
    assert late["cap"] == "DEFAULT" and "may differ from the shipped demo" in late["note"]


def _scores(run: Path) -> list[dict[str, str]]:
    import csv

    with open(run / "scores" / "ffpp.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k != "path"} for row in csv.DictReader(handle)]


@AVX2_ONLY
@pytest.mark.slow
def test_two_demo_runs_in_fresh_caches_give_identical_numbers_whatever_the_threads(tiny_demo, tmp_path):
    """The shared tiny demo's seed-0 run again, from an empty cache, in a process whose environment
    asks for other kernels: the demo trains on its own kernels and threads, so every number is the
    same (its evaluation runs on the process's threads, one here as in the shared run)."""
    env = dict(harness_env(tmp_path / "cache"), ATEN_CPU_CAPABILITY="default", ONEDNN_MAX_CPU_ISA="SSE41", MKL_CBWR="AUTO")
    proc = subprocess.run([sys.executable, "-m", "harness", "run", *TINY, "--seed", "0", "--runs-dir", "runs"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (again,) = (tmp_path / "runs").glob("*/results.json")
    first, second = tiny_demo.results(0), json.loads(again.read_text())
    for name, block in first["datasets"].items():
        clean = {k: v for k, v in block.items() if k != "robustness"}
        assert clean == second["datasets"][name]
    assert _scores(again.parent) == _scores(tiny_demo.seed0)  # every score's digits, each video's file apart (its cache differs)
    kernels = {k: first["hardware"].get(k) for k in ("threads", "cpu_kernels")}
    assert kernels == {k: second["hardware"].get(k) for k in ("threads", "cpu_kernels")} and kernels["cpu_kernels"] == "AVX2"
