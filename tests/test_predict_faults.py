"""`harness predict` with unusable checkpoints and failing output writes: rc 2 with a JSON document
whose ``error`` is set, or one failed input while the others are still scored; never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.predict import validate
from harness.training.checkpoint import MODEL_FILE, MODEL_META
from tests.test_predict_cli import bundle, invoke, media  # noqa: F401  (fixtures)


def _damaged(bundle: Path, tmp_path: Path, damage: str) -> Path:
    run = tmp_path / "run"
    shutil.copytree(bundle, run)
    ck = run / "checkpoint"
    meta = json.loads((ck / MODEL_META).read_text())
    if damage == "wrong_shapes":
        meta["model"]["embed_dim"] = 48  # weights were saved for 24
    elif damage == "truncated_weights":
        data = (ck / MODEL_FILE).read_bytes()
        (ck / MODEL_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "unknown_option":
        meta["model"]["no_such_option"] = 3
    elif damage == "bad_json":
        (ck / MODEL_META).write_text("{ not json")
        return run
    elif damage == "no_model_object":
        meta = {"img_size": 64}
    elif damage == "bad_img_size":
        meta["img_size"] = "large"
    (ck / MODEL_META).write_text(json.dumps(meta))
    return run


@pytest.mark.parametrize("damage", ["wrong_shapes", "truncated_weights", "unknown_option", "bad_json", "no_model_object", "bad_img_size"])
def test_an_unusable_checkpoint_is_rc_2_with_an_error_document(bundle, media, tmp_path, damage):
    run = _damaged(bundle, tmp_path, damage)
    result = invoke(media / "face.jpg", "--checkpoint", run, "--json")
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    validate(report)
    assert report["error"] and "\n" not in report["error"]
    assert "Traceback" not in result.output
    assert len([l for l in result.stderr.splitlines() if l.strip()]) == 1


def test_out_naming_a_file_is_a_setup_error_not_a_crash(bundle, media, tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("a file")
    result = invoke(media / "face.jpg", media / "clip.mp4", "--checkpoint", bundle, "--frames", 2, "--out", target, "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    validate(report)
    assert "--out" in report["error"] and "Traceback" not in result.output


def test_one_failed_output_write_costs_that_input_only(bundle, media, tmp_path, monkeypatch):
    from harness.predict import outputs

    real = outputs.write_outputs
    calls = {"n": 0}

    def first_fails(result, folder, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise NotADirectoryError(20, "Not a directory", str(folder))
        return real(result, folder, *args, **kwargs)

    monkeypatch.setattr(outputs, "write_outputs", first_fails)
    result = invoke(media / "clip.mp4", media / "face.jpg", "--checkpoint", bundle, "--frames", 2, "--out", tmp_path / "o", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    validate(report)
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    assert by_name["clip.mp4"]["status"] == "error" and "writing its outputs" in by_name["clip.mp4"]["error"]
    assert by_name["face.jpg"]["status"] == "ok" and by_name["face.jpg"]["outputs"]["overlays"]
