"""The embedded demo dataset: a tiny FaceForensics++ look-alike generated from one public-domain photo.

It is laid out exactly like FF++ (``original_sequences/youtube/c23/videos``,
``manipulated_sequences/<Method>/c23/videos``, ``.../masks/videos``, ``{train,val,test}.json``) so
the demo runs the real FF++ code path. Each "identity" is the astronaut photo under its own colour
grade, scale, mirror and motion. Its fakes come from manipulations the training blenders do not
do, each with its pixel mask:

- ``Deepfakes``: Poisson (seamless-clone) face swap of the inner face from a recoloured, warped copy
  of another identity;
- ``Face2Face``: an expression warp (mouth opened and widened) by piecewise-affine landmark motion.

Deterministic from a seed. Demo numbers are a smoke test of the loop, never a benchmark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from harness.common import faults
from harness.extend.defaults import defaults
from harness.common.files import cache_home  # noqa: F401 - also imported from here by older code
from harness.common.kernels import DEMO_THREADS

# bump when the generator changes: the cache folder is keyed by it. 5: OpenCV's baseline code (the
# same bytes on every CPU, harness/common/kernels.py)
DEMO_VERSION = 5
NOT_A_BENCHMARK = "demo data: a smoke test of the pipeline, not a benchmark"
METHODS = ("Deepfakes", "Face2Face")
#: what each method is, in words (the README's quoted numbers name them so)
METHOD_TEXT = {"Deepfakes": "the face swap", "Face2Face": "the expression warp"}
#: the dataset plugin whose layout the demo tree copies (it reads the demo like the real thing)
DATASET = defaults().demo_dataset


@dataclass(frozen=True)
class DemoSpec:
    """How big the demo is. The defaults keep `make demo` within a few CPU minutes."""

    train_pairs: int = 4
    val_pairs: int = 1
    test_pairs: int = 4
    frames: int = 12
    size: int = 224
    seed: int = 0

    @property
    def n_ids(self) -> int:
        return 2 * (self.train_pairs + self.val_pairs + self.test_pairs)


#: The demo sizes a run asks for by name (RunConfig.demo_scale, --demo-scale): its config records the
#: name, so the config reruns the same demo. "tiny" keeps tests within seconds.
SCALES: dict[str, DemoSpec] = {
    "default": DemoSpec(),
    "tiny": DemoSpec(train_pairs=2, val_pairs=1, test_pairs=2, frames=6, size=160),
}


#: torch threads a demo of each scale trains on, whatever the machine has (harness/common/kernels.py):
#: the thread count is part of its numbers. The default demo is sized for 2 cores; the tiny one is
#: the test suite's, whose two workers would otherwise ask 2 cores for 4 threads.
TRAIN_THREADS: dict[str, int] = {"default": DEMO_THREADS, "tiny": 1}


def spec_for(scale: str) -> DemoSpec:
    """The demo tree of the size named ``scale`` (one of SCALES; the config check refuses others)."""
    return SCALES[scale]


def demo_root(spec: DemoSpec = DemoSpec(), home: Path | None = None) -> Path:
    """Where the demo tree of ``spec`` lives under the cache home (``home``, else ``cache_home()``)."""
    key = f"v{DEMO_VERSION}-n{spec.n_ids}-f{spec.frames}-s{spec.size}-seed{spec.seed}"
    return Path(home if home is not None else cache_home()).expanduser() / "demo" / key


# ---------------------------------------------------------------------------------------------
# Rendering one identity's frames
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Identity:
    hue: float  # degrees on OpenCV's 0-180 scale
    saturation: float
    brightness: float
    scale: float
    mirror: bool
    background: tuple[int, int, int]
    drift: tuple[float, float]  # pixels per frame
    phase: float


def _identity(rng: np.random.Generator) -> _Identity:
    return _Identity(
        hue=float(rng.uniform(-12, 12)),
        saturation=float(rng.uniform(0.7, 1.3)),
        brightness=float(rng.uniform(-25, 25)),
        scale=float(rng.uniform(0.95, 1.15)),
        mirror=bool(rng.integers(2)),
        background=tuple(int(v) for v in rng.integers(40, 215, size=3)),
        drift=(float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.6, 0.6))),
        phase=float(rng.uniform(0, 2 * np.pi)),
    )


def _grade(image: np.ndarray, ident: _Identity) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + ident.hue) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * ident.saturation, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + ident.brightness, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


class _Photo:
    """The astronaut face cut out with its landmarks, on a neutral canvas."""

    def __init__(self) -> None:
        from harness.data.sample_face import astronaut_face

        face, landmarks = astronaut_face(256, margin=0.45)
        self.face = np.array(face)
        self.landmarks = np.array(landmarks)
        hull = cv2.convexHull(self.landmarks.astype(np.int32))
        # A soft matte around the head keeps the identity's background colour visible.
        matte = np.zeros(face.shape[:2], np.float32)
        center = self.landmarks.mean(0)
        axes = (self.landmarks.max(0) - self.landmarks.min(0)) * np.array([0.85, 1.05])
        cv2.ellipse(matte, (int(center[0]), int(center[1] - 0.12 * axes[1])), (int(axes[0]), int(axes[1])), 0, 0, 360, 1.0, -1)
        cv2.fillConvexPoly(matte, hull, 1.0)
        self.matte = cv2.GaussianBlur(matte, (0, 0), 6)[..., None]


def _frame_transform(ident: _Identity, t: int, size: int) -> np.ndarray:
    """2x3 affine from the 256 px photo to frame ``t`` of this identity."""
    scale = ident.scale * size / 256 * (1 + 0.02 * np.sin(0.4 * t + ident.phase))
    angle = 4.0 * np.sin(0.3 * t + ident.phase)
    matrix = cv2.getRotationMatrix2D((128, 128), angle, scale)
    matrix[:, 2] += (size / 2 - 128) + np.array(ident.drift) * (t - 6)
    if ident.mirror:
        flip = np.array([[-1, 0, size], [0, 1, 0], [0, 0, 1]], np.float64)
        matrix = (flip @ np.vstack([matrix, [0, 0, 1]]))[:2]
    return matrix


def _render(photo: _Photo, face: np.ndarray, ident: _Identity, t: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One frame of an identity and its landmarks (frame pixels)."""
    matrix = _frame_transform(ident, t, size)
    graded = _grade(face, ident).astype(np.float32)
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = ident.background
    warped = cv2.warpAffine(graded, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    matte = cv2.warpAffine(photo.matte, matrix, (size, size), flags=cv2.INTER_LINEAR)[..., None]
    frame = warped * matte + canvas * (1 - matte)
    frame += rng.normal(0, 2.0, frame.shape)  # sensor noise so frames are not identical
    landmarks = photo.landmarks @ matrix[:, :2].T + matrix[:, 2]
    return np.clip(frame, 0, 255).astype(np.uint8), landmarks.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The two manipulations
# ---------------------------------------------------------------------------------------------
_INNER = list(range(0, 17)) + list(range(26, 16, -1))  # jaw then brows: the face outline


def _face_hull_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(landmarks[_INNER].astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    return cv2.erode(mask, np.ones((5, 5), np.uint8))


def face_swap(target: np.ndarray, target_lm: np.ndarray, source: np.ndarray, source_lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson-blend the source's inner face onto the target (aligned by landmarks). Returns fake, mask."""
    matrix, _ = cv2.estimateAffinePartial2D(source_lm, target_lm)
    # The "generator": the source face a little wider and smoother, as autoencoder swaps look.
    center_pt = target_lm.mean(0)
    widen = np.array([[1.06, 0, -0.06 * center_pt[0]], [0, 0.98, 0.02 * center_pt[1]], [0, 0, 1]])
    matrix = (widen @ np.vstack([matrix, [0, 0, 1]]))[:2]
    size = target.shape[1], target.shape[0]
    aligned = cv2.warpAffine(source, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    aligned = cv2.GaussianBlur(aligned, (0, 0), 1.2)
    mask = _face_hull_mask(target_lm, target.shape[:2])
    ys, xs = np.nonzero(mask)
    center = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    fake = cv2.seamlessClone(aligned, target, mask.copy(), center, cv2.NORMAL_CLONE)
    return fake, mask


def expression_warp(frame: np.ndarray, landmarks: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Open and widen the mouth by piecewise-affine motion of the landmarks. Returns fake, mask."""
    face_h = float(landmarks[:, 1].max() - landmarks[:, 1].min())
    moved = landmarks.copy()
    mouth_center = landmarks[48:68].mean(0)
    lower = [55, 56, 57, 58, 59, 65, 66, 67] + [7, 8, 9]
    moved[lower, 1] += strength * 0.07 * face_h * np.where(np.isin(lower, [7, 8, 9]), 0.4, 1.0)
    for corner, sign in ((48, -1), (54, 1), (60, -1), (64, 1)):
        moved[corner, 0] += sign * strength * 0.04 * face_h
    moved[48:68, 1] += (moved[48:68, 1] - mouth_center[1]) * 0.15 * strength
    h, w = frame.shape[:2]
    border = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [w // 2, 0], [w // 2, h - 1], [0, h // 2], [w - 1, h // 2]], np.float32)
    src = np.vstack([landmarks, border])
    dst = np.vstack([moved, border])
    subdiv = cv2.Subdiv2D((0, 0, w, h))
    for x, y in dst:
        subdiv.insert((float(np.clip(x, 0, w - 1)), float(np.clip(y, 0, h - 1))))
    out = frame.copy()
    changed = np.zeros((h, w), np.uint8)
    for tri in subdiv.getTriangleList().reshape(-1, 3, 2):
        idx = [int(np.argmin(((dst - p) ** 2).sum(1))) for p in tri]
        if np.allclose(src[idx], dst[idx]):
            continue  # untouched triangle
        affine = cv2.getAffineTransform(src[idx].astype(np.float32), dst[idx].astype(np.float32))
        tri_mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(tri_mask, dst[idx].astype(np.int32), 1)
        warped = cv2.warpAffine(frame, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out[tri_mask > 0] = warped[tri_mask > 0]
        changed |= tri_mask
    diff = (np.abs(out.astype(np.int16) - frame.astype(np.int16)).max(-1) > 12).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    # Every visibly changed pixel is in the mask (closed into regions, grown by 2 px).
    mask = cv2.dilate(cv2.morphologyEx(diff, cv2.MORPH_CLOSE, kernel), np.ones((5, 5), np.uint8)) & changed
    return out, (mask * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Writing the FF++-shaped tree
# ---------------------------------------------------------------------------------------------
def _pairs(spec: DemoSpec) -> dict[str, list[list[str]]]:
    ids = [f"{i:03d}" for i in range(spec.n_ids)]
    pairs = [[ids[2 * i], ids[2 * i + 1]] for i in range(spec.n_ids // 2)]
    a, b = spec.train_pairs, spec.train_pairs + spec.val_pairs
    return {"train": pairs[:a], "val": pairs[a:b], "test": pairs[b:]}


def ensure_demo(spec: DemoSpec = DemoSpec(), root: Path | None = None, progress: bool = True) -> Path:
    """Generate the demo tree once (idempotent: a finished tree is reused) and return its root."""
    root = Path(root) if root is not None else demo_root(spec)
    done = root / ".complete"
    if done.is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    _write_tree(spec, root, progress)
    for split, pairs in _pairs(spec).items():
        (root / f"{split}.json").write_text(json.dumps(pairs))
    (root / "README.txt").write_text(
        f"{NOT_A_BENCHMARK}.\nGenerated by harness.data.demo (version {DEMO_VERSION}) from skimage.data.astronaut().\n"
    )
    done.write_text(json.dumps({"version": DEMO_VERSION, "spec": spec.__dict__}))
    return root


def dataset_options(root: Path) -> dict[str, dict[str, Any]]:
    """The options that point dataset plugin ``DATASET`` at a demo tree: per dataset name, as
    ``RunConfig.dataset_options`` holds them (the demo has two methods and none of FF++'s counts)."""
    return {DATASET: {"root": root, "check_counts": False, "methods": list(METHODS)}}


Frames = tuple[list[np.ndarray], list[np.ndarray]]  # one identity's frames and their landmarks


def _write_tree(spec: DemoSpec, root: Path, progress: bool) -> None:
    """Every real video, then every fake of every pair and method with its mask video, computed by
    OpenCV's baseline code: its dispatched SIMD paths round warps and blurs differently per CPU."""
    from harness.common.kernels import opencv_baseline

    with opencv_baseline():
        _write_videos(spec, root, progress)


def _write_videos(spec: DemoSpec, root: Path, progress: bool) -> None:
    from harness.data.video import write_video
    from harness.common.ui import progress as progress_bar

    rng = np.random.default_rng(spec.seed)
    photo = _Photo()
    identities = [_identity(rng) for _ in range(spec.n_ids)]
    splits = _pairs(spec)
    all_pairs = [pair for split in ("train", "val", "test") for pair in splits[split]]
    real_dir = root / "original_sequences" / "youtube" / "c23" / "videos"
    real_dir.mkdir(parents=True, exist_ok=True)
    with progress_bar(transient=True, disable=not progress) as bar:  # the shared stderr bar
        task = bar.add_task("generating demo dataset", total=spec.n_ids + 2 * len(METHODS) * len(all_pairs), info="")
        rendered: dict[int, Frames] = {}  # fakes are made for every pair, as in FF++
        for index in range(spec.n_ids):
            frame_rng = np.random.default_rng([spec.seed, index])
            frames = [_render(photo, photo.face, identities[index], t, spec.size, frame_rng) for t in range(spec.frames)]
            rendered[index] = ([f for f, _ in frames], [lm for _, lm in frames])
            write_video(real_dir / f"{index:03d}.mp4", rendered[index][0], fps=25, deterministic=True)
            faults.point("demo.video")
            bar.advance(task)
        for method in METHODS:
            for target, source in ((a, b) for pair in all_pairs for a, b in (pair, pair[::-1])):
                _write_fake(root, method, target, source, rendered, spec.frames)
                bar.advance(task)


def _write_fake(root: Path, method: str, target: str, source: str, rendered: dict[int, Frames], n_frames: int) -> None:
    """The fake of ``target`` made with ``source`` by ``method``, and its mask video."""
    from harness.data.video import write_video

    video_dir = root / "manipulated_sequences" / method / "c23" / "videos"
    mask_dir = root / "manipulated_sequences" / method / "masks" / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    (t_frames, t_lms), (s_frames, s_lms) = rendered[int(target)], rendered[int(source)]
    fakes, masks = [], []
    for t in range(n_frames):
        if method == "Deepfakes":
            fake, mask = face_swap(t_frames[t], t_lms[t], s_frames[t], s_lms[t])
        else:
            fake, mask = expression_warp(t_frames[t], t_lms[t], 0.9 + 0.3 * np.sin(0.5 * t))
        fakes.append(fake)
        masks.append(np.repeat(mask[..., None], 3, axis=2))
    write_video(video_dir / f"{target}_{source}.mp4", fakes, fps=25, deterministic=True)
    write_video(mask_dir / f"{target}_{source}.mp4", masks, fps=25, deterministic=True)
