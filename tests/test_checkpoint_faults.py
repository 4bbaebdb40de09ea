"""Checkpoints under faults: a kill during a save never leaves a mixed set, resume proves every file
belongs to one step, and debris of a killed save is removed."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.common.files import atomic_write_text, recover_dir, replace_dir, temp_dir_next_to
from harness.training import checkpoint as ckpt
from tests.training_helpers import build_cache, tiny_config, trainer_for


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return build_cache(tmp_path_factory.mktemp("ckpt-faults"))


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the harness catches it."""


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / ckpt.MODEL_FILE)), load_file(str(b / ckpt.MODEL_FILE))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_kill_while_saving_trainer_state_resumes_to_the_uninterrupted_weights(cache, tmp_path, one_thread, monkeypatch):
    config = tiny_config()  # 4 steps
    straight = trainer_for(config, tmp_path / "straight", cache).fit(resume=False, checkpoint_every=2)
    real_save = torch.save
    calls = {"n": 0}

    def dying_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the save at step 4
            real_save(obj, f, *args, **kwargs)  # the file is written, then the process dies
            raise Killed()
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(Killed):
        trainer_for(config, tmp_path / "killed", cache).fit(resume=False, checkpoint_every=2)
    monkeypatch.setattr(torch, "save", real_save)
    run = tmp_path / "killed"
    # debris a SIGKILL would leave: a temporary bundle and a half-written file in the folder
    (run / ".checkpoint.dead.tmp").mkdir()
    (run / ".checkpoint.dead.tmp" / ckpt.MODEL_FILE).write_bytes(b"\0" * 1000)
    (run / "checkpoint" / ".trainer_state.pt.dead.tmp").write_bytes(b"\0" * 1000)
    resumed = trainer_for(config, run, cache).fit(resume=True, checkpoint_every=2)
    assert resumed.resumed_from_step == 2 and resumed.steps == straight.steps == 4
    _same_weights(tmp_path / "straight" / "checkpoint", run / "checkpoint")
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    leftovers = [p.name for p in list(run.iterdir()) + list((run / "checkpoint").iterdir()) if p.name.endswith(".tmp")]
    assert leftovers == []


def test_resume_refuses_a_checkpoint_whose_files_come_from_different_steps(cache, tmp_path, one_thread):
    config = tiny_config()
    trainer_for(config, tmp_path / "a", cache).fit(resume=False, checkpoint_every=100, stop_after=1)
    trainer_for(config, tmp_path / "b", cache).fit(resume=False, checkpoint_every=100, stop_after=3)
    # weights of step 3 next to the trainer state of step 1 (what the old save order left after a kill)
    shutil.copy(tmp_path / "b" / "checkpoint" / ckpt.MODEL_FILE, tmp_path / "a" / "checkpoint" / ckpt.MODEL_FILE)
    with pytest.raises(ckpt.CheckpointError) as info:
        trainer_for(config, tmp_path / "a", cache).fit(resume=True)
    message = str(info.value)
    assert "\n" not in message and "step 3" in message and "step 1" in message and "--no-resume" in message


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickled_code"])
def test_a_corrupt_or_tampered_trainer_state_is_one_line_without_weights_only_advice(cache, tmp_path, one_thread, damage):
    config = tiny_config()
    trainer_for(config, tmp_path / "r", cache).fit(resume=False, checkpoint_every=100, stop_after=1)
    path = tmp_path / "r" / "checkpoint" / ckpt.TRAINER_STATE
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        torch.save({"global_step": 1, "payload": shutil.rmtree}, path)  # a pickled function
    with pytest.raises(ckpt.CheckpointError) as info:
        trainer_for(config, tmp_path / "r", cache).fit(resume=True)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message and ckpt.TRAINER_STATE in message


def test_kill_between_the_two_renames_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint"
    target.mkdir()
    (target / "f").write_text("old")
    new = temp_dir_next_to(target)
    (new / "f").write_text("new")
    real_rename = os.rename
    calls = {"n": 0}

    def dying_rename(a, b):
        calls["n"] += 1
        real_rename(a, b)
        if calls["n"] == 1:
            raise Killed()  # the old folder is parked, the new one not yet in place

    monkeypatch.setattr(os, "rename", dying_rename)
    with pytest.raises(Killed):
        replace_dir(new, target)
    monkeypatch.setattr(os, "rename", real_rename)
    assert not target.exists()
    recover_dir(target)
    assert (target / "f").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_written_files_and_folders_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "results.json", "{}")
        folder = temp_dir_next_to(tmp_path / "checkpoint")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_a_saved_checkpoint_is_readable_by_the_group_under_umask_022(tmp_path):
    model = torch.nn.Linear(2, 2)
    old = os.umask(0o022)
    try:
        ckpt.save_checkpoint(tmp_path / "checkpoint", model, {"model": {"backbone": "x"}}, {"optimizer": {}}, {"global_step": 1})
    finally:
        os.umask(old)
    for path in [tmp_path / "checkpoint", *(tmp_path / "checkpoint").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044, path


def test_predict_finds_the_previous_checkpoint_of_a_save_killed_between_its_renames(tmp_path):
    from harness.common.files import old_dir_for

    model = torch.nn.Linear(2, 2)
    ckpt.save_checkpoint(tmp_path / "checkpoint", model, {"model": {"backbone": "x"}})
    os.rename(tmp_path / "checkpoint", old_dir_for(tmp_path / "checkpoint"))  # the state a kill leaves
    assert ckpt.resolve(tmp_path) == old_dir_for(tmp_path / "checkpoint")


def test_a_backbone_hidden_by_harness_plugins_names_the_variable(tmp_path, only_plugins):
    model = torch.nn.Linear(2, 2)
    ckpt.save_checkpoint(tmp_path / "checkpoint", model, {"model": {"backbone": "swin"}})
    only_plugins("multipart")
    with pytest.raises(ckpt.CheckpointError, match="HARNESS_PLUGINS") as info:
        ckpt.load_model(tmp_path)
    assert "not installed" not in str(info.value)
