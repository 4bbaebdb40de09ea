"""Fast face finding over the sampled frames of one video.

Two speed levers on top of any face-detector plugin, both optional and measured in
benchmarks/bench_preprocess.py against the plain full-resolution path:

* scale: search a frame resized so that the detector's face box is about ``target_face`` px
  (HOG's window is 80 px; a 250 px face in a 720p frame costs ~6x fewer pixels at that scale);
* tracking: search only around the faces of the previous sampled frame; every ``refresh``
  frames (and whenever a tracked face is lost) the whole frame is searched again, so a face
  entering the scene is picked up.

Landmarks are always fitted at full resolution on the mapped-back box, so the crop quality is
that of the full-resolution path. A detector that lacks ``boxes``/``landmarks`` methods (see
``DlibFaceDetector``) is used through its plain ``detect``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.extend.contracts import capable
from harness.extend.types import Face

Box = tuple[float, float, float, float]


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


class FaceFinder:
    """Finds all faces (largest first) in successive frames of one video."""

    def __init__(
        self,
        detector: Any,
        fast: bool = True,
        target_face: float = 100.0,
        search_grow: float = 0.4,
        refresh: int = 16,
        first_max_side: int = 640,
    ) -> None:
        self.detector = detector
        self.fast = bool(fast) and capable(detector, "face_detector", "two_stage")
        # a detector that can upsample gets one more full-frame try at it; the others keep boxes(frame)
        self.upsample = int(detector.upsample) if self.fast and capable(detector, "face_detector", "upsample") else 0
        self.target_face = float(target_face)
        self.search_grow = float(search_grow)
        self.refresh = max(1, int(refresh))
        self.first_max_side = int(first_max_side)
        self.reset()

    def reset(self) -> None:
        """Forget the tracked faces (call between videos)."""
        self._previous: list[Box] = []
        self._since_full = 0

    # -- one search --------------------------------------------------------------------------
    def _search(self, frame: np.ndarray, region: Box | None, scale: float, upsample: int = 0) -> list[tuple[Box, float]]:
        import cv2

        h, w = frame.shape[:2]
        if region is None:
            x0, y0, x1, y1 = 0, 0, w, h
        else:
            x0, y0 = max(0, int(region[0])), max(0, int(region[1]))
            x1, y1 = min(w, int(np.ceil(region[2]))), min(h, int(np.ceil(region[3])))
            if x1 - x0 < 16 or y1 - y0 < 16:
                return []
        patch = frame[y0:y1, x0:x1]
        if abs(scale - 1.0) > 1e-3:
            size = (max(1, int(round((x1 - x0) * scale))), max(1, int(round((y1 - y0) * scale))))
            # halve with pyrDown (cheap, anti-aliased) then finish bilinearly: ~10x faster than
            # INTER_AREA and the box is only a seed for full-resolution landmarks anyway
            while patch.shape[1] >= 2 * size[0] and patch.shape[0] >= 2 * size[1]:
                patch = cv2.pyrDown(patch)
            patch = cv2.resize(patch, size, interpolation=cv2.INTER_LINEAR)
            sx, sy = (x1 - x0) / size[0], (y1 - y0) / size[1]
        else:
            sx = sy = 1.0
        patch = np.ascontiguousarray(patch)
        found = self.detector.boxes(patch, upsample=upsample) if upsample else self.detector.boxes(patch)
        return [((b[0] * sx + x0, b[1] * sy + y0, b[2] * sx + x0, b[3] * sy + y0), s) for b, s in found]

    def _scale_for(self, boxes: list[Box]) -> float:
        side = min(np.sqrt(_area(b)) for b in boxes)
        return float(np.clip(self.target_face / max(side, 1.0), 0.1, 2.0))

    def _full_frame(self, frame: np.ndarray) -> list[tuple[Box, float]]:
        if self._previous:
            # never upscale a whole frame: small faces are still tracked in their own regions
            found = self._search(frame, None, min(1.0, self._scale_for(self._previous)))
            if found:
                return found
            self._previous = []
        # No idea of the face size yet: coarse pass first (finds faces >= ~160 px in 720p),
        # then full resolution, then the detector's own upsampling for small faces.
        h, w = frame.shape[:2]
        coarse = min(1.0, self.first_max_side / max(h, w))
        if coarse < 0.99:
            found = self._search(frame, None, coarse)
            if found:
                return found
        found = self._search(frame, None, 1.0)
        if not found and self.upsample > 0:
            found = self._search(frame, None, 1.0, upsample=self.upsample)
        return found

    def _tracked(self, frame: np.ndarray) -> list[tuple[Box, float]] | None:
        """Search around each previous face; None when one of them is lost."""
        results: list[tuple[Box, float]] = []
        for box in self._previous:
            bw, bh = box[2] - box[0], box[3] - box[1]
            g = self.search_grow
            region = (box[0] - g * bw, box[1] - g * bh, box[2] + g * bw, box[3] + g * bh)
            found = self._search(frame, region, self._scale_for([box]))
            if not found:
                return None
            best = max(found, key=lambda f: _iou(f[0], box) + 1e-3 * f[1])
            results.append(best)
        return results

    # -- public ------------------------------------------------------------------------------
    def find(self, frame: np.ndarray) -> list[Face]:
        """All faces of ``frame`` (RGB uint8), largest first, with 68 landmarks at full resolution."""
        if not self.fast:
            faces = list(self.detector.detect(frame))
            faces.sort(key=lambda f: _area(f.box), reverse=True)
            return faces
        frame = np.ascontiguousarray(frame)
        found = None
        if self._previous and self._since_full < self.refresh:
            found = self._tracked(frame)
            self._since_full += 1
        if found is None:
            found = self._full_frame(frame)
            self._since_full = 1
        found = _dedupe(found)
        self._previous = [b for b, _ in found]
        faces = [Face(box=b, score=s, landmarks=self.detector.landmarks(frame, b)) for b, s in found]
        faces.sort(key=lambda f: _area(f.box), reverse=True)
        return faces


def _dedupe(found: list[tuple[Box, float]], iou: float = 0.5) -> list[tuple[Box, float]]:
    keep: list[tuple[Box, float]] = []
    for box, score in sorted(found, key=lambda f: -f[1]):
        if all(_iou(box, k[0]) < iou for k in keep):
            keep.append((box, score))
    return keep
