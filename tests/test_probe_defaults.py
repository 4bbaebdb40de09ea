"""The probe of issue 21, item 7: the defaults are the paper's. Every backbone starts from ImageNet
unless told otherwise (offline without the weights: one line with the ways forward, before any
work), the published demo keeps its run id, and the end of a run says where the weights came from
and when the model collapsed to one output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from harness.cli import build_app

runner = CliRunner()


def _own_data(tmp_path: Path) -> tuple[Path, Path]:
    import cv2

    train = tmp_path / "mine" / "train" / "person"
    train.mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(train / f"{i}.png"), np.zeros((64, 64, 3), np.uint8))
    csv = tmp_path / "mine" / "test.csv"
    csv.write_text("path,label\ntrain/person/0.png,0\ntrain/person/1.png,1\n")
    return train.parent, csv


def _dry(args: list[str]) -> list[dict]:
    result = runner.invoke(build_app(), [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    return [r["config"] for r in json.loads(result.stdout)["runs"]]


def test_own_data_and_a_named_backbone_default_to_imagenet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, csv = _own_data(tmp_path)
    assert _dry(["run", "--train-dir", str(train), "--test-csv", str(csv)])[0]["pretrained"] == "imagenet"
    assert _dry(["run", "--blender", "multipart", "--backbone", "swin"])[0]["pretrained"] == "imagenet"
    assert _dry(["run", "--backbone", "swin", "--pretrained", "none"])[0]["pretrained"] is False


def test_the_demo_keeps_its_published_run_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(build_app(), ["run", "--data", "demo", "--dry-run"])
    assert json.loads(result.stdout)["runs"][0]["run_id"] == "multipart-mobilenetv2-3c6d94b901"


def test_offline_without_imagenet_weights_fails_fast_with_the_ways_forward(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("HF_HOME", "TORCH_HOME", "HUGGINGFACE_HUB_CACHE", "HF_HUB_CACHE"):
        monkeypatch.setenv(name, str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    train, csv = _own_data(tmp_path)
    result = runner.invoke(build_app(), ["run", "--train-dir", str(train), "--test-csv", str(csv),
                                         "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--pretrained none" in lines[0] and "--pretrained PATH" in lines[0]
    assert not (tmp_path / "runs").exists()  # before any work


def test_the_end_of_a_run_names_the_weights_and_a_collapse(tmp_path):
    from harness.reporting.notes import end_notes

    (tmp_path / "scores").mkdir()
    (tmp_path / "scores" / "folder.csv").write_text(
        "uid,label,group,score\na,0,original,0.490481\nb,1,fake,0.490481\nc,1,fake,0.490481\n")
    results = {"config": {"pretrained": "imagenet"},
               "training": {"init_weights": {"source": "timm (local cache)", "file": "model.safetensors",
                                             "sha256": "ab" * 32},
                            "validation_spread": {"feature_spread": 0.001, "score_spread": 0.0001}}}
    notes = end_notes(results, tmp_path)
    assert notes[0].startswith("encoder weights: timm (local cache), model.safetensors (sha256 abababababab")
    assert any(n.startswith("warning: validation collapsed") for n in notes)
    assert any("folder: every test video got the same score 0.490481" in n for n in notes)
    healthy = {"config": {"pretrained": False}, "training": {"init_weights": None}}
    (tmp_path / "scores" / "folder.csv").write_text("uid,label,group,score\na,0,original,0.2\nb,1,fake,0.7\n")
    assert end_notes(healthy, tmp_path) == [
        "encoder weights: random initialisation (--pretrained none; the paper starts from ImageNet)"]
