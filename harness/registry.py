"""Plugin loading and the registries of blenders, backbones, evaluators, datasets and face detectors.

Built-in and third-party plugins load the same way: every entry point of the ``harness`` group is
imported and registered with pluggy. One plugin that fails to import, or raises inside its hook,
is reported by name (``load_failures()`` and a warning) and the others keep working.

``HARNESS_PLUGINS`` restricts which entry points load (comma-separated entry-point names; set it
to an empty string to load none): tests use it to run against a known set. A name in it that no
installed entry point has is reported as a load failure, and a lookup of a plugin it leaves out
names the variable.

Names are unique per kind, whatever the load order: a third-party plugin that registers a name a
built-in (or another plugin) already has is refused with a load failure, unless it opts in with
``register(name, factory, description, replace=True)``; the replacement is then shown by
`harness plugins` (``replaces``). Two plugins that both claim (or both replace) one name are both
refused until one is uninstalled.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import os
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

import pluggy

from harness import hookspecs

ENTRY_POINT_GROUP = "harness"
ENV_RESTRICT = "HARNESS_PLUGINS"
BUILTIN_PACKAGE = "deepfake-harness"  # the distribution whose entry points are the built-ins

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
    replaces: str = ""  # "<kind> <name> of <plugin> (<package>)" when it replaced one on purpose


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
        self.excluded: dict[str, str] = {}  # entry points left out by HARNESS_PLUGINS -> package
        self.conflicts: dict[tuple[str, str], str] = {}  # (kind, name) nobody got -> why


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
    available = list(md.entry_points(group=ENTRY_POINT_GROUP))
    if allowed is not None:
        known = {ep.name for ep in available}
        for name in sorted(allowed - known):
            hint = suggest(name, sorted(known))
            _fail(name, "?", ENV_RESTRICT, LookupError(
                f"{ENV_RESTRICT}={os.environ.get(ENV_RESTRICT)!r} names {name!r}, which no installed plugin provides"
                + (f"; did you mean {hint!r}?" if hint else "") + f" Installed: {', '.join(sorted(known))}"))
    for ep in available:
        if allowed is not None and ep.name not in allowed:
            _state.excluded[ep.name] = ep.dist.name if ep.dist is not None else "?"
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
    _state.excluded = {}
    _state.conflicts = {}


@dataclass(frozen=True)
class _Claim:
    entry: PluginEntry
    replace: bool
    hook: str


def _build_registry() -> dict[str, dict[str, PluginEntry]]:
    pm = get_plugin_manager()
    claims: dict[tuple[str, str], list[_Claim]] = {}
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
                replace: bool = False,
                _kind: str = kind,
                _plugin: str = plugin_name,
                _package: str = package,
                _version: str = version,
                _hook: str = hook_name,
            ) -> None:
                entry = PluginEntry(_kind, name, factory, description, _plugin, _package, _version)
                claims.setdefault((_kind, name), []).append(_Claim(entry, bool(replace), _hook))

            try:
                impl.function(register=register)
            except Exception as exc:
                _fail(plugin_name, package, hook_name, exc)
    registry: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in KINDS}
    for (kind, name), found in sorted(claims.items()):
        winner = _resolve_claims(kind, name, found)
        if winner is not None:
            registry[kind][name] = winner
    return registry


def _who(entry: PluginEntry) -> str:
    return f"plugin {entry.plugin!r} ({entry.package})"


def _resolve_claims(kind: str, name: str, found: list[_Claim]) -> PluginEntry | None:
    """The one entry that gets ``name``, the same whatever order the plugins loaded in; every
    refused claim is a load failure that says what to do."""
    label = f"{kind.replace('_', ' ')} {name!r}"
    builtins = [c for c in found if c.entry.package == BUILTIN_PACKAGE]
    base = builtins[-1].entry if builtins else None
    others = sorted((c for c in found if c.entry.package != BUILTIN_PACKAGE), key=lambda c: (c.entry.package, c.entry.plugin))
    replacers = [c for c in others if c.replace]
    plain = [c for c in others if not c.replace]
    refused: list[tuple[_Claim, str]] = []
    if len(replacers) > 1:
        both = f"{label} is replaced by both {' and '.join(_who(c.entry) for c in replacers)}; uninstall one of them"
        refused += [(c, both) for c in replacers]
        replacers = []
    winner: PluginEntry | None = None
    if replacers:
        chosen = replacers[0].entry
        prior = base or (plain[0].entry if plain else None)
        winner = chosen if prior is None else replace(chosen, replaces=f"{label} of {_who(prior)}")
    elif base is not None:
        winner = base
    elif len(plain) == 1:
        winner, plain = plain[0].entry, []
    elif len(plain) > 1:
        clash = f"{label} is registered by both {' and '.join(_who(c.entry) for c in plain)}; uninstall one of them"
        _state.conflicts[(kind, name)] = clash
        refused += [(c, clash) for c in plain]
        plain = []
    owner = base or (replacers[0].entry if replacers else None)
    for c in plain:
        refused.append((c, f"{label} is already provided by {_who(owner)}; rename yours, or register it with "
                           "replace=True to replace it on purpose (`harness plugins` then shows the replacement)"))
    if winner is None and refused:
        _state.conflicts[(kind, name)] = refused[0][1]
    for c, message in refused:
        _fail(c.entry.plugin, c.entry.package, c.hook, PluginError(message))
    return winner


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
    if (kind, name) in _state.conflicts:
        message = f"no {kind.replace('_', ' ')} named {name!r} is usable: {_state.conflicts[(kind, name)]}."
    elif _state.excluded and _restriction() is not None:
        message += (f" {ENV_RESTRICT}={os.environ.get(ENV_RESTRICT)!r} restricts which installed plugins load "
                    f"(left out: {', '.join(sorted(_state.excluded))}); unset it or add the plugin's entry point to it.")
    broken = [f.plugin for f in _state.failures]
    if broken:
        message += f" Plugins that failed to load: {', '.join(broken)}."
    raise UnknownPluginError(message)


def create(kind: str, name: str, **options: Any) -> Any:
    """A ready instance of plugin ``name`` of ``kind`` built with ``options``."""
    return get(kind, name).factory(**options)
