"""Input preparation shared by training, evaluation and prediction: crop -> resize -> scale.

Harness models read ImageNet-normalised input; an imported model declares its own scaling in its
bundle (``model.json`` ``"input": {"scale": ...}``; SBI's EfficientNet reads ``img / 255``)."""

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


#: the input scalings a bundle may declare: "imagenet" (x/255, then ImageNet mean/std), "unit"
#: (x/255) or "symmetric" (x/255, then mean = std = 0.5: [-1, 1], DeepfakeBench's Normalize)
SCALES: tuple[str, ...] = ("imagenet", "unit", "symmetric")
DEFAULT_SCALE = "imagenet"


def normalise(images: torch.Tensor, device: torch.device | str, scale: str = DEFAULT_SCALE) -> torch.Tensor:
    """uint8 NHWC (moved as bytes: 4x less transfer) -> scaled float32 NCHW on ``device``."""
    if scale not in SCALES:
        raise ValueError(f"unknown input scale {scale!r}; known: {', '.join(SCALES)}")
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
    if scale == "unit":
        return x
    if scale == "symmetric":
        return (x - 0.5) / 0.5
    mean, std = _stats(x.device)
    return (x - mean) / std


def model_input(crops: list[np.ndarray], img_size: int, device: torch.device | str, scale: str = DEFAULT_SCALE) -> torch.Tensor:
    """The one path from RGB uint8 face crops (as the crop rule cut them) to a model batch: resize to
    ``img_size`` (crop.resize_crop), then scale. Evaluation and predict both call it, so a face cut
    alike scores alike."""
    from harness.data.crop import resize_crop

    batch = np.stack([resize_crop(c, img_size) for c in crops])
    return normalise(torch.from_numpy(batch), device, scale)


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
