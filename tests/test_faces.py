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
