"""Input normalisation shared by training, evaluation and prediction (ImageNet statistics)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@lru_cache(maxsize=None)
def _stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Built once per device, not per batch (a host->GPU copy each time otherwise).
    return torch.tensor(MEAN, device=device).view(1, 3, 1, 1), torch.tensor(STD, device=device).view(1, 3, 1, 1)


def normalise(images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 NHWC (moved as bytes: 4x less transfer) -> normalised float32 NCHW on ``device``."""
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
    mean, std = _stats(x.device)
    return (x - mean) / std


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
    return normalise(torch.from_numpy(array), "cpu").contiguous()
