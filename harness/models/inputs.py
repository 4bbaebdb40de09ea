"""Input normalisation shared by training, evaluation and prediction (ImageNet statistics)."""

from __future__ import annotations

import numpy as np
import torch

MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_MEAN_255 = torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0
_STD_255 = torch.tensor(STD).view(1, 3, 1, 1) * 255.0


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """A uint8 RGB batch (N, H, W, 3) -> normalised float32 NCHW tensor (no copy through lists)."""
    if not isinstance(batch, np.ndarray) or batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
        got = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
        raise ValueError(
            f"to_tensor expects a uint8 RGB batch shaped (N, H, W, 3), got {got}; "
            "stack frames with np.stack and add a batch axis for a single image (img[None])"
        )
    array = np.ascontiguousarray(batch)
    if not array.flags.writeable:  # e.g. np.asarray(PIL image): from_numpy would warn; .float() copies anyway
        array = array.copy()
    x = torch.from_numpy(array).permute(0, 3, 1, 2).float()
    return ((x - _MEAN_255) / _STD_255).contiguous()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Inverse of ``to_tensor`` (previews): normalised NCHW -> uint8 NHWC."""
    img = x.detach().cpu().float() * _STD_255 + _MEAN_255
    return img.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()
