"""Issue 31, item 5: non-finite values are errors. A bundle holding a NaN or infinite tensor is one
line naming the file and the first bad tensor; a model whose scores come out NaN or infinite (finite
weights can still overflow) stops with one line naming the checkpoint: no verdict, no scores file, no
results, nothing published, no --out folder. Through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fixtures.builders import tiny_swin_run
from fixtures.cli_checks import one_line_exit_2
from harness.cli import build_app

runner = CliRunner()


def rewrite_weights(checkpoint: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    """``checkpoint``'s model.safetensors with ``change`` applied to its tensors (header metadata kept)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = checkpoint / "model.safetensors"
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    change(tensors)
    save_file(tensors, str(path), metadata=metadata)
    return checkpoint


def poison(name: str) -> Callable[[dict[str, torch.Tensor]], None]:
    def change(tensors: dict[str, torch.Tensor]) -> None:
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[1] = float("nan")

    return change


def overflow(tensors: dict[str, torch.Tensor]) -> None:
    """Every weight times 1e30: all finite, but the activations overflow to inf, then NaN."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            tensors[name] = tensor * 1e30


@pytest.fixture(scope="module")
def face(tmp_path_factory) -> Path:
    from harness.data.sample_face import astronaut_face

    crop, _ = astronaut_face(160, margin=0.6)
    frame = np.full((224, 224, 3), 70, np.uint8)
    frame[20:180, 30:190] = crop
    path = tmp_path_factory.mktemp("media") / "face.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return path


def swin_run(tmp_path: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    run = tiny_swin_run(tmp_path / "run", 64)
    rewrite_weights(run / "checkpoint", change)
    return run


def first_float_tensor(checkpoint: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(checkpoint / "model.safetensors"), "pt") as handle:
        return next(k for k in sorted(handle.keys()) if handle.get_tensor(k).is_floating_point())


def test_predict_refuses_nan_weights_naming_the_file_and_tensor(tmp_path, face):
    run = tiny_swin_run(tmp_path / "run", 64)
    name = first_float_tensor(run / "checkpoint")
    rewrite_weights(run / "checkpoint", poison(name))
    result = runner.invoke(build_app(), ["predict", str(face), "--checkpoint", str(run), "--out", str(tmp_path / "out")])
    one_line_exit_2(result, "model.safetensors", repr(name), "NaN or infinite")
    assert not (tmp_path / "out").exists()


def test_predict_stops_when_finite_weights_give_nan_scores(tmp_path, face):
    run = swin_run(tmp_path, overflow)
    out = tmp_path / "out"
    result = runner.invoke(build_app(), ["predict", str(face), "--checkpoint", str(run), "--out", str(out), "--json"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    report = json.loads(result.stdout)
    assert report["files"] == [] and "scores are NaN or infinite" in report["error"]  # no score, no verdict
    assert str(run / "checkpoint") in report["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no --out folder, no temporary beside it
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "NaN or infinite" in errors[0], result.stderr


def test_evaluate_refuses_nan_weights_before_any_face_is_cut(tmp_path, face, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tiny_swin_run(tmp_path / "run", 64)
    name = first_float_tensor(run / "checkpoint")
    rewrite_weights(run / "checkpoint", poison(name))
    shutil.copy(face, tmp_path / "real.jpg")
    shutil.copy(face, tmp_path / "fake.jpg")
    Path("test.csv").write_text("path,label\nreal.jpg,0\nfake.jpg,1\n")
    result = runner.invoke(build_app(), ["evaluate", "--checkpoint", str(run), "--test-csv", "test.csv"])
    one_line_exit_2(result, "model.safetensors", repr(name), "NaN or infinite")
    assert not list(tmp_path.glob("runs/*/scores/*")) and not list(tmp_path.glob("runs/*/results.json"))


@pytest.mark.slow
def test_evaluate_stops_on_nan_scores_and_writes_no_scores_results_or_row(tiny_demo, tmp_path):
    from fixtures.tiny_demo import harness

    checkpoint = tmp_path / "overflowing"
    shutil.copytree(tiny_demo.seed0 / "checkpoint", checkpoint)
    rewrite_weights(checkpoint, overflow)
    cache = tiny_demo.copy_cache(tmp_path / "cache")
    proc = harness("evaluate", "--checkpoint", checkpoint, "--demo-scale", "tiny", "--publish", cache=cache, cwd=tmp_path,
                   check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(checkpoint) in errors[0] and "scores are NaN or infinite" in errors[0], text
    assert not list(tmp_path.glob("runs/*/scores/*")) and not list(tmp_path.glob("runs/*/results.json"))
    assert not list(tmp_path.glob("runs/*/blocks/*"))
    assert not (tmp_path / "runs" / "LEADERBOARD.md").exists() and not (tmp_path / "leaderboards").exists()
