"""The demo's scale is part of what a run records (issue 31, item 3): `--demo-scale` is a field of
config.json and of the run id (the default demo's published id unchanged), a recorded config reruns
its own demo, and `harness evaluate` takes the scale of the checkpoint's run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from harness.cli import build_app
from harness.data import demo
from harness.vocab.config import RunConfig, save_config
from harness.run.demo_run import demo_config
from harness.run.stages import run_id

runner = CliRunner()
PUBLISHED_DEMO_ID = "multipart-mobilenetv2-3c6d94b901"


def dry_run(*args: str) -> tuple[dict, str]:
    result = runner.invoke(build_app(), ["run", *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    return run, result.stderr


def test_the_demo_scale_is_recorded_and_in_the_run_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default, _ = dry_run("--data", "demo")
    tiny, _ = dry_run("--data", "demo", "--demo-scale", "tiny")
    assert default["run_id"] == PUBLISHED_DEMO_ID and default["config"]["demo_scale"] == "default"
    assert tiny["config"]["demo_scale"] == "tiny" and tiny["run_id"] != PUBLISHED_DEMO_ID
    assert tiny["config"] == {**default["config"], "demo_scale": "tiny"}  # nothing else differs

    path = tmp_path / "config.json"
    save_config(RunConfig.from_dict(tiny["config"]), path)
    again, said = dry_run("--config", str(path))  # no --demo-scale: the recorded one
    assert again == tiny and "overriding" not in said
    other, said = dry_run("--config", str(path), "--demo-scale", "default")
    assert other == default and "overriding demo_scale: tiny -> default (from --demo-scale)" in said
    # a dataset that is not the demo has no demo scale: the option changes nothing there
    real, _ = dry_run("--data", "ffpp")
    assert dry_run("--data", "ffpp", "--demo-scale", "tiny")[0] == real and real["config"]["demo_scale"] == "default"
    assert not any(tmp_path.iterdir()) or [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_an_unknown_demo_scale_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_exit_2(runner.invoke(build_app(), ["run", "--data", "demo", "--demo-scale", "huge", "--dry-run"]),
                    "--demo-scale 'huge'", "tiny")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**demo_config().to_dict(), "demo_scale": ["tiny"]}))
    one_line_exit_2(runner.invoke(build_app(), ["run", "--config", str(path), "--dry-run"]), "demo_scale")


def test_a_demo_run_reads_the_demo_of_its_recorded_scale(tmp_path, monkeypatch):
    from harness.run.stages import demo_options

    made = []
    monkeypatch.setattr(demo, "ensure_demo", lambda spec, root, progress=True: made.append(spec) or root)
    options = demo_options(demo_config(RunConfig(demo_scale="tiny")), tmp_path)
    assert made == [demo.SCALES["tiny"]]
    assert options[demo.DATASET]["root"] == demo.demo_root(demo.SCALES["tiny"], tmp_path)
    assert run_id(demo_config()) == PUBLISHED_DEMO_ID  # the default's id holds no demo_scale


@pytest.mark.slow
def test_evaluate_takes_the_checkpoints_demo_and_checks_overlap_against_it(tiny_demo, tmp_path):
    from harness.run.evaluate import open_checkpoint, training_files

    def evaluate(*args: str) -> dict:
        result = runner.invoke(build_app(), ["evaluate", "--checkpoint", str(tiny_demo.seed0), *args, "--dry-run",
                                             "--cache-dir", str(tiny_demo.cache)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    own, default = evaluate(), evaluate("--demo-scale", "default")
    assert own["config"]["demo_scale"] == "tiny" and default["config"]["demo_scale"] == "default"
    assert own["run_id"] != default["run_id"]  # two test sets, two ids
    rerun, _ = dry_run("--config", str(tiny_demo.seed0 / "config.json"), "--cache-dir", str(tiny_demo.cache))
    assert rerun["run_id"] == tiny_demo.seed0.name  # the recorded config reruns the tiny demo's run

    trained, note = training_files(open_checkpoint(str(tiny_demo.seed0)), Path(tiny_demo.cache))
    tree = demo.demo_root(demo.SCALES["tiny"], tiny_demo.cache).resolve()
    assert note is None and trained and all(Path(p).is_relative_to(tree) for p in trained)
