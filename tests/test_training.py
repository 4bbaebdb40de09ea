"""The training protocol: exact resume after an interruption, DDP (gloo) matching one process, and the
per-step timing the log carries."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.training.checkpoint import MODEL_FILE
from harness.training.trainer import EpochBatches
from tests.training_helpers import NO_DROP_PATH, build_cache, tiny_config, trainer_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return build_cache(tmp_path_factory.mktemp("training"))


def test_epoch_batches_split_one_global_order_over_ranks():
    single = list(EpochBatches(10, 4, seed=1, epoch=2))
    ranks = [list(EpochBatches(10, 4, seed=1, epoch=2, rank=r, world=2)) for r in range(2)]
    assert len(single) == 3 and all(len(b) == 4 for b in single)
    for step, batch in enumerate(single):
        assert sorted(ranks[0][step] + ranks[1][step]) == sorted(batch)
    resumed = list(EpochBatches(10, 4, seed=1, epoch=2, start=1))
    assert resumed == single[1:]
    assert list(EpochBatches(10, 4, seed=1, epoch=3)) != single


def test_interrupted_run_resumes_to_the_same_weights(cache, tmp_path, one_thread):
    config = tiny_config()
    straight = trainer_for(config, tmp_path / "straight", cache).fit(resume=False, checkpoint_every=100)
    first = trainer_for(config, tmp_path / "resumed", cache).fit(resume=False, checkpoint_every=100, stop_after=3)
    assert first.steps == 3  # stopped mid-epoch 1 of 2 (2 steps per epoch with 8 items, 2 pairs per step)
    second = trainer_for(config, tmp_path / "resumed", cache).fit(resume=True, checkpoint_every=100)
    assert second.resumed_from_step == 3 and second.steps == straight.steps == 4
    assert [h["loss"] for h in second.history] == [h["loss"] for h in straight.history]
    a = load_file(str(tmp_path / "straight" / "checkpoint" / MODEL_FILE))
    b = load_file(str(tmp_path / "resumed" / "checkpoint" / MODEL_FILE))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("nproc", [2, 1])
def test_gloo_processes_follow_the_single_process_loss_curve(cache, tmp_path, one_thread, nproc):
    """Two processes split each batch; one torchrun process still joins a group (of one) and trains
    under DDP, the path a GPU check takes with NCCL on one card (benchmarks/gpu_check.py)."""
    single = trainer_for(tiny_config(NO_DROP_PATH, max_steps=3), tmp_path / "single", cache).fit(resume=False)
    out = tmp_path / "ddp.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), str(ROOT / "tests" / "ddp_worker.py"), str(cache), str(tmp_path / "ddp"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ddp = json.loads(out.read_text())
    assert ddp["world"] == nproc and ddp["ddp"] is True
    expected = [h["loss"] for h in single.history]
    assert len(ddp["losses"]) == len(expected) == 3
    assert ddp["losses"] == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_validation_warns_when_the_classifier_input_has_collapsed(cache, tmp_path, one_thread, capsys):
    trainer = trainer_for(tiny_config(), tmp_path / "collapse", cache)
    err = capsys.readouterr().err
    assert "training from random weights" in err and "--pretrained imagenet" in err  # swin from scratch
    with torch.no_grad():  # Swin's final norm to zero: every image gives the same pooled feature
        final_norm = trainer.net.encoder.model.norm
        final_norm.weight.zero_()
        final_norm.bias.fill_(0.5)
    trainer.validate()
    err = capsys.readouterr().err
    assert trainer.last_spread["feature_spread"] < 1e-3 and trainer.last_spread["score_spread"] < 1e-3
    assert "feature collapse" in err and err.count("warning:") == 1
    trainer.validate()  # said once per run, not at every validation
    assert "feature collapse" not in capsys.readouterr().err


def test_the_checkpoint_records_the_runs_crop_rule(cache, tmp_path):
    """The run's one CropRule goes into model.json whole, where predict reads it back."""
    from harness.data.crop import CropRule

    meta = trainer_for(tiny_config(), tmp_path / "meta", cache)._meta
    assert meta["crop"] == CropRule(crop_size=96).to_dict() and meta["face_detector"] == "dlib"
    assert CropRule.from_dict(meta["crop"]) == CropRule(crop_size=96)
    assert meta["run"]["eval"]["frame_aggregation"] == "max"  # predict's aggregation settings travel too


def test_each_step_logs_its_wait_for_data_and_its_compute_time(cache, tmp_path, one_thread):
    """The "time" field of each step record: what benchmarks/gpu_check.py reads steps/s and the
    data-wait share from. A worker loader makes the wait real (workers=1)."""
    trainer_for(tiny_config(max_steps=3, workers=1), tmp_path / "timed", cache).fit(resume=False)
    lines = [json.loads(line) for line in (tmp_path / "timed" / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in lines if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for record in steps:
        assert set(record["time"]) == {"data", "step"}
        assert record["time"]["step"] > 0 and record["time"]["data"] >= 0
    assert all("time" not in r for r in lines if "val_auc" in r)  # a validation is not a step


def test_only_a_launchers_environment_joins_a_process_group(monkeypatch):
    from harness.common import runtime

    for key in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert not runtime.launched()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not runtime.launched()  # a stray variable is not a launch
    for key, value in (("RANK", "0"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")):
        monkeypatch.setenv(key, value)
    assert runtime.launched()  # torchrun --nproc-per-node 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_PORT")
    assert runtime.launched()  # several processes always are (init then says what is missing)
