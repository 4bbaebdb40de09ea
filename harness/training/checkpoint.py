"""Checkpoints: weights in safetensors, the config that builds the model in JSON, trainer state apart.

A checkpoint folder is a self-contained bundle that `harness predict` loads without the run folder:

    model.safetensors   weights only (no pickled code can run on load)
    model.json          build_model(**model) kwargs, the image size, normalisation, plugin versions
    trainer_state.pt    optimizer / scheduler / RNG state for --resume (torch.load weights_only=True)
    state.json          epoch, step, the selection so far (losses: the run folder's train_log.jsonl)

Crash consistency by construction: the whole folder is written under a temporary name
(``.checkpoint.<random>.tmp``) and renamed into place (``harness.files.replace_dir``), so a kill at
any instant leaves either the previous complete checkpoint or the new one, never a mix. Each file
also names its step (safetensors metadata ``global_step``, ``trainer_state["global_step"]``,
``state.json``); resuming verifies they agree and refuses a mixed set (edited or copied by hand)
with one line. Stale temporaries of a killed save are removed on the next resume.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from harness import faults
from harness.files import atomic_write, atomic_write_text, recover_dir, replace_dir, temp_dir_next_to
# Reading lives with the models (predict loads without importing training); the names stay here too.
from harness.models.bundle import (  # noqa: F401
    MODEL_FILE, MODEL_META, CheckpointError, short_reason, load_meta, load_model, load_weights, resolve,
)

TRAINER_STATE = "trainer_state.pt"
STATE_FILE = "state.json"
STEP_KEY = "global_step"  # in the safetensors metadata, trainer_state.pt and state.json


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def _write_weights(path: Path, model: torch.nn.Module, step: int | None) -> None:
    module = getattr(model, "module", model)  # ``model`` may be wrapped in DDP
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    metadata = {STEP_KEY: str(int(step))} if step is not None else None
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    meta: dict[str, Any],
    trainer_state: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> None:
    """Write the bundle into a temporary folder beside ``directory`` and rename it into place.

    With ``state`` (which must hold ``global_step``) the weights and ``trainer_state`` are stamped
    with that step, so resume can prove that every file belongs to the same step."""
    directory = Path(directory)
    step = None if state is None else int(state[STEP_KEY])
    tmp = temp_dir_next_to(directory)
    try:
        _write_weights(tmp / MODEL_FILE, model, step)
        write_json(tmp / MODEL_META, meta)
        if trainer_state is not None:
            trainer_state = {**trainer_state, STEP_KEY: step}
            atomic_write(tmp / TRAINER_STATE, lambda name: torch.save(trainer_state, name))
        if state is not None:
            write_json(tmp / STATE_FILE, state)
        faults.point("checkpoint.written")
        replace_dir(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_model(directory: Path, model: torch.nn.Module, meta: dict[str, Any]) -> None:
    """Weights + the metadata that rebuilds the model (a predict-only bundle), written atomically."""
    save_checkpoint(directory, model, meta)


def record_threshold(directory: Path, threshold: dict[str, Any]) -> None:
    """Add the calibrated decision threshold (harness.evaluation.threshold) to a saved checkpoint's
    model.json; predict reads it as its default. model.json carries no step, so this is safe alone."""
    path = Path(directory) / MODEL_META
    meta = json.loads(path.read_text(encoding="utf-8"))
    write_json(path, {**meta, "threshold": threshold})


def _weights_step(path: Path) -> int | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            value = (handle.metadata() or {}).get(STEP_KEY)
    except Exception as exc:
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file ({short_reason(exc)}); "
            "rerun with --no-resume to start over"
        ) from exc
    return int(value) if value is not None and str(value).lstrip("-").isdigit() else None


def load_trainer_state(directory: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(trainer_state, state) of a complete checkpoint, or None when there is none to resume.

    Finishes an interrupted save first (``recover_dir``). Raises CheckpointError, one line, when the
    files are unreadable or do not all belong to the same step."""
    directory = Path(directory)
    recover_dir(directory)
    if not (directory / STATE_FILE).is_file() or not (directory / TRAINER_STATE).is_file():
        return None
    fix = "rerun with --no-resume to start over"
    try:
        state = json.loads((directory / STATE_FILE).read_text())
        step = int(state[STEP_KEY])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{directory / STATE_FILE} is unreadable ({short_reason(exc)}); {fix}") from exc
    try:
        trainer_state = torch.load(directory / TRAINER_STATE, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError) as exc:
        # torch's message would suggest weights_only=False: never, for a file that failed the check
        raise CheckpointError(
            f"{directory / TRAINER_STATE} is corrupt or holds more than tensors and plain values "
            f"({type(exc).__name__}); it is not loaded. {fix[0].upper()}{fix[1:]}"
        ) from exc
    if not isinstance(trainer_state, dict):
        raise CheckpointError(f"{directory / TRAINER_STATE} is not a harness trainer state; {fix}")
    steps = {
        MODEL_FILE: _weights_step(directory / MODEL_FILE),
        TRAINER_STATE: trainer_state.get(STEP_KEY),
        STATE_FILE: step,
    }
    if len(set(steps.values())) != 1:
        found = ", ".join(f"{name}: {'no step' if s is None else f'step {s}'}" for name, s in steps.items())
        raise CheckpointError(
            f"{directory} mixes files of different steps ({found}), so it cannot resume exactly; {fix} "
            "or put back a complete checkpoint folder"
        )
    return trainer_state, state


