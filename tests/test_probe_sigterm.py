"""The probe of issue 31, item 7 (SIGTERM honoured wherever the program is): `harness preprocess`
(in this process and with a worker pool), `harness evaluate`, `harness predict` and the building of
the demo stop within moments of a scheduler's SIGTERM with one line and exit code 143, leave no
process behind and nothing half-written, and the same command run again finishes the work.

The signal lands at counted points (harness/common/faults.py, ``<point>:<n>:TERM``), never by a
timer. Training's own SIGTERM (saved at the step) is in tests/test_fault_injection.py, and a SIGTERM
while a batch is collated in tests/test_probe_preemption.py."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from fixtures.builders import build_ffpp, tiny_swin_run

pytestmark = pytest.mark.slow  # each case is a `harness` subprocess or two

ROOT = Path(__file__).resolve().parents[1]
LIVENESS_S = 60  # generous bound for the worker processes to go: a leak never does


def _env(cache: Path, fault: str | None = None) -> dict[str, str]:
    env = dict(os.environ, HARNESS_CACHE=str(cache), HARNESS_PROGRESS="0", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for key in ("HARNESS_PLUGINS", "HARNESS_FAULT"):
        env.pop(key, None)
    if fault:
        env["HARNESS_FAULT"] = fault
    return env


def _group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    alive = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else []
        except (OSError, IndexError):
            continue
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def harness(args: list, cwd: Path, cache: Path, fault: str | None = None) -> tuple[int, str]:
    """``python -m harness ARGS`` in its own process group; (exit code, output) once every process
    of the group is gone (one left behind fails the test)."""
    proc = subprocess.Popen([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd, env=_env(cache, fault),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out, _ = proc.communicate(timeout=600)
    deadline = time.monotonic() + LIVENESS_S
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _group_alive(proc.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}\n{out[-2000:]}"
    return proc.returncode, out


def assert_terminated(code: int, out: str, kept: str = "") -> None:
    """Exit 143, no traceback, exactly one error line: the SIGTERM line."""
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert code == 143, out[-3000:]
    assert "Traceback" not in out and len(errors) == 1, out[-3000:]
    assert errors[0].startswith("error: terminated (SIGTERM)") and kept in errors[0], errors[0]


# ---------------------------------------------------------------------------------- preprocess
@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory) -> Path:
    return build_ffpp(tmp_path_factory.mktemp("data") / "ffpp", methods=("Deepfakes",), masks=False)


def _prep(root: Path, cache: Path, workers: int) -> list:
    return ["preprocess", "ffpp", "--root", root, "--methods", "DF", "--split", "test", "--frames", "2",
            "--crop-size", "64", "--cache", cache, "--workers", workers]


@pytest.mark.parametrize("workers", [0, 2])
def test_preprocess_stops_at_sigterm_keeps_what_is_stored_and_resumes(ffpp_root, tmp_path, workers):
    from harness.data.cache import FaceCache

    cache = tmp_path / "faces"
    code, out = harness(_prep(ffpp_root, cache, workers), tmp_path, tmp_path / "home", "preprocess.stored:2:TERM")
    assert_terminated(code, out, f"kept in {cache}")
    with FaceCache(cache, create=False) as index:
        final = [v for v in index.videos() if v.status != "pending"]
    assert len(final) == 2  # the two stored videos, whole; the rest is left for the rerun
    assert not list((cache / "claims").glob("*")), "claims of the stopped job are released"
    code, out = harness(_prep(ffpp_root, cache, workers), tmp_path, tmp_path / "home")
    assert code == 0, out[-3000:]
    with FaceCache(cache, create=False) as index:
        statuses = {v.uid: v.status for v in index.videos()}
    assert len(statuses) > 2 and "pending" not in statuses.values()
    assert {v.uid: v.status for v in final}.items() <= statuses.items()  # the stored two were kept, not redone


# ---------------------------------------------------------------------------------- evaluate, predict
@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """A test CSV of four face images (two real, two fake) and the images."""
    from harness.data.sample_face import astronaut_face

    root = tmp_path_factory.mktemp("faces")
    rows = []
    for i in range(4):
        face, _ = astronaut_face(160 + 8 * i, margin=0.6)
        cv2.imwrite(str(root / f"face{i}.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
        rows.append((f"face{i}.png", i % 2))
    with open(root / "test.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("path", "label"), *rows])
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny_swin_run(tmp_path_factory.mktemp("sigterm-run"), 64)


def test_evaluate_stops_at_sigterm_while_scoring_and_writes_no_result(checkpoint, faces, tmp_path):
    """(A killed evaluation resuming dataset by dataset is tests/test_evaluate.py's.)"""
    args = ["evaluate", "--checkpoint", checkpoint, "--test-csv", faces / "test.csv", "--face-detector", "dlib",
            "--runs-dir", tmp_path / "runs", "--eval-frames", "1"]
    code, out = harness(args, tmp_path, tmp_path / "home", "evaluate.video:3:TERM")
    assert_terminated(code, out, "finished datasets are kept")
    folder = next((tmp_path / "runs").glob("eval-*"))
    assert not (folder / "results.json").exists() and not list(folder.rglob("*.csv")), sorted(folder.rglob("*"))
    assert not list(folder.rglob("*.tmp")) and not (folder / "run.lock").exists()
    assert not (tmp_path / "runs" / "LEADERBOARD.md").exists()


def test_predict_stops_at_sigterm_between_inputs_with_the_finished_ones_whole(checkpoint, faces, tmp_path):
    out_dir = tmp_path / "out"
    images = [faces / f"face{i}.png" for i in range(3)]
    code, out = harness(["predict", *images, "--checkpoint", checkpoint, "--out", out_dir], tmp_path, tmp_path / "home",
                        "predict.file:2:TERM")
    assert_terminated(code, out)
    assert sorted(p.name for p in out_dir.iterdir()) == ["face0"]  # the second input was never started
    assert not [p for p in out_dir.rglob("*") if p.name.startswith(".")]  # no temporary file left


# ---------------------------------------------------------------------------------- the demo
def test_a_sigterm_while_the_demo_is_built_leaves_it_unfinished_and_a_rerun_builds_it(tmp_path):
    from harness.data.demo import demo_root, ensure_demo, spec_for

    home = tmp_path / "home"
    args = ["run", "--data", "demo", "--demo-scale", "tiny", "--backbone", "mobilenetv2", "--pretrained", "none",
            "--img-size", "64", "--max-steps", "1", "--batch-size", "2", "--workers", "0"]
    code, out = harness(args, tmp_path, home, "demo.video:2:TERM")
    assert_terminated(code, out)
    root = demo_root(spec_for("tiny"), home)
    assert root.is_dir() and not (root / ".complete").exists()  # never taken for a finished tree
    assert not list((tmp_path / "runs").glob("*/run.lock"))
    assert (ensure_demo(spec_for("tiny"), root=root, progress=False) / ".complete").is_file()
