"""The probe of issue 21, items 6, 8, 9, 10 and a full disk at checkpoint save: runs that survive
their scheduler. Fast checks on the trainer and the lock here; the whole `harness run` processes
(SIGTERM -> resume, bit-identical to an uninterrupted run; a full disk in a run) are in
tests/test_fault_injection.py, beside the uninterrupted run they compare with."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import build_app
from harness.training import checkpoint as ckpt
from tests.training_helpers import build_cache, tiny_config, trainer_for

runner = CliRunner()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return build_cache(tmp_path_factory.mktemp("probe-preemption"))


# ---------------------------------------------------------------------------- checkpoint stamps
def test_resume_refuses_weights_of_another_seed_at_the_same_step(cache, tmp_path, one_thread):
    from dataclasses import replace

    config = tiny_config()
    trainer_for(config, tmp_path / "a", cache).fit(resume=False, checkpoint_every=100, stop_after=2)
    trainer_for(replace(config, seed=4), tmp_path / "b", cache).fit(resume=False, checkpoint_every=100, stop_after=2)
    shutil.copy(tmp_path / "b" / "checkpoint" / ckpt.MODEL_FILE, tmp_path / "a" / "checkpoint" / ckpt.MODEL_FILE)
    with pytest.raises(ckpt.CheckpointError) as info:
        trainer_for(config, tmp_path / "a", cache).fit(resume=True)
    message = str(info.value)
    assert "\n" not in message and "different saves" in message and "step 2" in message


def test_resume_refuses_a_whole_checkpoint_folder_of_another_run(cache, tmp_path, one_thread):
    from dataclasses import replace

    config = tiny_config()
    trainer_for(replace(config, seed=4), tmp_path / "b", cache).fit(resume=False, checkpoint_every=100, stop_after=2)
    (tmp_path / "a").mkdir()
    shutil.copytree(tmp_path / "b" / "checkpoint", tmp_path / "a" / "checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="written by another run") as info:
        trainer_for(config, tmp_path / "a", cache).fit(resume=True)
    assert "\n" not in str(info.value)


def test_resume_with_weights_of_another_backbone_is_one_line(cache, tmp_path, one_thread):
    """The run key is left out (a checkpoint of an older version): the weights themselves do not fit."""
    from dataclasses import replace

    config = tiny_config()
    trainer_for(config, tmp_path / "a", cache).fit(resume=False, checkpoint_every=100, stop_after=1)
    other = replace(config, backbone_options={"depths": [1, 1, 1, 1], "embed_dim": 24, "num_heads": [1, 2, 3, 6]})
    trainer = trainer_for(other, tmp_path / "a", cache)
    trainer.__dict__["run_key"] = trainer_for(config, tmp_path / "x", cache).run_key  # pretend the same run
    with pytest.raises(ckpt.CheckpointError, match="does not fit backbone") as info:
        trainer.fit(resume=True)
    assert "\n" not in str(info.value) and "--no-resume" in str(info.value)


def test_a_full_disk_at_checkpoint_save_names_the_folder_and_the_last_complete_step(cache, tmp_path, one_thread,
                                                                                       monkeypatch):
    config = tiny_config()
    trainer_for(config, tmp_path / "a", cache).fit(resume=False, checkpoint_every=100, stop_after=1)
    monkeypatch.setenv("HARNESS_FAULT", "checkpoint.written:1:ENOSPC")
    monkeypatch.setattr("harness.common.faults._hits", {})
    with pytest.raises(ckpt.CheckpointError) as info:
        trainer_for(config, tmp_path / "a", cache).fit(resume=True, checkpoint_every=100, stop_after=1)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "a" / "checkpoint") in message
    assert "No space left" in message and "at step 2" in message and "last complete checkpoint there is step 1" in message
    assert json.loads((tmp_path / "a" / "checkpoint" / ckpt.STATE_FILE).read_text())["global_step"] == 1


def test_a_partial_last_log_line_is_dropped_with_a_warning_and_resume_continues(cache, tmp_path, one_thread, capsys):
    config = tiny_config()
    straight = trainer_for(config, tmp_path / "straight", cache).fit(resume=False, checkpoint_every=100)
    trainer_for(config, tmp_path / "cut", cache).fit(resume=False, checkpoint_every=100, stop_after=2)
    log = tmp_path / "cut" / "train_log.jsonl"
    with open(log, "a") as fh:
        fh.write('{"step": 3, "epoch": 1, "lo')  # a kill during a write
    resumed = trainer_for(config, tmp_path / "cut", cache).fit(resume=True, checkpoint_every=100)
    assert "partial last line" in capsys.readouterr().err
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    assert all(json.loads(line) for line in log.read_text().splitlines())  # every line whole again


# ---------------------------------------------------------------------------- the run lock
def test_a_second_process_on_the_same_run_refuses_in_one_line(tmp_path, monkeypatch):
    from harness.vocab.config import RunConfig
    from harness.run.stages import run_id
    from harness.run.demo_run import demo_config

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "runs" / run_id(demo_config(RunConfig(demo_scale="tiny")))  # the tiny demo's own id
    run_dir.mkdir(parents=True)
    # pid 1 lives as long as the machine: a live owner on this host
    (run_dir / "run.lock").write_text(json.dumps({"pid": 1, "host": socket.gethostname(), "heartbeat": 0}))
    result = runner.invoke(build_app(), ["run", "--data", "demo", "--demo-scale", "tiny"])
    lines = [line for line in result.output.splitlines() if line.strip() and "not a benchmark" not in line.lower()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert any("in use by pid 1" in line and "run.lock" in line for line in lines), result.output
    assert not (run_dir / "config.json").exists()  # nothing of the owner's touched


def test_a_stale_lock_is_taken_over_and_a_live_one_is_not(tmp_path):
    from harness.run.lock import RunLock, RunLockedError

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "heartbeat": 0}))
    lock = RunLock(tmp_path).acquire()  # the owner is gone
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / "run.lock").exists()
    (tmp_path / "run.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "heartbeat": 1e18}))
    with pytest.raises(RunLockedError, match="in use by pid 1 on elsewhere"):
        RunLock(tmp_path).acquire()  # another host, fresh heartbeat: alive


def test_a_deeply_nested_state_json_is_one_line(cache, tmp_path, one_thread):
    config = tiny_config()
    run = tmp_path / ("a-long-folder-name" * 8)  # the reason must survive a long path in the message
    trainer_for(config, run, cache).fit(resume=False, checkpoint_every=100, stop_after=1)
    (run / "checkpoint" / ckpt.STATE_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ckpt.CheckpointError, match="nests deeper") as info:
        trainer_for(config, run, cache).fit(resume=True)
    assert "\n" not in str(info.value) and "--no-resume" in str(info.value)


# ---------------------------------------------------------------------------- SIGTERM while data loads (issue 31)
def test_sigterm_while_a_batch_is_collated_stops_at_once_with_the_last_step_saved(cache, tmp_path, one_thread,
                                                                                   monkeypatch):
    """A batch being put together is not a step: SIGTERM stops there at once (a huge batch collates
    for minutes), the checkpoint holds the last finished step and a rerun redoes the batch."""
    from harness.training.trainer import Preempted

    config = tiny_config()
    monkeypatch.setenv("HARNESS_FAULT", "train.collate:3:TERM")  # the 3rd batch: steps 1 and 2 are done
    monkeypatch.setattr("harness.common.faults._hits", {})
    with pytest.raises(Preempted):
        trainer_for(config, tmp_path / "a", cache).fit(resume=False, checkpoint_every=100)
    state = json.loads((tmp_path / "a" / "checkpoint" / ckpt.STATE_FILE).read_text())
    assert state["global_step"] == 2 and state["step_in_epoch"] == 2
    monkeypatch.delenv("HARNESS_FAULT")
    straight = trainer_for(config, tmp_path / "b", cache).fit(resume=False, checkpoint_every=100)
    resumed = trainer_for(config, tmp_path / "a", cache).fit(resume=True, checkpoint_every=100)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
