"""Importer ``mesonet``: MesoNet's published Keras weights (Afchar et al., "MesoNet: a Compact Facial
Video Forgery Detection Network", WIFS 2018; github.com/DariusAf/MesoNet ``weights/``, Apache-2.0).

The files are Keras 2.1.5 weights-only HDF5 (``Meso4_DF.h5``, ``Meso4_F2F.h5``,
``MesoInception_DF.h5``, ``MesoInception_F2F``: not every one has the suffix), read here with h5py
(no TensorFlow). Facts of the format this conversion rests on:

- the root attribute ``layer_names`` lists every layer in the model's order (Keras orders a
  functional model by depth from the input, then by traversal order: inside an inception block
  that is the three 1x1 reductions, the 1x1 branch, then the three 3x3 convolutions); each layer
  group lists its ``weight_names`` (kernel, bias / gamma, beta, moving_mean, moving_variance).
  Layer-name suffixes are offset (``conv2d_5``...), so layers are mapped by ORDER and checked by
  their shapes, never by name;
- Conv2D kernels are HWIO, Dense kernels (in, out); Flatten runs over (H, W, C), so the first
  Dense's 1024 inputs are permuted to torch's (C, H, W); BatchNormalization eps is 1e-3; every
  convolution and pooling is 'same' (odd kernels, even sizes: symmetric padding, none for pooling);
- the output is one sigmoid where **1 means real** (Keras' flow_from_directory orders classes by
  folder name, ``df`` < ``real``): the fake probability is 1 - p, here the logit -z;
- input 256 x 256 RGB / 255.

Meso4: four blocks conv (3x3x8, 5x5x8, 5x5x16, 5x5x16) -> ReLU -> BN -> max-pool (2, 2, 2, 4), then
Dense 16 + LeakyReLU(0.1), Dense 1. MesoInception4: two inception blocks (1, 4, 4, 2) and
(2, 4, 4, 2) (a 1x1 branch and 1x1 -> 3x3 branches at dilations 1, 2, 3, every convolution with
ReLU) each -> BN -> max-pool 2, then the last two blocks and the head of Meso4.

Its crop (pipeline.py), recorded in the bundle (harness.data.crop, basis ``upright``): 68
landmarks, centred at the nose, side 2.2 x max(eye distance, eyes-to-mouth) x 1.3, rotated
upright, the largest face, 256 px; a video's score is the mean of its frames'.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.api import ImportedModel, hookimpl

IMG_SIZE = 256
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: where an HDF5 superblock may start (a user block before it is a power of two from 512)
_MAGIC_OFFSETS = (0, 512, 1024, 2048)
#: the architectures, by option value (``mesonet:FILE?arch=meso4``)
ARCHS = {"meso4": "Meso4", "mesoinception4": "MesoInception4"}
#: an inception block's convolutions in Keras' layer order: (torch name, kernel, input from) where
#: "in" is the block input and a letter is that branch's 1x1 reduction
_INCEPTION_ORDER = (("b1", 1, "in"), ("c1", 1, "in"), ("d1", 1, "in"), ("a", 1, "in"),
                    ("b2", 3, "b"), ("c2", 3, "c"), ("d2", 3, "d"))


def _inception_layers(prefix: str, cin: int, widths: tuple[int, int, int, int]) -> list[tuple[str, str, tuple[int, ...]]]:
    """The weighted layers of one inception block + its BatchNorm, in Keras' order."""
    width = dict(zip("abcd", widths))
    layers = []
    for name, k, source in _INCEPTION_ORDER:
        branch = name[0]
        fan_in = cin if source == "in" else width[source]
        layers.append((f"{prefix}.{name}", "conv", (k, k, fan_in, width[branch])))
    return layers


def expected_layers(arch: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """(torch module, kind, Keras kernel shape or BN channels) of each weighted layer, in file order."""
    if arch == "meso4":
        convs = [("conv1", (3, 3, 3, 8)), ("conv2", (5, 5, 8, 8)), ("conv3", (5, 5, 8, 16)), ("conv4", (5, 5, 16, 16))]
        layers = []
        for i, (name, shape) in enumerate(convs, 1):
            layers += [(name, "conv", shape), (f"bn{i}", "bn", (shape[3],))]
    else:
        layers = _inception_layers("inc1", 3, (1, 4, 4, 2)) + [("bn1", "bn", (11,))]
        layers += _inception_layers("inc2", 11, (2, 4, 4, 2)) + [("bn2", "bn", (12,))]
        layers += [("conv3", "conv", (5, 5, 12, 16)), ("bn3", "bn", (16,)), ("conv4", "conv", (5, 5, 16, 16)), ("bn4", "bn", (16,))]
    return layers + [("fc1", "dense", (1024, 16)), ("fc2", "dense", (16, 1))]


def _file_shapes(kind: str, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The shapes a Keras layer of ``kind`` stores, in its weight_names order."""
    if kind == "bn":
        return [shape] * 4  # gamma, beta, moving_mean, moving_variance
    return [shape, (shape[-1],)]  # kernel, bias


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_keras_layers(path: Path) -> list[tuple[str, list[Any]]]:
    """(layer name, [weight arrays]) of each Keras layer that has weights, in ``layer_names`` order.
    ValueError (one line) for a file h5py cannot read or one without Keras' layout."""
    import h5py
    import numpy as np

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise ValueError("an HDF5 file without Keras' layer_names attribute: not a Keras weights file")
            layers = []
            for name in (_text(n) for n in root.attrs["layer_names"]):
                names = [_text(w) for w in root[name].attrs.get("weight_names", [])]
                if names:
                    layers.append((name, [np.asarray(root[name][w], dtype=np.float32) for w in names]))
            return layers
    except OSError as exc:  # h5py: truncated, damaged, not HDF5
        raise ValueError(f"not a readable HDF5 file: truncated or damaged ({str(exc).splitlines()[0][:120]})") from exc
    except KeyError as exc:
        raise ValueError(f"a Keras weights file with a missing group or weight ({exc})") from exc


def recognise(layers: list[tuple[str, list[Any]]], wanted: str | None = None) -> str:
    """The architecture whose layer shapes the file holds, in order; ValueError naming both."""
    found = [[tuple(w.shape) for w in weights] for _, weights in layers]
    for arch in ([wanted] if wanted else list(ARCHS)):
        expected = [_file_shapes(kind, shape) for _, kind, shape in expected_layers(arch)]
        if found == expected:
            return arch
    counts = ", ".join(f"{ARCHS[a]} has {len(expected_layers(a))}" for a in ([wanted] if wanted else ARCHS))
    what = f"a MesoNet {ARCHS[wanted]}" if wanted else "a MesoNet"
    raise ValueError(f"not {what} weights file: it has {len(found)} layers with weights (first shapes {found[:2]}); "
                     f"{counts} (in Keras' layer order, with the published shapes)")


def convert(arch: str, layers: list[tuple[str, list[Any]]]) -> dict[str, Any]:
    """The torch state dict of ``Meso`` from the Keras layers (already matched to ``arch``)."""
    import numpy as np
    import torch

    state: dict[str, Any] = {}
    for (module, kind, _), (_, weights) in zip(expected_layers(arch), layers):
        if kind == "conv":
            state[f"{module}.weight"] = np.transpose(weights[0], (3, 2, 0, 1))  # HWIO -> OIHW
            state[f"{module}.bias"] = weights[1]
        elif kind == "bn":
            for key, value in zip(("weight", "bias", "running_mean", "running_var"), weights):
                state[f"{module}.{key}"] = value
            state[f"{module}.num_batches_tracked"] = np.array(0, dtype=np.int64)
        else:
            kernel = weights[0]
            if module == "fc1":  # Keras flattened (H, W, C) = (8, 8, 16); torch flattens (C, H, W)
                kernel = kernel.reshape(8, 8, 16, -1).transpose(2, 0, 1, 3).reshape(1024, -1)
            state[f"{module}.weight"] = kernel.T
            state[f"{module}.bias"] = weights[1]
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def training_record(path: Path) -> dict[str, Any]:
    """What a MesoNet file was trained on, as its name says (the .h5 records nothing)."""
    parts = {p.upper() for p in re.split(r"[_.\-\s]+", path.stem)}
    by = "the file name (MesoNet's .h5 records no training data)"
    if "F2F" in parts:
        return {"datasets": ["faceforensics"], "split": "train", "videos": "real and Face2Face faces of FaceForensics "
                "(Rossler et al. 2018, the predecessor of FF++, sharing its source videos)", "recorded_by": by}
    if "DF" in parts:
        return {"datasets": ["mesonet-deepfake"], "split": "train",
                "videos": "real and Deepfake faces of MesoNet's own dataset (Afchar et al. 2018)", "recorded_by": by}
    return {"datasets": [], "recorded_by": "unknown: MesoNet's .h5 records no training data and the file name does not "
            "say (the published files are Meso4_DF, Meso4_F2F, MesoInception_DF, MesoInception_F2F)"}


def crop_rule() -> Any:
    """MesoNet's crop (see the module docstring), cut at the model's input size."""
    from harness.api import CropRule

    return CropRule(detector="dlib", basis="upright", scale=1.3, crop_size=IMG_SIZE, min_area=1.0)


def bundle_meta(arch: str, path: Path) -> dict[str, Any]:
    rule = crop_rule()
    return {
        "model": {"arch": arch},
        "architecture": ARCHS[arch],
        "img_size": IMG_SIZE,
        "input": {"scale": "unit", "channels": "RGB"},
        "heads": ["class"],
        "face_detector": rule.detector,
        "crop": rule.to_dict(),
        "run": {"eval": {"frame_aggregation": "max", "video_aggregation": "mean"}, "blender": "none",
                "backbone": ARCHS[arch]},
        "training": training_record(path),
        "origin": {"source": "MesoNet (Afchar et al., WIFS 2018), github.com/DariusAf/MesoNet weights/, Apache-2.0",
                   "format": "Keras 2.1.5 weights-only HDF5", "output": "sigmoid, 1 = real: fake = 1 - p",
                   "crop_rule": "MesoNet's own: 68 landmarks, centred at the nose, side 2.2 x max(eye distance, "
                                "eyes-to-mouth) x 1.3, rotated upright, 256 px"},
        "label": ARCHS[arch],
    }


@lru_cache(maxsize=None)
def network_class() -> type:
    """The torch port of MesoNet's Keras networks (built on first use: `harness plugins` imports no torch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from harness.api import ModelOutput

    def conv(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Conv2d:
        return nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation)  # Keras 'same', with bias

    class Inception(nn.Module):
        """MesoNet's inception block: a 1x1 branch, and 1x1 -> 3x3 branches at dilations 1, 2, 3, all ReLU."""

        def __init__(self, cin: int, a: int, b: int, c: int, d: int) -> None:
            super().__init__()
            self.a, self.b1, self.b2 = conv(cin, a, 1), conv(cin, b, 1), conv(b, b, 3)
            self.c1, self.c2 = conv(cin, c, 1), conv(c, c, 3, dilation=2)
            self.d1, self.d2 = conv(cin, d, 1), conv(d, d, 3, dilation=3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            branches = [self.a(x), self.b2(F.relu(self.b1(x))), self.c2(F.relu(self.c1(x))), self.d2(F.relu(self.d1(x)))]
            return torch.cat(branches, 1)  # each gets its ReLU with the block's (Keras: activation='relu')

    class Meso(nn.Module):
        """Meso4 or MesoInception4 as Keras runs it; ``forward`` returns the fake logit (-z)."""

        def __init__(self, arch: str = "meso4") -> None:
            super().__init__()
            if arch == "meso4":
                self.conv1, self.conv2 = conv(3, 8, 3), conv(8, 8, 5)
                widths = (8, 8)
            else:
                self.inc1, self.inc2 = Inception(3, 1, 4, 4, 2), Inception(11, 2, 4, 4, 2)
                widths = (11, 12)
            self.arch = arch
            self.conv3, self.conv4 = conv(widths[1], 16, 5), conv(16, 16, 5)
            self.bn1, self.bn2 = (nn.BatchNorm2d(w, eps=1e-3) for w in widths)
            self.bn3, self.bn4 = nn.BatchNorm2d(16, eps=1e-3), nn.BatchNorm2d(16, eps=1e-3)
            self.fc1, self.fc2 = nn.Linear(1024, 16), nn.Linear(16, 1)
            self.cam_layer = nn.Identity()  # the last block's map: what Grad-CAM++ explains

        def forward(self, x: torch.Tensor) -> ModelOutput:
            first = (self.conv1, self.conv2) if self.arch == "meso4" else (self.inc1, self.inc2)
            stages = zip((*first, self.conv3, self.conv4), (self.bn1, self.bn2, self.bn3, self.bn4), (2, 2, 2, 4))
            for layer, bn, pool in stages:
                x = F.max_pool2d(bn(F.relu(layer(x))), pool)
            x = self.cam_layer(x).flatten(1)  # (C, H, W): fc1's columns were permuted from Keras' (H, W, C)
            z = self.fc2(F.leaky_relu(self.fc1(x), 0.1))[:, 0]
            return ModelOutput(logit=-z, token_logits=None, token_features=None, mask_logits=None)  # 1 = real

    return Meso


class MesoNetImporter:
    """``mesonet:FILE`` or ``mesonet:FILE?arch=meso4|mesoinception4`` (the file says which)."""

    version = "2"  # change with the conversion or the bundle: imports on the fly are cached by it (2: upright crop)

    def __init__(self, arch: str | None = None) -> None:
        if arch is not None and arch.lower() not in ARCHS:
            raise ValueError(f"mesonet: architecture {arch!r} is not supported; supported: {', '.join(ARCHS)}")
        self.arch = arch.lower() if arch else None

    def accepts(self, path: Path) -> bool:
        """An HDF5 file (its signature; ``read`` says when it is not MesoNet's)."""
        try:
            with open(path, "rb") as handle:
                for offset in _MAGIC_OFFSETS:
                    handle.seek(offset)
                    if handle.read(len(HDF5_MAGIC)) == HDF5_MAGIC:
                        return True
        except OSError:
            return False
        return False

    def read(self, path: Path) -> ImportedModel:
        layers = read_keras_layers(path)
        arch = recognise(layers, self.arch)
        return ImportedModel(state_dict=convert(arch, layers), meta=bundle_meta(arch, path))

    def build(self, options: dict[str, Any]) -> Any:
        arch = str(options.get("arch", "meso4"))
        if arch not in ARCHS:
            raise ValueError(f"mesonet: architecture {arch!r} is not supported; supported: {', '.join(ARCHS)}")
        return network_class()(arch)


@hookimpl
def register_importers(register) -> None:
    register("mesonet", MesoNetImporter, "MesoNet's published Keras weights (Meso4, MesoInception4 .h5; h5py, no TensorFlow)")
