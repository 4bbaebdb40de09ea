"""How `harness run` and `harness preprocess` wire their stages: one crop rule and one cache home,
each stage its own part of the configuration, no dataset named in the core, no leaked environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from fixtures.builders import build_ffpp
from harness.cli import build_app
from harness.vocab.config import RunConfig

runner = CliRunner()


def test_preprocess_command_fills_the_cache_harness_run_reads(tmp_path, monkeypatch):
    import harness.data.preprocess as pre
    from harness.data.cache import faces_cache_root
    from harness.run.stages import crop_rule

    root = build_ffpp(tmp_path / "f", masks=False)
    seen = []

    def fake_preprocess(records, cache, **kwargs):
        seen.append((Path(cache), kwargs["rule"]))
        return pre.PreprocessSummary(cache_root=str(cache))

    monkeypatch.setattr(pre, "preprocess", fake_preprocess)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "home"))
    result = runner.invoke(build_app(), ["preprocess", "ffpp", "--root", str(root), "--crop-size", "128"])
    assert result.exit_code == 0, result.output
    rule = crop_rule(RunConfig(crop_size=128))
    assert seen[-1] == (faces_cache_root(rule), rule)  # what `harness run` opens for the same settings
    assert seen[-1][0] == tmp_path / "home" / "faces" / "dlib-crop128-m0.3-padconstant-png"  # lossless crops: the format is in the name
    result = runner.invoke(build_app(), ["preprocess", "ffpp", "--root", str(root), "--cache-dir", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert seen[-1][0] == tmp_path / "o" / "faces" / "dlib-crop256-m0.3-padconstant-png"
    result = runner.invoke(build_app(), ["preprocess", "ffpp", "--root", str(root), "--cache", str(tmp_path / "exact")])
    assert seen[-1][0] == tmp_path / "exact"  # --cache still names the folder itself


def test_open_datasets_restores_the_data_root_variable(tmp_path, monkeypatch):
    from harness.run.datasets import open_datasets

    build_ffpp(tmp_path / "data" / "ffpp", masks=False)
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "elsewhere"))
    config = RunConfig(train_dataset="ffpp", test_datasets=["ffpp"], data_root=str(tmp_path / "data"),
                       dataset_options={"ffpp": {"check_counts": False}})
    opened = open_datasets(config)
    assert Path(opened["ffpp"].root) == tmp_path / "data" / "ffpp"  # found through the data root
    assert os.environ["HARNESS_DATA"] == str(tmp_path / "elsewhere")  # and the variable is as it was
    monkeypatch.delenv("HARNESS_DATA")
    open_datasets(config)
    assert "HARNESS_DATA" not in os.environ


def test_dataset_options_name_no_dataset(tmp_path):
    """The demo's options reach the dataset it imitates through the general ``extra`` argument, and
    the run's compression reaches any dataset plugin that takes one."""
    from harness.data import demo
    from harness.run.datasets import dataset_options

    config = RunConfig(train_dataset="ffpp", test_datasets=["ffpp", "folder"], compression="c40",
                       dataset_options={"ffpp": {"methods": ["Deepfakes"]}})
    extra = demo.dataset_options(tmp_path)
    options = dataset_options(config, "ffpp", extra)
    assert options == {"root": tmp_path, "check_counts": False, "methods": ["Deepfakes"], "compression": "c40"}
    assert "compression" not in dataset_options(config, "folder", extra)  # the folder dataset takes none
    assert dataset_options(config, "ffpp") == {"methods": ["Deepfakes"], "compression": "c40"}


def test_predict_and_evaluation_do_not_import_training():
    # what `import harness` itself loads (the logger kind's registration) is not predict's doing
    code = ("import sys, harness; before = set(sys.modules); "
            "import harness.predict, harness.evaluation.runner, harness.evaluation.groups, harness.models.bundle; "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('harness.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_stages_get_their_own_part_of_the_configuration():
    from harness.data.crop import CropRule
    from harness.evaluation.runner import EvalSetup
    from harness.training.trainer import TrainSpec

    config = RunConfig(img_size=96, seed=7)
    spec = TrainSpec.from_run(config, CropRule(crop_size=96))
    assert spec.train == config.train and spec.loss == config.loss and spec.crop.crop_size == 96
    assert not hasattr(spec, "eval") and spec.val_batch_size == config.eval.batch_size
    setup = EvalSetup.from_run(config)
    assert (setup.eval, setup.img_size, setup.seed) == (config.eval, 96, 7)
    assert not hasattr(setup, "train")


def test_run_takes_the_cache_home_from_cache_dir(tmp_path, monkeypatch):
    import harness.run.stages as pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "run", lambda cfg, paths, **kw: seen.update(paths=paths))
    result = runner.invoke(build_app(), ["run", "--data", "demo", "--runs-dir", str(tmp_path / "runs"),
                                         "--cache-dir", str(tmp_path / "home")])
    assert result.exit_code == 0, result.output
    assert seen["paths"].cache_dir == tmp_path / "home"
