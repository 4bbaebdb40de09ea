"""A minimal third-party harness plugin: one blender and one subcommand.

Install it (`pip install ./examples/harness-example-blender`) and `harness plugins` lists
`blur_ellipse`; `harness run --data demo --blender blur_ellipse` trains with it.
"""

from __future__ import annotations

import cv2
import numpy as np

from harness.api import BlendResult, hookimpl  # harness.api: the one module a plugin imports


class BlurEllipseBlender:
    """Blend a blurred, colour-shifted copy of the face inside an ellipse fitted to the landmarks."""

    def __init__(self, max_sigma: float = 2.5, max_shift: int = 20) -> None:
        self.max_sigma = max_sigma
        self.max_shift = max_shift

    def __call__(self, face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> BlendResult:
        if face.dtype != np.uint8 or face.ndim != 3:
            raise ValueError(f"blur_ellipse needs an RGB uint8 face, got {face.dtype} {face.shape}")
        sigma = float(rng.uniform(0.8, self.max_sigma))
        shift = rng.integers(-self.max_shift, self.max_shift + 1, size=3)
        source = cv2.GaussianBlur(face, (0, 0), sigma).astype(np.int16) + shift
        source = np.clip(source, 0, 255).astype(np.uint8)
        mask = np.zeros(face.shape[:2], np.float32)
        center = landmarks.mean(0)
        axes = (landmarks.max(0) - landmarks.min(0)) * 0.45
        cv2.ellipse(mask, (int(center[0]), int(center[1])), (max(1, int(axes[0])), max(1, int(axes[1]))), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 3)
        fake = source * mask[..., None] + face * (1 - mask[..., None])
        return BlendResult(fake.astype(np.uint8), mask, {"blender": "blur_ellipse", "sigma": sigma, "shift": shift.tolist()})


@hookimpl
def register_blenders(register):
    register("blur_ellipse", BlurEllipseBlender, "Example plugin: blurred, colour-shifted ellipse over the face")


@hookimpl
def register_commands(app):
    @app.command("example-hello")
    def hello() -> None:
        """Say hello from the example plugin (shows how a plugin adds a subcommand)."""
        print("hello from harness-example-blender")
