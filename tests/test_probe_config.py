"""The probe of issue 21, item 2 (options checked before any work): every value that cannot run is
one line and exit code 2 from the shared check (harness/vocab/config_check.py), in the dry run as in the
run, from an option, a --config file or the Python API; nothing is written."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from harness.cli import build_app

runner = CliRunner()


BAD_RUN_OPTIONS = {
    "batch_size_0": (["--batch-size", "0"], "--batch-size 0"),
    "batch_size_1": (["--batch-size", "1"], "even"),
    "batch_size_3": (["--batch-size", "3"], "even"),
    "max_steps_negative": (["--max-steps", "-5"], "--max-steps -5"),
    "max_steps_0": (["--max-steps", "0"], "--max-steps 0"),
    "epochs_0": (["--epochs", "0"], "--epochs 0"),
    "eval_frames_0": (["--eval-frames", "0"], "--eval-frames 0"),
    "workers_negative": (["--workers", "-1"], "--workers -1"),
    "compression": (["--compression", "c99"], "--compression"),
    "img_size_33": (["--img-size", "33", "--pretrained", "none"], "--img-size 33"),
    "img_size_huge": (["--img-size", "100000"], "--img-size 100000"),
    "device": (["--device", "tpu"], "--device"),
}


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("case", sorted(BAD_RUN_OPTIONS))
def test_a_value_that_cannot_run_is_refused_before_any_work(case, dry_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, needle = BAD_RUN_OPTIONS[case]
    result = runner.invoke(build_app(), ["run", "--data", "demo", "--demo-scale", "tiny", *args]
                           + (["--dry-run"] if dry_run else []))
    one_line_exit_2(result, needle)
    assert not (tmp_path / "runs").exists()  # nothing started


def test_output_paths_of_the_wrong_kind_are_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    base = ["run", "--data", "demo", "--demo-scale", "tiny"]
    one_line_exit_2(runner.invoke(build_app(), [*base, "--results-dir", "afile"]), "--results-dir afile", "folder")
    one_line_exit_2(runner.invoke(build_app(), [*base, "--leaderboard", "adir"]), "--leaderboard adir", "file")
    one_line_exit_2(runner.invoke(build_app(), [*base, "--runs-dir", "afile/runs", "--dry-run"]), "--runs-dir")
    assert not (tmp_path / "runs").exists()


def test_a_config_file_with_a_bad_value_is_refused(tmp_path, monkeypatch):
    from harness.vocab.config import RunConfig

    monkeypatch.chdir(tmp_path)
    data = RunConfig().to_dict()
    data["train"]["batch_size"] = 3
    (tmp_path / "config.json").write_text(json.dumps(data))
    result = runner.invoke(build_app(), ["run", "--config", "config.json", "--dry-run"])
    one_line_exit_2(result, "--batch-size 3")


def test_the_python_api_refuses_what_the_cli_refuses(tmp_path):
    from dataclasses import replace

    from harness.vocab.config import RunConfig
    from harness.vocab.config_check import ConfigError
    from harness.run.paths import RunPaths
    from harness.run.stages import run

    bad = replace(RunConfig(), train=replace(RunConfig().train, max_steps=0))
    with pytest.raises(ConfigError, match="--max-steps 0"):
        run(bad, RunPaths(tmp_path / "runs", tmp_path / "results", tmp_path / "L.md"))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("frames", ["0", "-4", "train=8,test=0", "many"])
def test_preprocess_refuses_frames_below_one_before_touching_the_cache(frames, tmp_path):
    cache = tmp_path / "cache"
    result = runner.invoke(build_app(), ["preprocess", "folder", "--root", str(tmp_path), "--frames", frames,
                                         "--cache", str(cache)])
    one_line_exit_2(result, "--frames")
    assert not cache.exists()


def test_a_valid_dry_run_keeps_the_published_demo_run_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(build_app(), ["run", "--data", "demo", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["run_id"] == "multipart-mobilenetv2-3c6d94b901"


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("field,options,needles", [
    ("blender_options", {"opacty": 0.5}, ["blender_options", "'opacty' is not an option of blender 'multipart'", "did you mean 'opacity'"]),
    ("dataset_options", {"ffpp": {"compresion": "c40"}}, ["dataset_options.ffpp", "'compresion'", "did you mean 'compression'"]),
], ids=["blender", "dataset"])
def test_a_plugin_option_the_plugin_does_not_take_is_refused_before_any_work(field, options, needles, dry_run, tmp_path, monkeypatch):
    from harness.vocab.config import RunConfig

    monkeypatch.chdir(tmp_path)
    data = RunConfig().to_dict()
    data[field] = options
    (tmp_path / "config.json").write_text(json.dumps(data))
    result = runner.invoke(build_app(), ["run", "--config", "config.json"] + (["--dry-run"] if dry_run else []))
    one_line_exit_2(result, *needles)
    assert not (tmp_path / "runs").exists()
