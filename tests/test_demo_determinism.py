"""The demo data is reproducible: identical frames encode to identical bytes, whatever the state of
the process's memory (libx264's default rate control read it and varied from run to run)."""

from __future__ import annotations

import hashlib

import numpy as np

from harness.data import demo
from harness.data.video import write_video


def _frames() -> list[np.ndarray]:
    spec = demo.DemoSpec(train_pairs=1, val_pairs=1, test_pairs=1, frames=6, size=160)
    rng = np.random.default_rng(0)
    photo = demo._Photo()
    ident = demo._identity(rng)
    frame_rng = np.random.default_rng([0, 0])
    frames, lms = zip(*[demo._render(photo, photo.face, ident, t, spec.size, frame_rng) for t in range(spec.frames)])
    other = demo._identity(rng)
    src = [demo._render(photo, photo.face, other, t, spec.size, frame_rng) for t in range(spec.frames)]
    return [demo.face_swap(f, lm, s, slm)[0] for f, lm, (s, slm) in zip(frames, lms, src)]


def test_identical_frames_encode_to_identical_bytes_whatever_the_heap_holds(tmp_path):
    frames = _frames()
    rng = np.random.default_rng(1)
    digests = set()
    for trial in range(6):
        # leave different garbage in freed memory before each encode
        junk = [rng.integers(0, 255, int(rng.integers(1_000, 400_000)), dtype=np.uint8) for _ in range(30)]
        del junk
        path = write_video(tmp_path / f"{trial}.mp4", frames, fps=25, deterministic=True)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_demo_version_names_the_deterministic_encoding():
    assert demo.DEMO_VERSION >= 4  # trees written by the old encoder settings are regenerated
