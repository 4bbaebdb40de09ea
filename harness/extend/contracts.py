"""What each plugin kind must provide, and the optional capabilities it may add, checked once.

The contracts are the Protocols in ``harness/extend/types.py``: one per kind, and one per named
capability (a Protocol that extends the kind's). A factory that is a class is checked for the
kind's methods when the plugin registers; every factory's first instance is checked for all of
the kind's members when it is built. A missing member is a ``PluginError`` naming the plugin,
its package and the member, instead of an ``AttributeError`` deep inside a run.

The core asks ``capable(obj, kind, capability)`` instead of probing with ``getattr``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from harness.common.errors import PluginError
from harness.extend import types as t

if TYPE_CHECKING:
    from harness.extend.registry import PluginEntry

#: kind -> (its Protocol, {capability: the Protocol that adds it})
CONTRACTS: dict[str, tuple[type, dict[str, type]]] = {
    "blender": (t.Blender, {"pair": t.PairBlender}),
    "backbone": (t.Backbone, {"weights": t.PretrainedBackbone}),
    "dataset": (t.Dataset, {"splits": t.SplitDataset}),
    "face_detector": (t.FaceDetector, {"two_stage": t.TwoStageDetector}),
    "evaluator": (t.Evaluator, {}),
    "logger": (t.TrainLogger, {}),
    "importer": (t.Importer, {}),
}

#: keyword options ``register(...)`` accepts besides name, factory, description and replace
REGISTER_OPTIONS: dict[str, set[str]] = {"blender": {"presets"}}

_checked: set[tuple[str, str, str]] = set()


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
    if not callable(entry.factory):
        raise PluginError(f"{entry.kind} {entry.name!r} of plugin {entry.plugin!r}: the factory {entry.factory!r} is not callable")
    if inspect.isclass(entry.factory) and entry.kind != "backbone":  # an nn.Module's forward may come from a base
        protocol, methods, _ = _required(entry.kind)
        missing = sorted(m for m in methods if not _defines(entry.factory, m))
        if missing:
            raise _broken(entry, protocol, missing, f"class {entry.factory.__name__}")


def _defines(cls: type, method: str) -> bool:
    """``cls`` (or a base other than object) defines ``method``: ``getattr(cls, "__call__")`` would
    find the metaclass's."""
    return any(callable(vars(c).get(method)) for c in cls.__mro__ if c is not object)


def _check_presets(entry: PluginEntry) -> None:
    presets = entry.extra.get("presets")
    if presets is None:
        return
    if not isinstance(presets, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in presets.items()):
        raise PluginError(f"blender {entry.name!r}: presets must be {{name: {{option: value}}}}, got {presets!r}")


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


def capable(obj: Any, kind: str, capability: str) -> bool:
    """Whether ``obj`` (an instance of a ``kind`` plugin) has the optional ``capability``."""
    base, extras = CONTRACTS[kind]
    if capability not in extras:
        raise KeyError(f"{kind} has no capability {capability!r}; it has: {', '.join(extras) or 'none'}")
    methods, attributes = members(extras[capability])
    base_methods, base_attributes = members(base)
    return all(callable(getattr(obj, m, None)) for m in methods - base_methods) and all(
        hasattr(obj, a) for a in attributes - base_attributes)


def capabilities(obj: Any, kind: str) -> list[str]:
    """Every optional capability ``obj`` has (what `harness plugins` could show)."""
    return [c for c in CONTRACTS[kind][1] if capable(obj, kind, c)]
