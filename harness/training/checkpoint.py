"""Checkpoints: weights in safetensors, the config that builds the model in JSON, trainer state apart.

A checkpoint folder is a self-contained bundle that `harness predict` loads without the run folder:

    model.safetensors   weights only (no pickled code can run on load)
    model.json          build_model(**model) kwargs, the image size, normalisation, plugin versions
    trainer_state.pt    optimizer / scheduler / RNG state for --resume (torch.load weights_only=True)
    state.json          epoch, step, the selection so far (losses: the run folder's train_log.jsonl)

Every file is written to a temporary name and moved into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from harness.files import atomic_write, atomic_write_text

MODEL_FILE = "model.safetensors"
MODEL_META = "model.json"
TRAINER_STATE = "trainer_state.pt"
STATE_FILE = "state.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or built for plugins that are not installed."""


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def save_model(directory: Path, model: torch.nn.Module, meta: dict[str, Any]) -> None:
    """Weights + the metadata that rebuilds the model. ``model`` may be wrapped in DDP."""
    module = getattr(model, "module", model)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write(directory / MODEL_FILE, lambda tmp: save_file(tensors, tmp))
    write_json(directory / MODEL_META, meta)


def save_trainer_state(directory: Path, trainer_state: dict[str, Any], state: dict[str, Any]) -> None:
    atomic_write(directory / TRAINER_STATE, lambda tmp: torch.save(trainer_state, tmp))
    write_json(directory / STATE_FILE, state)  # last: its presence marks a complete checkpoint


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from a run folder, a checkpoint folder or its model.safetensors file."""
    path = Path(path)
    for candidate in (path, path / "checkpoint", path.parent if path.suffix == ".safetensors" else None):
        if candidate is not None and (candidate / MODEL_FILE).is_file() and (candidate / MODEL_META).is_file():
            return candidate
    raise CheckpointError(
        f"no checkpoint at {path}: expected {MODEL_FILE} and {MODEL_META} there or in {path / 'checkpoint'}. "
        "Pass a run folder (runs/<id>) or its checkpoint folder."
    )


def load_meta(directory: Path) -> dict[str, Any]:
    return json.loads((Path(directory) / MODEL_META).read_text())


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model from its bundle and load the weights (safetensors: no code runs)."""
    from harness.models import build_model
    from harness.registry import PluginError

    directory = resolve(path)
    meta = load_meta(directory)
    kwargs = dict(meta["model"])
    kwargs["pretrained"] = False  # the bundle's own weights replace any pretrained ones: never download
    try:
        model = build_model(**kwargs)
    except PluginError as exc:
        raise CheckpointError(
            f"{directory} was trained with backbone {meta['model'].get('backbone')!r}, which is not installed "
            f"here ({exc}). Install the plugin that provides it."
        ) from exc
    state = load_file(str(directory / MODEL_FILE), device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{directory / MODEL_FILE} does not fit the model in {MODEL_META}: "
            f"missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}"
        )
    return model.to(device).eval(), meta


def load_trainer_state(directory: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(trainer_state, state) of a complete checkpoint, or None when there is none to resume."""
    directory = Path(directory)
    if not (directory / STATE_FILE).is_file() or not (directory / TRAINER_STATE).is_file():
        return None
    trainer_state = torch.load(directory / TRAINER_STATE, map_location="cpu", weights_only=True)
    return trainer_state, json.loads((directory / STATE_FILE).read_text())
