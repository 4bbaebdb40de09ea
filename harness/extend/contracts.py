"""What each plugin kind must provide, the optional capabilities it may add, and its options.

The contracts are the Protocols in ``harness/extend/types.py``: one per kind, and one per named
capability (a Protocol that extends the kind's). A factory that is a class is checked for the
kind's methods when the plugin registers; every factory's first instance is checked for all of
the kind's members when it is built. A missing member is a ``PluginError`` naming the plugin,
its package and the member, instead of an ``AttributeError`` deep inside a run.

This module is the only part of the core that looks inside a plugin. The rest asks it:
``capable(obj, kind, capability)`` for an optional member, ``options(entry)`` for the keyword
options a factory takes (its signature, read once), ``entry.extra`` for what ``register()`` got
(``REGISTER_OPTIONS``). ``tests/test_core_boundary.py`` refuses a ``getattr``, ``hasattr`` or
signature probe anywhere else.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from harness.common.errors import PluginError, suggest
from harness.extend import types as t

if TYPE_CHECKING:
    from harness.extend.registry import PluginEntry

#: kind -> (its Protocol, {capability: the Protocol that adds it})
CONTRACTS: dict[str, tuple[type, dict[str, type]]] = {
    "blender": (t.Blender, {"pair": t.PairBlender}),
    "backbone": (t.Backbone, {"weights": t.PretrainedBackbone}),
    "dataset": (t.Dataset, {"splits": t.SplitDataset, "notes": t.NotedDataset,
                            "compression": t.CompressedDataset, "looked_in": t.LocatedDataset}),
    "face_detector": (t.FaceDetector, {"two_stage": t.TwoStageDetector, "upsample": t.UpsamplingDetector}),
    "evaluator": (t.Evaluator, {}),
    "logger": (t.TrainLogger, {}),
    "importer": (t.Importer, {}),
}

#: what a plugin builds, beside the plugin itself (same shape as CONTRACTS): the network an
#: importer's ``build()`` returns
PRODUCTS: dict[str, tuple[type, dict[str, type]]] = {
    "imported_network": (t.ImportedNetwork, {"cam_layer": t.GradCamNetwork}),
}

#: attributes a factory class must define on the class itself (the core reads them before it builds
#: one: an importer's ``version`` keys the cache of bundles it imported), checked at registration
CLASS_ATTRIBUTES: dict[str, tuple[str, ...]] = {"importer": ("version",)}

#: keyword options ``register(...)`` accepts besides name, factory, description and replace:
#: blender ``presets={name: {option: value}}``; face detector ``landmark_model="..."`` (the
#: landmark model its crops fit, recorded in the crop rule) and ``precropped=True`` (each image is
#: one face, already cropped: the crop rule takes the whole image, and with no landmarks it cannot
#: feed training); logger ``check=fn`` (raises with what to install, before any work starts)
REGISTER_OPTIONS: dict[str, set[str]] = {"blender": {"presets"}, "face_detector": {"landmark_model", "precropped"},
                                         "logger": {"check"}}

_checked: set[tuple[str, str, str]] = set()
_options: dict[tuple[str, str, str], FactoryOptions] = {}


def members(protocol: type) -> tuple[set[str], set[str]]:
    """(methods, attributes) a Protocol declares, its bases' included."""
    methods: set[str] = set()
    attributes: set[str] = set()
    for cls in protocol.__mro__:
        if cls in (object,) or not getattr(cls, "_is_protocol", False) or cls.__name__ in ("Protocol", "Generic"):
            continue
        attributes |= set(getattr(cls, "__annotations__", {}))
        methods |= {n for n, v in vars(cls).items() if inspect.isfunction(v) and (n == "__call__" or not n.startswith("_"))}
    return methods, attributes - methods


def _required(kind: str) -> tuple[type, set[str], set[str]]:
    protocol = CONTRACTS[kind][0]
    methods, attributes = members(protocol)
    return protocol, methods, attributes


def _broken(entry: PluginEntry, protocol: type, missing: list[str], what: str) -> Exception:
    return PluginError(
        f"{entry.kind.replace('_', ' ')} {entry.name!r} of plugin {entry.plugin!r} ({entry.package}) does not "
        f"follow the {entry.kind.replace('_', ' ')} contract: {what} has no {', '.join(f'`{m}`' for m in missing)} "
        f"(see harness.api.{protocol.__name__}); fix the plugin or uninstall {entry.package}")


def check_registration(entry: PluginEntry) -> None:
    """Refuse, as the plugin registers: an unknown ``register()`` option, and a factory class that
    lacks one of its kind's methods (an instance attribute can only be checked once built)."""
    unknown = sorted(set(entry.extra) - REGISTER_OPTIONS.get(entry.kind, set()))
    if unknown:
        raise PluginError(f"register({entry.name!r}, ...) got unknown option(s) {', '.join(unknown)}; "
                          f"a {entry.kind.replace('_', ' ')} takes: {', '.join(sorted(REGISTER_OPTIONS.get(entry.kind, ()))) or 'none'}")
    _check_presets(entry)
    _check_register_values(entry)
    if not callable(entry.factory):
        raise PluginError(f"{entry.kind} {entry.name!r} of plugin {entry.plugin!r}: the factory {entry.factory!r} is not callable")
    if inspect.isclass(entry.factory) and entry.kind != "backbone":  # an nn.Module's forward may come from a base
        protocol, methods, _ = _required(entry.kind)
        missing = sorted(m for m in methods if not _defines(entry.factory, m))
        missing += [a for a in CLASS_ATTRIBUTES.get(entry.kind, ()) if not _has_class_value(entry.factory, a)]
        if missing:
            raise _broken(entry, protocol, missing, f"class {entry.factory.__name__}")


def _defines(cls: type, method: str) -> bool:
    """``cls`` (or a base other than object) defines ``method``: ``getattr(cls, "__call__")`` would
    find the metaclass's."""
    return any(callable(vars(c).get(method)) for c in cls.__mro__ if c is not object)


def _has_class_value(cls: type, attribute: str) -> bool:
    """``cls`` (or a base other than object) sets ``attribute`` to a non-empty string."""
    return any(isinstance(vars(c).get(attribute), str) and vars(c)[attribute].strip() for c in cls.__mro__ if c is not object)


def _check_presets(entry: PluginEntry) -> None:
    presets = entry.extra.get("presets")
    if presets is None:
        return
    if not isinstance(presets, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in presets.items()):
        raise PluginError(f"blender {entry.name!r}: presets must be {{name: {{option: value}}}}, got {presets!r}")
    for preset, values in presets.items():
        unknown = unknown_options(entry, values)
        if unknown:
            raise PluginError(f"blender {entry.name!r}, preset {preset!r}: {unknown[0]}")


def _check_register_values(entry: PluginEntry) -> None:
    check = entry.extra.get("check")
    if check is not None and not callable(check):
        raise PluginError(f"logger {entry.name!r}: check must be a function that raises with what to install, got {check!r}")
    model = entry.extra.get("landmark_model")
    if model is not None and not (isinstance(model, str) and model.strip()):
        raise PluginError(f"face detector {entry.name!r}: landmark_model must name the landmark model, got {model!r}")
    if not isinstance(entry.extra.get("precropped", False), bool):
        raise PluginError(f"face detector {entry.name!r}: precropped must be True or False, got {entry.extra['precropped']!r}")


#: an option a factory requires (no default)
REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class FactoryOptions:
    """The keyword options a factory names, each with its default (``REQUIRED`` if none), and
    whether it also takes ``**options`` (then an unknown name is the factory's to refuse)."""

    named: Mapping[str, Any]
    open: bool


def _factory_options(factory: Callable[..., Any]) -> FactoryOptions:
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: it says itself what it takes
        return FactoryOptions({}, True)
    named = {p.name: p.default for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return FactoryOptions(named, any(p.kind is p.VAR_KEYWORD for p in params))


def options(entry: PluginEntry) -> FactoryOptions:
    """The keyword options ``entry``'s factory takes, read from its signature once."""
    key = (entry.kind, entry.name, entry.plugin)
    if key not in _options:
        _options[key] = _factory_options(entry.factory)
    return _options[key]


def takes(entry: PluginEntry, option: str) -> bool:
    """Whether ``entry``'s factory names the keyword ``option`` (``**options`` names none)."""
    return option in options(entry).named


def unknown_options(entry: PluginEntry, given: Mapping[str, Any]) -> list[str]:
    """One line for each of ``given`` that ``entry``'s factory does not take, with the closest name
    and the options it does take; empty when all are known (or it takes ``**options``)."""
    known = options(entry)
    if known.open:
        return []
    lines = []
    for name in given:
        if name not in known.named:
            hint = suggest(name, list(known.named))
            lines.append(f"{name!r} is not an option of {entry.kind.replace('_', ' ')} {entry.name!r}"
                         + (f" (did you mean {hint!r}?)" if hint else "")
                         + f"; its options: {', '.join(known.named) or 'none'}")
    return lines


def defaults(entry: PluginEntry) -> dict[str, Any]:
    """The JSON-friendly defaults of ``entry``'s factory options (what a results file records as
    the options a run used, with the user's on top)."""
    plain = (bool, int, float, str, type(None), tuple, list)
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in options(entry).named.items()
            if value is not REQUIRED and isinstance(value, plain)}


def check_instance(entry: PluginEntry, obj: Any) -> Any:
    """``obj``, once it has every member of its kind's contract (checked for the first instance of
    each plugin only: the check is cheap, but a factory does not change its product)."""
    key = (entry.kind, entry.name, entry.plugin)
    if key in _checked or entry.kind not in CONTRACTS:
        return obj
    protocol, methods, attributes = _required(entry.kind)
    missing = sorted(m for m in methods if not callable(getattr(obj, m, None)))
    missing += sorted(a for a in attributes if not hasattr(obj, a))
    if missing:
        raise _broken(entry, protocol, missing, f"the {type(obj).__name__} its factory built")
    _checked.add(key)
    return obj


def forget() -> None:
    """Check every plugin again (after ``registry.reset()``)."""
    _checked.clear()
    _options.clear()


def capable(obj: Any, kind: str, capability: str) -> bool:
    """Whether ``obj`` (an instance of a ``kind`` plugin, or of a ``PRODUCTS`` kind) has the
    optional ``capability``: then the core reads the members its Protocol declares, and no other."""
    base, extras = CONTRACTS[kind] if kind in CONTRACTS else PRODUCTS[kind]
    if capability not in extras:
        raise KeyError(f"{kind} has no capability {capability!r}; it has: {', '.join(extras) or 'none'}")
    methods, attributes = members(extras[capability])
    base_methods, base_attributes = members(base)
    return all(callable(getattr(obj, m, None)) for m in methods - base_methods) and all(
        hasattr(obj, a) for a in attributes - base_attributes)


# ---------------------------------------------------------------------------------- dataset capabilities
def dataset_splits(dataset: Any) -> tuple[str, ...]:
    """The splits ``dataset`` has: all three unless it declares the ``splits`` capability."""
    return tuple(dataset.splits) if capable(dataset, "dataset", "splits") else ("train", "val", "test")


def dataset_notes(dataset: Any) -> list[str]:
    """The non-empty notes ``dataset`` declares (capability ``notes``), each once, in order."""
    notes = dataset.notes if capable(dataset, "dataset", "notes") else []
    return list(dict.fromkeys(n for n in notes if n))


def dataset_compression(dataset: Any) -> str | None:
    """The compression ``dataset`` declares reading (capability ``compression``), else None."""
    return dataset.compression if capable(dataset, "dataset", "compression") else None
