"""Foreign checkpoints -> harness model bundles, through importer plugins (``register_importers``).

A bundle written here is the same folder a run writes (``model.safetensors`` + ``model.json``), with
``"importer"`` naming the plugin that rebuilds the architecture, so `harness evaluate` and `harness
predict` use it like any checkpoint. Two ways in (both shown in `harness evaluate --help`):

    harness import sbi FFc23.tar --out models/sbi-ffc23        # once; then --checkpoint models/sbi-ffc23
    harness evaluate --checkpoint sbi:FFc23.tar --test celebdf  # imported on the fly into the cache

Security: a foreign file is read with ``torch.load(weights_only=True)`` (or safetensors) only. A
file that needs a pickle (custom classes, code) is refused with one line and never executed.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from harness.common.digest import sha256_file
from harness.models.bundle import MODEL_FILE, MODEL_META, CheckpointError, resolve

IMPORTED_DIR = "imported"  # under the cache home: bundles imported on the fly (--checkpoint NAME:FILE)


def importer_names() -> list[str]:
    from harness.extend import registry

    return [e.name for e in registry.entries("importer")]


def importers_text() -> str:
    """``sbi (SelfBlendedImages ...), ...``: what an unknown-format message lists."""
    from harness.extend import registry

    entries = registry.entries("importer")
    return ", ".join(f"{e.name} ({e.description})" if e.description else e.name for e in entries) or "(none installed)"


def file_sha256(path: Path) -> str:
    return sha256_file(path)


def read_checkpoint(path: str | Path) -> Any:
    """The content of a foreign checkpoint, read without running code: safetensors, or torch.load
    with weights_only=True. A file that needs a pickle is a CheckpointError and is never executed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; check the path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors' own error type
            raise CheckpointError(f"{path}: not a readable safetensors file ({type(exc).__name__})") from exc
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message suggests weights_only=False: never, for a file that failed the check
        reason = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "Unsupported" in line), "")
        raise CheckpointError(
            f"{path}: refused: loading it needs a pickle ({reason[:160] or 'objects beyond tensors and plain values'}); "
            "it was not executed. Save the weights as a plain state dict (torch.save({'model': model.state_dict()})) "
            "or as .safetensors") from exc
    except Exception as exc:  # not a torch file at all, truncated, a zip of something else
        raise CheckpointError(f"{path}: not a torch checkpoint ({type(exc).__name__}); importers: {importers_text()}") from exc


def _importer(name: str) -> Any:
    from harness.extend import registry

    try:
        return registry.create("importer", name)
    except registry.PluginError as exc:
        raise CheckpointError(f"unknown checkpoint format {name!r}: {exc}; importers: {importers_text()}") from exc


def detect(path: Path) -> str:
    """The name of the one importer that accepts ``path``; a CheckpointError naming the importers
    when none does (a file that needs a pickle is refused before any importer looks at it)."""
    read_checkpoint(path)  # refuses pickles with its own line
    found = [name for name in importer_names() if _importer(name).accepts(path)]
    if not found:
        raise CheckpointError(f"{path}: unknown checkpoint format (not a harness checkpoint folder, and no importer "
                              f"accepts it); importers: {importers_text()}. Pass --checkpoint NAME:{path} to choose one")
    return found[0]


def import_checkpoint(name: str, path: str | Path, out: str | Path, *, option: str | None = None,
                      force: bool = False) -> Path:
    """Convert ``path`` with importer ``name`` into a bundle folder ``out`` (written atomically) and
    prove it loads: the rebuilt model takes every weight. Returns ``out``.

    ``option`` (the flag that named ``out``, e.g. ``--out``) marks ``out`` as the user's: an existing
    file or non-empty folder there is refused before any work unless ``force``, and ``path`` itself is
    never replaced (harness.common.files.output_folder). Without it ``out`` is the harness's own cache
    folder, replaced whole."""
    from safetensors.torch import save_file

    from harness.common.files import atomic_write_text, check_output, output_folder
    from harness.models.bundle import first_non_finite, load_model

    path, out = Path(path).expanduser(), Path(out)
    if option is not None:  # the user's path: refused in one line before the file is read
        check_output(out, option, folder=True, force=force, inputs=[path])
    importer = _importer(name)
    read_checkpoint(path)  # the pickle refusal comes first, whatever the importer does
    try:
        imported = importer.read(path)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a plugin's own words on a file it cannot use
        raise CheckpointError(f"{path}: importer {name!r} cannot read it ({exc}); importers: {importers_text()}") from exc
    meta = dict(imported.meta)
    meta["importer"] = name
    meta.setdefault("heads", ["class"])
    origin = dict(meta.get("origin") or {})
    origin.update({"importer": name, "file": path.name, "file_sha256": file_sha256(path)})
    meta["origin"] = origin
    import torch

    bad = next((k for k, v in imported.state_dict.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:  # a damaged file, or an importer that let a list through
        raise CheckpointError(f"{path}: {bad} is a {type(imported.state_dict[bad]).__name__}, not a tensor; the file is "
                              f"damaged or not a checkpoint {name!r} knows")
    tensors = {k: v.detach().cpu().contiguous() for k, v in imported.state_dict.items()}
    bad = first_non_finite(tensors)
    if bad is not None:
        raise CheckpointError(f"{path}: tensor {bad!r} holds NaN or infinite values; the weights are damaged "
                              "(a diverged training or a broken copy): nothing was imported, use another file")
    with output_folder(out, option or "the imported-checkpoint cache folder", force=force or option is None,
                       inputs=[path]) as tmp:
        save_file(tensors, str(tmp / MODEL_FILE))
        atomic_write_text(tmp / MODEL_META, json.dumps(meta, indent=2, sort_keys=True, default=str))
        try:
            load_model(tmp)  # every key fits the importer's architecture, or one line now
        except CheckpointError as exc:  # its message names the temporary folder, removed on the way out
            raise CheckpointError(f"{path}: importer {name!r} read it, but {_bundle_reason(exc, tmp)}; the file is "
                                  f"damaged or not a checkpoint {name!r} knows: copy it again from where it was "
                                  "published") from None
    return out


def _bundle_reason(exc: CheckpointError, tmp: Path) -> str:
    """What was wrong with the bundle made from a foreign file, without the temporary folder it was
    made in (gone by the time the user reads it) or the fix meant for a copied bundle."""
    text = str(exc).replace(f"{tmp / MODEL_FILE} does not fit", "its weights do not fit")
    text = text.replace(str(tmp / MODEL_META), MODEL_META).replace(str(tmp), "the bundle")
    return text.split("; ")[0]


def resolve_checkpoint(text: str, cache_dir: Path | None = None) -> Path:
    """The bundle folder ``--checkpoint`` names: a run or checkpoint folder, ``NAME:FILE`` (imported
    with importer NAME), or a foreign file whose importer is recognised (imported into the cache
    home's ``imported/<sha256>/``, reused next time)."""
    from harness.common.files import cache_home

    name, _, rest = text.partition(":")
    if rest and name in importer_names():
        source, importer = Path(rest).expanduser(), name
    else:
        if ":" in text and not Path(text).expanduser().exists() and name.isidentifier():
            raise CheckpointError(f"--checkpoint {text}: unknown importer {name!r}; importers: {importers_text()}")
        source = Path(text).expanduser()
        try:
            return resolve(source)
        except CheckpointError:
            if not source.is_file():
                raise
        importer = detect(source)
    if not source.is_file():
        raise CheckpointError(f"--checkpoint {text}: no such file {source}")
    out = Path(cache_dir if cache_dir is not None else cache_home()).expanduser() / IMPORTED_DIR / f"{importer}-{file_sha256(source)[:16]}"
    try:
        return resolve(out)
    except CheckpointError:
        return import_checkpoint(importer, source, out)
