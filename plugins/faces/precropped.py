"""``--face-detector none``: no detector. Each image (or video frame) is one face, already cropped
(DeepfakeBench's preprocessed frames, the face-crop releases of DFDC and FF++): the crop is the whole
image, resized by the model's own rule (its crop size, then its input size). Nothing is looked for,
so an image that shows no face is still scored as a face; results say that faces were not detected.

A pre-cropped face has no landmarks, and training self-blends faces along their 68 landmarks:
`harness run --face-detector none` is refused before any work. Train with a landmark detector
(`--face-detector dlib` also finds the face inside a crop) and score crops with
`harness evaluate --face-detector none` or `harness predict --face-detector none`.
"""

from __future__ import annotations

import numpy as np

from harness.api import Face, check_frame, hookimpl


class PrecroppedFaces:
    """The whole frame as the one face: box (0, 0, width, height), score 1, no landmarks."""

    name = "none"

    def detect(self, frame: np.ndarray) -> list[Face]:
        h, w = check_frame(frame).shape[:2]
        return [Face(box=(0.0, 0.0, float(w), float(h)), score=1.0, landmarks=None)]


@hookimpl
def register_face_detectors(register):
    register("none", PrecroppedFaces,
             "no detector: each image or video frame is one face, already cropped (face-crop datasets); "
             "gives no landmarks, so it scores models but cannot train them", precropped=True)
