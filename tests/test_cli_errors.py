"""One rule for the CLI: a user error (unknown name, bad file, bad option, bad data) is one line
naming what was wrong and what to do, exit code 2, never a Python traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import build_app

runner = CliRunner()


def _bad_inputs(tmp: Path) -> dict[str, list[str]]:
    (tmp / "bad.json").write_text("{ not json")
    (tmp / "notes.txt").write_text("hello")
    (tmp / "results").mkdir(exist_ok=True)
    return {
        "plugins_kind": ["plugins", "--kind", "blendr"],
        "run_blender": ["run", "--blender", "multipar"],
        "run_backbone": ["run", "--backbone", "swim"],
        "run_preset": ["run", "--preset", "ful"],
        "run_seed": ["run", "--seed", "one"],
        "run_device": ["run", "--device", "tpu"],
        "run_selection": ["run", "--selection", "best"],
        "run_config_missing": ["run", "--config", str(tmp / "missing.json")],
        "run_config_bad": ["run", "--config", str(tmp / "bad.json")],
        "run_dataset": ["run", "--data", "nosuchdata", "--root", str(tmp)],
        "datasets_name": ["datasets", "--name", "ffp"],
        "preprocess_dataset": ["preprocess", "ffp", "--cache", str(tmp / "c1")],
        "preprocess_detector": ["preprocess", "folder", "--root", str(tmp), "--detector", "dlb", "--cache", str(tmp / "c2")],
        "preprocess_shard": ["preprocess", "folder", "--root", str(tmp), "--shard", "3/2", "--cache", str(tmp / "c3")],
        "preprocess_frames": ["preprocess", "folder", "--root", str(tmp), "--frames", "many", "--cache", str(tmp / "c4")],
        "preprocess_missing_root": ["preprocess", "ffpp", "--root", str(tmp / "nowhere"), "--cache", str(tmp / "c5")],
        "blend_blender": ["blend", "preview", "--blender", "multipar", "--out", str(tmp / "p.png")],
        "blend_image": ["blend", "preview", str(tmp / "nowhere.png"), "--out", str(tmp / "p.png")],
        "blend_not_image": ["blend", "preview", str(tmp / "notes.txt"), "--out", str(tmp / "p.png")],
        "leaderboard_results": ["leaderboard", "--results", str(tmp / "nowhere"), "--out", str(tmp / "L.md")],
        "predict_checkpoint": ["predict", str(tmp / "notes.txt"), "--checkpoint", str(tmp / "nowhere")],
        "predict_threshold": ["predict", str(tmp / "notes.txt"), "--checkpoint", str(tmp), "--threshold", "2"],
    }


CASES = [
    "plugins_kind", "run_blender", "run_backbone", "run_preset", "run_seed", "run_device", "run_selection",
    "run_config_missing", "run_config_bad", "run_dataset", "datasets_name", "preprocess_dataset",
    "preprocess_detector", "preprocess_shard", "preprocess_frames", "preprocess_missing_root", "blend_blender",
    "blend_image", "blend_not_image", "leaderboard_results", "predict_checkpoint", "predict_threshold",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_code_2(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "data"))
    args = _bad_inputs(tmp_path)[case]
    result = runner.invoke(build_app(), args)
    text = result.output
    assert "Traceback" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, text)
    lines = [line for line in text.splitlines() if line.strip()]
    if case in MULTI_LINE:  # the dataset doctor's advice: where it looked, how to get the data
        assert "not found" in lines[0]
    else:
        assert len(lines) == 1, text


MULTI_LINE = {"preprocess_missing_root"}


def test_a_blender_that_raises_in_preview_is_one_line(tmp_path, fresh_plugins):
    import types

    from harness import hookimpl

    module = types.ModuleType("tplug_boom")

    def register_blenders(register):
        def factory():
            def blend(face, landmarks, rng):
                raise ZeroDivisionError("plugin bug")
            return blend
        register("boom", factory, "raises")

    module.register_blenders = hookimpl(register_blenders)
    fresh_plugins.register_module(module)
    result = runner.invoke(build_app(), ["blend", "preview", "--blender", "boom", "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "'boom'" in lines[0] and "ZeroDivisionError" in lines[0]
