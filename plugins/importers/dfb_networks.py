"""The networks of DeepfakeBench's detectors (SCLBD/DeepfakeBench, training/networks and
training/detectors), written for the harness with DeepfakeBench's module names, so that a
checkpoint its trainer saved (a flat ``model.state_dict()``: ``backbone.*`` ...) loads strictly.

Each network's ``forward(x)`` takes DeepfakeBench's input (256 px RGB, ``x / 255`` then Normalize
mean = std = 0.5) and returns the harness's ``ModelOutput`` whose logit is ``z1 - z0``: its sigmoid
is DeepfakeBench's ``softmax(logits)[:, 1]``. ``cam_layer`` taps the last feature map (Grad-CAM++).

- Xception (xception, core, spsl, f3net): the FaceForensics++ Xception (timm's ``legacy_xception``
  layout) with ``last_linear`` as the head; ``adjust_channel`` is in every file and unused (the
  released detectors run mode "original"). The classifier is ReLU -> global average -> linear.
  spsl feeds the image and its phase-only reconstruction (4 channels); f3net the four DCT
  frequency bands of its FAD head (12 channels).
- EfficientNet-B4 (efficientnetb4): efficientnet_pytorch 0.7.1's B4 (its static 'same' padding is
  fixed for 380 px whatever the input), the stem replaced by a plain ``Conv2d(3, 48, 3, stride=2,
  bias=False)`` without padding, no ``_fc``, head ``last_layer`` (2 x 1792); BatchNorm eps 1e-3.
- Meso4 / MesoInception4 (meso4, meso4Inception): no convolution bias; BatchNorm modules shared
  (``bn1`` after the first two convolutions, ``bn2`` after the last two in Meso4; ``bn1`` after
  both plain convolutions in MesoInception4); no ReLU inside the inception branches; Flatten in
  (C, H, W) order.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

#: network -> the DeepfakeBench detectors it builds, by input channels of its first convolution
NETWORKS = ("xception", "efficientnetb4", "meso4", "meso4Inception")


@lru_cache(maxsize=None)
def _xception() -> tuple[type, type]:
    import torch
    from torch import nn

    class SeparableConv2d(nn.Module):
        def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, padding: int = 0) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cin, k, stride, padding, groups=cin, bias=False)
            self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pointwise(self.conv1(x))

    class Block(nn.Module):
        """Xception's residual block: ``rep`` = (ReLU, separable conv, BN) x reps (+ max-pool)."""

        def __init__(self, cin: int, cout: int, reps: int, stride: int = 1, start_with_relu: bool = True,
                     grow_first: bool = True) -> None:
            super().__init__()
            self.skip = nn.Conv2d(cin, cout, 1, stride=stride, bias=False) if cout != cin or stride != 1 else None
            self.skipbn = nn.BatchNorm2d(cout) if self.skip is not None else None
            widths = [(cin, cout)] + [(cout, cout)] * (reps - 1) if grow_first else [(cin, cin)] * (reps - 1) + [(cin, cout)]
            rep: list[nn.Module] = []
            for a, b in widths:
                rep += [nn.ReLU(inplace=True), SeparableConv2d(a, b, 3, 1, 1), nn.BatchNorm2d(b)]
            rep = rep[1:] if not start_with_relu else [nn.ReLU(inplace=False)] + rep[1:]
            if stride != 1:
                rep.append(nn.MaxPool2d(3, stride, 1))
            self.rep = nn.Sequential(*rep)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skip = self.skipbn(self.skip(x)) if self.skip is not None else x
            return self.rep(x) + skip

    class Xception(nn.Module):
        """DeepfakeBench's Xception backbone (mode "original")."""

        def __init__(self, inc: int = 3, num_classes: int = 2) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(inc, 32, 3, 2, 0, bias=False), nn.BatchNorm2d(32)
            self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64)
            self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
            self.block2, self.block3 = Block(128, 256, 2, 2), Block(256, 728, 2, 2)
            for i in range(4, 12):
                setattr(self, f"block{i}", Block(728, 728, 3, 1))
            self.block12 = Block(728, 1024, 2, 2, grow_first=False)
            self.conv3, self.bn3 = SeparableConv2d(1024, 1536, 3, 1, 1), nn.BatchNorm2d(1536)
            self.conv4, self.bn4 = SeparableConv2d(1536, 2048, 3, 1, 1), nn.BatchNorm2d(2048)
            self.last_linear = nn.Linear(2048, num_classes)
            # in every DeepfakeBench file; used only in mode "adjust_channel" (UCF), never here
            self.adjust_channel = nn.Sequential(nn.Conv2d(2048, 512, 1, 1), nn.BatchNorm2d(512), nn.ReLU(inplace=True))

        def features(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            for i in range(1, 13):
                x = getattr(self, f"block{i}")(x)
            x = torch.relu(self.bn3(self.conv3(x)))
            return self.bn4(self.conv4(x))

        def classifier(self, features: torch.Tensor) -> torch.Tensor:
            return self.last_linear(torch.relu(features).mean((2, 3)))

    return Xception, Block


@lru_cache(maxsize=None)
def _efficientnet() -> type:
    import torch
    from torch import nn

    class EfficientNetB4(nn.Module):
        """DeepfakeBench's EfficientNet-B4 backbone (mode "Original", no dropout)."""

        def __init__(self, inc: int = 3, num_classes: int = 2) -> None:
            from efficientnet_pytorch import EfficientNet

            super().__init__()
            self.efficientnet = EfficientNet.from_name("efficientnet-b4")  # image_size 380: its fixed 'same' padding
            self.efficientnet._conv_stem = nn.Conv2d(inc, 48, kernel_size=3, stride=2, bias=False)  # no padding
            self.efficientnet._fc = nn.Identity()
            self.last_layer = nn.Linear(1792, num_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            return self.efficientnet.extract_features(x)

        def classifier(self, features: torch.Tensor) -> torch.Tensor:
            return self.last_layer(features.mean((2, 3)))

    return EfficientNetB4


@lru_cache(maxsize=None)
def _meso() -> tuple[type, type]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Meso4(nn.Module):
        """DeepfakeBench's Meso4: conv -> ReLU -> shared BN -> max-pool, no conv bias."""

        def __init__(self, inc: int = 3, num_classes: int = 2) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(inc, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 8, 5, padding=2, bias=False)
            self.bn2 = nn.BatchNorm2d(16)
            self.conv3 = nn.Conv2d(8, 16, 5, padding=2, bias=False)
            self.conv4 = nn.Conv2d(16, 16, 5, padding=2, bias=False)
            self.fc1, self.fc2 = nn.Linear(16 * 8 * 8, 16), nn.Linear(16, num_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            for conv, bn, pool in ((self.conv1, self.bn1, 2), (self.conv2, self.bn1, 2), (self.conv3, self.bn2, 2),
                                   (self.conv4, self.bn2, 4)):
                x = F.max_pool2d(bn(F.relu(conv(x))), pool)
            return x

        def classifier(self, features: torch.Tensor) -> torch.Tensor:
            return self.fc2(F.leaky_relu(self.fc1(features.flatten(1)), 0.1))  # (C, H, W) order

    class MesoInception4(nn.Module):
        """DeepfakeBench's MesoInception4: inception branches without ReLU, cat -> BN -> pool."""

        def __init__(self, inc: int = 3, num_classes: int = 2) -> None:
            super().__init__()
            for block, cin, widths in ((1, inc, (1, 4, 4, 2)), (2, 11, (2, 4, 4, 2))):
                a, b, c, d = widths
                setattr(self, f"Incption{block}_conv1", nn.Conv2d(cin, a, 1, bias=False))
                setattr(self, f"Incption{block}_conv2_1", nn.Conv2d(cin, b, 1, bias=False))
                setattr(self, f"Incption{block}_conv2_2", nn.Conv2d(b, b, 3, padding=1, bias=False))
                setattr(self, f"Incption{block}_conv3_1", nn.Conv2d(cin, c, 1, bias=False))
                setattr(self, f"Incption{block}_conv3_2", nn.Conv2d(c, c, 3, padding=2, dilation=2, bias=False))
                setattr(self, f"Incption{block}_conv4_1", nn.Conv2d(cin, d, 1, bias=False))
                setattr(self, f"Incption{block}_conv4_2", nn.Conv2d(d, d, 3, padding=3, dilation=3, bias=False))
                setattr(self, f"Incption{block}_bn", nn.BatchNorm2d(sum(widths)))
            self.conv1, self.bn1 = nn.Conv2d(12, 16, 5, padding=2, bias=False), nn.BatchNorm2d(16)
            self.conv2 = nn.Conv2d(16, 16, 5, padding=2, bias=False)
            self.fc1, self.fc2 = nn.Linear(16 * 8 * 8, 16), nn.Linear(16, num_classes)

        def _inception(self, x: torch.Tensor, block: int) -> torch.Tensor:
            layer = lambda name: getattr(self, f"Incption{block}_{name}")  # noqa: E731 - a local lookup
            branches = [layer("conv1")(x), layer("conv2_2")(layer("conv2_1")(x)), layer("conv3_2")(layer("conv3_1")(x)),
                        layer("conv4_2")(layer("conv4_1")(x))]
            return F.max_pool2d(layer("bn")(torch.cat(branches, 1)), 2)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            x = self._inception(self._inception(x, 1), 2)
            x = F.max_pool2d(self.bn1(F.relu(self.conv1(x))), 2)
            return F.max_pool2d(self.bn1(F.relu(self.conv2(x))), 4)

        def classifier(self, features: torch.Tensor) -> torch.Tensor:
            return self.fc2(F.leaky_relu(self.fc1(features.flatten(1)), 0.1))

    return Meso4, MesoInception4


@lru_cache(maxsize=None)
def _fad_head() -> type:
    """F3Net's FAD head (DeepfakeBench's f3net: only this branch): four DCT frequency bands."""
    import torch
    from torch import nn

    class Filter(nn.Module):
        def __init__(self, size: int) -> None:
            super().__init__()
            self.base = nn.Parameter(torch.zeros(size, size), requires_grad=False)  # the file holds both
            self.learnable = nn.Parameter(torch.zeros(size, size))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * (self.base + (2.0 * torch.sigmoid(self.learnable) - 1.0))

    class FADHead(nn.Module):
        def __init__(self, size: int = 256) -> None:
            super().__init__()
            self._DCT_all = nn.Parameter(torch.zeros(size, size), requires_grad=False)
            self._DCT_all_T = nn.Parameter(torch.zeros(size, size), requires_grad=False)
            self.filters = nn.ModuleList([Filter(size) for _ in range(4)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            freq = self._DCT_all @ x @ self._DCT_all_T
            return torch.cat([self._DCT_all_T @ band(freq) @ self._DCT_all for band in self.filters], 1)

    return FADHead


def phase_only(x: Any) -> Any:
    """SPSL's extra channel: the grey image rebuilt from its Fourier phase alone, per face (DeepfakeBench
    transforms the whole batch with one fftn, so a face's channel depends on its batch mates; one
    face at a time is its batch-of-one value)."""
    import torch

    spectrum = torch.fft.fftn(x.mean(1, keepdim=True), dim=(-2, -1))
    return torch.real(torch.fft.ifftn(torch.exp(1j * torch.angle(spectrum)), dim=(-2, -1)))


@lru_cache(maxsize=None)
def detector_class() -> type:
    """The harness module around a DeepfakeBench backbone: its keys read ``backbone.*`` (and
    ``FAD_head.*`` for f3net), its forward is the detector's, its output the harness's."""
    import torch
    from torch import nn

    from harness.api import ModelOutput

    class DeepfakeBenchDetector(nn.Module):
        def __init__(self, network: str = "xception", inc: int = 3, num_classes: int = 2, head: str = "") -> None:
            super().__init__()
            if network not in NETWORKS:
                raise ValueError(f"unknown DeepfakeBench network {network!r}; known: {', '.join(NETWORKS)}")
            builders = {"xception": lambda: _xception()[0], "efficientnetb4": _efficientnet,
                        "meso4": lambda: _meso()[0], "meso4Inception": lambda: _meso()[1]}
            self.backbone = builders[network]()(inc, num_classes)
            self.head = head  # "" | "spsl" (phase channel) | "f3net" (FAD bands)
            if head == "f3net":
                self.FAD_head = _fad_head()()
            self.cam_layer = nn.Identity()

        def forward(self, x: torch.Tensor) -> ModelOutput:
            if self.head == "spsl":
                x = torch.cat((x, phase_only(x)), 1)
            elif self.head == "f3net":
                x = self.FAD_head(x)
            logits = self.backbone.classifier(self.cam_layer(self.backbone.features(x)))
            return ModelOutput(logit=logits[:, 1] - logits[:, 0], token_logits=None, token_features=None, mask_logits=None)

    return DeepfakeBenchDetector
