"""Face crops scored as they are (`--face-detector none`) and aligned crops, through the real
command line with a tiny checkpoint: predict and evaluate score every image whole at the model's
own sizes and say that no face was looked for; run refuses to train without landmarks; predict
with an aligned crop rule cuts where the rule says."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fixtures.builders import tiny_swin_run
from harness.cli import build_app
from harness.data.cache import FaceCache
from harness.data.crop import CropRule, resize_crop
from harness.data.sample_face import astronaut_face
from harness.predict import validate

IMG = 64  # the tiny model's input; its crop rule cuts 128 px
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(build_app(), [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return tiny_swin_run(tmp_path_factory.mktemp("run"), IMG)


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    """Four face crops (two of them colour-inverted: 'fakes'), a wall that is no face, a test CSV."""
    root = tmp_path_factory.mktemp("crops")
    face, _ = astronaut_face(96)
    for i in range(4):
        image = np.ascontiguousarray(np.roll(face, 7 * i, axis=1))
        image = 255 - image if i % 2 else image
        cv2.imwrite(str(root / f"f{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "wall.png"), np.full((80, 120, 3), 200, np.uint8))  # not square, not a face
    (root / "test.csv").write_text("path,label\nf0.png,real\nf1.png,fake\nf2.png,real\nf3.png,fake\nwall.png,real\n")
    return root


def test_predict_scores_each_image_whole_at_the_models_sizes(bundle, crops):
    from harness.predict.inference import Predictor

    result = invoke("predict", crops / "f1.png", crops / "wall.png", "--checkpoint", bundle, "--face-detector", "none",
                    "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output  # the wall is scored too: nothing says it is no face
    report = json.loads(result.stdout)
    validate(report)
    assert report["checkpoint"]["face_detector"] == "none" and report["checkpoint"]["crop"]["basis"] == "image"
    predictor = Predictor.from_checkpoint(bundle, device="cpu", detector="none")
    for block in report["files"]:
        image = cv2.cvtColor(cv2.imread(block["path"]), cv2.COLOR_BGR2RGB)
        (frame,) = block["frames"]
        (face,) = frame["faces"]
        assert face["crop_box"] == [0.0, 0.0, image.shape[1], image.shape[0]]
        # the whole image at the model's crop size (128), then at its input size (64)
        expected = predictor.score_crops([resize_crop(resize_crop(image, 128), IMG)])[0][0]
        assert block["score"] == pytest.approx(float(expected), abs=1e-6)


def test_evaluate_scores_face_crops_and_says_no_face_was_looked_for(bundle, crops, tmp_path):
    result = invoke("evaluate", "--checkpoint", bundle, "--test-csv", crops / "test.csv", "--face-detector", "none",
                    "--device", "cpu", "--runs-dir", tmp_path / "runs", "--cache-dir", tmp_path / "home")
    assert result.exit_code == 0, result.output
    assert "Faces not detected" in result.output
    (folder,) = (tmp_path / "runs").glob("eval-*")
    results = json.loads((folder / "results.json").read_text())
    assert results["config"]["face_detector"] == "none" and results["config"]["crop"]["basis"] == "image"
    block = results["datasets"]["folder"]
    assert block["counts"]["videos_scored"] == 5 and block["counts"]["videos_no_face"] == 0  # the wall included
    assert "not detected" in block["face_detection"] and "'none'" in block["face_detection"]
    assert "Faces not detected" in (folder / "report.md").read_text()
    (cache_root,) = (tmp_path / "home" / "faces").iterdir()
    assert cache_root.name.startswith("none-crop128-") and "-image" in cache_root.name  # its own cache
    with FaceCache(cache_root) as cache:
        faces = {Path(v.path).name: cache.faces(v.uid) for v in cache.videos()}
    wall = cv2.cvtColor(cv2.imread(str(crops / "wall.png")), cv2.COLOR_BGR2RGB)
    assert len(faces["wall.png"]) == 1 and faces["wall.png"][0].landmarks.shape == (0, 2)
    assert np.array_equal(faces["wall.png"][0].image, resize_crop(wall, 128))


def test_run_refuses_to_train_without_landmarks(crops, tmp_path):
    result = invoke("run", "--train-dir", crops, "--test-csv", crops / "test.csv", "--face-detector", "none",
                    "--runs-dir", tmp_path / "runs", "--dry-run")
    assert result.exit_code == 2
    (line,) = [l for l in result.output.splitlines() if l.strip()]
    assert "--face-detector none" in line and "landmarks" in line and "harness evaluate --face-detector none" in line
    assert not (tmp_path / "runs").exists()


def test_predict_cuts_an_aligned_crop_where_the_rule_says(tmp_path):
    import harness
    from harness.data.faces import FaceFinder

    rule = CropRule(detector="dlib", basis="aligned5", template="deepfakebench", scale=1.3, crop_size=128, min_area=1.0)
    run = tiny_swin_run(tmp_path / "run", IMG, crop=rule.to_dict())
    face, _ = astronaut_face(160, margin=0.6)
    frame = np.full((224, 224, 3), 70, np.uint8)
    frame[20:180, 30:190] = face
    frame = cv2.warpAffine(frame, cv2.getRotationMatrix2D((112, 100), 15, 1.0), (224, 224))  # a tilted head
    cv2.imwrite(str(tmp_path / "face.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = invoke("predict", tmp_path / "face.png", "--checkpoint", run, "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    validate(report)  # a turned crop's corners: six numbers
    assert report["checkpoint"]["crop"]["basis"] == "aligned5"
    (found,) = FaceFinder(harness.plugin("face_detector", "dlib")).find(frame)
    (face_block,) = report["files"][0]["frames"][0]["faces"]
    assert face_block["crop_box"] == pytest.approx(list(rule.box(found.landmarks)), abs=0.01)
    top_left, top_right = np.array(face_block["crop_box"][:2]), np.array(face_block["crop_box"][2:4])
    tilt = np.degrees(np.arctan2(*(top_right - top_left)[::-1]))
    assert -25 < tilt < -5  # the crop turns with the head (15 degrees, counter-clockwise on screen)
