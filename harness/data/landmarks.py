"""The two-stage face detector the core understands: boxes from any box finder, then 68 landmarks
fitted on each box.

``FaceFinder`` (``harness.data.faces``) drives a detector through these two halves, so it can
search a downscaled frame or a small region and still fit landmarks at full resolution. A plugin
subclasses ``LandmarkedDetector`` and supplies ``boxes`` (HOG, a CNN, RetinaFace, ...) and
``landmarks`` (e.g. dlib's shape predictor, in the dlib plugin); ``detect`` joins them.
"""

from __future__ import annotations

import numpy as np

from harness.extend.types import Face

Box = tuple[float, float, float, float]


def check_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` as a contiguous array; anything but an RGB uint8 (H, W, 3) frame is refused."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
    return np.ascontiguousarray(frame)


def box_area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


class LandmarkedDetector:
    """A face detector in two halves: ``boxes`` finds faces, ``landmarks`` fits 68 points in one
    box; ``detect`` = boxes + landmarks, largest face first. Subclasses supply both halves."""

    name = "landmarked"

    def boxes(self, frame: np.ndarray) -> list[tuple[Box, float]]:
        """Face boxes ``[(box, score), ...]`` in frame pixels, no landmarks."""
        raise NotImplementedError(f"{type(self).__name__} must find boxes")

    def landmarks(self, frame: np.ndarray, box: Box) -> np.ndarray:
        """68 (x, y) landmarks (float32, frame pixels, dlib's order) inside ``box``."""
        raise NotImplementedError(f"{type(self).__name__} must fit landmarks")

    def detect(self, frame: np.ndarray) -> list[Face]:
        frame = check_frame(frame)
        faces = [Face(box=b, score=s, landmarks=self.landmarks(frame, b)) for b, s in self.boxes(frame)]
        faces.sort(key=lambda f: box_area(f.box), reverse=True)
        return faces
