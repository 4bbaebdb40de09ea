"""Grad-CAM++ heatmaps of the classification output P_C (the paper's Fig. 8, last column).

The ``grad-cam`` package (``pytorch_grad_cam``) needs a module whose output is the activation map to
explain. Every backbone here already hands the heads an NCHW stride-32 map (Swin and ViT tokens are
reshaped inside the backbone plugin), so the model is wrapped as: encoder -> ``tap`` (an identity on
that map) -> heads -> fake logit, and Grad-CAM++ hooks ``tap``. No token reshape is needed, and the
same code explains any backbone plugin that honours the contract.

An imported model (no encoder/heads split) names the layer to explain as ``cam_layer`` (SBI's
EfficientNet: its last convolution); its fake logit is ``model(x).logit``. Predict shows these maps
in place of P_M for a model without a mask head.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from harness.extend.contracts import capable
from harness.models.detector import DetectorModel


class _ClassifierView(nn.Module):
    """The detector seen as a one-output classifier whose stride-32 map passes through ``tap``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.tap = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.model.encoder(x)
        logit = self.model.heads(self.tap(features[-1]))["logit"]  # the heads return a dict
        return logit[:, None]  # (N, 1): grad-cam indexes a class axis


class _LogitView(nn.Module):
    """An imported model seen as a one-output classifier (its ``cam_layer`` is hooked directly)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logit[:, None]


class _FakeLogit:
    """Grad-CAM target: the fake logit (a single output, so class 0 of the (N, 1) view)."""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[..., 0] if output.ndim else output


class GradCamPlusPlus:
    """``explainer(crops) -> (N, H, W)`` float32 maps in [0, 1] at the crops' size.

    ``model`` is a DetectorModel (``encoder`` returning four NCHW maps, ``heads``)."""

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", batch_size: int = 16, scale: str = "imagenet") -> None:
        try:
            from pytorch_grad_cam import GradCAMPlusPlus
        except ImportError as exc:  # optional dependency: say how to get it
            raise RuntimeError("--explain needs the grad-cam package: pip install grad-cam") from exc
        if isinstance(model, DetectorModel):
            self.view: nn.Module = _ClassifierView(model).eval()
            self.target = self.view.tap
        elif capable(model, "imported_network", "cam_layer") and isinstance(model.cam_layer, nn.Module):
            self.view = _LogitView(model).eval()
            self.target = model.cam_layer
        else:
            raise TypeError(f"Grad-CAM++ needs a DetectorModel with .encoder and .heads, or a model naming its "
                            f"cam_layer, got {type(model).__name__}")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.scale = scale
        self._cam_cls = GradCAMPlusPlus

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        from harness.models.inputs import normalise

        if len(crops) == 0:
            return np.zeros((0, 0, 0), np.float32)
        out = []
        cam = self._cam_cls(model=self.view, target_layers=[self.target])
        try:
            for i in range(0, len(crops), self.batch_size):
                chunk = np.stack([np.ascontiguousarray(c) for c in crops[i : i + self.batch_size]])
                x = normalise(torch.from_numpy(chunk), self.device, self.scale)
                maps = cam(input_tensor=x, targets=[_FakeLogit() for _ in range(len(chunk))])
                out.append(np.nan_to_num(np.asarray(maps, np.float32), nan=0.0))
        finally:
            cam.activations_and_grads.release()  # remove the hooks from the shared model
            self.view.zero_grad(set_to_none=True)  # free the parameter gradients backward left
        return np.clip(np.concatenate(out), 0.0, 1.0)
