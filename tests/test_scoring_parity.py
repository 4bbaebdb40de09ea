"""One face, one score: the same file scored inside `harness run`, by `harness evaluate` on that
run's checkpoint and by `harness predict` gives the same score, bit for bit on the CPU. The cache
is lossless and evaluation and predict share the input preparation after the crop, so nothing may
differ (before, JPEG-cached crops moved per-source AUCs by up to 25 points between the paths).
An imported model (a MesoNet .h5, a DeepfakeBench file) scored on face crops (`--face-detector
none`) by `harness evaluate` and by `harness predict`, in the forms a user types, also gives one
score per face."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.builders import build_user_data, deepfakebench_file, face_crops, mesonet_h5

pytestmark = pytest.mark.slow

TINY = ["--backbone", "mobilenetv2", "--pretrained", "none", "--img-size", "64", "--max-steps", "1", "--batch-size", "2",
        "--workers", "0", "--device", "cpu"]
FRAMES = 3


def harness(work: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HARNESS_CACHE=str(work / "cache"), HARNESS_PROGRESS="0", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def scores_file(run_dir: Path) -> dict[str, float]:
    with open(run_dir / "scores" / "folder.csv", newline="") as handle:
        return {row["uid"]: float(row["score"]) for row in csv.DictReader(handle)}


def test_run_evaluate_and_predict_give_one_score_per_file(tmp_path):
    from harness_plugins.datasets.folder import FolderDataset

    train_dir, test_csv = build_user_data(tmp_path / "mine")
    harness(tmp_path, "run", "--train-dir", train_dir, "--test-csv", test_csv, "--eval-frames", FRAMES, *TINY)
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if (p / "checkpoint").is_dir())
    in_run = scores_file(run_dir)

    harness(tmp_path, "evaluate", "--checkpoint", run_dir, "--test-csv", test_csv, "--device", "cpu")
    evaluated = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("eval-"))
    assert scores_file(evaluated) == in_run  # the same numbers, not close ones

    # predict takes files: one per single-file test item (a video or a photo), scored on as many frames
    records = FolderDataset(test_csv=str(test_csv)).records("test")
    single = {r.uid: r.path for r in records if r.uid in in_run}
    assert len(single) >= 4, single  # the three videos listed alone and the far one
    out = harness(tmp_path, "predict", *single.values(), "--checkpoint", run_dir, "--frames", FRAMES, "--device", "cpu",
                  "--json", "--out", tmp_path / "predict")
    report = json.loads(out.stdout)
    printed = {Path(f["path"]).resolve(): f["score"] for f in report["files"]}
    for uid, path in single.items():
        assert printed[Path(path).resolve()] == round(in_run[uid], 6), uid  # predict's JSON prints 6 decimals

    # the unrounded score behind that JSON (the same code, through the Python API): bit for bit
    from harness.predict.inference import Predictor
    from harness.predict.run import PredictOptions, predict_files

    scored: dict[Path, float] = {}
    predictor = Predictor.from_checkpoint(run_dir, device="cpu")
    predict_files(predictor, [Path(p) for p in single.values()], PredictOptions(frames=FRAMES, out=tmp_path / "api"),
                  on_result=lambda result, block: scored.__setitem__(Path(result.path).resolve(), result.score))
    for uid, path in single.items():
        assert scored[Path(path).resolve()] == in_run[uid], uid


@pytest.mark.parametrize("form", ["mesonet:Meso4_DF.h5", "deepfakebench:xception_best.pth"])
def test_evaluate_and_predict_give_one_score_per_face_for_an_imported_model(tmp_path, monkeypatch, form):
    """The issue's commands as written: `harness evaluate --checkpoint mesonet:Meso4_DF.h5 --test-csv
    faces.csv --face-detector none` (and deepfakebench:xception_best.pth: a few small faces, Xception
    is slow on a CPU), then `harness predict` with the same form on the same files."""
    from harness.predict.inference import Predictor
    from harness.predict.run import PredictOptions, predict_files
    from harness_plugins.datasets.folder import FolderDataset

    from typer.testing import CliRunner

    from harness.cli import build_app
    from harness.predict.inference import Predictor
    from harness.predict.run import PredictOptions, predict_files
    from harness_plugins.datasets.folder import FolderDataset

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    importer, name = form.split(":")
    mesonet_h5(tmp_path / name) if importer == "mesonet" else deepfakebench_file(tmp_path / name, "xception")
    test_csv = face_crops(tmp_path / "crops", n=4 if importer == "mesonet" else 2, size=64)
    (tmp_path / "faces.csv").write_text(test_csv.read_text().replace("f", "crops/f"))
    cli = CliRunner()
    result = cli.invoke(build_app(), ["evaluate", "--checkpoint", form, "--test-csv", "faces.csv", "--face-detector", "none",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    (evaluated,) = (tmp_path / "runs").glob("eval-*")
    in_eval = scores_file(evaluated)
    files = {r.uid: r.path for r in FolderDataset(test_csv=str(tmp_path / "faces.csv")).records("test")}
    assert set(files) == set(in_eval) and len(set(in_eval.values())) == len(files)  # every face, told apart

    result = cli.invoke(build_app(), ["predict", *map(str, files.values()), "--checkpoint", form, "--face-detector", "none",
                                      "--device", "cpu", "--json", "--out", "predicted"])
    assert result.exit_code == 0, result.output
    printed = {Path(f["path"]).resolve(): f["score"] for f in json.loads(result.stdout)["files"]}
    for uid, path in files.items():
        assert printed[Path(path).resolve()] == round(in_eval[uid], 6), uid  # predict's JSON prints 6 decimals

    scored: dict[Path, float] = {}
    predictor = Predictor.from_checkpoint(form, device="cpu", detector="none")  # the import evaluate made, reused
    predict_files(predictor, [Path(p) for p in files.values()], PredictOptions(frames=1, out=tmp_path / "api"),
                  on_result=lambda result, block: scored.__setitem__(Path(result.path).resolve(), result.score))
    for uid, path in files.items():
        assert scored[Path(path).resolve()] == in_eval[uid], uid  # bit for bit
