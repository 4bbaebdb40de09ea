"""Every name a command is given is checked first: a misspelt one is one line with a suggestion,
exit code 2, and nothing written (no run folder, config.json, demo data or cache), `--dry-run`
included. Cheap: each command fails before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.cli_checks import one_line_exit_2
from harness.cli import build_app

runner = CliRunner()

#: (command line, what the one line must hold: the option, the name and the suggestion)
CASES = {
    "run --data": (["run", "--data", "deme"], ["--data deme", "did you mean 'demo'?"]),
    "run --data, shipped-weights backbone": (["run", "--data", "deme", "--backbone", "mobilenetv2"],
                                             ["--data deme", "did you mean 'demo'?"]),
    "run --test": (["run", "--data", "demo", "--test", "celebdff"], ["--test celebdff", "did you mean 'celebdf'?"]),
    "run --test demo": (["run", "--test", "dmeo", "--data", "demo"], ["--test dmeo", "did you mean 'demo'?"]),
    "run --blender": (["run", "--data", "demo", "--blender", "multpart"], ["--blender multpart", "did you mean 'multipart'?"]),
    "run --backbone in a sweep": (["run", "--data", "demo", "--backbone", "mobilenetv2,swinn"],
                                  ["--backbone swinn", "did you mean 'swin'?"]),
    "run --face-detector": (["run", "--data", "demo", "--face-detector", "dlibb"],
                            ["--face-detector dlibb", "did you mean 'dlib'?"]),
    "run --logger": (["run", "--data", "demo", "--logger", "tensorbord"], ["--logger tensorbord", "did you mean 'tensorboard'?"]),
    "evaluate --test": (["evaluate", "--checkpoint", "nowhere", "--test", "dfdcc"], ["--test dfdcc", "did you mean 'dfdc'?"]),
    "evaluate --data": (["evaluate", "--checkpoint", "nowhere", "--data", "deme"], ["--data deme", "did you mean 'demo'?"]),
    "evaluate --face-detector": (["evaluate", "--checkpoint", "nowhere", "--face-detector", "retinafce"],
                                 ["--face-detector retinafce", "did you mean 'retinaface'?"]),
    "evaluate importer": (["evaluate", "--checkpoint", "sbii:FFc23.tar"], ["unknown importer 'sbii'", "did you mean 'sbi'?"]),
    "predict importer": (["predict", "x.mp4", "--checkpoint", "mesnet:Meso4_DF.h5"], ["unknown importer 'mesnet'", "did you mean 'mesonet'?"]),
    "predict --face-detector": (["predict", "x.mp4", "--checkpoint", "nowhere", "--face-detector", "dlb"],
                                ["--face-detector dlb", "did you mean 'dlib'?"]),
    "preprocess dataset": (["preprocess", "celebdv"], ["celebdv", "did you mean 'celebdf'?"]),
    "preprocess --face-detector": (["preprocess", "ffpp", "--face-detector", "dlib-cn"], ["--face-detector dlib-cn", "did you mean 'dlib-cnn'?"]),
    "plugins --kind": (["plugins", "--kind", "blendr"], ["blendr", "did you mean 'blender'?"]),
}
DRY_RUN = {"run --data", "run --test", "run --blender", "run --backbone in a sweep", "run --face-detector", "run --logger",
           "evaluate --test", "evaluate importer"}


def _cases() -> list:
    out = [pytest.param(args, needles, id=name) for name, (args, needles) in CASES.items()]
    return out + [pytest.param(CASES[name][0] + ["--dry-run"], CASES[name][1], id=f"{name} --dry-run") for name in sorted(DRY_RUN)]


@pytest.mark.parametrize("args, needles", _cases())
def test_a_misspelt_name_is_one_line_with_a_suggestion_and_writes_nothing(args, needles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "data"))
    one_line_exit_2(runner.invoke(build_app(), args), *needles)
    assert list(tmp_path.iterdir()) == []  # no run folder, config.json, demo data or cache


def test_names_come_before_weights(tmp_path, monkeypatch):
    """`--data deme` with the default backbone (Swin, whose ImageNet weights are not here) names the
    dataset, not the weights."""
    monkeypatch.chdir(tmp_path)
    line = one_line_exit_2(runner.invoke(build_app(), ["run", "--data", "deme"]), "--data deme")
    assert "weights" not in line and "Known: celebdf, demo, dfdc" in line


def test_demo_is_a_known_test_set_of_a_demo_run(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(build_app(), ["run", "--data", "demo", "--test", "demo", "--dry-run"])
    assert result.exit_code == 0, result.output
    from harness.extend.defaults import defaults

    assert json.loads(result.stdout)["runs"][0]["config"]["test_datasets"] == [defaults().demo_dataset]
    one_line_exit_2(runner.invoke(build_app(), ["run", "--test", "demo", "--dry-run"]), "--test demo", "--data demo")


def test_a_missing_dataset_is_said_before_the_demo_is_built(tmp_path, monkeypatch):
    """A known test set that is not on disk fails before the demo data, a run folder or a cache exist."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "data"))
    result = runner.invoke(build_app(), ["run", "--data", "demo", "--demo-scale", "tiny", "--test", "ffpp,celebdf",
                                         "--pretrained", "none"])
    assert result.exit_code == 2 and "celebdf" in result.output and "not found" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_a_recorded_config_names_are_checked_too(tmp_path, monkeypatch):
    import json

    from harness.vocab.config import RunConfig

    monkeypatch.chdir(tmp_path)
    data = RunConfig().to_dict()
    data["blender"] = "multipartt"
    (tmp_path / "config.json").write_text(json.dumps(data))
    one_line_exit_2(runner.invoke(build_app(), ["run", "--config", "config.json", "--dry-run"]),
                    "--blender multipartt", "did you mean 'multipart'?")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_registry_check_name_counts_the_extra_words():
    from harness.common.errors import UnknownPluginError
    from harness.extend import registry

    registry.check_name("dataset", "demo", also=["demo"])  # a word the option takes: no error
    with pytest.raises(UnknownPluginError, match="did you mean 'demo'"):
        registry.check_name("dataset", "dem", also=["demo"])
    with pytest.raises(UnknownPluginError) as info:
        registry.check_name("dataset", "dem")
    assert "demo" not in str(info.value)


def test_a_damaged_weights_file_is_one_line(tmp_path):
    from harness.models.weights import read_state_dict

    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"\x00" * 4)
    with pytest.raises(ValueError, match="could not read .*w.safetensors.* as safetensors"):
        read_state_dict(bad)


def test_nothing_is_looked_up_in_a_real_folder(tmp_path: Path):
    """The check reads no file: a checkpoint spec with a known importer and a missing file passes it."""
    from harness.models.importing import parse_spec
    from harness.vocab.config_check import check_names

    check_names(tests=["ffpp"], face_detector="dlib")
    assert parse_spec(f"sbi:{tmp_path / 'nowhere.tar'}").importer == "sbi"
