"""The SBI baseline blender (Shiohara & Yamasaki, CVPR 2022)."""

from __future__ import annotations

import json
import math
import pickle

import cv2
import numpy as np
import pytest

from harness.data.sample_face import astronaut_face
from harness_plugins.blenders.regions import face_size
from harness_plugins.blenders.sbi import BLEND_RATIOS, SBIBlender


@pytest.fixture(scope="module")
def face():
    return astronaut_face(128)


def _run(blender, face, seed):
    img, lm = face
    return blender(img, lm, np.random.default_rng(seed))


def test_output_contract_and_record(face) -> None:
    ratios = set()
    for seed in range(16):
        result = _run(SBIBlender(), face, seed)
        assert result.image.shape == face[0].shape and result.image.dtype == np.uint8
        assert result.mask.shape == face[0].shape[:2] and result.mask.dtype == np.float32
        json.dumps(result.record)
        ratio = result.record["blend_ratio"]
        assert ratio in BLEND_RATIOS
        assert result.mask.max() == pytest.approx(ratio, abs=0.02)  # the hull's core is fully blended
        ratios.add(ratio)
    assert len(ratios) >= 3


@pytest.mark.parametrize("seed", range(6))
def test_mask_is_near_the_landmark_hull_and_fake_is_target_outside(face, seed) -> None:
    img, lm = face
    blender = SBIBlender()
    blender.augment = lambda image, rng: (image.copy(), {})  # both copies equal the input
    result = _run(blender, face, seed)
    rec = result.record
    # Allowed: the hull (moved by the source affine) grown by the wobble, the blur's reach and slack.
    affine = rec["source_affine"]
    k, tx, ty = affine["scale"], affine["tx_px"], affine["ty_px"]
    c = (np.array(img.shape[1::-1]) - 1) / 2
    moved = (lm - c) * k + c + [tx, ty]
    allowed = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(allowed, [np.round(cv2.convexHull(moved.astype(np.float32))).astype(np.int32)], 1)
    reach = math.ceil(sum(rec["mask"]["wobble_px"]) + 4 * rec["mask"]["blur_sigma_px"] + 2)
    allowed = cv2.dilate(allowed, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)) > 0
    assert np.all(result.mask[~allowed] == 0)
    outside = result.mask == 0
    assert outside.any() and np.array_equal(result.image[outside], img[outside])
    assert (result.mask > 0).mean() > 0.2  # a whole-face blend, not a sliver
    assert reach < face_size(lm)


def test_deterministic_and_picklable(face) -> None:
    blender = SBIBlender()
    a, b = _run(blender, face, 4), _run(pickle.loads(pickle.dumps(blender)), face, 4)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.record == b.record
    assert not np.array_equal(a.image, _run(blender, face, 5).image)


def test_fake_differs_from_the_real_inside_the_mask(face) -> None:
    img, _ = face
    for seed in range(6):
        result = _run(SBIBlender(), face, seed)
        inside = result.mask > 0.2
        assert np.abs(result.image[inside].astype(int) - img[inside]).mean() > 0.5


def test_augment_real_keeps_shape_and_is_deterministic(face) -> None:
    img, _ = face
    blender = SBIBlender()
    outs = [blender.augment_real(img, np.random.default_rng(s)) for s in range(6)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outs)
    assert np.array_equal(outs[0], blender.augment_real(img, np.random.default_rng(0)))
    assert any(not np.array_equal(o, img) for o in outs)


def test_bad_blend_ratios_fail_clearly() -> None:
    with pytest.raises(ValueError, match="blend_ratios"):
        SBIBlender(blend_ratios=(0.0, 2.0))
