"""RetinaFace (retinaface-pytorch, ResNet-50) boxes + dlib's 68-point landmarks on each box.

Needs ``pip install --no-deps retinaface-pytorch`` (it pins torch==1.9.0, hence --no-deps) and
its weights in the torch hub cache:
``$TORCH_HOME/hub/checkpoints/retinaface_resnet50_2020-07-20-f168fae3c.zip`` (or
``$HARNESS_RETINAFACE_WEIGHTS``). Nothing is downloaded at run time: a missing package or file
raises an error that says what to install or where to put the file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.api import HarnessError, LandmarkedDetector, hookimpl

WEIGHTS_FILE = "retinaface_resnet50_2020-07-20-f168fae3c.zip"
WEIGHTS_URL = "https://github.com/ternaus/retinaface/releases/download/0.01/" + WEIGHTS_FILE


class RetinaFaceUnavailable(HarnessError, RuntimeError):
    """The package or the weights are missing; the message says how to fix it."""


def weights_path() -> Path:
    """Where the weights must be: $HARNESS_RETINAFACE_WEIGHTS, else the torch hub cache."""
    env = os.environ.get("HARNESS_RETINAFACE_WEIGHTS")
    if env:
        return Path(env).expanduser()
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        base = Path(torch_home).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "torch"
    return base / "hub" / "checkpoints" / WEIGHTS_FILE


def load_state_dict(path: Path) -> dict[str, Any]:
    """The state dict inside the hub zip (one .pth member), loaded on CPU with weights_only."""
    if not path.is_file():
        raise RetinaFaceUnavailable(
            f"RetinaFace weights not found at {path}. Download {WEIGHTS_URL} on a machine with internet and put "
            f"it there (or set HARNESS_RETINAFACE_WEIGHTS=FILE); no download is attempted at run time."
        )
    import torch

    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.endswith((".pth", ".pt")) and not m.endswith("/")]
            if len(members) != 1:
                raise RetinaFaceUnavailable(
                    f"{path}: expected exactly one .pth file inside, found {members or 'none'}; re-download {WEIGHTS_URL}"
                )
            with archive.open(members[0]) as fh:
                import io

                state = torch.load(io.BytesIO(fh.read()), map_location="cpu", weights_only=True)
    except zipfile.BadZipFile as exc:
        raise RetinaFaceUnavailable(f"{path} is not a valid zip ({exc}); re-download {WEIGHTS_URL}") from exc
    if not isinstance(state, dict):
        raise RetinaFaceUnavailable(f"{path}: the file inside is not a state dict; re-download {WEIGHTS_URL}")
    return state


def _import_model_class() -> Any:
    try:
        from retinaface.predict_single import Model  # type: ignore[import-not-found]
    except ImportError as exc:
        raise RetinaFaceUnavailable(
            "the RetinaFace detector needs the package retinaface-pytorch: "
            "`pip install --no-deps retinaface-pytorch` (--no-deps: it pins an old torch). "
            f"Import failed: {exc}. Or use --face-detector dlib."
        ) from exc
    return Model


class RetinaFaceDetector(LandmarkedDetector):
    """RetinaFace boxes, dlib 68 landmarks fitted on each box."""

    name = "retinaface"

    def __init__(self, device: str = "cpu", max_size: int = 1024, confidence: float = 0.7, nms: float = 0.4,
                 weights: str | Path | None = None) -> None:
        path = Path(weights).expanduser() if weights else weights_path()
        state = load_state_dict(path)  # check the weights first: cheaper than importing torch models
        model_cls = _import_model_class()
        self.model = model_cls(max_size=int(max_size), device=device)
        self.model.load_state_dict(state)
        self.model.eval()
        self.confidence, self.nms = float(confidence), float(nms)

    def boxes(self, frame: np.ndarray, upsample: int | None = None) -> list[tuple[tuple[float, float, float, float], float]]:
        import torch

        with torch.inference_mode():
            found = self.model.predict_jsons(np.ascontiguousarray(frame), confidence_threshold=self.confidence,
                                             nms_threshold=self.nms)
        out = []
        for item in found:
            box = item.get("bbox") or []
            if len(box) == 4 and item.get("score", -1) >= 0:
                out.append((tuple(float(v) for v in box), float(item["score"])))
        return out

    def landmarks(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """dlib's 68 landmarks fitted on a RetinaFace box (the dlib plugin's shape predictor)."""
        from harness_plugins.faces.dlib_faces import landmarks_for_box

        return landmarks_for_box(frame, box)


@hookimpl
def register_face_detectors(register):
    register("retinaface", RetinaFaceDetector,
             "RetinaFace ResNet-50 boxes (retinaface-pytorch, local weights) + dlib 68 landmarks",
             landmark_model="dlib shape_predictor_68_face_landmarks (on RetinaFace boxes)")
