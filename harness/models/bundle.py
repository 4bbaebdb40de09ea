"""Reading a checkpoint bundle (see harness/training/checkpoint.py for the layout and the writing).

Apart from training so that predict and evaluation load a model without importing the trainer.
Only safetensors weights are read here: no pickled code runs on load.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load_file

from harness.common.errors import HarnessError
from harness.vocab.folder import RunFolder

MODEL_FILE = "model.safetensors"
MODEL_META = "model.json"


class CheckpointError(HarnessError, RuntimeError):
    """A checkpoint is missing, incomplete or built for plugins that are not installed."""


class NonFiniteScores(HarnessError, ArithmeticError):
    """A model's scores came out NaN or infinite (finite weights can still overflow): nothing
    computed from them is a number. The scoring code adds which checkpoint."""


def first_non_finite(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or an infinity, or None."""
    for name, tensor in state.items():
        # a NaN or an infinity makes the sum non-finite; only then (or on an overflowing sum) look closer
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def check_finite_scores(logits: torch.Tensor) -> None:
    """Stop scoring at the first NaN or infinite logit (never a NaN score written or a verdict given)."""
    if not bool(torch.isfinite(logits).all()):
        raise NonFiniteScores("the model's scores are NaN or infinite (its weights overflow or are damaged); "
                              "no score, metric or verdict was given: use another checkpoint")


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from a run folder, a checkpoint folder or its model.safetensors file."""
    from harness.common.files import old_dir_for

    path = Path(path)
    for candidate in (path, RunFolder(path).checkpoint, path.parent if path.suffix == ".safetensors" else None):
        if candidate is None:
            continue
        # a save killed between its two renames leaves the complete previous folder as .<name>.old
        for folder in (candidate, old_dir_for(candidate)):
            if (folder / MODEL_FILE).is_file() and (folder / MODEL_META).is_file():
                return folder
    raise CheckpointError(
        f"no checkpoint at {path}: expected {MODEL_FILE} and {MODEL_META} there or in {RunFolder(path).checkpoint}. "
        "Pass a run folder (runs/<id>) or its checkpoint folder."
    )


#: the heads a harness-trained model has; an imported bundle lists its own in model.json "heads"
ALL_HEADS: tuple[str, ...] = ("class", "local", "mask")


def bundle_heads(meta: dict[str, Any]) -> tuple[str, ...]:
    """The heads a bundle declares (class = P_C, local = P_m, mask = P_M); a harness bundle has all."""
    heads = meta.get("heads")
    return tuple(str(h) for h in heads) if isinstance(heads, (list, tuple)) else ALL_HEADS


def input_scale(meta: dict[str, Any]) -> str:
    """How the bundle's model scales its input (harness.models.inputs.SCALES); ImageNet by default."""
    from harness.models.inputs import DEFAULT_SCALE

    return str((meta.get("input") or {}).get("scale", DEFAULT_SCALE))


def load_meta(directory: Path) -> dict[str, Any]:
    """A bundle's model.json, read within bounds and checked field by field (``check_meta``): every
    way it can be unusable is one CheckpointError line naming the file and what is wrong with it."""
    path = Path(directory) / MODEL_META
    from harness.common.bounded import InputFileError, read_json

    try:
        meta = read_json(path, "checkpoint metadata")  # bounded: a hand-made file is one line too
    except InputFileError as exc:  # unreadable, too large, nested too deep, a byte-order mark, not JSON: it says which
        raise CheckpointError(f"{exc}; or copy the bundle again") from None
    if isinstance(meta, dict) and isinstance(meta.get("model"), dict) and meta.get("importer"):
        check_meta(meta, path)  # an imported model: its importer plugin rebuilds the architecture
        return meta
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict) or not meta["model"].get("backbone"):
        raise CheckpointError(f"{path} does not describe a model (it needs a \"model\" object with a \"backbone\"); "
                              "copy the checkpoint again from the run folder")
    check_meta(meta, path)
    return meta


#: the largest model input side a bundle may ask for (SBI's is 380; the harness's at most 1024)
MAX_BUNDLE_SIDE = 4096


def check_meta(meta: dict[str, Any], path: Path) -> None:
    """The fields predict and evaluate read from model.json, checked where it is read: its input
    side, crop rule, face detector, frame aggregation, threshold, input scale and heads. A bad one
    is a CheckpointError naming the file and the field, never a traceback later."""
    problem = _meta_problem(meta)
    if problem:
        raise CheckpointError(f"{path}: {problem}; fix that field, or copy the bundle again")


def _meta_problem(meta: dict[str, Any]) -> str | None:
    import json
    import math

    from harness.data.crop import CropRule
    from harness.extend.defaults import defaults
    from harness.models.inputs import SCALES
    from harness.vocab.config_check import AGGREGATIONS

    def shown(value: Any) -> str:
        return json.dumps(value, default=str)

    for key, side in (("img_size", meta.get("img_size")), ("model.img_size", meta["model"].get("img_size"))):
        integral = isinstance(side, (int, float)) and not isinstance(side, bool) and math.isfinite(side) and side == int(side)
        if side is not None and not (integral and 16 <= side <= MAX_BUNDLE_SIDE):
            return f"{key} = {shown(side)}: the model's input side must be a whole number of pixels from 16 to {MAX_BUNDLE_SIDE}"
    crop = meta.get("crop")
    if crop is not None and not isinstance(crop, dict):
        return f"crop = {shown(crop)}: must be an object of the crop rule's fields (crop_size, margin, ...)"
    try:
        CropRule.from_dict(crop, detector=str(meta.get("face_detector", defaults().legacy_face_detector)))
    except (TypeError, ValueError) as exc:
        return f"crop: {exc}"
    if not isinstance(meta.get("face_detector", ""), str):
        return f"face_detector = {shown(meta['face_detector'])}: must be a face detector's name"
    evaluation = (meta.get("run") or {}).get("eval") if isinstance(meta.get("run"), dict) else None
    for key in ("frame_aggregation", "video_aggregation"):
        value = (evaluation or {}).get(key, "max") if isinstance(evaluation, dict) else "max"
        if value not in AGGREGATIONS:
            return f"run.eval.{key} = {shown(value)}: must be one of {', '.join(AGGREGATIONS)}"
    return _meta_extras_problem(meta, SCALES, shown)


def _meta_extras_problem(meta: dict[str, Any], scales: tuple[str, ...], shown: Any) -> str | None:
    """The threshold, input scale and heads of model.json (each optional)."""
    import math

    record = meta.get("threshold")
    value = record.get("value") if isinstance(record, dict) else None
    if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                  and math.isfinite(value) and 0 <= value <= 1):
        return f"threshold.value = {shown(value)}: a decision threshold must be a number in [0, 1]"
    scale = (meta.get("input") or {}).get("scale") if isinstance(meta.get("input"), dict) else None
    if scale is not None and scale not in scales:
        return f"input.scale = {shown(scale)}: must be one of {', '.join(scales)}"
    heads = meta.get("heads")
    if heads is not None and not (isinstance(heads, list) and heads and all(h in ALL_HEADS for h in heads)):
        return f"heads = {shown(heads)}: must be a list of {', '.join(ALL_HEADS)}"
    return None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors' own error type; a truncated copy, a foreign file
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file ({short_reason(exc)}); copy it again from the run folder"
        ) from exc


def short_reason(exc: BaseException) -> str:
    """One line for a caught exception. The harness's own messages are already one line written for
    the user and stay whole (cut, a long path would hide the reason); foreign ones are cut at 120."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, HarnessError) and text:
        return text
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model from its bundle and load the weights (safetensors: no code runs).
    Every way the bundle can be unusable is a CheckpointError with a one-line message."""
    directory = resolve(path)
    meta = load_meta(directory)
    return _build(directory, meta, device), meta


def _build(directory: Path, meta: dict[str, Any], device: str | torch.device) -> torch.nn.Module:
    """The model ``meta`` (the bundle's model.json, already read) describes, with its weights, on ``device``."""
    from harness.models import build_model
    from harness.extend.registry import PluginError

    if meta.get("importer"):
        model = _imported_model(directory, meta)
        return _fill(model, directory, meta).to(device).eval()
    kwargs = dict(meta["model"])
    kwargs["pretrained"] = False  # the bundle's own weights replace any pretrained ones: never download
    try:
        model = build_model(**kwargs)
    except PluginError as exc:
        import os

        from harness.extend.registry import ENV_RESTRICT

        where = (f"not loaded here ({ENV_RESTRICT} is set)" if os.environ.get(ENV_RESTRICT) is not None
                 else "not installed here")
        raise CheckpointError(
            f"{directory} was trained with backbone {meta['model'].get('backbone')!r}, which is {where} ({exc}). "
            + (f"Unset {ENV_RESTRICT} or add the plugin to it." if "loaded" in where else "Install the plugin that provides it.")
        ) from exc
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{directory / MODEL_META} asks for a model this harness cannot build ({short_reason(exc)}); "
            "it was written by another harness or plugin version, or edited: use a matching version or copy it again"
        ) from exc
    return _fill(model, directory, meta).to(device).eval()


def _imported_model(directory: Path, meta: dict[str, Any]) -> torch.nn.Module:
    """The architecture of an imported bundle, built by the importer plugin that wrote it."""
    from harness.extend import registry

    name = str(meta["importer"])
    try:
        importer = registry.create("importer", name)
        return importer.build(meta["model"])
    except registry.PluginError as exc:
        raise CheckpointError(f"{directory} was imported by importer {name!r}, which is not usable here ({exc})") from exc
    except (TypeError, ValueError, KeyError, ImportError, RuntimeError) as exc:
        raise CheckpointError(f"{directory / MODEL_META}: importer {name!r} cannot build its model ({short_reason(exc)})") from exc


def _fill(model: torch.nn.Module, directory: Path, meta: dict[str, Any]) -> torch.nn.Module:
    """``model`` with the bundle's weights loaded (every key must fit, every value finite)."""
    state = finite_weights(directory)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), short_reason(exc))
        raise CheckpointError(
            f"{directory / MODEL_FILE} does not fit the model in {MODEL_META} ({first[:200]}); "
            "the two files come from different checkpoints: copy the folder again"
        ) from exc
    if missing or unexpected:
        raise CheckpointError(
            f"{directory / MODEL_FILE} does not fit the model in {MODEL_META}: "
            f"missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}"
        )
    return model


#: the safetensors metadata key a harness run stamps its weights with (``run_stamp`` of its config)
RUN_STAMP = "run_key"
#: the safetensors header entry that holds the file's own metadata (a save's step, nonce, run key)
_HEADER_METADATA = "__metadata__"
_MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header


@dataclass(frozen=True)
class BundleIdentity:
    """What a model bundle is, from its content alone (see ``bundle_identity``)."""

    sha256: str  # the bundle: its tensors and its model.json
    tensors: str  # name, dtype, shape and bytes of every tensor
    model_json: str  # model.json in canonical form
    run_key: str | None  # the run key the weights were stamped with when a harness run saved them


def _safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """(header, offset of the tensor data) of a safetensors file; CheckpointError when it is not one."""
    import json

    bad = f"{path} is truncated or not a safetensors file"
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size <= _MAX_HEADER:
                raise CheckpointError(f"{bad} (header length {size}); copy it again from the run folder")
            header = json.loads(handle.read(size))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{bad} ({short_reason(exc)}); copy it again from the run folder") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{bad} (its header is not an object); copy it again from the run folder")
    return header, 8 + size


def _tensor_parts(path: Path) -> tuple[dict[str, Any], Iterator[bytes]]:
    """(the file's own metadata; each tensor by name: its name, dtype and shape as one line, then its
    bytes, streamed). The metadata (a save's step, nonce, run key) is not among the parts."""
    header, base = _safetensors_header(path)
    entries = []
    end_of_file = path.stat().st_size
    for name in sorted(k for k in header if k != _HEADER_METADATA):
        entry = header[name]
        try:
            begin, end = (base + int(o) for o in entry["data_offsets"])
            described = [name, str(entry["dtype"]), [int(n) for n in entry["shape"]]]
        except (TypeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: tensor {name!r} has a damaged header entry ({short_reason(exc)}); "
                                  "copy it again from the run folder") from exc
        if not base <= begin <= end <= end_of_file:
            raise CheckpointError(f"{path} is truncated (tensor {name!r} ends past the file); copy it again from the run folder")
        entries.append((described, begin, end))

    def data() -> Iterator[bytes]:
        from harness.common.digest import canonical_json

        with open(path, "rb") as handle:
            for described, begin, end in entries:
                yield (canonical_json(described) + "\n").encode("utf-8")  # the bytes' length follows from it
                handle.seek(begin)
                left = end - begin
                while left:
                    block = handle.read(min(left, 1 << 20))
                    if not block:
                        raise CheckpointError(f"{path} is truncated; copy it again from the run folder")
                    left -= len(block)
                    yield block

    metadata = header.get(_HEADER_METADATA)
    return (metadata if isinstance(metadata, dict) else {}), data()


def bundle_identity(directory: str | Path, meta: dict[str, Any] | None = None) -> BundleIdentity:
    """The identity of a model bundle: sha256 of its tensors (name, dtype, shape and bytes of each)
    and of its model.json in canonical form. The safetensors header's own metadata (the save's step,
    nonce and run key) is left out, so two saves of identical content have one identity, and an
    edited model.json (another input scale, crop, threshold) is another bundle."""
    from harness.common.digest import sha256_json, sha256_parts

    folder = resolve(directory)
    metadata, data = _tensor_parts(folder / MODEL_FILE)
    tensors = sha256_parts(data)
    model_json = sha256_json(load_meta(folder) if meta is None else meta)
    run_key = metadata.get(RUN_STAMP)
    return BundleIdentity(sha256_json({"tensors": tensors, "model.json": model_json}), tensors, model_json,
                          str(run_key) if run_key is not None else None)


@dataclass
class Bundle:
    """A model bundle, the one type every command holds: its folder, its model.json and its identity,
    read and hashed once (``open_bundle``), and its model once ``load`` has put it on a device."""

    directory: Path
    meta: dict[str, Any]
    identity: BundleIdentity
    model: torch.nn.Module | None = None
    device: torch.device | None = None
    opened: tuple[Any, ...] = field(default=(), repr=False, compare=False)  # its files' sizes and times at open

    @property
    def sha256(self) -> str:
        """The bundle's identity: its tensors and its model.json (``bundle_identity``)."""
        return self.identity.sha256

    @property
    def imported(self) -> bool:
        return bool(self.meta.get("importer"))

    def load(self, device: str | torch.device) -> "Bundle":
        """This bundle with its model on ``device`` (a copy: the opened one stays light), built from the
        model.json read at open and the weights. A bundle whose
        files changed since it was opened and hashed is refused (its numbers would carry another
        bundle's identity): CheckpointError, one line."""
        if _files_state(self.directory) != self.opened:
            raise CheckpointError(f"{self.directory} changed while it was being evaluated (its sha256 is not the one "
                                  "this evaluation is named by); run the same command again")
        return replace(self, model=_build(self.directory, self.meta, device), device=torch.device(device))


def _files_state(directory: Path) -> tuple[Any, ...]:
    """Size and modification time of a bundle's two files: what tells a bundle rewritten since it was hashed."""
    return tuple((s.st_size, s.st_mtime_ns) for s in ((directory / n).stat() for n in (MODEL_FILE, MODEL_META)))


def open_bundle(path: str | Path) -> Bundle:
    """A bundle (run folder, checkpoint folder or its weights file) read and hashed once, not loaded;
    CheckpointError, one line, when unusable."""
    directory = resolve(path)
    opened = _files_state(directory)
    meta = load_meta(directory)
    return Bundle(directory, meta, bundle_identity(directory, meta), opened=opened)


def bundle_sha256(directory: str | Path) -> str:
    """The bundle's identity as one sha256 (``bundle_identity``): what evaluations are keyed by."""
    return bundle_identity(directory).sha256


def run_stamp(run: Any) -> str:
    """The run key a harness run stamps its checkpoint files with: a hash of the run configuration
    that model.json records under "run", so the weights can prove which run wrote them."""
    import json

    from harness.common.digest import sha256_parts

    # the trainer's formula since run keys were stamped (not canonical_json): stamps already on disk still match
    return sha256_parts([json.dumps(run, sort_keys=True, default=str).encode()])[:10]


def load_weights(directory: Path) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint folder (safetensors; a bad file is a CheckpointError)."""
    return _read_weights(Path(directory) / MODEL_FILE)


def finite_weights(directory: Path) -> dict[str, torch.Tensor]:
    """``load_weights``, and a NaN or infinite value is a CheckpointError naming the file and the
    first bad tensor (what every model loaded for scoring goes through)."""
    path = Path(directory) / MODEL_FILE
    state = _read_weights(path)
    bad = first_non_finite(state)
    if bad is not None:
        raise CheckpointError(f"{path}: tensor {bad!r} holds NaN or infinite values; the weights are damaged "
                              "(a diverged training or a broken copy): use another checkpoint")
    return state
