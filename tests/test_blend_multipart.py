"""The multi-part local-deformation self-blender."""

from __future__ import annotations

import json
import math
import pickle

import cv2
import numpy as np
import pytest

from harness.data.sample_face import astronaut_face
from harness.extend.types import BlendResult
from harness_plugins.blenders.blend_ops import composite
from harness_plugins.blenders.multipart import MultipartBlender
from harness_plugins.blenders.regions import SCALE_RANGES, base_polygons, scaled


@pytest.fixture(scope="module")
def face():
    return astronaut_face(128)


def _identity(image, rng):
    return image.copy(), {}


def _run(blender, face, seed):
    img, lm = face
    return blender(img, lm, np.random.default_rng(seed))


def test_output_contract(face) -> None:
    result = _run(MultipartBlender(), face, 0)
    assert isinstance(result, BlendResult)
    assert result.image.shape == face[0].shape and result.image.dtype == np.uint8
    assert result.mask.shape == face[0].shape[:2] and result.mask.dtype == np.float32
    assert 0.0 <= result.mask.min() and result.mask.max() <= 1.0 and result.mask.max() >= 0.85
    json.dumps(result.record)  # JSON-serialisable
    assert result.record["blender"] == "multipart"
    assert not np.array_equal(result.image, face[0])


def _allowed_area(lm, record, shape) -> np.ndarray:
    """Where the mask may be non-zero: the recorded regions at their recorded scales, dilated by
    one rotated cell (the mosaic staircase), the blur's reach and a little rounding slack."""
    mosaic = record["mosaic"]
    allowed = np.zeros(shape, np.uint8)
    for region in record["regions"]:
        for poly in base_polygons(lm, region["name"]):
            pts = np.round(scaled(poly, region["scale"])).astype(np.int32)
            cv2.fillPoly(allowed, [pts], 1)
    reach = math.ceil(mosaic["cell_px"] * math.sqrt(2) + 3 * mosaic["soften_sigma_px"] + 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    return cv2.dilate(allowed, kernel) > 0


@pytest.mark.parametrize("seed", range(8))
def test_mask_stays_in_the_chosen_regions_and_fake_is_source_outside(face, seed) -> None:
    img, lm = face
    blender = MultipartBlender()
    blender.source_augment = _identity  # so the unaltered copy is the input face itself
    result = _run(blender, face, seed)
    allowed = _allowed_area(lm, result.record, img.shape[:2])
    assert np.all(result.mask[~allowed] == 0.0)
    outside = result.mask == 0
    assert outside.any()
    assert np.array_equal(result.image[outside], img[outside])


def test_region_scales_are_in_the_paper_ranges(face) -> None:
    seen = set()
    for seed in range(40):
        record = _run(MultipartBlender(), face, seed).record
        for region in record["regions"]:
            low, high = SCALE_RANGES[region["name"]]
            assert low - 1e-3 <= region["scale"] <= high + 1e-3
            seen.add(region["name"])
        mosaic = record["mosaic"]
        px = 128 / 224  # cell sizes scale with the crop
        assert 4 * px - 0.01 <= mosaic["cell_px"] <= 16 * px + 0.01
        assert abs(mosaic["angle_deg"]) <= 5.0 and 0.85 <= mosaic["opacity"] <= 1.0
    assert seen == {"eyes", "nose", "mouth", "face"}


def test_same_seed_same_output_and_seeds_differ(face) -> None:
    a, b = _run(MultipartBlender(), face, 7), _run(MultipartBlender(), face, 7)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.record == b.record
    c = _run(MultipartBlender(), face, 8)
    assert not np.array_equal(a.image, c.image)


def test_multi_part_switch(face) -> None:
    whole = [_run(MultipartBlender(multi_part=False), face, s).record for s in range(12)]
    assert all([r["name"] for r in rec["regions"]] == ["face"] for rec in whole)
    assert all(rec["multi_part"] is False for rec in whole)
    parts = [_run(MultipartBlender(multi_part=True), face, s).record for s in range(12)]
    assert any(r["name"] != "face" for rec in parts for r in rec["regions"])
    assert all(rec["multi_part"] is True for rec in parts)


def test_local_deformation_switch_changes_only_the_altered_region(face) -> None:
    img, _ = face
    on = _run(MultipartBlender(multi_part=False, local_deformation=True), face, 3)
    off = _run(MultipartBlender(multi_part=False, local_deformation=False), face, 3)
    assert on.record["local_deformation"] is True and on.record["warps"]
    assert off.record["local_deformation"] is False and off.record["warps"] == []
    # The warps are drawn last, so the mask and both copies' augmentations are the same.
    assert np.array_equal(on.mask, off.mask)
    outside = on.mask == 0
    assert np.array_equal(on.image[outside], off.image[outside])
    assert not np.array_equal(on.image, off.image)
    for warp in on.record["warps"]:
        assert warp["r"] > 0 and 0 < math.dist(warp["c"], warp["m"]) < warp["r"]


@pytest.mark.parametrize("size", [(64, 64), (96, 80), (224, 224)])
def test_works_for_crop_sizes(size) -> None:
    h, w = size
    img, lm = astronaut_face(256)
    small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    lm_small = lm * np.array([w / 256, h / 256], np.float32)
    for seed in range(4):
        result = MultipartBlender()(small, lm_small, np.random.default_rng(seed))
        assert result.image.shape == (h, w, 3) and result.mask.shape == (h, w)
        assert result.mask.max() > 0.5


def test_picklable_and_unchanged_by_pickling(face) -> None:
    blender = MultipartBlender(multi_part=False)
    clone = pickle.loads(pickle.dumps(blender))
    a, b = _run(blender, face, 5), _run(clone, face, 5)
    assert np.array_equal(a.image, b.image) and a.record == b.record


def test_augment_real_is_deterministic_and_changes_the_face(face) -> None:
    img, _ = face
    blender = MultipartBlender()
    outs = [blender.augment_real(img, np.random.default_rng(s)) for s in (1, 1, 2)]
    assert np.array_equal(outs[0], outs[1]) and outs[0].shape == img.shape
    assert not np.array_equal(outs[0], img)


def test_composite_follows_eq6() -> None:
    outside = np.full((4, 4, 3), 100, np.uint8)
    inside = np.full((4, 4, 3), 200, np.uint8)
    mask = np.zeros((4, 4), np.float32)
    mask[1, 1], mask[2, 2] = 1.0, 0.25
    out = composite(outside, inside, mask)
    assert out[0, 0, 0] == 100 and out[1, 1, 0] == 200 and out[2, 2, 0] == 125


def test_bad_options_fail_clearly() -> None:
    with pytest.raises(ValueError, match="max_warps"):
        MultipartBlender(max_warps=0)
    with pytest.raises(ValueError, match="probabilit"):
        MultipartBlender(face_prob=1.5)
