"""The command line: plugin listing, suggestions, missing datasets, the example third-party plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import build_app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(build_app(), list(args), catch_exceptions=False)


def test_plugins_lists_every_kind_as_json():
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)["plugins"]
    kinds = {r["kind"] for r in rows}
    assert kinds == {"blender", "backbone", "evaluator", "dataset", "face_detector", "logger", "importer"}
    multipart = next(r for r in rows if r["name"] == "multipart")
    assert multipart["package"] == "deepfake-harness" and multipart["version"]


def test_typo_in_blender_exits_nonzero_with_suggestion():
    result = invoke("run", "--blender", "multpart", "--backbone", "swin")
    assert result.exit_code != 0
    assert "did you mean 'multipart'" in result.output


def test_missing_datasets_say_where_they_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "nothing-here"))
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "--blender", "multipart", "--backbone", "swin", "--pretrained", "none",
                    "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code != 0
    out = " ".join(result.output.split())
    for name in ("ffpp", "celebdf", "dfdc", "dfdcp"):
        assert name in out
    assert "nothing-here" in out and "--data demo" in out


def test_bad_device_is_refused_before_any_work(tmp_path):
    result = invoke("run", "--data", "demo", "--device", "gpu0", "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2 and "'gpu0' is not a device name" in result.output
    assert not (tmp_path / "runs").exists()


def test_unknown_preset_is_refused_with_a_hint():
    result = invoke("run", "--data", "demo", "--preset", "ful")
    assert result.exit_code != 0 and "did you mean 'full'" in result.output


def test_seed_list_runs_one_config_per_seed(monkeypatch, tmp_path):
    import harness.run.stages as pipeline

    started = []
    monkeypatch.setattr("harness.run.config_check.check_weights", lambda cfg: None)  # the run is a stand-in: so are its weights
    monkeypatch.setattr(pipeline, "run", lambda cfg, paths, **kw: started.append(cfg))
    result = invoke("run", "--data", "demo", "--backbone", "swin,resnet50", "--seed", "0, 1,2",
                    "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert [(c.backbone, c.seed) for c in started] == [(b, s) for b in ("swin", "resnet50") for s in (0, 1, 2)]
    assert len({c.run_key() for c in started}) == 6  # each seed is its own resumable run

    bad = invoke("run", "--data", "demo", "--seed", "0,one")
    assert bad.exit_code == 2 and "--seed '0,one'" in bad.output


def test_config_file_values_survive_unless_an_option_overrides_them(monkeypatch, tmp_path):
    import harness.run.stages as pipeline
    from harness.vocab.config import RunConfig, save_config

    started = []
    monkeypatch.setattr("harness.run.config_check.check_weights", lambda cfg: None)  # the run is a stand-in: so are its weights
    monkeypatch.setattr(pipeline, "run", lambda cfg, paths, **kw: started.append(cfg))
    saved = tmp_path / "config.json"
    save_config(replace(RunConfig(), seed=5, name="mine", compression="c40", device="cpu", img_size=96), saved)
    common = ("run", "--config", str(saved), "--runs-dir", str(tmp_path / "runs"))
    assert invoke(*common).exit_code == 0
    assert invoke(*common, "--seed", "7", "--name", "other", "--compression", "raw").exit_code == 0
    kept, overridden = started
    assert (kept.seed, kept.name, kept.compression, kept.device, kept.img_size) == (5, "mine", "c40", "cpu", 96)
    assert (overridden.seed, overridden.name, overridden.compression, overridden.img_size) == (7, "other", "raw", 96)

    save_config(replace(RunConfig(), train_dataset="folder", test_datasets=["folder"]), saved)
    assert invoke(*common).exit_code == 0
    assert (started[-1].train_dataset, started[-1].test_datasets, started[-1].demo) == ("folder", ["folder"], False)
    from harness.run.demo_run import demo_config

    save_config(demo_config(), saved)  # a demo run's recorded config reruns on the demo data
    assert invoke(*common).exit_code == 0
    assert started[-1].demo and started[-1].img_size == demo_config().img_size


@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    """The example plugin pip-installed into a private folder (no network, no build isolation)."""
    target = tmp_path_factory.mktemp("example-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(ROOT / "examples" / "harness-example-blender")],
        check=True,
    )
    return target


def _env_with(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return env


def test_example_plugin_is_listed_and_adds_a_command(example_site):
    env = _env_with(example_site)
    out = subprocess.run([sys.executable, "-m", "harness", "plugins", "--json"], env=env, capture_output=True, text=True, check=True)
    rows = {r["name"]: r for r in json.loads(out.stdout)["plugins"]}
    assert rows["blur_ellipse"]["package"] == "harness-example-blender"
    assert rows["blur_ellipse"]["version"] == "0.1.0"
    hello = subprocess.run([sys.executable, "-m", "harness", "example-hello"], env=env, capture_output=True, text=True, check=True)
    assert "hello from harness-example-blender" in hello.stdout


def test_demo_run_end_to_end_with_the_example_plugin(example_site, tiny_demo, tmp_path):
    """The main job, reduced: demo data -> preprocess -> train 2 steps -> evaluate -> JSON -> markdown
    (on a copy of the shared tiny demo's cache: the demo tree and crops are made once per session)."""
    env = _env_with(example_site)
    env["HARNESS_CACHE"] = str(tiny_demo.copy_cache(tmp_path / "cache"))
    results_dir = tmp_path / "results"
    board = tmp_path / "LEADERBOARD.md"
    args = [sys.executable, "-m", "harness", "run", "--data", "demo", "--demo-scale", "tiny",
            "--blender", "blur_ellipse", "--backbone", "mobilenetv2", "--pretrained", "none", "--img-size", "64", "--max-steps", "2",
            "--batch-size", "4", "--eval-frames", "3", "--workers", "0", "--runs-dir", str(tmp_path / "runs"),
            "--results-dir", str(results_dir), "--leaderboard", str(board)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = list(results_dir.glob("*.json"))
    assert len(files) == 1
    results = json.loads(files[0].read_text())
    from harness.reporting.results import validate

    validate(results)
    assert results["demo"] is True
    assert results["config"]["blender"] == "blur_ellipse" and results["config"]["backbone"] == "mobilenetv2"
    block = results["datasets"]["ffpp"]
    assert block["counts"]["videos"] == 4 + 2 * 4  # tiny demo: 2 test pairs = 4 reals, 4 fakes per method
    assert set(block["groups"]) == {"all", "Deepfakes", "Face2Face"}
    auc = block["groups"]["all"]["video"]["auc"]
    assert 0.0 <= auc["value"] <= 1.0 and 0.0 <= auc["ci_low"] <= auc["ci_high"] <= 1.0
    assert "pixel" in block["groups"]["Deepfakes"]
    text = board.read_text()
    assert "blur" in text and "video-level" in text.lower()
    # Figures drawn during the run from the run folder's files, linked from results and leaderboard.
    run_dir = tmp_path / "runs" / results["run_id"]
    for name in ("training.png", "roc_ffpp.png", "roc_ffpp.svg", "pr_ffpp.png", "scores_ffpp.png", "examples_ffpp.png"):
        assert (run_dir / "figures" / name).stat().st_size > 1000, name
    assert (run_dir / "scores" / "ffpp.csv").read_text().count("\n") == 1 + block["counts"]["videos_scored"]
    assert "figures/roc_ffpp.png" in results["figures"]["files"]
    assert "](figures/examples_ffpp.png)" in (run_dir / "report.md").read_text()
    assert f"runs/{results['run_id']}/figures/roc_ffpp.png" in text
    assert "not a benchmark" in proc.stderr + text
    # Same command again: the finished run is recognised, not redone.
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already finished" in again.stderr
