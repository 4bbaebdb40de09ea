"""The decision threshold a checkpoint carries: calibrated at the EER of its validation self-blends,
recorded in model.json, predict's default; --threshold overrides it; none without validation data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fixtures.builders import tiny_swin_run
from harness.cli import build_app
from harness.models.threshold import FALLBACK, eer_threshold
from harness.training.checkpoint import MODEL_META, record_threshold

IMG = 64
runner = CliRunner()


def predict(*args: str):
    return runner.invoke(build_app(), ["predict", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A run folder holding checkpoint/ of a tiny Swin detector, as the trainer writes it."""
    return tiny_swin_run(tmp_path_factory.mktemp("run"), IMG)


@pytest.fixture(scope="module")
def face(tmp_path_factory) -> Path:
    from harness.data.sample_face import astronaut_face

    image, _ = astronaut_face(160, margin=0.6)
    frame = np.full((224, 224, 3), 70, np.uint8)
    frame[20:180, 30:190] = image
    path = tmp_path_factory.mktemp("media") / "face.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return path


def test_eer_threshold_sits_where_false_positives_equal_false_negatives():
    labels = np.array([0] * 4 + [1] * 4)
    scores = np.array([0.40, 0.42, 0.44, 0.52, 0.50, 0.55, 0.60, 0.65])  # clustered near 0.5, as in short runs
    record = eer_threshold(labels, scores)
    assert record["value"] == pytest.approx(0.52) and record["eer"] == pytest.approx(0.25)
    assert (record["n_real"], record["n_fake"]) == (4, 4)
    one_class = eer_threshold(np.zeros(3), np.array([0.1, 0.2, 0.3]))
    assert one_class["value"] is None and "3 real and 0 fake" in one_class["reason"]


def test_predict_uses_the_checkpoints_threshold_unless_told_otherwise(bundle, face):
    old = predict(face, "-c", bundle, "--json")  # recorded before thresholds were calibrated: 0.5, and why
    assert old.exit_code == 0, old.output
    assert json.loads(old.stdout)["threshold"] == FALLBACK
    assert "threshold 0.5: default 0.5 (no calibrated threshold: the checkpoint predates calibrated thresholds)" \
        in " ".join(old.stderr.split())
    assert json.loads(old.stdout)["threshold_source"].startswith("default 0.5 (no calibrated threshold")

    score = json.loads(old.stdout)["files"][0]["score"]
    record_threshold(bundle / "checkpoint", {"value": score + 1e-6, "rule": "EER on the validation self-blends", "eer": 0.1,
                                             "n_real": 4, "n_fake": 4})
    calibrated = predict(face, "-c", bundle, "--json")
    document = json.loads(calibrated.stdout)
    assert document["threshold"] == pytest.approx(score + 1e-6) and document["files"][0]["verdict"] == "real"
    said = "calibrated at the EER of 8 validation images (4 real, 4 self-blended fakes)"
    assert said in " ".join(calibrated.stderr.split()) and document["threshold_source"] == said
    table = predict(face, "-c", bundle)  # the table's verdicts say where their threshold came from
    assert f"fake when the score is >= {score + 1e-6:g} ({said})" in " ".join(table.output.split())
    assert "add --out DIR" in table.output  # and how to see where the face was altered
    told = json.loads(predict(face, "-c", bundle, "--json", "--threshold", "0").stdout)
    assert told["threshold"] == 0 and told["files"][0]["verdict"] == "fake" and told["threshold_source"] == "--threshold"

    record_threshold(bundle / "checkpoint", {"value": None, "reason": "no validation split to calibrate on"})
    none = predict(face, "-c", bundle, "--json")
    assert json.loads(none.stdout)["threshold"] == FALLBACK
    assert "default 0.5 (no calibrated threshold: no validation split to calibrate on)" in " ".join(none.stderr.split())


@pytest.mark.slow
def test_a_run_calibrates_and_records_its_threshold(tiny_demo):
    """`harness run` on the demo (the shared tiny experiment) records the EER threshold of its
    validation self-blends in the checkpoint."""
    run = tiny_demo.seed0
    record = json.loads((run / "checkpoint" / MODEL_META).read_text())["threshold"]
    assert 0.0 <= record["value"] <= 1.0 and record["rule"] == "EER on the validation self-blends"
    assert record["n_real"] > 0 and record["n_fake"] > 0
