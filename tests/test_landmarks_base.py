"""The core's two-stage detector base: any box finder + 68 landmarks per box, largest face first."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data.faces import FaceFinder
from harness.data.landmarks import LandmarkedDetector, check_frame


class _Squares(LandmarkedDetector):
    """Boxes from a fixed list; 'landmarks' = 68 copies of the box centre."""

    name = "squares"

    def __init__(self, boxes: list[tuple[tuple[float, float, float, float], float]]) -> None:
        self.found = boxes
        self.fitted: list[tuple[float, float, float, float]] = []

    def boxes(self, frame: np.ndarray, upsample: int | None = None):
        return list(self.found)

    def landmarks(self, frame: np.ndarray, box):
        self.fitted.append(box)
        return np.tile([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], (68, 1)).astype(np.float32)


def test_detect_joins_boxes_and_landmarks_largest_first() -> None:
    small, big = ((0.0, 0.0, 10.0, 10.0), 0.9), ((20.0, 20.0, 60.0, 60.0), 0.5)
    detector = _Squares([small, big])
    faces = detector.detect(np.zeros((80, 80, 3), np.uint8))
    assert [f.box for f in faces] == [big[0], small[0]] and [f.score for f in faces] == [0.5, 0.9]
    assert faces[0].landmarks.shape == (68, 2) and tuple(faces[0].landmarks[0]) == (40.0, 40.0)
    assert detector.fitted == [small[0], big[0]]


def test_frames_other_than_rgb_uint8_are_refused() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        _Squares([]).detect(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        check_frame(np.zeros((8, 8, 3), np.float32))
    assert check_frame(np.zeros((8, 8, 3), np.uint8)[:, ::2]).flags.c_contiguous


def test_both_halves_are_required() -> None:
    with pytest.raises(NotImplementedError, match="boxes"):
        LandmarkedDetector().detect(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(NotImplementedError, match="landmarks"):
        LandmarkedDetector().landmarks(np.zeros((8, 8, 3), np.uint8), (0, 0, 1, 1))


def test_the_face_finder_uses_the_two_halves() -> None:
    detector = _Squares([((100.0, 100.0, 200.0, 200.0), 1.0)])
    finder = FaceFinder(detector, fast=True)
    assert finder.fast  # boxes + landmarks: the fast path
    faces = finder.find(np.zeros((360, 640, 3), np.uint8))
    assert faces and faces[0].landmarks.shape == (68, 2)


def test_the_plugins_build_on_the_core_base() -> None:
    from harness_plugins.faces import dlib_faces, retinaface

    for cls in (dlib_faces.DlibFaceDetector, dlib_faces.DlibCnnFaceDetector, dlib_faces.DlibFallbackDetector,
                retinaface.RetinaFaceDetector):
        assert issubclass(cls, LandmarkedDetector)
        assert cls.landmarks is not LandmarkedDetector.landmarks  # each fits dlib's landmarks
    assert dlib_faces.LandmarkedDetector is dlib_faces.DlibLandmarks  # the old name still imports


class _BoxesOnly(LandmarkedDetector):
    """The base's documented signature, ``boxes(frame)``: no upsampling."""

    def boxes(self, frame: np.ndarray):
        return [((100.0, 100.0, 200.0, 200.0), 1.0)]

    def landmarks(self, frame: np.ndarray, box):
        return np.tile([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], (68, 1)).astype(np.float32)


class _SmallFacesOnUpsample(_Squares):
    """Capability ``upsample``: finds its face only when asked to upsample."""

    upsample = 2

    def __init__(self) -> None:
        super().__init__([((100.0, 100.0, 120.0, 120.0), 1.0)])
        self.asked: list[int | None] = []

    def boxes(self, frame: np.ndarray, upsample: int | None = None):
        self.asked.append(upsample)
        return list(self.found) if upsample else []


def test_a_two_stage_detector_without_upsampling_gets_boxes_frame_only() -> None:
    finder = FaceFinder(_BoxesOnly(), fast=True)
    assert finder.fast and finder.upsample == 0
    faces = finder.find(np.zeros((360, 640, 3), np.uint8))  # was: boxes() got an unexpected keyword 'upsample'
    assert [f.box for f in faces] == [(100.0, 100.0, 200.0, 200.0)]


def test_an_upsampling_detector_is_retried_upsampled_where_it_found_nothing() -> None:
    detector = _SmallFacesOnUpsample()
    faces = FaceFinder(detector, fast=True).find(np.zeros((360, 640, 3), np.uint8))
    assert [f.box for f in faces] == [(100.0, 100.0, 120.0, 120.0)]
    assert detector.asked[-1] == 2 and None in detector.asked  # plain passes first, then the upsampled one
