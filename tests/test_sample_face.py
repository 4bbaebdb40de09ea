"""The sample face ships its 68 landmarks as data; dlib still finds the same points on the photo."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.data.sample_face import LANDMARKS_PATH, astronaut_face, astronaut_landmarks, crop_face


def test_stored_landmarks_match_what_dlib_finds() -> None:
    """The test (not the core) may use the plugin: it is how the data file was made."""
    from skimage import data

    from harness_plugins.faces.dlib_faces import DlibFaceDetector

    faces = DlibFaceDetector(upsample=0).detect(np.ascontiguousarray(data.astronaut()))
    found = max(faces, key=lambda f: f.score)
    np.testing.assert_array_equal(found.landmarks, astronaut_landmarks())
    assert list(found.box) == json.loads(LANDMARKS_PATH.read_text(encoding="utf-8"))["box"]


def test_the_face_is_cropped_from_the_stored_landmarks(tmp_path) -> None:
    from skimage import data

    face, lm = astronaut_face(128)
    expected, expected_lm = crop_face(np.ascontiguousarray(data.astronaut()), astronaut_landmarks(), 128, 0.25)
    assert np.array_equal(face, expected) and np.array_equal(lm, expected_lm)
    assert not face.flags.writeable and not lm.flags.writeable
    # Moving the stored points moves the crop: the data file is what astronaut_face reads.
    stored = json.loads(LANDMARKS_PATH.read_text(encoding="utf-8"))
    stored["landmarks"] = [[x + 10, y] for x, y in stored["landmarks"]]
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(stored))
    assert np.array_equal(astronaut_landmarks(moved)[:, 0], astronaut_landmarks()[:, 0] + 10)


def test_a_broken_landmarks_file_is_refused(tmp_path) -> None:
    bad = tmp_path / "lm.json"
    bad.write_text(json.dumps({"landmarks": [[1, 2]] * 5}))
    with pytest.raises(ValueError, match="expected 68"):
        astronaut_landmarks(bad)
