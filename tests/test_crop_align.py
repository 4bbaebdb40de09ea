"""Crops turned upright by a similarity transform of the landmarks (crop bases ``aligned5`` and
``upright``) and the whole-image rule of pre-cropped faces: the transform checked exactly on
synthetic landmarks, DeepfakeBench's alignment rebuilt from its steps with skimage, MesoNet's crop
invariant to the head's tilt, and the rule's record (round trip, old records, cache keys)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from harness.data.align import TEMPLATES, aligned_matrix, apply_affine, similarity, template_points, upright_matrix
from harness.data.crop import CropRule, crop_mask, crop_matrix, landmarks_to_crop
from harness.data.sample_face import astronaut_face, astronaut_landmarks
from harness.extend.types import Face


def _similar(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = math.radians(angle_deg)
    linear = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.hstack([linear, np.array(shift, np.float64)[:, None]])


def _photo() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()), astronaut_landmarks().astype(np.float64)


def test_similarity_recovers_a_known_transform_exactly():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 300, (5, 2))
    for angle, scale in ((0.0, 1.0), (37.0, 0.6), (-150.0, 2.5)):
        known = _similar(angle, scale, (12.5, -40.0))
        assert np.abs(similarity(src, src @ known[:, :2].T + known[:, 2]) - known).max() < 1e-9
    with pytest.raises(ValueError, match="coincide"):
        similarity(np.ones((5, 2)), src)


def test_template_points_land_where_they_should_whatever_the_pose():
    """Synthetic 68 landmarks whose five template points are the template itself, seen through a
    known rotation, scale and shift: the aligned crop puts them exactly on the scaled template."""
    groups, points = TEMPLATES["arcface"]
    size, scale = 256, 1.3
    # DeepfakeBench's steps, one at a time: the 112 px template to the output size, a margin of
    # (scale - 1) / 2 of the size on each side, then everything resized back to the output size
    margin = size * (scale - 1) / 2
    expected = (np.asarray(points) * size / 112 + margin) * size / (size + 2 * margin)
    assert np.abs(template_points("arcface", scale, size) - expected).max() < 1e-9
    pose = _similar(-28.0, 3.1, (400.0, 150.0))
    landmarks = np.zeros((68, 2))
    for group, point in zip(groups, np.asarray(points) @ pose[:, :2].T + pose[:, 2]):
        landmarks[list(group)] = point  # an eye's six points all at the eye centre
    matrix = aligned_matrix(landmarks, "arcface", scale, size)
    five = np.stack([landmarks[list(g)].mean(0) for g in groups])
    assert np.abs(five @ matrix[:, :2].T + matrix[:, 2] - expected).max() < 1e-9
    rule = CropRule(basis="aligned5", scale=scale, crop_size=size)
    assert np.abs(rule.matrix(landmarks) - matrix).max() == 0
    # the turned crop's recorded corners give back the same geometry, at any size
    assert np.abs(crop_matrix(rule.box(landmarks), size) - matrix).max() < 1e-9
    assert np.abs(crop_matrix(rule.box(landmarks), 64) - matrix * 64 / size).max() < 1e-9


def test_aligned5_cuts_the_crops_deepfakebench_cut():
    """DeepfakeBench's img_align_crop rebuilt from its steps (float32 template, skimage's
    SimilarityTransform, warpAffine's defaults): the same pixels, up to one grey level where its
    float32 template rounds differently."""
    from skimage.transform import SimilarityTransform

    photo, landmarks = _photo()
    size, scale = 256, 1.3
    dst = np.array(TEMPLATES["deepfakebench"][1], np.float32)
    margin = size * (scale - 1) / 2.0
    dst = (dst * size / 112 + margin) * (size / (size + 2 * margin))
    src = landmarks[[37, 44, 30, 49, 55]].astype(np.float32)
    if hasattr(SimilarityTransform, "from_estimate"):  # skimage >= 0.26
        params = SimilarityTransform.from_estimate(src, dst).params
    else:
        tform = SimilarityTransform()
        assert tform.estimate(src, dst)
        params = tform.params
    reference = cv2.warpAffine(photo, params[:2], (size, size))
    rule = CropRule(basis="aligned5", template="deepfakebench", scale=scale, crop_size=size)
    crop, crop_landmarks = rule.cut(photo, landmarks)
    assert rule.pad == "constant"  # warpAffine's default border
    assert np.abs(crop.astype(int) - reference.astype(int)).max() <= 1
    assert np.abs(crop_landmarks[[37, 44, 30, 49, 55]] - apply_affine(params[:2], src)).max() < 1e-3
    faces = [Face(box=(0, 0, 50, 50), score=1.0, landmarks=landmarks * 0.1),
             Face(box=(100, 100, 400, 400), score=1.0, landmarks=landmarks)]
    kept = list(CropRule(basis="aligned5", template="deepfakebench", min_area=1.0).crops(faces, photo))
    assert len(kept) == 1 and kept[0][0] is faces[1] and np.array_equal(kept[0][2], crop)  # the largest face only


def _mesonet_points(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MesoNet's find_coordinates, on face_recognition's landmark groups: eye 1, eye 2, nose
    centre, mouth centre."""
    top_lip = [48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]
    bottom_lip = [54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64]
    nose = np.mean(landmarks[31:36], axis=0) / 2 + np.mean(landmarks[27:31], axis=0) / 2
    mouth = (np.mean(landmarks[top_lip], axis=0) + np.mean(landmarks[bottom_lip], axis=0)) / 2
    return np.mean(landmarks[36:42], axis=0), np.mean(landmarks[42:48], axis=0), nose, mouth


def test_upright_crop_turns_a_tilted_head_upright():
    """MesoNet's crop of a head tilted by 20 degrees is the crop of the upright head: centred at the
    nose, the eyes-to-mouth line vertical, side 2.2 x max(eye distance, eyes-to-mouth) x 1.3."""
    photo, landmarks = _photo()
    h, w = photo.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    tilted = cv2.warpAffine(photo, turn, (w, h))
    tilted_landmarks = landmarks @ turn[:, :2].T + turn[:, 2]
    rule = CropRule(basis="upright", scale=1.3, crop_size=128)
    straight, _ = rule.cut(photo, landmarks)
    turned, _ = rule.cut(tilted, tilted_landmarks)
    assert np.abs(straight.astype(float) - turned.astype(float)).mean() < 6  # bilinear twice vs once
    eye1, eye2, nose, mouth = _mesonet_points(tilted_landmarks)
    matrix = rule.matrix(tilted_landmarks)
    eyes_in, nose_in, mouth_in = apply_affine(matrix, np.stack([(eye1 + eye2) / 2, nose, mouth])).astype(np.float64)
    assert abs(eyes_in[0] - mouth_in[0]) < 1e-3 and mouth_in[1] > eyes_in[1] + 10  # vertical, mouth below
    assert np.abs(nose_in - 64).max() < 1e-3
    side = 2.2 * max(np.linalg.norm(eye1 - eye2), np.linalg.norm(mouth - (eye1 + eye2) / 2)) * 1.3
    assert abs(np.linalg.norm(matrix[:, 0]) - 128 / side) < 1e-9
    assert np.abs(upright_matrix(tilted_landmarks, 1.3, 128) - matrix).max() == 0
    assert rule.pad == "reflect"  # MesoNet pads by reflection (np.pad 'reflect')


def test_turned_crops_carry_landmarks_and_masks_along():
    photo, landmarks = _photo()
    rule = CropRule(basis="aligned5", crop_size=96)
    box = rule.box(landmarks)
    assert len(box) == 6
    _, cut_landmarks = rule.cut(photo, landmarks)
    assert np.abs(landmarks_to_crop(landmarks, box, 96) - cut_landmarks).max() < 1e-3
    assert landmarks_to_crop(None, box, 96).shape == (0, 2)  # a pre-cropped face has none
    mask = np.zeros(photo.shape[:2], np.float32)
    x, y = landmarks[30].astype(int)
    mask[y - 3:y + 4, x - 3:x + 4] = 1.0  # the nose tip
    cropped = crop_mask(mask, box, 96)
    tip = apply_affine(rule.matrix(landmarks), landmarks[30:31])[0]
    assert cropped[int(round(tip[1])), int(round(tip[0]))] > 0.5


def test_the_record_round_trips_and_old_records_keep_their_form():
    old = CropRule.from_dict({"detector": "dlib", "margin": 0.3, "forehead": 0.2, "crop_size": 256})
    assert set(old.to_dict()) == {"detector", "landmark_model", "margin", "forehead", "crop_size", "square", "basis",
                                  "min_area", "pad"}  # no new field written: evaluation ids stay
    assert old.pad == "reflect" and old.cache_key() == "dlib-crop256-m0.3"
    rules = [CropRule(basis="aligned5"), CropRule(basis="aligned5", template="deepfakebench", min_area=1.0),
             CropRule(basis="aligned5", scale=1.5), CropRule(basis="upright"), CropRule(basis="upright", pad="constant"),
             CropRule(detector="none", basis="image", crop_size=128), old, CropRule.for_detector("dlib")]
    for rule in rules:
        assert CropRule.from_dict(rule.to_dict()) == rule
    assert len({r.cache_key() for r in rules}) == len(rules)  # different rules never share crops
    assert CropRule(basis="aligned5").to_dict()["template"] == "arcface"
    assert "template" not in CropRule(basis="upright").to_dict() and CropRule(basis="upright").to_dict()["scale"] == 1.3
    for bad in ({"basis": "aligned5", "template": "nope"}, {"basis": "aligned5", "scale": 0},
                {"basis": "landmarks", "scale": 2.0}, {"basis": "upright", "template": "deepfakebench"},
                {"basis": "sideways"}):
        with pytest.raises(ValueError):
            CropRule.from_dict(bad)
    with pytest.raises(ValueError, match="68 landmarks"):
        CropRule(basis="aligned5").box(np.zeros((5, 2)))


def test_a_detector_of_precropped_faces_takes_the_whole_image():
    precropped = CropRule.for_detector("none", crop_size=128, margin=0.5)
    assert precropped.basis == "image" and precropped.landmark_model.startswith("none") and not precropped.detects_faces
    assert "not detected" in precropped.detection_note() and CropRule().detection_note() is None
    aligned = CropRule(detector="dlib", basis="aligned5", crop_size=200)
    assert aligned.with_detector("none") == CropRule.for_detector("none", crop_size=200)
    assert aligned.with_detector("dlib-cnn") == CropRule(detector="dlib-cnn", basis="aligned5", crop_size=200)
    assert precropped.with_detector("dlib") == CropRule.for_detector("dlib", crop_size=128)  # the harness's own rule
    frame = np.zeros((60, 90, 3), np.uint8)
    frame[:, 45:] = 255
    (face, box, crop), = precropped.crops([Face(box=(0, 0, 90, 60), score=1.0, landmarks=None)], frame)
    assert box == (0.0, 0.0, 90.0, 60.0) and crop.shape == (128, 128, 3)
    assert crop[:, :60].max() == 0 and crop[:, 68:].min() == 255  # stretched whole, not cut


def test_precropped_must_be_a_bool():
    from harness.extend.contracts import check_registration
    from harness.extend.registry import PluginEntry, PluginError

    class Whole:
        def detect(self, frame):
            return []

    entry = PluginEntry(kind="face_detector", name="whole", factory=Whole, description="", plugin="p", package="pkg",
                        version="0", extra={"precropped": "yes"})
    with pytest.raises(PluginError, match="precropped must be True or False"):
        check_registration(entry)
