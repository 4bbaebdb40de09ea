"""The embedded demo dataset: FF++ layout, fakes with masks that match what changed, deterministic."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np

from harness.data import demo


def test_manipulations_change_exactly_their_masked_region():
    rng = np.random.default_rng(0)
    photo = demo._Photo()
    ids = [demo._identity(rng) for _ in range(2)]
    frame, lm = demo._render(photo, photo.face, ids[0], 3, 192, np.random.default_rng(1))
    other, lm2 = demo._render(photo, photo.face, ids[1], 3, 192, np.random.default_rng(2))
    for fake, mask in (demo.face_swap(frame, lm, other, lm2), demo.expression_warp(frame, lm, 1.0)):
        assert fake.shape == frame.shape and mask.shape == frame.shape[:2]
        inside = mask > 0
        assert 0.02 < inside.mean() < 0.6
        diff = np.abs(fake.astype(int) - frame.astype(int)).max(-1)
        # Poisson cloning and warping change the masked area; far outside it nothing moves.
        assert diff[inside].mean() > 3
        # Away from the mask nothing visibly changes (12 levels: the warp's own visibility threshold).
        far = cv2.dilate(inside.astype(np.uint8), np.ones((25, 25), np.uint8)) == 0
        assert far.mean() > 0.3 and diff[far].max() <= 12


def test_demo_tree_has_ffpp_layout_and_is_deterministic(tmp_path):
    spec = demo.DemoSpec(train_pairs=1, val_pairs=1, test_pairs=1, frames=3, size=128)
    a = demo.ensure_demo(spec, root=tmp_path / "a", progress=False)
    b = demo.ensure_demo(spec, root=tmp_path / "b", progress=False)
    reals = sorted(p.name for p in (a / "original_sequences/youtube/c23/videos").iterdir())
    assert reals == ["000.mp4", "001.mp4", "002.mp4", "003.mp4", "004.mp4", "005.mp4"]
    for method in demo.METHODS:
        fakes = sorted(p.name for p in (a / "manipulated_sequences" / method / "c23/videos").iterdir())
        masks = sorted(p.name for p in (a / "manipulated_sequences" / method / "masks/videos").iterdir())
        assert fakes == masks == ["000_001.mp4", "001_000.mp4", "002_003.mp4", "003_002.mp4", "004_005.mp4", "005_004.mp4"]
    assert json.loads((a / "test.json").read_text()) == [["004", "005"]]
    assert json.loads((a / "train.json").read_text()) == [["000", "001"]]
    digest = lambda root: hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.rglob("*.mp4")))).hexdigest()
    assert digest(a) == digest(b)
    assert "not a benchmark" in (a / "README.txt").read_text()
