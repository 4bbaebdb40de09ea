"""Odd inputs to every built-in blender: a clear ValueError or a defined result, never a cv2 crash.
Also: the blenders load through the plugin system."""

from __future__ import annotations

import numpy as np
import pytest

import harness
from harness.data.sample_face import astronaut_face
from harness.extend.types import Blender
from harness_plugins.blenders.multipart import MultipartBlender
from harness_plugins.blenders.sbi import SBIBlender

BLENDERS = {"multipart": MultipartBlender, "sbi": SBIBlender}


@pytest.fixture(scope="module")
def face():
    img, lm = astronaut_face(96)
    return img.copy(), lm.copy()


@pytest.fixture(params=sorted(BLENDERS))
def blender(request):
    return BLENDERS[request.param]()


def _rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("shape", ["hw", "hw1"])
def test_grey_faces_give_an_rgb_fake(blender, face, shape) -> None:
    img, lm = face
    grey = img.mean(axis=2).astype(np.uint8)
    grey = grey if shape == "hw" else grey[:, :, None]
    result = blender(grey, lm, _rng())
    assert result.image.shape == (*img.shape[:2], 3) and result.mask.shape == img.shape[:2]


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda img: img.astype(np.float32) / 255, "uint8"),
        (lambda img: img.astype(np.uint16), "uint8"),
        (lambda img: np.dstack([img, img[:, :, :1]]), "alpha"),
        (lambda img: img[:20, :20], "at least"),
        (lambda img: [[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_images_raise_value_error(blender, face, bad, match) -> None:
    img, lm = face
    with pytest.raises(ValueError, match=match):
        blender(bad(img), lm, _rng())


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda lm: lm[:67], r"\(68, 2\)"),
        (lambda lm: np.hstack([lm, lm[:, :1]]), r"\(68, 2\)"),
        (lambda lm: lm.reshape(-1), r"\(68, 2\)"),
        (lambda lm: np.where(np.arange(68)[:, None] == 3, np.nan, lm), "finite"),
        (lambda lm: lm + 1000, "outside"),
        (lambda lm: (lm - lm.mean(0)) * 0.02 + 48, "too small"),
    ],
)
def test_bad_landmarks_raise_value_error(blender, face, bad, match) -> None:
    img, lm = face
    with pytest.raises(ValueError, match=match):
        blender(img, bad(lm), _rng())


def test_rng_must_be_a_generator(blender, face) -> None:
    img, lm = face
    with pytest.raises(TypeError, match="Generator"):
        blender(img, lm, 0)


@pytest.mark.parametrize("shift", [(-40, 0), (0, 45), (50, -30)])
def test_landmarks_partly_outside_the_crop_give_a_defined_result(blender, face, shift) -> None:
    img, lm = face
    for seed in range(5):
        result = blender(img, lm + np.array(shift, np.float32), np.random.default_rng(seed))
        assert result.image.shape == img.shape and result.mask.shape == img.shape[:2]
        assert np.isfinite(result.mask).all() and 0 <= result.mask.min() and result.mask.max() <= 1


def test_small_face_in_a_big_crop_still_blends(blender, face) -> None:
    img, lm = face
    tiny = (lm - lm.mean(0)) * 0.25 + 48  # a ~16 px face
    result = blender(img, tiny, _rng())
    assert result.mask.max() > 0 and result.image.shape == img.shape


def test_read_only_inputs_are_not_modified(blender) -> None:
    img, lm = astronaut_face(96)  # cached, read-only arrays
    before = img.copy()
    blender(img, lm, _rng())
    assert np.array_equal(img, before)


def test_loaded_through_the_plugin_system(only_plugins, face) -> None:
    only_plugins("multipart,sbi")
    multipart = harness.plugin("blender", "multipart", multi_part=False, local_deformation=False)
    sbi = harness.plugin("blender", "sbi")
    assert isinstance(multipart, MultipartBlender) and isinstance(sbi, SBIBlender)
    assert multipart.multi_part is False and multipart.local_deformation is False
    assert isinstance(multipart, Blender) and isinstance(sbi, Blender)
    names = {entry.name for entry in harness.plugins("blender")}
    assert {"multipart", "sbi"} <= names
    img, lm = face
    assert multipart(img, lm, _rng()).record["regions"][0]["name"] == "face"


def test_pair_gives_a_real_that_matches_the_fake_outside_the_mask(blender, face) -> None:
    img, lm = face
    for seed in range(4):
        real, result = blender.pair(img, lm, np.random.default_rng(seed))
        alone = blender(img, lm, np.random.default_rng(seed))
        assert np.array_equal(result.image, alone.image) and result.record == alone.record
        assert real.shape == img.shape and real.dtype == np.uint8
        outside = result.mask == 0
        assert np.array_equal(real[outside], result.image[outside])
        inside = result.mask >= 0.5 * result.mask.max()  # SBI's blend ratio may cap the mask at .25
        assert np.abs(real[inside].astype(int) - result.image[inside]).mean() > 0.5
