"""Foreign checkpoints -> harness model bundles, through importer plugins (``register_importers``).

A bundle written here is the same folder a run writes (``model.safetensors`` + ``model.json``), with
``"importer"`` naming the plugin that rebuilds the architecture, so `harness evaluate` and `harness
predict` use it like any checkpoint. Two ways in (both shown in `harness evaluate --help`):

    harness import sbi FFc23.tar --out models/sbi-ffc23        # once; then --checkpoint models/sbi-ffc23
    harness evaluate --checkpoint sbi:FFc23.tar --test celebdf  # imported on the fly into the cache

What ``--checkpoint`` names (``parse_spec``; `run`, `evaluate`, `predict` and `import` share it):
a bundle folder, or a foreign file as ``[IMPORTER:]FILE[?KEY=VALUE&KEY=VALUE]``. Without
``IMPORTER:`` the importer whose ``accepts(path)`` says yes is used (two that both say yes: one
line naming both). The options after ``?`` are the importer's factory options, e.g.
``deepfakebench:ckpt.pth?arch=core`` (an option it does not take: one line listing those it does).

Importers own their files: the core never opens a foreign file, it asks the importers. Torch-based
importers read with ``read_checkpoint`` (``torch.load(weights_only=True)`` or safetensors), so a
file that needs a pickle (custom classes, code) is refused with one line and never executed; their
``accepts`` sniffs the pickle's strings with ``checkpoint_strings`` (pickletools: nothing runs).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness.common.digest import sha256_file
from harness.models.bundle import MODEL_FILE, MODEL_META, CheckpointError, resolve, short_reason

IMPORTED_DIR = "imported"  # under the cache home: bundles imported on the fly (--checkpoint NAME:FILE)
#: the largest pickle ``checkpoint_strings`` reads (a state dict's pickle is kilobytes; tensors are apart)
MAX_PICKLE_BYTES = 64 << 20
#: how ``--checkpoint`` options are written, for the messages that explain it
OPTIONS_FORM = "IMPORTER:FILE?KEY=VALUE&KEY=VALUE (e.g. deepfakebench:model.pth?arch=core)"


def importer_names() -> list[str]:
    from harness.extend import registry

    return [e.name for e in registry.entries("importer")]


def importers_text() -> str:
    """``sbi (SelfBlendedImages ...), ...``: what an unknown-format message lists."""
    from harness.extend import registry

    entries = registry.entries("importer")
    return ", ".join(f"{e.name} ({e.description})" if e.description else e.name for e in entries) or "(none installed)"


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


def checkpoint_strings(path: str | Path) -> frozenset[str] | None:
    """The strings of a torch checkpoint's pickle (its dict keys: ``"model"``,
    ``"net._conv_stem.weight"`` ...), read with pickletools, so nothing in it runs and no tensor is
    loaded, or the tensor names of a .safetensors header; None when ``path`` is neither (torch zip,
    legacy torch or safetensors). What a torch-based importer's ``accepts`` sniffs."""
    import zipfile

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            return _safetensors_names(path)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")), None)
                if name is None or archive.getinfo(name).file_size > MAX_PICKLE_BYTES:
                    return None
                return _pickle_strings(archive.read(name))
        return _legacy_strings(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError):
        return None


def _safetensors_names(path: Path) -> frozenset[str] | None:
    """The tensor names of a safetensors file: its header is 8 bytes of length, then JSON."""
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        if not 0 < size <= MAX_PICKLE_BYTES:
            return None
        header = json.loads(handle.read(size))
    return frozenset(k for k in header if k != "__metadata__") if isinstance(header, dict) else None


def _pickle_strings(data: bytes) -> frozenset[str]:
    import pickletools

    text_ops = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}
    return frozenset(arg for op, arg, _ in pickletools.genops(data) if op.name in text_ops and isinstance(arg, str))


#: the first pickle of a legacy (pre-zip) torch file: torch.serialization's magic number
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _legacy_strings(path: Path) -> frozenset[str] | None:
    """A legacy torch file is four pickles (magic, protocol, sys info, the object) then the storages;
    read one opcode at a time from the file, so a file that is no pickle stops at its first byte."""
    import pickletools

    text_ops = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}
    with open(path, "rb") as handle:
        first = [arg for op, arg, _ in pickletools.genops(handle) if op.name in ("LONG1", "LONG4", "BININT", "INT")]
        if first[:1] != [_LEGACY_MAGIC]:
            return None
        for _ in range(2):  # the protocol version and the sys info
            for _step in pickletools.genops(handle):
                pass
        return frozenset(arg for op, arg, _ in pickletools.genops(handle) if op.name in text_ops and isinstance(arg, str))


@dataclass(frozen=True)
class CheckpointSpec:
    """What ``--checkpoint`` names: ``path`` (a bundle folder or a foreign file), the importer
    chosen with ``IMPORTER:`` (None: detect it) and the importer options given after ``?``."""

    text: str
    path: Path
    importer: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)


def parse_spec(text: str) -> CheckpointSpec:
    """``[IMPORTER:]PATH[?KEY=VALUE&...]`` -> CheckpointSpec. A path that exists as written is a
    path, whatever it contains; an unknown ``IMPORTER:`` or malformed options are one line."""
    text = str(text)
    if Path(text).expanduser().exists():
        return CheckpointSpec(text, Path(text).expanduser())
    name, sep, rest = text.partition(":")
    importer = None
    if sep and name in importer_names():
        importer, text_path = name, rest
    elif sep and name.isidentifier() and len(name) > 1:  # one letter: a Windows drive
        from harness.common.errors import suggest

        hint = suggest(name, importer_names())
        raise CheckpointError(f"--checkpoint {text}: unknown importer {name!r}" + (f"; did you mean {hint!r}?" if hint else "")
                              + f" Importers: {', '.join(importer_names()) or '(none installed)'} "
                              "(`harness plugins --kind importer` says what each reads).")
    else:
        text_path = text
    options: dict[str, str] = {}
    if "?" in text_path and not Path(text_path).expanduser().exists():
        text_path, query = text_path.rsplit("?", 1)
        options = _parse_options(text, query)
    return CheckpointSpec(text, Path(text_path).expanduser(), importer, options)


def _parse_options(text: str, query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in query.split("&"):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CheckpointError(f"--checkpoint {text}: {item!r} is not KEY=VALUE; importer options are written {OPTIONS_FORM}")
        options[key.strip()] = value.strip()
    return options


def _importer(name: str, options: Mapping[str, str] | None = None) -> Any:
    """Importer ``name`` built with ``options``: an unknown importer, an option it does not take or a
    value it refuses (an unsupported architecture) is one CheckpointError line."""
    from harness.common.errors import HarnessError
    from harness.extend import registry

    try:
        return registry.create("importer", name, **dict(options or {}))
    except registry.PluginError as exc:
        if name in importer_names():  # an option it does not take: the contracts' line names those it does
            raise CheckpointError(f"importer {name!r}: {exc}; options are written {OPTIONS_FORM}") from exc
        raise CheckpointError(f"unknown checkpoint format {name!r}: {exc}; importers: {importers_text()}") from exc
    except HarnessError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # the importer refused an option's value
        raise CheckpointError(f"importer {name!r}: {importer_reason(exc)}") from exc


#: the longest reason of an importer's own message kept in a line
MAX_REASON = 400


def importer_reason(exc: BaseException) -> str:
    """An importer's ValueError is its one-line message for the user (the contract): kept whole up
    to MAX_REASON; any other exception is named with its type."""
    text = " ".join(str(exc).split()) if str(exc).strip() else ""
    if isinstance(exc, ValueError) and text:
        return text[:MAX_REASON]
    return short_reason(exc)


def _accepts(name: str, path: Path) -> bool:
    """Whether importer ``name`` recognises ``path``; an importer that fails while looking is one line."""
    from harness.common.errors import HarnessError

    importer = _importer(name)
    try:
        return bool(importer.accepts(path))
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's bug, reported by name instead of a traceback
        raise CheckpointError(f"{path}: importer {name!r} failed while looking at it ({short_reason(exc)}); "
                              f"choose the importer with --checkpoint NAME:{path}, or fix or uninstall {name!r}") from exc


def detect(path: Path) -> str:
    """The name of the one importer that accepts ``path``; a CheckpointError naming the importers
    when none does, or naming both when two do (then ``NAME:FILE`` chooses)."""
    found = [name for name in importer_names() if _accepts(name, path)]
    if len(found) > 1:
        raise CheckpointError(f"{path}: importers {' and '.join(repr(n) for n in found)} {'both' if len(found) == 2 else 'all'} "
                              f"accept it; choose one with "
                              f"--checkpoint {found[0]}:{path} (or {', '.join(f'{n}:' for n in found[1:])}...)")
    if not found:
        raise CheckpointError(f"{path}: unknown checkpoint format (not a harness checkpoint folder, and no importer "
                              f"accepts it); importers: {importers_text()}. Pass --checkpoint NAME:{path} to choose one")
    return found[0]


def import_checkpoint(name: str, path: str | Path, out: str | Path, options: Mapping[str, str] | None = None,
                      file_sha256: str | None = None, *, option: str | None = None, force: bool = False) -> Path:
    """Convert ``path`` with importer ``name`` (built with ``options``) into a bundle folder ``out``
    (written atomically) and prove it loads: the rebuilt model takes every weight. Returns ``out``.

    ``option`` (the flag that named ``out``, e.g. ``--out``) marks ``out`` as the user's: an existing
    file or non-empty folder there is refused before any work unless ``force``, and ``path`` itself is
    never replaced (harness.common.files.output_folder). Without it ``out`` is the harness's own cache
    folder, replaced whole."""
    from harness.common.files import check_output

    path, out = Path(path).expanduser(), Path(out)
    if option is not None:  # the user's path: refused in one line before the file is read
        check_output(out, option, folder=True, force=force, inputs=[path])
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; check the path")
    importer = _importer(name, options)
    try:
        imported = importer.read(path)  # the importer reads its own format; torch ones refuse pickles
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:  # a plugin's own words on a file it cannot use
        raise CheckpointError(f"{path}: importer {name!r} cannot read it: {importer_reason(exc)} "
                              f"(importers: {', '.join(importer_names())})") from exc
    meta = bundle_meta(imported.meta, name, str(importer.version), path, options or {}, file_sha256)
    _write_bundle(imported.state_dict, meta, path, out, option=option, force=force)
    return out


def bundle_meta(meta: Mapping[str, Any], name: str, version: str, path: Path, options: Mapping[str, str],
                file_sha256: str | None = None) -> dict[str, Any]:
    """The bundle's model.json: the importer's metadata, with the origin every imported model
    records (importer and its version and options, the file and its sha256, the architecture)."""
    meta = dict(meta)
    meta["importer"] = name
    meta.setdefault("heads", ["class"])
    origin = dict(meta.get("origin") or {})
    origin.update({"importer": name, "importer_version": version, "file": path.name,
                   "file_sha256": file_sha256 or sha256_file(path)})
    if options:
        origin["options"] = dict(options)
    if meta.get("architecture"):
        origin["architecture"] = str(meta["architecture"])
    meta["origin"] = origin
    return meta


def _write_bundle(state_dict: Mapping[str, Any], meta: dict[str, Any], path: Path, out: Path, *,
                  option: str | None, force: bool) -> None:
    """``model.safetensors`` + ``model.json`` into ``out`` (atomically, see ``import_checkpoint`` for
    ``option`` and ``force``), once every tensor is finite and the model loads them."""
    import torch
    from safetensors.torch import save_file

    from harness.common.files import atomic_write_text, output_folder
    from harness.models.bundle import first_non_finite, load_model

    name = str(meta["importer"])
    bad = next((k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:  # a damaged file, or an importer that let a list through
        raise CheckpointError(f"{path}: {bad} is a {type(state_dict[bad]).__name__}, not a tensor; the file is "
                              f"damaged or not a checkpoint {name!r} knows")
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
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


def imported_folder(name: str, version: str, file_sha256: str, options: Mapping[str, str], cache_dir: Path | None = None) -> Path:
    """Where ``--checkpoint NAME:FILE`` is imported on the fly: keyed by the importer, its version,
    the file's sha256 and the options, so a new importer version or option imports again."""
    from harness.common.digest import sha256_json
    from harness.common.files import cache_home

    key = f"{name}-v{version}-{file_sha256[:16]}" + (f"-{sha256_json(dict(options))[:8]}" if options else "")
    return Path(cache_dir if cache_dir is not None else cache_home()).expanduser() / IMPORTED_DIR / key


def _bundle_reason(exc: CheckpointError, tmp: Path) -> str:
    """What was wrong with the bundle made from a foreign file, without the temporary folder it was
    made in (gone by the time the user reads it) or the fix meant for a copied bundle."""
    text = str(exc).replace(f"{tmp / MODEL_FILE} does not fit", "its weights do not fit")
    text = text.replace(str(tmp / MODEL_META), MODEL_META).replace(str(tmp), "the bundle")
    return text.split("; ")[0]


def resolve_checkpoint(text: str, cache_dir: Path | None = None) -> Path:
    """The bundle folder ``--checkpoint`` names (``parse_spec``): a run or checkpoint folder, or a
    foreign file imported with the importer it names or the one that accepts it, into the cache
    home's ``imported/`` (reused next time)."""
    spec = parse_spec(text)
    if spec.importer is None and not spec.options:
        try:
            return resolve(spec.path)
        except CheckpointError:
            if not spec.path.is_file():
                raise
    if not spec.path.is_file():
        raise CheckpointError(f"--checkpoint {text}: no such file {spec.path}; check the path")
    name = spec.importer or detect(spec.path)
    digest = sha256_file(spec.path)
    out = imported_folder(name, str(_importer(name, spec.options).version), digest, spec.options, cache_dir)
    try:
        return resolve(out)
    except CheckpointError:
        return import_checkpoint(name, spec.path, out, spec.options, digest)
