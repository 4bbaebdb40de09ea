"""Every dataset plugin through `harness run`, the way a user drives it: a tiny copy of its official
layout under a data root, `--data NAME --test NAME --root DIR`, then the results JSON. One torch
thread: on a shared 2-core machine two threads made one training step 5x slower.

The plugins' unit tests (test_datasets.py) never went through the pipeline, which is how a plugin
without a val split crashed `harness run` unnoticed. Each run here trains one step at 64 px."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.builders import (CELEB_TEST, DFDC_TEST, FFPP_METHODS, build_celebdf, build_dfdc, build_dfdcp,
                               build_ffpp, build_folder)
from harness.cli import build_app

runner = CliRunner()
TINY = ("--backbone", "mobilenetv2", "--pretrained", "none", "--img-size", "64", "--max-steps", "1", "--batch-size", "2",
        "--eval-frames", "2", "--workers", "0", "--device", "cpu")


def tiny_config(path: Path) -> Path:
    """What the CLI has no option for, kept small: 2 cached frames per training video, small crops,
    a short bootstrap (the numbers are not the point, the run through every stage is)."""
    from dataclasses import replace

    from harness.vocab.config import EvalConfig, RunConfig, TrainConfig, save_config

    config = RunConfig()
    save_config(replace(config, crop_size=96, train=TrainConfig(cache_frames=2, frames_per_video=2),
                        eval=EvalConfig(frames_per_video=2, bootstrap=50)), path)
    return path


def _layout(name: str, data: Path) -> tuple[list[str], int, set[str]]:
    """Build ``name``'s layout under ``data``: (extra CLI args, test videos, result groups)."""
    if name == "ffpp":
        build_ffpp(data / "ffpp", masks=True)
        return ["--root", str(data)], 2 + 4 * 2, {"all", *FFPP_METHODS}
    if name == "celebdf":
        build_celebdf(data / "celebdf")
        return ["--root", str(data)], len(CELEB_TEST), {"all", "Celeb-synthesis"}
    if name == "dfdc":
        build_dfdc(data / "dfdc")
        return ["--root", str(data)], len(DFDC_TEST), {"all", "DFDC"}
    if name == "dfdcp":
        build_dfdcp(data / "dfdcp")
        return ["--root", str(data)], 3, {"all", "method_A", "method_B"}
    train_dir, csv = build_folder(data / "own")
    return ["--train-dir", str(train_dir), "--test-csv", str(csv)], 3, {"all", "gan"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ffpp", "celebdf", "dfdc", "dfdcp", "folder"])
def test_each_dataset_plugin_runs_end_to_end(name, tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.delenv(f"HARNESS_DATA_{name.upper()}", raising=False)
    args, n_test, groups = _layout(name, tmp_path / "data")
    data = [] if name == "folder" else ["--data", name, "--test", name]
    config = tiny_config(tmp_path / "tiny.json")
    result = runner.invoke(build_app(), ["run", "--config", str(config), *data, *args, *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files = list((tmp_path / "runs" / "results").glob("*.json"))
    assert len(files) == 1
    results = json.loads(files[0].read_text())
    from harness.reporting.results import validate

    validate(results)
    assert results["config"]["train_dataset"] == name and list(results["datasets"]) == [name]
    block = results["datasets"][name]
    assert block["counts"]["videos"] == n_test and block["counts"]["videos_scored"] == n_test
    assert set(block["groups"]) == groups
    auc = block["groups"]["all"]["video"]["auc"]
    assert auc["n"] == n_test and 0.0 <= auc["value"] <= 1.0
    has_val = name == "ffpp"
    assert (results["training"]["val_videos"] > 0) == has_val
    assert has_val or any("no validation split" in n for n in results["training"]["notes"])


def test_a_root_that_does_not_exist_is_one_line_and_the_demo_is_listed(tmp_path):
    from fixtures.cli_checks import one_line_exit_2

    missing = tmp_path / "nope"
    one_line_exit_2(runner.invoke(build_app(), ["datasets", "--root", str(missing)]), f"--root {missing}", "no such folder")
    listed = runner.invoke(build_app(), ["datasets", "--root", str(tmp_path), "--json"])
    assert listed.exit_code == 0, listed.output
    reports = {r["name"]: r for r in json.loads(listed.stdout)}
    assert reports["demo"]["found"] is True and not reports["ffpp"]["found"]  # the demo needs no download
    alone = runner.invoke(build_app(), ["datasets", "--name", "demo", "--json"])  # a name the listing shows is taken
    assert alone.exit_code == 0 and [r["name"] for r in json.loads(alone.stdout)] == ["demo"], alone.output
    one_line_exit_2(runner.invoke(build_app(), ["datasets", "--name", "dem"]), "--name dem", "did you mean 'demo'?")
