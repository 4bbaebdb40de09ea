"""The probe of issue 31, item 9: one line (exit 2) instead of a traceback for a bundle's model.json
with a bad field (in `evaluate` as in `predict`) and for an SBI file holding a list where a tensor
belongs; and messages that name the real cause and a fix that exists: a damaged import names the
file, not a removed temporary folder; a byte-order mark, a 20 MiB file and deep nesting in model.json
each say which; the missing-files advice names options the command has; `--perturb all:3`; no raw
``[bold]`` in an error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
import torch
from typer.testing import CliRunner

from fixtures.builders import tiny_swin_run
from fixtures.cli_checks import one_line_exit_2
from harness.cli import build_app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(build_app(), [str(a) for a in args])


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    return tiny_swin_run(tmp_path_factory.mktemp("messages-run"), 64)


def _edited(run_folder: Path, tmp_path: Path, edit) -> Path:
    """A copy of the bundle whose model.json ``edit`` changed (a dict edit, or the bytes to write)."""
    copy = tmp_path / "bundle"
    shutil.copytree(run_folder / "checkpoint", copy)
    path = copy / "model.json"
    meta = json.loads(path.read_text())
    result = edit(meta)
    if isinstance(result, bytes):
        path.write_bytes(result)
    else:
        path.write_text(json.dumps(meta))  # NaN is written as NaN
    return copy


BAD_META = {
    "crop_size_negative": (lambda m: m.update(crop={"crop_size": -5}), "crop_size must be from 16"),
    "crop_text": (lambda m: m.update(crop="hello"), 'crop = "hello": must be an object'),
    "img_size_nan": (lambda m: m.update(img_size=float("nan")), "img_size = NaN"),
    "margin_nan": (lambda m: m.update(crop={"margin": float("nan")}), "margin must be a finite number"),
    "crop_size_text": (lambda m: m.update(crop={"crop_size": "big"}), "crop_size = 'big': must be a whole number"),
    "threshold_above_one": (lambda m: m.update(threshold={"value": 7}), "threshold.value = 7"),
    "aggregation": (lambda m: m.update(run={"eval": {"video_aggregation": "sum"}}), "run.eval.video_aggregation"),
    "input_scale": (lambda m: m.update(input={"scale": "bgr"}), 'input.scale = "bgr"'),
}


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("case", sorted(BAD_META))
def test_a_bad_model_json_field_is_one_line_naming_the_file_and_the_field(case, command, run_folder, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    edit, needle = BAD_META[case]
    bundle = _edited(run_folder, tmp_path, edit)
    args = (["evaluate", "--checkpoint", bundle, "--dry-run"] if command == "evaluate"
            else ["predict", tmp_path / "none.png", "--checkpoint", bundle])
    one_line_exit_2(invoke(*args), str(bundle / "model.json"), needle)


def _deep(meta: dict) -> bytes:
    return json.dumps({**meta, "nested": json.loads("[" * 200 + "]" * 200)}).encode()


UNREADABLE_META = {
    "byte_order_mark": (lambda m: b"\xef\xbb\xbf" + json.dumps(m).encode(),
                        "starts with a byte-order mark: save it as UTF-8 without BOM"),
    "twenty_mib": (lambda m: json.dumps({**m, "pad": "x" * (20 * 1024 * 1024)}).encode(), "is larger than 16 MiB"),
    "deep": (_deep, "nests deeper than 64 levels"),
    "not_json": (lambda m: b"{model: swin", "is not valid JSON (line 1"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE_META))
def test_an_unreadable_model_json_says_which_way(case, run_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    edit, needle = UNREADABLE_META[case]
    bundle = _edited(run_folder, tmp_path, edit)
    line = one_line_exit_2(invoke("evaluate", "--checkpoint", bundle, "--dry-run"), str(bundle / "model.json"), needle)
    assert "unreadable or not JSON" not in line


# ---------------------------------------------------------------------------------- importing SBI files
def test_an_sbi_file_holding_a_list_for_a_tensor_is_one_line(tmp_path):
    path = tmp_path / "FFc23.tar"
    torch.save({"model": {"net._conv_stem.weight": torch.zeros(48, 3, 3, 3), "net._fc.weight": [[0.0] * 4] * 2}}, path)
    line = one_line_exit_2(invoke("import", "sbi", path, "--out", tmp_path / "out"), str(path), "net._fc.weight is a list")
    assert "tensor" in line and not (tmp_path / "out").exists()


def test_a_damaged_import_names_the_file_not_a_removed_temporary_folder(tmp_path):
    path = tmp_path / "FFc23.tar"  # the head of SBI's network and nothing else: a file cut short
    torch.save({"model": {"net._conv_stem.weight": torch.zeros(48, 3, 3, 3), "net._fc.weight": torch.zeros(2, 1792),
                          "net._fc.bias": torch.zeros(2)}}, path)
    line = one_line_exit_2(invoke("import", "sbi", path, "--out", tmp_path / "out"), str(path), "missing")
    assert ".tmp" not in line and "copy the folder again" not in line and "copy it again" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FFc23.tar"]  # nothing left beside it


# ---------------------------------------------------------------------------------- advice that exists
@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    from harness.data.sample_face import astronaut_face

    root = tmp_path_factory.mktemp("message-faces")
    face, _ = astronaut_face(160, margin=0.6)
    cv2.imwrite(str(root / "real.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    (root / "test.csv").write_text("path,label\nreal.png,0\ngone.png,1\n")
    return root


def test_evaluate_advice_on_missing_test_files_names_an_option_it_has_and_that_option_works(run_folder, faces, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", "--checkpoint", run_folder, "--test-csv", faces / "test.csv", "--face-detector", "dlib",
            "--eval-frames", "1", "--runs-dir", tmp_path / "runs"]
    refused = invoke(*args)
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert "allow_missing=True" not in refused.output and "--allow-missing" in refused.output
    skipped = invoke(*args, "--allow-missing")
    assert skipped.exit_code == 0, skipped.output
    results = json.loads(next((tmp_path / "runs").glob("eval-*/results.json")).read_text())
    assert results["datasets"]["folder"]["counts"]["videos"] == 1  # the missing one skipped, the other scored


def test_perturb_all_at_one_level_is_every_distortion_at_that_level(tmp_path, monkeypatch):
    from harness.vocab.conditions import DISTORTIONS

    monkeypatch.chdir(tmp_path)
    result = invoke("run", "--data", "demo", "--demo-scale", "tiny", "--perturb", "all:3", "--dry-run")
    assert result.exit_code == 0, result.output
    line = one_line_exit_2(invoke("run", "--data", "demo", "--perturb", "al:3", "--dry-run"), "unknown distortion 'al'")
    assert "all[:levels]" in line
    from harness.evaluation.perturb import parse_conditions

    assert [c.key for c in parse_conditions("all:3")] == [f"{name}:3" for name in DISTORTIONS]


def test_the_missing_datasets_error_has_no_raw_markup(run_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("evaluate", "--checkpoint", run_folder, "--test", "celebdf", "--root", tmp_path / "nowhere",
                    "--face-detector", "dlib", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "dataset(s) not found" in result.output, result.output
    assert "[bold]" not in result.output and "[/bold]" not in result.output and "celebdf: looked in" in result.output
