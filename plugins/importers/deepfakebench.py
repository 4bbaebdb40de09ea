"""Importer ``deepfakebench``: DeepfakeBench's detector checkpoints (Yan et al., "DeepfakeBench: A
Comprehensive Benchmark of Deepfake Detection", NeurIPS 2023 Datasets and Benchmarks;
github.com/SCLBD/DeepfakeBench, its released weights ``*_best.pth``).

One format for many detectors: the trainer saves a flat ``model.state_dict()`` (keys
``backbone.*``, ``FAD_head.*`` ...), with a ``module.`` prefix on every key when it trained under
DDP (accepted). The detector is recognised from the key names and shapes (``dfb_networks`` builds
it with the same names, and every key must load: strict); where two detectors share one key set
(xception and core: one Xception, another loss) the file name decides (``core_best.pth``), else
``deepfakebench:FILE?arch=core`` does. Supported: see ``ARCHS``; a checkpoint of another
DeepfakeBench detector is refused naming it.

Inference as DeepfakeBench's test code runs it: 256 px RGB, ``/ 255``, Normalize mean = std = 0.5,
fake = ``softmax(logits)[:, 1]``; 32 frames per video, the video's score the mean of its frames'.
Its crop, recorded in the bundle as ``CROP``: dlib HOG (largest face), a similarity transform of
the 5 landmarks its preprocess.py takes (dlib points 37, 44, 30, 49, 55) to the ArcFace template at
scale 1.3, 256 x 256 (harness.data.crop, basis ``aligned5``). Its loader resizes each crop to the
model's 256 px with cv2 INTER_CUBIC: the crop is cut at 256 px, so no resize happens, here or there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from harness.api import ImportedModel, hookimpl

IMG_SIZE = 256
PREFIX = "module."  # every key of a checkpoint saved under DDP


@dataclass(frozen=True)
class Arch:
    """One supported DeepfakeBench detector: the network that builds it and how it reads the image."""

    name: str  # DeepfakeBench's detector name (its config's model_name): the ``arch`` option
    network: str  # dfb_networks.NETWORKS
    title: str
    inc: int = 3  # input channels of the first convolution
    head: str = ""  # "" | "spsl" | "f3net"


ARCHS: dict[str, Arch] = {a.name: a for a in (
    Arch("xception", "xception", "Xception (Rossler et al., ICCV 2019)"),
    Arch("core", "xception", "CORE (Ni et al., CVPR 2022), Xception backbone"),
    Arch("spsl", "xception", "SPSL (Liu et al., CVPR 2021), Xception on RGB + phase", inc=4, head="spsl"),
    Arch("f3net", "xception", "F3-Net (Qian et al., ECCV 2020), FAD branch", inc=12, head="f3net"),
    Arch("efficientnetb4", "efficientnetb4", "EfficientNet-B4 (Tan and Le, ICML 2019)"),
    Arch("meso4", "meso4", "Meso4 (Afchar et al., WIFS 2018)"),
    Arch("meso4Inception", "meso4Inception", "MesoInception4 (Afchar et al., WIFS 2018)"),
)}
#: DeepfakeBench detectors recognised but not supported here, by a key only they have
UNSUPPORTED: dict[str, str] = {"encoder_f.": "ucf", "con_gan.": "ucf", "backbone_rgb.": "srm", "srm_conv0.": "srm"}
#: a key each network's files have, and what tells its detectors apart
_MARKERS = {"backbone.efficientnet._conv_stem.weight": "efficientnetb4", "backbone.Incption1_conv1.weight": "meso4Inception",
            "backbone.conv4.pointwise.weight": "xception", "backbone.fc1.weight": "meso4"}


def supported() -> str:
    return ", ".join(ARCHS)


def flat_state(checkpoint: Any) -> dict[str, Any]:
    """The flat state dict of a DeepfakeBench file, without the DDP ``module.`` prefix."""
    import torch

    if not isinstance(checkpoint, dict) or not checkpoint or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in checkpoint.items()):
        raise ValueError("not a DeepfakeBench checkpoint: expected a flat state dict {name: tensor} "
                         "(what its trainer saves with torch.save(model.state_dict()))")
    if all(k.startswith(PREFIX) for k in checkpoint):
        return {k[len(PREFIX):]: v for k, v in checkpoint.items()}
    return dict(checkpoint)


def network_of(keys: set[str]) -> str:
    """The network whose key set this is; ValueError naming an unsupported detector, or the keys."""
    for marker, name in UNSUPPORTED.items():
        if any(k.startswith(marker) for k in keys):
            raise ValueError(f"a DeepfakeBench {name} checkpoint (keys {marker}*): {name} is not supported; supported: {supported()}")
    found = [network for marker, network in _MARKERS.items() if marker in keys]
    if not found:
        sample = ", ".join(sorted(keys)[:3])
        raise ValueError(f"its keys ({sample} ...) match no DeepfakeBench detector; supported: {supported()}")
    return found[0]


def candidates(network: str, state: Mapping[str, Any]) -> list[str]:
    """The supported detectors that fit ``state`` (same network, same first-convolution input, same head)."""
    inc = int(state["backbone.conv1.weight"].shape[1]) if "backbone.conv1.weight" in state else 3
    fad = any(k.startswith("FAD_head.") for k in state)
    return [a.name for a in ARCHS.values()
            if a.network == network and (a.network != "xception" or (a.inc == inc and (a.head == "f3net") == fad))]


def choose(found: list[str], wanted: str | None, path: Path, network: str) -> tuple[str, str]:
    """(detector, how it was recognised): the option, else the one candidate, else the file name."""
    if wanted is not None:
        if wanted not in found:
            raise ValueError(f"arch={wanted} does not fit this file: its key set is {' or '.join(found) or network}'s")
        return wanted, "the arch option (the key set fits it)"
    if not found:
        raise ValueError(f"a DeepfakeBench {network} whose first convolution or head fits no supported detector; "
                         f"supported: {supported()}")
    if len(found) == 1:
        return found[0], "its key names and shapes"
    stem = path.stem.lower()
    named = [a for a in found if stem.startswith(a.lower())]
    if len(named) == 1:
        return named[0], f"its key names and shapes, and the file name ({path.name})"
    raise ValueError(f"its key set is that of {' and '.join(found)} (one network, trained with other losses); say which: "
                     f"deepfakebench:{path}?arch={found[0]} (supported: {supported()})")


def check_head(arch: Arch, state: Mapping[str, Any]) -> None:
    """Refuse a head that is not the 2-class one the detector's softmax[:, 1] reads."""
    key = {"efficientnetb4": "backbone.last_layer.weight", "xception": "backbone.last_linear.weight"}.get(arch.network,
                                                                                                         "backbone.fc2.weight")
    classes = int(state[key].shape[0]) if key in state else -1
    if classes != 2:
        extra = " (DeepfakeBench's sbi detector has a 3-class EfficientNet-B4 head: not supported)" if classes == 3 else ""
        raise ValueError(f"{key} has {classes} outputs; DeepfakeBench's {arch.name} has 2 (real, fake){extra}; supported: {supported()}")


def strict_fit(model: Any, state: Mapping[str, Any], arch: Arch) -> None:
    """Every key of the file fits the rebuilt detector and every weight of it is in the file."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    wrong = [k for k in set(want) & set(got) if want[k] != got[k]]
    if missing or unexpected or wrong:
        raise ValueError(f"it does not fit DeepfakeBench's {arch.name}: missing {missing[:3]}, unexpected {unexpected[:3]}, "
                         f"other shapes {sorted(wrong)[:3]} ({len(missing)}, {len(unexpected)}, {len(wrong)} in all)")


def crop_rule() -> Any:
    """DeepfakeBench's crop (see the module docstring): cut at the model's input size, never resized."""
    from harness.api import CropRule

    return CropRule(detector="dlib", basis="aligned5", template="deepfakebench", scale=1.3, crop_size=IMG_SIZE, min_area=1.0)


def bundle_meta(arch: Arch, how: str, prefixed: bool) -> dict[str, Any]:
    rule = crop_rule()
    return {
        "model": {"arch": arch.name},
        "architecture": arch.title,
        "img_size": IMG_SIZE,
        "input": {"scale": "symmetric", "channels": "RGB"},
        "heads": ["class"],
        "face_detector": rule.detector,
        "crop": rule.to_dict(),
        "run": {"eval": {"frames_per_video": 32, "frame_aggregation": "max", "video_aggregation": "mean"},
                "blender": "none", "backbone": arch.network},
        "training": {"datasets": ["ffpp"], "split": "train", "compression": "c23",
                     "videos": "real and fake (FF++ Deepfakes, Face2Face, FaceSwap, NeuralTextures)",
                     "recorded_by": "DeepfakeBench's benchmark protocol (its released checkpoints are trained on "
                                    "FF++ c23); the checkpoint records no file list"},
        "origin": {"source": "DeepfakeBench (Yan et al., NeurIPS 2023), github.com/SCLBD/DeepfakeBench",
                   "detector": arch.name, "recognised_by": how, "ddp_prefix": prefixed,
                   "crop_rule": "DeepfakeBench's own: dlib HOG, largest face, 5 landmarks (dlib 37, 44, 30, 49, 55) "
                                "aligned to the ArcFace template at scale 1.3, 256 px (its INTER_CUBIC resize to "
                                "256 px leaves a 256 px crop as it is)"},
        "label": f"DeepfakeBench {arch.name}",
    }


class DeepfakeBenchImporter:
    """``deepfakebench:FILE`` or ``deepfakebench:FILE?arch=NAME`` (NAME one of ``ARCHS``)."""

    version = "2"  # change with the conversion or the bundle: imports on the fly are cached by it (2: aligned crop)

    def __init__(self, arch: str | None = None) -> None:
        if arch is not None and arch not in ARCHS:
            raise ValueError(f"deepfakebench: architecture {arch!r} is not supported; supported: {supported()}")
        self.arch = arch

    def accepts(self, path: Path) -> bool:
        """A torch file whose pickle names a DeepfakeBench key (sniffed: nothing loaded)."""
        from harness.api import checkpoint_strings

        strings = checkpoint_strings(path)
        markers = (*_MARKERS, *UNSUPPORTED, "FAD_head._DCT_all")
        return strings is not None and any(s.removeprefix(PREFIX).startswith(m) for s in strings for m in markers)

    def read(self, path: Path) -> ImportedModel:
        from harness.api import read_checkpoint

        raw = read_checkpoint(path)
        state = flat_state(raw)
        network = network_of(set(state))
        name, how = choose(candidates(network, state), self.arch, path, network)
        arch = ARCHS[name]
        check_head(arch, state)
        import torch

        with torch.device("meta"):  # the shapes alone: no memory, no initialisation
            strict_fit(self.build({"arch": name}), state, arch)
        prefixed = all(k.startswith(PREFIX) for k in raw)
        return ImportedModel(state_dict=state, meta=bundle_meta(arch, how, prefixed))

    def build(self, options: dict[str, Any]) -> Any:
        from .dfb_networks import detector_class

        name = str(options.get("arch", "xception"))
        if name not in ARCHS:
            raise ValueError(f"deepfakebench: architecture {name!r} is not supported; supported: {supported()}")
        arch = ARCHS[name]
        return detector_class()(arch.network, arch.inc, 2, arch.head)


@hookimpl
def register_importers(register) -> None:
    register("deepfakebench", DeepfakeBenchImporter,
             f"DeepfakeBench detector checkpoints ({supported()})")
