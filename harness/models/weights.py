"""Loading a local weights file into a timm encoder, strictly.

timm's own ``pretrained=True`` downloads from the hub; this is the offline path: a file the user
already has (``.safetensors`` or a torch pickle loaded with ``weights_only=True``). Checkpoint
formats timm knows how to convert (for example the original Microsoft Swin ``.pth`` files, whose
stage layout differs) go through the model family's ``checkpoint_filter_fn`` first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

# Keys wrapping the real state dict in common training checkpoints.
_WRAPPERS = ("state_dict", "model", "model_ema", "module")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, unwrapped from ``{"model": ...}``-style checkpoints."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights file {str(path)!r} does not exist; pass pretrained=True for timm's "
            "download, pretrained=False for random init, or the path of a .safetensors/.pth file"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # a damaged or truncated file: one line, not the reader's traceback
            raise ValueError(f"could not read {str(path)!r} as safetensors ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}); copy the file again") from None
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # pickles with custom classes are refused on purpose
            # torch's own text advises weights_only=False, i.e. running the file's code: never here
            raise ValueError(
                f"could not read {str(path)!r} as a tensors-only torch checkpoint ({type(exc).__name__}: it is "
                "truncated, not a torch file, or holds code or objects besides tensors, which are never loaded); "
                "save it as a plain state dict or convert it to .safetensors"
            ) from None
    for key in _WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{str(path)!r} does not hold a state dict of tensors")
    # DDP checkpoints prefix every key with "module.".
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_weights_file(model: nn.Module, path: str | Path, ignore_prefixes: tuple[str, ...] = ()) -> None:
    """Load ``path`` into ``model`` (a timm model), raising on any missing key or shape mismatch.

    Keys under ``ignore_prefixes`` (the ImageNet classifier) may be present in the file and are
    dropped; anything else that does not fit is an error naming the keys and the likely fix.
    """
    state = read_state_dict(path)
    family = sys.modules.get(type(model).__module__)
    convert = getattr(family, "checkpoint_filter_fn", None)
    if convert is not None:
        state = convert(state, model)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not (ignore_prefixes and k.startswith(ignore_prefixes))}
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    unexpected = sorted(k for k in state if k not in own)
    missing = sorted(k for k in own if k not in state)
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:4])})")
    if missing:
        problems.append(f"{len(missing)} missing keys ({', '.join(missing[:4])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:4])})")
    if problems:
        raise ValueError(
            f"weights file {str(path)!r} does not fit {type(model).__name__}: {'; '.join(problems)}. "
            "Check that the file is for the same architecture (e.g. swin_tiny vs swin_small) and, "
            "for Swin, pass the window_size the file was trained with."
        )
    model.load_state_dict(state, strict=True)
