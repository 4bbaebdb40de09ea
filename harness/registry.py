"""Plugin loading and the registries of blenders, backbones, evaluators, datasets and face detectors.

Built-in and third-party plugins load the same way: every entry point of the ``harness`` group is
imported and registered with pluggy. One plugin that fails to import, or raises inside its hook,
is reported by name (``load_failures()`` and a warning) and the others keep working.

``HARNESS_PLUGINS`` restricts which entry points load (comma-separated entry-point names; set it
to an empty string to load none): tests use it to run against a known set.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pluggy

from harness import hookspecs

ENTRY_POINT_GROUP = "harness"
ENV_RESTRICT = "HARNESS_PLUGINS"

#: plugin kind -> the hook that registers it
KINDS: dict[str, str] = {
    "blender": "register_blenders",
    "backbone": "register_backbones",
    "evaluator": "register_evaluators",
    "dataset": "register_datasets",
    "face_detector": "register_face_detectors",
}


class PluginError(RuntimeError):
    """Base class for plugin lookup problems (clear, user-facing messages)."""


class UnknownPluginError(PluginError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginLoadWarning(UserWarning):
    """A plugin failed to import or raised in its hook; the others were loaded."""


@dataclass(frozen=True)
class PluginEntry:
    """One registered implementation: what `harness plugins` lists."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str  # entry-point (or module) name that registered it
    package: str  # distribution providing it
    version: str


@dataclass(frozen=True)
class LoadFailure:
    plugin: str
    package: str
    stage: str  # "import" or the hook name
    error: str


class _State:
    def __init__(self) -> None:
        self.pm: pluggy.PluginManager | None = None
        self.registry: dict[str, dict[str, PluginEntry]] | None = None
        self.failures: list[LoadFailure] = []
        self.origin: dict[int, tuple[str, str, str]] = {}  # id(module) -> (plugin, package, version)


_state = _State()


def _restriction() -> set[str] | None:
    value = os.environ.get(ENV_RESTRICT)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _fail(plugin: str, package: str, stage: str, exc: BaseException) -> None:
    failure = LoadFailure(plugin, package, stage, f"{type(exc).__name__}: {exc}")
    _state.failures.append(failure)
    warnings.warn(
        f"harness plugin {plugin!r} (package {package}) failed in {stage}: {failure.error}. "
        f"The other plugins still work; fix or uninstall {package} to silence this.",
        PluginLoadWarning,
        stacklevel=3,
    )


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    if _state.pm is not None:
        return _state.pm
    pm = pluggy.PluginManager("harness")
    pm.add_hookspecs(hookspecs)
    allowed = _restriction()
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        if pm.has_plugin(ep.name):
            continue  # the same distribution seen twice on sys.path
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the harness down
            _fail(ep.name, dist, "import", exc)
            continue
        _state.origin[id(module)] = (ep.name, dist, version)
    _state.pm = pm
    return pm


def register_module(module: Any, name: str | None = None) -> None:
    """Register an already-imported plugin module (notebooks, tests). Rebuilds the registry."""
    pm = get_plugin_manager()
    name = name or getattr(module, "__name__", repr(module))
    pm.register(module, name=name)
    _state.origin[id(module)] = (name, "(registered in-process)", "-")
    _state.registry = None


def reset() -> None:
    """Forget everything loaded (tests; after installing a plugin in-process)."""
    _state.pm = None
    _state.registry = None
    _state.failures = []
    _state.origin = {}


def _build_registry() -> dict[str, dict[str, PluginEntry]]:
    pm = get_plugin_manager()
    registry: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in KINDS}
    for kind, hook_name in KINDS.items():
        hook = getattr(pm.hook, hook_name)
        # Call each implementation alone so one raising plugin does not hide the others.
        for impl in hook.get_hookimpls():
            plugin_name, package, version = _state.origin.get(
                id(impl.plugin), (impl.plugin_name, "?", "?")
            )

            def register(
                name: str,
                factory: Callable[..., Any],
                description: str = "",
                *,
                _kind: str = kind,
                _plugin: str = plugin_name,
                _package: str = package,
                _version: str = version,
            ) -> None:
                if name in registry[_kind]:
                    prior = registry[_kind][name]
                    warnings.warn(
                        f"{_kind} {name!r} from plugin {_plugin!r} replaces the one from {prior.plugin!r}",
                        PluginLoadWarning,
                        stacklevel=2,
                    )
                registry[_kind][name] = PluginEntry(
                    _kind, name, factory, description, _plugin, _package, _version
                )

            try:
                impl.function(register=register)
            except Exception as exc:
                _fail(plugin_name, package, hook_name, exc)
    return registry


def registry() -> dict[str, dict[str, PluginEntry]]:
    if _state.registry is None:
        _state.registry = _build_registry()
    return _state.registry


def load_failures() -> list[LoadFailure]:
    registry()
    return list(_state.failures)


def _check_kind(kind: str) -> str:
    kind = kind.replace("-", "_")
    if kind.endswith("s") and kind[:-1] in KINDS:
        kind = kind[:-1]
    if kind not in KINDS:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds are: {', '.join(KINDS)}")
    return kind


def entries(kind: str | None = None) -> list[PluginEntry]:
    """Every registered implementation, optionally of one kind, sorted by kind then name."""
    reg = registry()
    kinds = [_check_kind(kind)] if kind else list(KINDS)
    return [reg[k][n] for k in kinds for n in sorted(reg[k])]


def provenance(used: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """``{kind, name, package, version}`` of each loaded plugin among ``used`` (kind, name) pairs,
    sorted: what results and checkpoints record about the code that made them."""
    wanted = set(used)
    rows = [{"kind": e.kind, "name": e.name, "package": e.package, "version": e.version}
            for e in entries() if (e.kind, e.name) in wanted]
    return sorted(rows, key=lambda p: (p["kind"], p["name"]))


def suggest(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def get(kind: str, name: str) -> PluginEntry:
    """Look up one implementation; unknown names fail with the closest known name."""
    kind = _check_kind(kind)
    known = registry()[kind]
    if name in known:
        return known[name]
    hint = suggest(name, list(known))
    message = f"no {kind.replace('_', ' ')} named {name!r}"
    if hint:
        message += f"; did you mean {hint!r}?"
    message += f" Known: {', '.join(sorted(known)) or '(none loaded)'}."
    broken = [f.plugin for f in _state.failures]
    if broken:
        message += f" Plugins that failed to load: {', '.join(broken)}."
    raise UnknownPluginError(message)


def create(kind: str, name: str, **options: Any) -> Any:
    """A ready instance of plugin ``name`` of ``kind`` built with ``options``."""
    return get(kind, name).factory(**options)
