"""`harness run --config`: a recorded configuration reruns exactly; options given override it, and say so."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import build_app
from harness.vocab.config import EvalConfig, LossConfig, RunConfig, TrainConfig, save_config
from harness.run.demo_run import demo_config
from harness.run.stages import run_id

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(build_app(), list(args), catch_exceptions=False)


def dry_run(*args: str) -> tuple[list[dict], str]:
    """The runs `harness run ... --dry-run` resolves (run_id + config each), and what it said on stderr."""
    result = invoke("run", *args, "--dry-run")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["runs"], result.stderr


def published(tmp_path: Path) -> RunConfig:
    """A recorded run with a value other than the default in every field of the run configuration."""
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"")
    data = tmp_path / "data"
    data.mkdir()
    return replace(
        RunConfig(),
        blender="sbi",
        blender_options={"wobble": 0.02, "blend_ratios": [0.5, 1.0]},
        backbone="resnet50",
        backbone_options={"drop_rate": 0.1},
        pretrained=str(weights),
        img_size=96,
        train_dataset="folder",
        test_datasets=["celebdf", "folder"],
        dataset_options={"folder": {"root": str(data / "folder")}},
        data_root=str(data),
        compression="c40",
        face_detector="retinaface",
        crop_size=192,
        crop_margin=0.25,
        seed=7,
        device="cpu",
        name="published",
        demo=True,
        demo_scale="tiny",
        train=TrainConfig(epochs=3, batch_size=4, frames_per_video=2, cache_frames=6, optimizer="sgd", lr=0.01,
                          momentum=0.8, weight_decay=0.01, sam_rho=0.1, lr_schedule="constant", warmup=3, grad_clip=2.0,
                          amp=False, max_steps=5, workers=0, selection="best-val", val_every=2),
        eval=EvalConfig(frames_per_video=4, frame_aggregation="mean", video_aggregation="max", batch_size=8,
                        bootstrap=50, threshold=0.4),
        loss=LossConfig(alpha=0.5, beta=2.0, gamma=0.1, sim_form="token", delta=0.5, pairs="all", min_grid=2, dice=0.5),
    )


def unchanged_fields(config: RunConfig) -> list[str]:
    """Fields (sections' fields as section.name) that still hold RunConfig's default."""
    default = RunConfig()
    same = []
    for f in fields(RunConfig):
        value, base = getattr(config, f.name), getattr(default, f.name)
        if is_dataclass(base):
            same += [f"{f.name}.{g.name}" for g in fields(base) if getattr(value, g.name) == getattr(base, g.name)]
        elif value == base:
            same.append(f.name)
    return same


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[RunConfig, Path]:
    monkeypatch.chdir(tmp_path)  # a stray runs/ or leaderboards/ would land here
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))  # and a cache
    config = published(tmp_path)
    path = tmp_path / "config.json"
    save_config(config, path)
    return config, path


def test_every_field_of_a_recorded_config_reruns_unchanged(recorded, tmp_path, monkeypatch):
    config, path = recorded
    assert unchanged_fields(config) == []  # a field added to RunConfig must be given a value above

    runs, said = dry_run("--config", str(path))
    assert [r["config"] for r in runs] == [config.to_dict()]
    assert runs[0]["run_id"] == run_id(config)
    assert "overriding" not in said
    # The dry run touched nothing: no run folder, results, leaderboard or cache.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "data", "weights.safetensors"]
    assert not any((tmp_path / "data").iterdir())

    # The dry run said the (fake) weights file cannot be read, as a warning: it may plan for another machine.
    assert "warning: --pretrained" in said and "weights.safetensors" in said
    # The real run starts exactly what the dry run printed.
    import harness.run.stages as pipeline

    started = []
    monkeypatch.setattr("harness.run.config_check.check_weights", lambda cfg: None)  # the fixture's weights file is a stand-in
    monkeypatch.setattr(pipeline, "run", lambda cfg, paths, **kw: started.append(cfg))
    assert invoke("run", "--config", str(path)).exit_code == 0
    assert started == [config]


def test_dry_run_touches_no_cache_and_needs_no_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "nothing-here"))
    runs, _ = dry_run()
    assert [r["config"] for r in runs] == [RunConfig().to_dict()]
    demo, _ = dry_run("--data", "demo")  # without a file, --data demo still means demo sizes
    assert demo[0]["config"] == demo_config().to_dict()
    assert list(tmp_path.iterdir()) == []


def test_a_given_option_overrides_the_file_and_says_so(recorded):
    config, path = recorded
    runs, said = dry_run("--config", str(path), "--backbone", "swin", "--epochs", "9", "--img-size", "128",
                         "--blender", "sbi")
    expected = replace(config, backbone="swin", img_size=128, train=replace(config.train, epochs=9))
    assert [r["config"] for r in runs] == [expected.to_dict()]
    lines = [" ".join(line.split()) for line in said.splitlines() if line.startswith("overriding")]
    assert lines == [
        "overriding backbone: resnet50 -> swin (from --backbone)",
        "overriding img_size: 96 -> 128 (from --img-size)",
        "overriding train.epochs: 3 -> 9 (from --epochs)",
    ]  # --blender sbi is what the file says: nothing overridden


def test_data_demo_over_a_file_keeps_its_sizes_and_reports_the_datasets(recorded):
    config, path = recorded
    runs, said = dry_run("--config", str(path), "--data", "demo")
    assert runs[0]["config"] == replace(config, train_dataset="ffpp", test_datasets=["ffpp"]).to_dict()
    assert "overriding train_dataset: folder -> ffpp (from --data)" in said
    assert 'overriding test_datasets: ["celebdf", "folder"] -> ["ffpp"] (from --data)' in said


def test_a_sweep_over_a_recorded_config_expands(recorded):
    config, path = recorded
    runs, said = dry_run("--config", str(path), "--blender", "multipart", "--backbone", "swin,resnet50",
                         "--preset", "base,full", "--seed", "1,2")
    resolved = [RunConfig.from_dict(r["config"]) for r in runs]
    assert [(c.backbone, c.name, c.seed) for c in resolved] == [
        (b, f"published-{p}", s) for b in ("swin", "resnet50") for p in ("base", "full") for s in (1, 2)
    ]
    assert all(c.blender == "multipart" and c.img_size == 96 for c in resolved)
    # sbi's recorded options (wobble, blend_ratios) are not multipart's: the presets alone set its options
    assert [c.blender_options for c in resolved[:4]] == [
        {"multi_part": False, "local_deformation": False}] * 2 + [{"multi_part": True, "local_deformation": True}] * 2
    assert [r["run_id"] for r in runs] == [run_id(c) for c in resolved]
    assert len({r["run_id"] for r in runs}) == 8
    assert "overriding backbone: resnet50 -> swin, resnet50 (from --backbone)" in said
    assert "overriding seed: 7 -> 1, 2 (from --seed)" in said
    assert "overriding name: published -> published-base, published-full (from --preset)" in said
    assert "overriding blender: sbi -> multipart (from --blender)" in said


def test_a_preset_the_blender_did_not_register_is_refused(recorded):
    _, path = recorded
    result = invoke("run", "--config", str(path), "--preset", "full", "--dry-run")  # the recorded blender is sbi
    assert result.exit_code == 2
    assert "unknown preset 'full' for blender 'sbi' Presets: (none registered)" in result.output


def test_a_published_results_file_reruns_as_the_published_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = next((ROOT / "leaderboards" / "results").glob("*.json"))
    results = json.loads(path.read_text())
    runs, said = dry_run("--config", str(path))
    assert runs[0]["run_id"] == results["run_id"]  # same configuration, same run id
    config = runs[0]["config"]
    from harness.vocab.config import KEY_NEUTRAL

    for key, value in results["config"].items():
        if key not in ("crop", "batch_convention", "blender_options"):
            # a setting added since the run was published reruns at its neutral value (what it ran with)
            added = {k: v for (section, k), v in KEY_NEUTRAL.items() if section == key and k not in value}
            assert config[key] == ({**value, **added} if added else value), key
    assert "overriding" not in said


def test_a_bad_config_file_is_a_clear_error(tmp_path):
    missing = invoke("run", "--config", str(tmp_path / "nope.json"), "--dry-run")
    assert missing.exit_code == 2 and "nope.json" in missing.output
    (tmp_path / "bad.json").write_text(json.dumps({"blender": "sbi", "colour": "red"}))
    bad = invoke("run", "--config", str(tmp_path / "bad.json"), "--dry-run")
    assert bad.exit_code == 2 and "colour" in bad.output


def test_without_a_file_options_are_not_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs, said = dry_run("--backbone", "resnet50", "--epochs", "3")
    assert runs[0]["config"]["backbone"] == "resnet50" and "overriding" not in said


def test_dry_run_only_warns_about_a_device_this_machine_lacks(recorded):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: cuda is a device here")
    config, path = recorded
    save_config(replace(config, device="cuda"), path)
    runs, said = dry_run("--config", str(path))  # checked on a login node, run on a GPU node
    assert runs[0]["config"]["device"] == "cuda" and "no CUDA GPU is visible here" in " ".join(said.split())
    real = invoke("run", "--config", str(path))
    assert real.exit_code == 2 and "no CUDA GPU is visible here" in " ".join(real.output.split())
