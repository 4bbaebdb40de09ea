"""Similarity transforms that turn a face upright, for the crop rule's turned bases (see
``harness.data.crop``): five landmarks onto a template (``aligned5``: ArcFace's template, as
DeepfakeBench aligns) and MesoNet's nose-centred crop (``upright``). Each gives the 2x3 affine
frame -> crop; a crop's place in the frame is recorded as its corners (``crop_corners``), which
``corners_matrix`` reads back."""

from __future__ import annotations

import math

import numpy as np

#: ArcFace's five-point template (insightface's 112 x 112 ``arcface_dst``: the 96-wide template
#: shifted by 8 px): eye, eye, nose tip, mouth corner, mouth corner, in image order (left first)
TEMPLATE_SIZE = 112.0
ARCFACE_112 = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041))
#: five-point templates: the 68 landmarks (dlib order, 0-based) averaged into each of the five
#: points, and where the points go in a 112 px crop
TEMPLATES: dict[str, tuple[tuple[tuple[int, ...], ...], tuple[tuple[float, float], ...]]] = {
    # eye centres, nose tip, mouth corners: the points ArcFace's template marks
    "arcface": ((tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,)), ARCFACE_112),
    # DeepfakeBench's preprocessing/preprocess.py (get_keypts): dlib parts 37, 44, 30, 49 and 55
    "deepfakebench": (((37,), (44,), (30,), (49,), (55,)), ARCFACE_112),
}
DEFAULT_TEMPLATE = "arcface"
#: DeepfakeBench's and MesoNet's zoom out of the face (``scale``)
DEFAULT_SCALE = 1.3
#: MesoNet's K: the crop side is K x max(eye distance, eyes-to-mouth distance), before ``scale``
MESONET_K = 2.2
#: face_recognition's lips (the points MesoNet averages into the mouth), dlib order
_TOP_LIP = (48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60)
_BOTTOM_LIP = (54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64)


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift; no reflection) that maps the points
    ``source`` onto ``target`` with the least squared error: Umeyama's closed form (IEEE TPAMI 1991),
    which skimage's ``SimilarityTransform.estimate`` (DeepfakeBench's alignment) computes."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    variance = float((src_c ** 2).sum(1).mean())
    if variance <= 0.0:
        raise ValueError("similarity: the source points coincide; no transform is defined")
    u, singular, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection fits better: take the best rotation
        sign[1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = float(singular @ sign) / variance
    linear = scale * rotation
    return np.hstack([linear, (dst_mean - linear @ src_mean)[:, None]])


def _face_points(landmarks: np.ndarray, basis: str) -> np.ndarray:
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 2 or lm.shape != (68, 2):
        raise ValueError(f"crop basis {basis!r} needs 68 landmarks (dlib order), got an array of shape {lm.shape}")
    return lm


def template_points(template: str, scale: float, size: int) -> np.ndarray:
    """Where ``template``'s five points go in a ``size`` px crop zoomed out by ``scale`` about its
    centre (DeepfakeBench's img_align_crop: its margin (scale - 1) / 2 on each side, then the resize)."""
    points = np.asarray(TEMPLATES[template][1], np.float64) * (size / TEMPLATE_SIZE)
    return size / 2.0 + (points - size / 2.0) / scale


def aligned_matrix(landmarks: np.ndarray, template: str, scale: float, size: int) -> np.ndarray:
    """2x3 frame -> crop of basis ``aligned5``: the similarity that best maps ``template``'s five
    points of the 68 ``landmarks`` onto ``template_points``."""
    lm = _face_points(landmarks, "aligned5")
    source = np.stack([lm[list(group)].mean(0) for group in TEMPLATES[template][0]])
    return similarity(source, template_points(template, scale, size))


def upright_matrix(landmarks: np.ndarray, scale: float, size: int) -> np.ndarray:
    """2x3 frame -> crop of basis ``upright`` (MesoNet's pipeline.py, find_coordinates and
    get_aligned_face): centre C = the mean of the nose tip and nose bridge means; side MESONET_K x
    max(|eye1 - eye2|, |mouth - eyes|) x ``scale``; turned by MesoNet's angle arctan(dx / dy) of the
    eyes -> mouth line, so that the line is vertical in the crop."""
    lm = _face_points(landmarks, "upright")
    eye1, eye2 = lm[36:42].mean(0), lm[42:48].mean(0)
    eyes = (eye1 + eye2) / 2.0
    centre = lm[31:36].mean(0) / 2.0 + lm[27:31].mean(0) / 2.0
    mouth = (lm[list(_TOP_LIP)].mean(0) + lm[list(_BOTTOM_LIP)].mean(0)) / 2.0
    side = MESONET_K * max(float(np.linalg.norm(eye1 - eye2)), float(np.linalg.norm(mouth - eyes))) * scale
    dx, dy = mouth - eyes
    angle = math.atan(dx / dy) if dy != 0 else math.copysign(math.pi / 2.0, dx)  # MesoNet: +-90 degrees when level
    cos, sin = math.cos(angle), math.sin(angle)
    linear = (size / side) * np.array([[cos, -sin], [sin, cos]])
    return np.hstack([linear, (size / 2.0 - linear @ centre)[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points mapped by a 2x3 affine, float32."""
    pts = np.asarray(points, np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def crop_corners(matrix: np.ndarray, size: int) -> tuple[float, ...]:
    """The frame positions of the top-left, top-right and bottom-left corners of the ``size`` px crop
    that ``matrix`` (frame -> crop) cuts: six numbers, what the cache and predict record."""
    inverse = np.linalg.inv(np.vstack([matrix[:2], [0.0, 0.0, 1.0]]))[:2]
    corners = inverse[:, :2] @ np.array([[0.0, size, 0.0], [0.0, 0.0, size]]) + inverse[:, 2:]  # one per column
    return tuple(float(v) for v in corners.T.ravel())


def corners_matrix(corners: tuple[float, ...], size: int) -> np.ndarray:
    """2x3 frame -> crop of a ``size`` px crop whose corners (``crop_corners``) lie at ``corners``."""
    top_left, top_right, bottom_left = np.asarray(corners, np.float64).reshape(3, 2)
    axes = np.column_stack([top_right - top_left, bottom_left - top_left]) / size  # frame px per crop px
    linear = np.linalg.inv(axes)
    return np.hstack([linear, (-linear @ top_left)[:, None]])
