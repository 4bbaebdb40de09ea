"""Checkpoints: weights in safetensors, the config that builds the model in JSON, trainer state apart.

A checkpoint folder is a self-contained bundle that `harness predict` loads without the run folder:

    model.safetensors   weights only (no pickled code can run on load)
    model.json          build_model(**model) kwargs, the image size, normalisation, plugin versions
    trainer_state.pt    optimizer / scheduler / RNG state for --resume (torch.load weights_only=True)
    state.json          epoch, step, the selection so far (losses: the run folder's train_log.jsonl)

Crash consistency by construction: the whole folder is written under a temporary name
(``.checkpoint.<random>.tmp``) and renamed into place (``harness.common.files.replace_dir``), so a kill at
any instant leaves either the previous complete checkpoint or the new one, never a mix. Each file
also names its step (safetensors metadata ``global_step``, ``trainer_state["global_step"]``,
``state.json``), the nonce of its save and the run key of its run; resuming verifies they agree
and refuses a mixed set (edited or copied by hand) or another run's checkpoint with one line.
Stale temporaries of a killed save are removed on the next resume.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from harness.common import faults
from harness.common import runtime as dd
from harness.common.files import atomic_write, atomic_write_text, recover_dir, replace_dir, temp_dir_next_to
# Reading lives with the models (predict loads without importing training); the names stay here too.
from harness.models.bundle import (  # noqa: F401
    MODEL_FILE, MODEL_META, RUN_STAMP, CheckpointError, short_reason, load_meta, load_model, load_weights, resolve,
)

TRAINER_STATE = "trainer_state.pt"
STATE_FILE = "state.json"
STEP_KEY = "global_step"  # in the safetensors metadata, trainer_state.pt and state.json
NONCE_KEY = "save_nonce"  # random per save: files of two saves at the same step differ here
RUN_KEY = RUN_STAMP  # run_stamp() of the run that wrote the files: another run's are refused


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def _write_weights(path: Path, model: torch.nn.Module, stamp: dict[str, Any] | None) -> None:
    module = dd.unwrap(model)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    metadata = {k: str(v) for k, v in stamp.items() if v is not None} if stamp else None
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _last_step(directory: Path) -> str:
    """The step of the complete checkpoint in ``directory``, for a message ("none" when there is none)."""
    try:
        return f"step {int(json.loads((directory / STATE_FILE).read_text())[STEP_KEY])}"
    except (OSError, ValueError, KeyError, TypeError):
        return "none"


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    meta: dict[str, Any],
    trainer_state: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    run_key: str | None = None,
) -> None:
    """Write the bundle into a temporary folder beside ``directory`` and rename it into place.

    With ``state`` (which must hold ``global_step``) every file is stamped with that step, a nonce
    of this save and ``run_key``, so resume can prove that every file comes from one save of this
    run. A save that cannot be written (a full disk) is a CheckpointError naming the folder and the
    step of the complete checkpoint still there."""
    import secrets

    directory = Path(directory)
    stamp = None
    if state is not None:
        stamp = {STEP_KEY: int(state[STEP_KEY]), NONCE_KEY: secrets.token_hex(8), RUN_KEY: run_key}
        state = {**state, **stamp}
    elif run_key is not None:  # a model-only bundle names its run too: its provenance is checked against it
        stamp = {RUN_KEY: run_key}
    tmp = temp_dir_next_to(directory)
    try:
        _write_weights(tmp / MODEL_FILE, model, stamp)
        write_json(tmp / MODEL_META, meta)
        if trainer_state is not None:
            trainer_state = {**trainer_state, **(stamp or {STEP_KEY: None})}
            atomic_write(tmp / TRAINER_STATE, lambda name: torch.save(trainer_state, name))
        if state is not None:
            write_json(tmp / STATE_FILE, state)
        faults.point("checkpoint.written")
        replace_dir(tmp, directory)
    except (OSError, RuntimeError, SafetensorError) as exc:  # ENOSPC, or safetensors/torch failing to write
        at = f" at step {stamp[STEP_KEY]}" if stamp and STEP_KEY in stamp else ""
        raise CheckpointError(
            f"could not write the checkpoint {directory}{at} ({short_reason(exc)}); the last complete "
            f"checkpoint there is {_last_step(directory)}: free space (or fix the folder) and run the same "
            "command again to resume from it") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_model(directory: Path, model: torch.nn.Module, meta: dict[str, Any], run_key: str | None = None) -> None:
    """Weights + the metadata that rebuilds the model (a predict-only bundle), written atomically;
    ``run_key``: the run that trained it, stamped into the weights."""
    save_checkpoint(directory, model, meta, run_key=run_key)


def record_threshold(directory: Path, threshold: dict[str, Any]) -> None:
    """Add the calibrated decision threshold (harness.models.threshold) to a saved checkpoint's
    model.json; predict reads it as its default. model.json carries no step, so this is safe alone."""
    path = Path(directory) / MODEL_META
    meta = json.loads(path.read_text(encoding="utf-8"))
    write_json(path, {**meta, "threshold": threshold})


def _weights_stamp(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as exc:
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file ({short_reason(exc)}); "
            "rerun with --no-resume to start over"
        ) from exc
    value = meta.get(STEP_KEY)
    step = int(value) if value is not None and str(value).lstrip("-").isdigit() else None
    return {STEP_KEY: step, NONCE_KEY: meta.get(NONCE_KEY), RUN_KEY: meta.get(RUN_KEY)}


def _describe(stamp: dict[str, Any]) -> str:
    step = "no step" if stamp.get(STEP_KEY) is None else f"step {stamp[STEP_KEY]}"
    return step + (f" save {stamp[NONCE_KEY]}" if stamp.get(NONCE_KEY) else "")


def load_trainer_state(directory: Path, run_key: str | None = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(trainer_state, state) of a complete checkpoint, or None when there is none to resume.

    Finishes an interrupted save first (``recover_dir``). Raises CheckpointError, one line, when the
    files are unreadable, do not all come from one save (step and nonce), or were written by
    another run than ``run_key``."""
    directory = Path(directory)
    recover_dir(directory)
    if not (directory / STATE_FILE).is_file() or not (directory / TRAINER_STATE).is_file():
        return None
    fix = "rerun with --no-resume to start over"
    try:
        from harness.common.bounded import read_json

        state = read_json(directory / STATE_FILE, "checkpoint state")
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
    stamps = {
        MODEL_FILE: _weights_stamp(directory / MODEL_FILE),
        TRAINER_STATE: {k: trainer_state.get(k) for k in (STEP_KEY, NONCE_KEY, RUN_KEY)},
        STATE_FILE: {STEP_KEY: step, NONCE_KEY: state.get(NONCE_KEY), RUN_KEY: state.get(RUN_KEY)},
    }
    if len({(s[STEP_KEY], s[NONCE_KEY]) for s in stamps.values()}) != 1:
        found = ", ".join(f"{name}: {_describe(s)}" for name, s in stamps.items())
        raise CheckpointError(
            f"{directory} mixes files of different saves ({found}), so it cannot resume exactly; {fix} "
            "or put back a complete checkpoint folder of this run"
        )
    written_by = state.get(RUN_KEY)
    if run_key is not None and written_by is not None and written_by != run_key:
        raise CheckpointError(
            f"{directory} was written by another run (run key {written_by}, this run {run_key}); it is not "
            f"resumed: {fix}, or put back this run's own checkpoint folder"
        )
    return trainer_state, state


