"""One vocabulary across commands: one spelling per option in --help, the old spellings still
taken (hidden), flags shown and taken as flags, `harness --version`, and a recorded config.json
that takes every spelling the command line takes."""

from __future__ import annotations

import json
import re

import pytest
import typer.main
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from harness.cli import ALIASES, build_app, respell

runner = CliRunner()
COMMANDS = ["run", "evaluate", "predict", "preprocess", "datasets", "leaderboard", "compare", "plugins", "report",
            "import", "blend preview"]


def invoke(*args: str, **kw):
    return runner.invoke(build_app(), [str(a) for a in args], **kw)


def helptext(command: str) -> str:
    result = invoke(*command.split(), "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_flags_as_flags_and_one_spelling_per_option(command):
    text = helptext(command)
    assert "<bool>" not in text  # `--publish`, not `--publish <bool>`
    listed = set(re.findall(r"^│\s+(--[a-z][a-z0-9-]*)", text, flags=re.M))  # the options column
    assert listed, text
    for old, new in ALIASES.items():
        assert not (old in listed and new in listed), (command, old, new)  # never two spellings of one option
    assert not {old for old, new in ALIASES.items() if new in listed} & listed


def test_the_one_spellings_are_the_ones_shown():
    assert "--face-detector " in helptext("predict") and "--face-detector-option" in helptext("predict")
    for command in ("predict", "preprocess", "blend preview", "run", "evaluate"):
        assert not re.search(r"--detector\b(?!-)", helptext(command)), command
    assert "--face-cache" in helptext("preprocess") and "--cache-dir" in helptext("preprocess")
    assert "--face-cache" in helptext("datasets") and "--json-out" in helptext("datasets")
    assert "--eval-frames" in helptext("evaluate") and "--frames" in helptext("predict")


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and re.match(r"harness \S+ \(deepfake-harness, Python 3\.", result.output), result.output


@pytest.mark.parametrize("args, needle", [
    (["predict", "x.mp4", "-c", "nowhere", "--detector", "dlb"], "--face-detector dlb"),
    (["predict", "x.mp4", "-c", "nowhere", "--detector=dlb"], "--face-detector dlb"),
    (["preprocess", "ffpp", "--detector", "dlb"], "--face-detector dlb"),
    (["evaluate", "--checkpoint", "nowhere", "--detector", "dlb"], "--face-detector dlb"),
    (["evaluate", "--checkpoint", "nowhere", "--frames", "0"], "--eval-frames 0"),
    (["blend", "preview", "--detector", "dlb", "--out", "p.png"], "dlb"),
])
def test_old_spellings_still_work(args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_exit_2(invoke(*args), needle)


def test_old_cache_spelling_of_preprocess_is_the_face_cache(tmp_path):
    for spelling in ("--cache", "--face-cache"):
        line = one_line_exit_2(invoke("preprocess", "--verify", spelling, tmp_path / "none"), "no face cache")
        assert str(tmp_path / "none") in line and "--face-cache DIR" in line


def test_datasets_json_is_a_flag_and_the_old_path_form_writes_the_file(tmp_path, monkeypatch):
    work, root = tmp_path / "work", tmp_path / "data"
    work.mkdir(), root.mkdir()
    monkeypatch.chdir(work)
    printed = invoke("datasets", "--root", root, "--json")
    assert printed.exit_code == 0, printed.output
    assert {r["name"] for r in json.loads(printed.stdout)} >= {"ffpp", "celebdf"}
    assert list(work.iterdir()) == []
    for args, name in ((["--json", "old.json"], "old.json"), (["--json=eq.json"], "eq.json"), (["--json-out", "new.json"], "new.json")):
        assert invoke("datasets", "--root", root, *args).exit_code == 0
        assert json.loads((work / name).read_text()) == json.loads(printed.stdout)


def _params(command: str) -> list:
    cli = typer.main.get_command(build_app())
    return cli.commands[command].params


def test_a_boolean_word_after_a_flag_is_folded_into_it():
    params = _params("run")
    assert respell(params, ["--publish", "true", "--dry-run", "yes"]) == ["--publish", "--dry-run"]
    assert respell(params, ["--publish", "false"]) == []
    assert respell(params, ["--resume", "false"]) == ["--no-resume"]
    assert respell(params, ["--no-resume", "false"]) == ["--resume"]
    assert respell(params, ["--publish", "maybe"]) == ["--publish", "maybe"]  # left for the parser to refuse


def test_option_values_are_never_respelt():
    params = _params("run")
    assert respell(params, ["--name", "--detector", "--detector", "dlib", "--", "--detector"]) == \
        ["--name", "--detector", "--face-detector", "dlib", "--", "--detector"]
    assert respell(_params("datasets"), ["--json", "--root", "x"]) == ["--json", "--root", "x"]


def test_publish_true_runs_as_publish(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "--data", "demo", "--publish", "true", "--dry-run")
    assert result.exit_code == 0, result.output


def test_a_recorded_config_takes_the_command_line_spellings(tmp_path, monkeypatch):
    from harness.extend.defaults import defaults
    from harness.vocab.config import RunConfig
    from harness.run.demo_run import demo_config

    data = demo_config().to_dict()
    data.update(train_dataset="demo", test_datasets=["demo"], pretrained="none", compression="c0", demo=False)
    config = RunConfig.from_dict(data)
    assert config.demo and config.train_dataset == config.test_datasets[0] == defaults().demo_dataset
    assert config.pretrained is False and config.compression == "c0"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(data))
    result = invoke("run", "--config", "config.json", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["config"]["test_datasets"] == [defaults().demo_dataset]
    data.update(train_dataset="ffpp", demo=False)
    (tmp_path / "config.json").write_text(json.dumps(data))
    one_line_exit_2(invoke("run", "--config", "config.json", "--dry-run"), "test_datasets", "demo")
