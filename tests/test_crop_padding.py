"""Crop boxes that leave the image are padded with black, the same way in every path (preprocess for
training and evaluation, predict); the rule records it, keys the face cache by it, and old records
keep the reflection they were made with."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from harness.cli import build_app
from harness.data.cache import FaceCache
from harness.data.crop import CropRule, crop_box, crop_image
from harness.data.sample_face import astronaut_face

runner = CliRunner()


def _images(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A tight face crop (the margin runs past every edge) and the same face inside a large canvas."""
    face, _ = astronaut_face(160)
    canvas = np.full((480, 480, 3), 70, np.uint8)
    canvas[160:320, 160:320] = face
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "tight.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "inside.png"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    (folder / "t.csv").write_text("path,label\ntight.png,fake\ninside.png,real\n")
    return face, canvas


def test_preprocess_pads_with_black_and_keys_the_cache_by_it(tmp_path):
    face, canvas = _images(tmp_path / "data")
    result = runner.invoke(build_app(), ["preprocess", "--test-csv", str(tmp_path / "data" / "t.csv"),
                                         "--cache-dir", str(tmp_path / "home"), "--crop-size", "64"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (root,) = (tmp_path / "home" / "faces").iterdir()
    assert root.name == "dlib-crop64-m0.3-padconstant-png"  # not the reflecting (or JPEG) caches' folder
    with FaceCache(root) as cache:
        assert cache.crop_rule["pad"] == "constant"
        faces = {Path(v.path).name: cache.faces(v.uid)[0] for v in cache.videos()}
    tight = faces["tight.png"]
    x0, y0, x1, y1 = tight.crop_box
    assert x0 < 0 and y0 < 0 and x1 > 160 and y1 > 160  # the margin leaves the image on every side
    outside = int(np.floor(-y0 * 64 / (x1 - x0))) - 1  # rows of the crop above the image
    assert outside >= 3 and tight.image[:outside].max() <= 12  # black (up to JPEG ringing), no mirrored face
    assert tight.image[outside + 4 :].mean() > 40
    # A face inside the image gets the very crop it got before: padding never touches it.
    inside = faces["inside.png"]
    assert all(0 <= v <= 480 for v in inside.crop_box)
    assert np.array_equal(crop_image(canvas, inside.crop_box, 64, "constant"), crop_image(canvas, inside.crop_box, 64, "reflect"))


def test_both_crop_paths_pad_alike_and_old_records_keep_reflecting():
    face, lm = astronaut_face(160)
    box = crop_box(lm)
    for size in (64, 400):  # shrinking (area path) and enlarging (warp path)
        black = crop_image(face, box, size, "constant")
        mirrored = crop_image(face, box, size, "reflect")
        assert black[0].max() == 0 and black[:, 0].max() == 0 and mirrored[0].max() > 0
    old = CropRule.from_dict({"detector": "dlib", "margin": 0.3, "forehead": 0.2, "crop_size": 256})
    assert old.pad == "reflect" and old.cache_key() == "dlib-crop256-m0.3"  # caches and checkpoints made before
    new = CropRule.for_detector("dlib", crop_size=256)
    assert new.pad == "constant" and CropRule.from_dict(new.to_dict()) == new  # what predict reads back
    assert np.array_equal(new.cut(face, lm)[0], crop_image(face, new.box(lm), 256, "constant"))
