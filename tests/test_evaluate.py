"""`harness evaluate` and `harness import` through the real CLI: a run's checkpoint re-scored gives
the run's numbers exactly; SBI-format weights (a random EfficientNet-B4 saved as SBI saves it) are
imported and score as the original module does; pickles, unknown formats, training files in the
test set and missing datasets are refused with one line and exit 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harness.cli import build_app

runner = CliRunner()


def harness(work: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real command line in a subprocess, in ``work`` with its own cache."""
    env = dict(os.environ, HARNESS_CACHE=str(work / "cache"), HARNESS_PROGRESS="0", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def demo_run(tiny_demo, tmp_path_factory) -> tuple[Path, dict]:
    """The shared tiny demo's seed 0 (2 training steps), copied with its cache into this module's
    folder: its working folder and results."""
    import shutil

    work = tmp_path_factory.mktemp("evaluate")
    tiny_demo.copy_cache(work / "cache")
    shutil.copytree(tiny_demo.seed0, work / "runs" / tiny_demo.seed0.name)
    return work, tiny_demo.results(0)


def _clean(datasets: dict) -> dict:
    """The datasets blocks without the robustness block (the shared run was also scored perturbed)."""
    return {name: {k: v for k, v in block.items() if k != "robustness"} for name, block in datasets.items()}


def _headline(results: dict) -> dict:
    """Video AUC and AP and pixel IoU of every group of every dataset."""
    out = {}
    for name, block in results["datasets"].items():
        for group, levels in block["groups"].items():
            out[name, group] = (levels["video"]["auc"], levels["video"]["ap"], levels.get("pixel", {}).get("iou"))
    return out


@pytest.mark.slow
def test_evaluating_a_runs_checkpoint_gives_the_runs_numbers_exactly(demo_run):
    from harness.reporting.results import validate

    work, run = demo_run
    run_dir = work / "runs" / run["run_id"]
    proc = harness(work, "evaluate", "--checkpoint", str(run_dir), "--demo-scale", "tiny")
    evaluated = next(p for p in (work / "runs").iterdir() if p.name.startswith("eval-"))
    results = json.loads((evaluated / "results.json").read_text())
    validate(results)
    assert _headline(results) == _headline(run)  # AUC, AP, pixel IoU with their intervals, bit for bit
    assert (evaluated / "scores" / "ffpp.csv").read_text() == (run_dir / "scores" / "ffpp.csv").read_text()
    assert results["provenance"]["origin"] == {"harness_run": run["run_id"]}
    assert results["provenance"]["training"]["datasets"] == ["ffpp"] and "training" not in results
    assert (evaluated / "report.md").is_file() and (evaluated / "figures" / "roc_ffpp.png").is_file()
    assert "(checkpoint, evaluated here)" in (work / "runs" / "LEADERBOARD.md").read_text()
    # The same command is the same id: recognised as finished, not redone.
    again = harness(work, "evaluate", "--checkpoint", str(run_dir), "--demo-scale", "tiny")
    assert "already evaluated" in again.stdout + again.stderr
    # Killed after its datasets were scored: the next call keeps the stored blocks.
    (evaluated / "results.json").unlink()
    resumed = harness(work, "evaluate", "--checkpoint", str(run_dir), "--demo-scale", "tiny")
    assert "scored before with this model and settings" in resumed.stdout + resumed.stderr
    assert _headline(json.loads((evaluated / "results.json").read_text())) == _headline(run)
    assert proc.returncode == 0


@pytest.mark.slow
def test_evaluate_under_torchrun_gives_the_single_process_numbers(demo_run):
    """Two gloo processes split the videos; gathered, the blocks equal the run's (one process)."""
    import socket

    work, run = demo_run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, HARNESS_CACHE=str(work / "cache"), HARNESS_PROGRESS="0", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(port), "-m", "harness", "evaluate", "--checkpoint", str(work / "runs" / run["run_id"]),
           "--demo-scale", "tiny", "--runs-dir", "runs-ddp"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    evaluated = next((work / "runs-ddp").glob("eval-*/results.json"))
    assert json.loads(evaluated.read_text())["datasets"] == _clean(run["datasets"])


@pytest.mark.slow
def test_a_test_file_the_checkpoint_was_trained_on_is_refused(demo_run):
    work, run = demo_run
    demo_tree = next((work / "cache" / "demo").iterdir())
    train_id = json.loads((demo_tree / "train.json").read_text())[0][0]
    trained = demo_tree / "original_sequences" / "youtube" / "c23" / "videos" / f"{train_id}.mp4"
    (work / "leak.csv").write_text(f"path,label\n{trained},0\n")
    proc = harness(work, "evaluate", "--checkpoint", str(work / "runs" / run["run_id"]), "--test-csv",
                   str(work / "leak.csv"), "--demo-scale", "tiny", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in text, text
    assert "training files" in text and f"{train_id}.mp4" in text


# ------------------------------------------------------------------------------------------------
# SBI-format weights
# ------------------------------------------------------------------------------------------------
class SbiDetector(torch.nn.Module):
    """SBI's own Detector (src/inference/model.py), without the download: random weights."""

    def __init__(self) -> None:
        from efficientnet_pytorch import EfficientNet

        super().__init__()
        self.net = EfficientNet.from_name("efficientnet-b4", num_classes=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def random_sbi(path: Path) -> SbiDetector:
    """A random B4 whose scores differ between faces (BatchNorm statistics of random images, a
    head scaled so the softmax does not saturate), saved exactly as SBI's training saves it."""
    torch.manual_seed(0)
    model = SbiDetector()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average of the one calibration batch
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 380, 380))
        model.eval()
        z = model(torch.rand(2, 3, 380, 380) * torch.rand(2, 1, 1, 1))
        model.net._fc.weight.mul_(50.0 / float((z[:, 1] - z[:, 0]).abs().max()))
        model.net._fc.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 7}, path)
    return model


@pytest.fixture(scope="module")
def sbi_file(tmp_path_factory) -> tuple[Path, SbiDetector]:
    path = tmp_path_factory.mktemp("sbi") / "FFc23.tar"
    return path, random_sbi(path)


@pytest.mark.slow
def test_imported_sbi_weights_score_the_demo_as_the_original_module(demo_run, sbi_file):
    from harness.data.cache import FaceCache, faces_cache_root
    from harness.data.crop import CropRule

    work, _ = demo_run
    path, original = sbi_file
    harness(work, "import", "sbi", str(path), "--out", "sbi-bundle")
    meta = json.loads((work / "sbi-bundle" / "model.json").read_text())
    assert meta["heads"] == ["class"] and meta["input"]["scale"] == "unit" and meta["img_size"] == 380
    assert meta["crop"]["basis"] == "detector-box" and meta["run"]["eval"]["frame_aggregation"] == "max"
    harness(work, "evaluate", "--checkpoint", "sbi-bundle", "--data", "demo", "--demo-scale", "tiny",
            "--face-detector", "dlib", "--eval-frames", "2")
    folder = next(p for p in (work / "runs").iterdir() if p.name.startswith("eval-sbi"))
    results = json.loads((folder / "results.json").read_text())
    block = results["datasets"]["ffpp"]
    assert block["localization"] == "n/a (no mask head)" and "pixel" not in block["groups"]["all"]
    assert results["provenance"]["origin"]["importer"] == "sbi" and results["provenance"]["origin"]["file"] == "FFc23.tar"
    assert "n/a (no mask head)" in (folder / "report.md").read_text()
    board = (work / "runs" / "LEADERBOARD.md").read_text()
    assert "SBI (FFc23.tar, evaluated here)" in board
    # The original module on the very crops the harness cut: softmax[:, 1], max over faces, mean over frames.
    rule = CropRule.from_dict(results["config"]["crop"])
    scores = {row["uid"]: float(row["score"]) for row in csv.DictReader(open(folder / "scores" / "ffpp.csv"))}
    assert len(scores) == block["counts"]["videos_scored"] == 12
    original.eval()
    expected = {}
    with FaceCache(faces_cache_root(rule, work / "cache")) as cache, torch.no_grad():
        for uid in list(scores)[:4] + list(scores)[-2:]:
            faces = cache.faces(uid)
            x = torch.tensor(np.stack([f.image.transpose(2, 0, 1) for f in faces])).float() / 255
            fake = original(x).softmax(1)[:, 1].numpy()
            frames: dict[int, float] = {}
            for face, p in zip(faces, fake):
                frames[face.frame_index] = max(frames.get(face.frame_index, 0.0), float(p))
            expected[uid] = float(np.mean(list(frames.values())))
    assert max(abs(scores[u] - expected[u]) for u in expected) < 1e-5
    assert max(expected.values()) - min(expected.values()) > 1e-4  # the check can tell faces apart


def test_importers_are_a_plugin_kind_listed_by_harness_plugins():
    result = runner.invoke(build_app(), ["plugins", "--kind", "importer", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["plugins"]
    assert [(r["kind"], r["name"], r["package"]) for r in rows] == [
        ("importer", name, "deepfake-harness") for name in ("deepfakebench", "mesonet", "sbi")]


class Evil:
    """A pickle payload: unpickling it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("how", ["prefix", "detect", "import"])
def test_a_checkpoint_that_needs_a_pickle_is_refused_and_never_executed(tmp_path, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.tar"
    torch.save({"model": {"net._conv_stem.weight": torch.zeros(1)}, "epoch": Evil(marker)}, evil)
    args = {"prefix": ["evaluate", "--checkpoint", f"sbi:{evil}"],
            "detect": ["evaluate", "--checkpoint", str(evil)],
            "import": ["import", "sbi", str(evil), "--out", str(tmp_path / "out")]}[how]
    result = runner.invoke(build_app(), args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "refused" in lines[0] and "pickle" in lines[0] and "not executed" in lines[0]
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["file", "prefix"])
def test_an_unknown_format_names_the_importers(tmp_path, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2)}}, other)
    checkpoint = str(other) if how == "file" else f"nosuchformat:{other}"
    result = runner.invoke(build_app(), ["evaluate", "--checkpoint", checkpoint])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert all(name in lines[0] for name in ("deepfakebench", "mesonet", "sbi"))  # what it could have been


def test_a_missing_dataset_gives_the_doctors_message(tmp_path, monkeypatch, sbi_file):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    path, _ = sbi_file
    result = runner.invoke(build_app(), ["evaluate", "--checkpoint", f"sbi:{path}", "--test", "celebdf",
                                         "--root", str(tmp_path / "nowhere"), "--face-detector", "dlib"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "dataset(s) not found" in result.output and "celebdf" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("eval-*/results.json"))


def test_dry_run_prints_the_id_from_the_weights_and_settings(tmp_path, monkeypatch, sbi_file):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    path, _ = sbi_file
    ids = []
    for frames in ("8", "8", "4"):
        # the demo's test set: its id part is the generator's version and scale (other test sets are
        # read and hashed, so a dry run needs them on disk)
        result = runner.invoke(build_app(), ["evaluate", "--checkpoint", f"sbi:{path}", "--data", "demo",
                                             "--eval-frames", frames, "--dry-run"])
        assert result.exit_code == 0, result.output
        ids.append(json.loads(result.stdout)["run_id"])
    assert ids[0] == ids[1] != ids[2] and ids[0].startswith("eval-sbi-")


def test_table2_places_the_evaluated_checkpoint_under_its_papers_reported_row():
    from harness.reporting import leaderboard as L
    from test_results_factory import dataset_entry, ffpp_entry, make_results

    ours = make_results("r-full", "swin full", datasets={"celebdf": dataset_entry({"all": 0.812}, compression=None)})
    sbi = make_results("eval-sbi-1", "SBI (official FFc23 weights, evaluated here)", blender="sbi",
                       datasets={"celebdf": dataset_entry({"all": 0.9}, compression=None),
                                 "ffpp": ffpp_entry(0.99, 0.98, 0.97, 0.96)})
    sbi["provenance"] = {"origin": {"importer": "sbi", "file": "FFc23.tar", "paper_row": "sbi"},
                         "training": {"datasets": ["ffpp"], "split": "train"}, "sha256": "0" * 64}
    sbi["datasets"]["celebdf"]["localization"] = "n/a (no mask head)"
    text = L.render([sbi, ours])
    table2 = text[text.index("## Table 2") : text.index("\n## ", text.index("## Table 2") + 1)]
    lines = [line for line in table2[: table2.index("#### Frame-level")].splitlines() if line.startswith("| ")]
    reported = next(i for i, line in enumerate(lines) if line.startswith("| SBI *(reported, SBI, CVPR 2022)*"))
    assert lines[reported + 1].startswith("| SBI (official FFc23 weights, evaluated here)")
    assert "tested on its own training dataset" not in lines[reported + 1]  # trained on FF++, CDF is cross-dataset
    assert lines.index(next(line for line in lines if line.startswith("| swin full"))) < reported
    table1 = text[text.index("## Table 1") : text.index("## Table 2")]
    assert "trained on ffpp train split: tested on its own training dataset" in table1  # its FF++ row says so
    localization = text[text.index("## Localization") :]
    assert "n/a (no mask head)" in localization
    assert "evaluated checkpoint: FFc23.tar imported with sbi" in text  # the run list marks its origin


@pytest.mark.slow
def test_predict_with_an_imported_bundle_shows_grad_cam_in_place_of_the_mask(tmp_path, monkeypatch, sbi_file):
    import cv2

    from harness.data.sample_face import astronaut_face
    from harness.predict import validate

    monkeypatch.chdir(tmp_path)
    path, original = sbi_file
    assert runner.invoke(build_app(), ["import", "sbi", str(path), "--out", "bundle"]).exit_code == 0
    face, _ = astronaut_face(160, margin=0.6)
    frame = np.full((224, 224, 3), 70, np.uint8)
    frame[20:180, 30:190] = face
    cv2.imwrite("face.png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = runner.invoke(build_app(), ["predict", "face.png", "--checkpoint", "bundle", "--detector", "dlib", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    validate(report)
    assert report["checkpoint"]["importer"] == "sbi" and report["checkpoint"]["mask_source"] == "Grad-CAM++"
    scored = report["files"][0]
    assert scored["status"] == "ok" and 0.0 <= scored["score"] <= 1.0


def test_the_detector_box_rule_cuts_as_sbi_does():
    from types import SimpleNamespace

    from harness.data.crop import CropRule, crop_mask, landmarks_to_crop

    frame = np.arange(120 * 200 * 3, dtype=np.uint8).reshape(120, 200, 3)
    big = SimpleNamespace(box=(50.0, 20.0, 130.0, 100.0), landmarks=np.array([[60.0, 40.0], [120.0, 90.0]]))
    small = SimpleNamespace(box=(0.0, 0.0, 40.0, 40.0), landmarks=np.zeros((2, 2)))  # 1/4 of the big one's area
    rule = CropRule(detector="dlib", margin=0.125, crop_size=38, basis="detector-box", min_area=0.5, forehead=0.0)
    (face, box, crop), = list(rule.crops([big, small], frame))
    # SBI: x0 - w/8, y0 - h/8 truncated; x1 + w/8 and y1 + h/8 truncated, plus one; clipped to the frame
    assert face is big and box == (40.0, 10.0, 141.0, 111.0)
    import cv2

    assert np.array_equal(crop, cv2.resize(frame[10:111, 40:141], (38, 38), interpolation=cv2.INTER_LINEAR))
    corners = landmarks_to_crop(np.array([[40.0, 10.0], [141.0, 111.0]]), box, 38)
    assert np.allclose(corners, [[0, 0], [38, 38]])
    assert crop_mask(np.ones((120, 200), np.float32), box, 38).shape == (38, 38)
    assert rule.cache_key() == "dlib-crop38-m0.125-fh0-detector-box-min0.5"
    assert CropRule.from_dict(rule.to_dict()) == rule and CropRule().cache_key() == "dlib-crop256-m0.3"


@pytest.mark.parametrize("args", [["--checkpoint", "nowhere"], ["--checkpoint", "sbi:nowhere.tar"],
                                  ["--checkpoint", "nowhere", "--data", "ffpp"]], ids=["folder", "file", "data"])
def test_bad_evaluate_arguments_are_one_line_and_exit_2(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(build_app(), ["evaluate", *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output


def test_evaluate_refuses_a_bad_perturb_value_in_one_line_before_reading_the_checkpoint(tmp_path):
    result = runner.invoke(build_app(), ["evaluate", "--checkpoint", str(tmp_path / "nothing"), "--perturb", "jpg:9"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "jpg" in lines[0] and "jpeg" in lines[0], result.output


@pytest.mark.slow
def test_a_demo_checkpoint_on_your_own_test_set_is_no_demo_evaluation(demo_run, tmp_path):
    """The demo's checkpoint scored on --test-csv: the results are not demo results (no demo flag,
    no demo notice, no demo scale in the id); on --data demo they are."""
    from harness.data.demo import NOT_A_BENCHMARK

    work, _ = demo_run
    checkpoint = next((work / "runs").glob("*/checkpoint")).parent  # the demo run (evaluations have none)
    from fixtures.builders import face_crops

    test_csv = face_crops(tmp_path / "crops")
    proc = harness(work, "evaluate", "--checkpoint", str(checkpoint), "--test-csv", str(test_csv), "--face-detector", "none",
                   "--device", "cpu", "--runs-dir", str(tmp_path / "runs"))
    assert NOT_A_BENCHMARK not in proc.stdout + proc.stderr
    (folder,) = (tmp_path / "runs").glob("eval-*")
    evaluated = json.loads((folder / "results.json").read_text())
    assert evaluated["demo"] is False and evaluated["note"] == "" and evaluated["config"]["demo_scale"] == "default"
    assert set(evaluated["datasets"]) == {"folder"} and evaluated["datasets"]["folder"]["counts"]["videos_scored"] == 4
    dry = harness(work, "evaluate", "--checkpoint", str(checkpoint), "--data", "demo", "--dry-run")
    assert json.loads(dry.stdout)["config"]["demo"] is True  # the demo's own test set: a demo evaluation


def test_a_test_set_whose_every_file_is_missing_is_nothing_to_score(tmp_path):
    """--allow-missing skips missing files; when that is all of them, there is nothing to score: one
    line, exit 2, no run folder (before: exit 0 and a result of 0 videos)."""
    from fixtures.builders import tiny_swin_run

    run = tiny_swin_run(tmp_path / "run", 64)
    (tmp_path / "test.csv").write_text("path,label\ngone_0.png,real\ngone_1.png,fake\n")
    args = ["evaluate", "--checkpoint", str(run), "--test-csv", str(tmp_path / "test.csv"), "--face-detector", "none",
            "--device", "cpu", "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "home")]
    for extra in (["--allow-missing"], ["--allow-missing", "--dry-run"]):
        result = runner.invoke(build_app(), [*args, *extra])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
        assert "test dataset folder: nothing to score" in lines[0] and "--allow-missing" in lines[0]
        assert not (tmp_path / "runs").exists()
