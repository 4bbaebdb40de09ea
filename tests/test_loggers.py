"""Training loggers as plugins: the JSONL log (built in, always on), TensorBoard (read back from its
event file), a third-party logger registered like any plugin, and the --logger option."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import build_app
from training_helpers import build_cache, tiny_config, trainer_for

pytest.importorskip("tensorboard", reason="the [tensorboard] extra (make test installs it)")


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files under ``log_dir``: {tag: [(step, value), ...]}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_loggers_are_plugins_listed_with_their_kind():
    result = CliRunner().invoke(build_app(), ["plugins", "--json", "--kind", "logger"])
    assert result.exit_code == 0, result.output
    names = {r["name"] for r in json.loads(result.stdout)["plugins"]}
    assert {"jsonl", "tensorboard"} <= names


def test_tensorboard_logger_writes_scalars_that_read_back(tmp_path):
    import harness

    logger = harness.plugin("logger", "tensorboard", run_dir=tmp_path, config=None)
    for step in (1, 2, 3):
        logger.log({"step": step, "epoch": 1, "lr": 0.1 / step, "loss": 1.0 / step, "cls": 0.5, "mask": 0.25})
    logger.log({"step": 3, "epoch": 1, "val_auc": 0.75})
    logger.close()
    got = scalars(tmp_path / "tensorboard")
    assert set(got) == {"train/lr", "train/loss", "train/cls", "train/mask", "val/auc"}
    assert [s for s, _ in got["train/loss"]] == [1, 2, 3]
    assert [round(v, 6) for _, v in got["train/loss"]] == [1.0, 0.5, round(1 / 3, 6)]
    assert got["val/auc"] == [(3, 0.75)]


class Recorder:
    """A third-party logger, as a W&B or MLflow plugin would be."""

    records: list[dict] = []

    def __init__(self, run_dir, config=None):
        self.run_dir = run_dir

    def log(self, record):
        Recorder.records.append(dict(record))

    def close(self):
        Recorder.records.append({"closed": True})


def test_trainer_feeds_every_logger_the_same_records(tmp_path, fresh_plugins):
    from harness import hookimpl

    plugin = types.ModuleType("recorder_plugin")

    @hookimpl
    def register_loggers(register):
        register("recorder", Recorder, "records in memory")

    plugin.register_loggers = register_loggers
    fresh_plugins.register_module(plugin, "recorder_plugin")
    Recorder.records = []
    cache = build_cache(tmp_path / "data")
    config = tiny_config(max_steps=3, epochs=1)
    trainer = trainer_for(config, tmp_path / "run", cache, loggers="tensorboard,recorder")
    outcome = trainer.fit(resume=False)
    assert outcome.steps == 3
    lines = [json.loads(l) for l in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    steps = [l for l in lines if "loss" in l]
    assert [l["step"] for l in steps] == [1, 2, 3] and {"lr", "cls", "mask"} <= set(steps[0])
    assert Recorder.records[-1] == {"closed": True}
    assert Recorder.records[:-1] == lines  # the plugin saw exactly what the JSONL log holds
    got = scalars(tmp_path / "run" / "tensorboard")
    assert [(s, round(v, 5)) for s, v in got["train/loss"]] == [(l["step"], round(l["loss"], 5)) for l in steps]
    vals = [l for l in lines if "val_auc" in l]
    if vals:  # validation AUC goes through the same loggers
        assert got["val/auc"][-1][1] == pytest.approx(vals[-1]["val_auc"])


def test_unknown_logger_fails_before_any_work_with_a_suggestion(tmp_path):
    result = CliRunner().invoke(build_app(), ["run", "--data", "demo", "--logger", "tensorbord", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code != 0
    assert "did you mean 'tensorboard'" in result.output
    assert not (tmp_path / "runs").exists()


def test_missing_tensorboard_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the extra were not installed
    result = CliRunner().invoke(build_app(), ["run", "--data", "demo", "--logger", "tensorboard", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code != 0
    assert "deepfake-harness[tensorboard]" in result.output
