"""The GPU check (benchmarks/gpu_check.sh, issue 35) keeps working between the sessions that have a
GPU: its smoke run on the CPU (tiny demo, 2 steps, tiny sizes) goes through every phase the GPU run
has, with the same script; its analysis is checked on made-up logs; a missing prepared folder and a
spent budget end cleanly with a report."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
TRAINED = ("swin", "resnet50", "vit-s", "torchrun-swin")


@functools.lru_cache(maxsize=1)
def load_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def script_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ, GPU_CHECK_PYTHON=sys.executable, GPU_CHECK_FOLDER=str(folder), HARNESS_PROGRESS="0")
    env.pop("HARNESS_PLUGINS", None)
    env.pop("HARNESS_FAULT", None)
    return env


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    base = tmp_path_factory.mktemp("gpu-check")
    cmd = ["bash", str(SCRIPT), "--device", "cpu", "--smoke", "--out", str(base / "out"), "--budget", "1200"]
    proc = subprocess.run(cmd, env=script_env(base / "folder"), cwd=ROOT, capture_output=True, text=True, timeout=1500)
    report = base / "out" / "gpu_check.json"
    assert report.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(report.read_text())


@pytest.mark.slow
def test_the_smoke_run_goes_through_every_phase(smoke):
    proc, report = smoke
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert report["status"] == "complete" and report["smoke"] is True
    assert list(report["phases"]) == ["swin", "faces", "resnet50", "vit-s", "torchrun-swin"]
    assert report["environment"]["device"] == "cpu" and report["environment"]["torch"]
    for name in TRAINED:
        assert f"| {name} | ok | 2 |" in proc.stdout  # the table


@pytest.mark.slow
def test_throughput_comes_from_the_steps_after_warm_up(smoke):
    _, report = smoke
    for name in TRAINED:
        phase = report["phases"][name]
        train, run = phase["train"], phase["run"]
        assert train["steps"] == 2 and train["warmup_steps_excluded"] == 1 and train["measured_steps"] == 1
        assert train["steps_per_s"] > 0
        assert train["images_per_s"] == pytest.approx(train["steps_per_s"] * report["settings"]["batch_size"], rel=0.05)
        assert 0 <= train["data_wait_share"] < 1
        assert phase["backbone"] == name.removeprefix("torchrun-") and phase["img_size"] == 64
        assert run["eval_faces"] > 0 and run["eval_stage_faces_per_s"] > 0


@pytest.mark.slow
def test_only_the_first_run_may_find_faces_the_rest_run_without_detector_or_decoder(smoke):
    _, report = smoke
    phases = report["phases"]
    assert phases["swin"]["without"] == []  # it filled the cache, as the preparation step does
    for name in ("faces", "resnet50", "vit-s", "torchrun-swin"):
        assert phases[name]["without"] == ["dlib", "av", "face_recognition_models"]
    first = phases["swin"]["preprocessed"]
    assert first["videos"] > 0 and first["done"] > 0
    for name in ("resnet50", "vit-s", "torchrun-swin"):  # every face was in the cache: none looked for
        counts = phases[name]["preprocessed"]
        assert counts["skipped"] == counts["videos"] == first["videos"] and counts["done"] == counts["failed"] == 0


@pytest.mark.slow
def test_the_checkpoint_scores_the_cached_faces_and_torchrun_joins_a_gloo_group(smoke):
    _, report = smoke
    faces, swin = report["phases"]["faces"], report["phases"]["swin"]
    assert faces["faces"] == swin["run"]["eval_faces"] and faces["faces_per_s"] > 0 and faces["within_tolerance"]
    torchrun = report["phases"]["torchrun-swin"]
    assert torchrun["process"] == {"process_group": "gloo", "world": 1}
    assert swin["process"]["process_group"] is None
    comparison = torchrun["comparison"]
    assert comparison["steps_compared"] == 2 and comparison["equal_within_tolerance"] is True


def test_warm_up_steps_are_left_out_of_the_throughput(tmp_path):
    check = load_check()
    log = tmp_path / "train_log.jsonl"
    records = [{"step": s, "epoch": 1, "loss": 1.0, "time": {"data": 0.5 if s <= 5 else 0.01, "step": 2.0 if s <= 5 else 0.09}}
               for s in range(1, 41)]
    records.insert(20, {"step": 20, "epoch": 1, "val_auc": 0.5})
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 41, "lo')  # a cut last line
    stats = check.train_stats(log, batch_size=16)
    assert stats["steps"] == 40 and stats["warmup_steps_excluded"] == 5 and stats["measured_steps"] == 35
    assert stats["steps_per_s"] == pytest.approx(10.0) and stats["images_per_s"] == pytest.approx(160.0)
    assert stats["data_wait_share"] == pytest.approx(0.1) and stats["first_step_s"] == pytest.approx(2.5)


def test_a_torchrun_run_that_drifts_is_not_equal():
    check = load_check()
    plain = [2.0, 1.9, 1.8, 1.7]
    assert check.compare_losses(plain, list(plain))["equal_within_tolerance"] is True
    assert check.compare_losses(plain, [2.0, 1.9, 1.8, 1.7 * 1.5])["equal_within_tolerance"] is False  # 10 % off in the first 10 steps
    assert check.compare_losses(plain, [2.01, 1.9, 1.8, 1.7])["equal_within_tolerance"] is False  # another first step
    assert check.compare_losses(plain, [])["equal_within_tolerance"] is False


def test_a_missing_prepared_folder_is_reported_not_measured(tmp_path):
    cmd = ["bash", str(SCRIPT), "--device", "cpu", "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, env=script_env(tmp_path / "empty"), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["status"] == "install failed" and report["install"]["status"] == "failed"
    assert "gpu_check_prepare.sh" in (tmp_path / "out" / "install.log").read_text()


def test_a_spent_budget_skips_the_phases_and_still_reports(tmp_path):
    cmd = ["bash", str(SCRIPT), "--device", "cpu", "--smoke", "--out", str(tmp_path / "out"), "--budget", "1"]
    proc = subprocess.run(cmd, env=script_env(tmp_path / "folder"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["status"] == "partial"
    assert {p["status"] for p in report["phases"].values()} == {"skipped"} and len(report["phases"]) == 5
