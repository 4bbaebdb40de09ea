"""Plugin loading and the registries of every plugin kind.

Built-in and third-party plugins load the same way, through entry points. A plugin module is
imported only when a kind it declares is needed, so `harness --help` imports no blender and no
torch:

* group ``harness.<kind>s`` (``harness.blenders``, ``harness.backbones``, ``harness.evaluators``,
  ``harness.datasets``, ``harness.face_detectors``, ``harness.loggers``, ``harness.importers``, ``harness.commands``):
  the module is imported when that kind is first looked up, and only its hook for that kind is
  asked;
* group ``harness``: the module is imported whenever any kind is needed (simplest to declare,
  slowest to start).

One plugin that fails to import, or raises inside its hook, is reported by name
(``load_failures()`` and a warning) and the others keep working. The core's own commands
(``DEFAULT_PLUGINS``) are registered like plugins, always, whatever ``HARNESS_PLUGINS`` says.

``HARNESS_PLUGINS`` restricts which entry points load (comma-separated entry-point names; set it
to an empty string to load none): tests use it to run against a known set. A name in it that no
installed entry point has is reported as a load failure, and a lookup of a plugin it leaves out
names the variable.

Names are unique per kind, whatever the load order: a third-party plugin that registers a name a
built-in (or another plugin) already has is refused with a load failure, unless it opts in with
``register(name, factory, description, replace=True)``; the replacement is then shown by
`harness plugins` (``replaces``). Two plugins that both claim (or both replace) one name are both
refused until one is uninstalled. What each kind must provide is checked by
``harness.extend.contracts`` when it registers (a class) and when it is first built (any factory).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

import pluggy

from harness.extend import hookspecs
from harness.common.errors import PluginError, UnknownOptionError, UnknownPluginError, suggest

ENTRY_POINT_GROUP = "harness"  # modules loaded for every kind
ENV_RESTRICT = "HARNESS_PLUGINS"
BUILTIN_PACKAGE = "deepfake-harness"  # the distribution whose entry points are the built-ins

#: plugin kind -> the hook that registers it
KINDS: dict[str, str] = {
    "blender": "register_blenders",
    "backbone": "register_backbones",
    "evaluator": "register_evaluators",
    "dataset": "register_datasets",
    "face_detector": "register_face_detectors",
    "logger": "register_loggers",
    "importer": "register_importers",
}
COMMAND = "command"  # the kind whose hook (register_commands) adds CLI subcommands

#: The core's own subcommands: registered as plugins of the CLI, exactly like a third party's.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "harness.commands.run",
    "harness.commands.plugins",
    "harness.commands.blend",
    "harness.commands.datasets",
    "harness.commands.preprocess",
    "harness.commands.leaderboard",
    "harness.commands.predict",
    "harness.commands.report",
    "harness.commands.evaluate",
    "harness.commands.compare",
)


def kind_group(kind: str) -> str:
    """The entry-point group of the plugins that declare ``kind`` (``harness.blenders`` ...)."""
    return f"{ENTRY_POINT_GROUP}.{kind}s"


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
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # what register() got besides


@dataclass(frozen=True)
class LoadFailure:
    plugin: str
    package: str
    stage: str  # "import" or the hook name
    error: str


ALL_KINDS = "*"  # a module from the ``harness`` group, or registered in-process: asked for every kind


@dataclass
class _Origin:
    plugin: str  # entry-point (or module) name
    package: str
    version: str
    kinds: set[str] = field(default_factory=set)  # the kinds it declared, or {ALL_KINDS}


class _State:
    def __init__(self) -> None:
        self.pm: pluggy.PluginManager | None = None
        self.groups: set[str] = set()  # entry-point groups already imported
        self.kinds: dict[str, dict[str, PluginEntry]] = {}  # kind -> name -> entry, built on first use
        self.failures: list[LoadFailure] = []
        self.origin: dict[int, _Origin] = {}  # id(module) -> where it came from
        self.excluded: dict[str, str] = {}  # entry points left out by HARNESS_PLUGINS -> package
        self.conflicts: dict[tuple[str, str], str] = {}  # (kind, name) nobody got -> why
        self.checked_restriction = False


_state = _State()


def _restriction() -> set[str] | None:
    value = os.environ.get(ENV_RESTRICT)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _fail(plugin: str, package: str, stage: str, exc: BaseException, fix: str | None = None) -> None:
    failure = LoadFailure(plugin, package, stage, f"{type(exc).__name__}: {exc}")
    _state.failures.append(failure)
    warnings.warn(
        f"harness plugin {plugin!r}{f' (package {package})' if package != '?' else ''} failed in {stage}: {failure.error}. "
        f"The other plugins still work; {fix or f'fix or uninstall {package}'} to silence this.",
        PluginLoadWarning,
        stacklevel=3,
    )


def _harness_entry_points() -> list[md.EntryPoint]:
    """Every entry point of the harness groups (metadata only: nothing is imported)."""
    groups = [ENTRY_POINT_GROUP] + [kind_group(k) for k in (*KINDS, COMMAND)]
    return [ep for g in groups for ep in md.entry_points(group=g)]


def _check_restriction() -> None:
    """A name in HARNESS_PLUGINS that no installed entry point has is a load failure (once)."""
    allowed = _restriction()
    if _state.checked_restriction or allowed is None:
        return
    _state.checked_restriction = True
    known = sorted({ep.name for ep in _harness_entry_points()})
    for name in sorted(allowed - set(known)):
        hint = suggest(name, known)
        _fail(name, "?", ENV_RESTRICT, LookupError(
            f"{ENV_RESTRICT}={os.environ.get(ENV_RESTRICT)!r} names {name!r}, which no installed plugin provides"
            + (f"; did you mean {hint!r}?" if hint else "") + f". Installed: {', '.join(known)}"),
              fix=f"correct {ENV_RESTRICT} (or unset it)")


def _manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with the core's own command modules registered."""
    if _state.pm is None:
        pm = pluggy.PluginManager("harness")
        pm.add_hookspecs(hookspecs)
        _state.pm = pm
        for module_name in DEFAULT_PLUGINS:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # reported like a broken plugin: the other commands still work
                _fail(module_name, BUILTIN_PACKAGE, "import", exc)
                continue
            pm.register(module, name=module_name)
            _state.origin[id(module)] = _Origin(module_name, BUILTIN_PACKAGE, _own_version(), {COMMAND})
    return _state.pm


def _own_version() -> str:
    try:
        return md.version(BUILTIN_PACKAGE)
    except md.PackageNotFoundError:
        return "?"


def _load_group(group: str, kind: str) -> None:
    """Import and register the entry points of ``group`` (once), noting that they declare ``kind``."""
    pm = _manager()
    if group in _state.groups:
        return
    _state.groups.add(group)
    _check_restriction()
    allowed = _restriction()
    for ep in md.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else "?"
        if allowed is not None and ep.name not in allowed:
            _state.excluded[ep.name] = dist
            continue
        known = pm.get_plugin(ep.name)
        if known is not None:  # the same module declared for a second kind (or seen twice on sys.path)
            _state.origin.setdefault(id(known), _Origin(ep.name, dist, "?")).kinds.add(kind)
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
            refuse_unknown_hooks(pm, module)
        except Exception as exc:  # a broken plugin must not take the harness down
            _fail(ep.name, dist, "import", exc)
            continue
        version = ep.dist.version if ep.dist is not None else "?"
        _state.origin[id(module)] = _Origin(ep.name, dist, version, {kind})


class UnknownHookError(PluginError):
    """A plugin's ``@hookimpl`` names no hook of harness.extend.hookspecs (a misspelling would do nothing)."""


def refuse_unknown_hooks(pm: pluggy.PluginManager, module: Any) -> None:
    """Unregister ``module`` and raise UnknownHookError, naming the function, when one of its
    ``@hookimpl`` functions names no hook: pluggy would otherwise keep it, never called."""
    unknown = sorted(f"{impl.function.__module__}.{impl.function.__qualname__}" for caller in pm.get_hookcallers(module) or ()
                     if not caller.has_spec() for impl in caller.get_hookimpls() if impl.plugin is module)
    if not unknown:
        return
    pm.unregister(module)
    hooks = sorted(name for name, caller in vars(pm.hook).items() if caller.has_spec())
    hint = suggest(unknown[0].rpartition(".")[2], hooks)
    raise UnknownHookError(f"@hookimpl {unknown[0]} names no harness hook"
                           + (f"; did you mean {hint!r}?" if hint else f"; the hooks are {', '.join(hooks)}"))


def _load_kind(kind: str) -> pluggy.PluginManager:
    """The plugin manager with every module that may provide ``kind`` imported."""
    _load_group(ENTRY_POINT_GROUP, ALL_KINDS)
    _load_group(kind_group(kind), kind)
    return _manager()


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager with every plugin of every kind imported."""
    for kind in (*KINDS, COMMAND):
        _load_kind(kind)
    return _manager()


def command_hooks() -> list[tuple[str, str, Callable[..., Any]]]:
    """``(plugin, package, register_commands)`` of the core's commands and of each plugin that
    declares commands, importing nothing else."""
    pm = _load_kind(COMMAND)
    out = []
    for impl in pm.hook.register_commands.get_hookimpls():
        origin = _state.origin.get(id(impl.plugin), _Origin(impl.plugin_name, "?", "?", {ALL_KINDS}))
        if COMMAND in origin.kinds or ALL_KINDS in origin.kinds:
            out.append((origin.plugin, origin.package, impl.function))
    return out


def command_failure(plugin: str, package: str, exc: BaseException) -> None:
    """A plugin's register_commands raised: reported like any plugin failure."""
    _fail(plugin, package, "register_commands", exc)


def register_module(module: Any, name: str | None = None) -> None:
    """Register an already-imported plugin module (notebooks, tests), for every kind it implements."""
    pm = _manager()
    name = name or pm.get_canonical_name(module)
    pm.register(module, name=name)
    refuse_unknown_hooks(pm, module)
    _state.origin[id(module)] = _Origin(name, "(registered in-process)", "-", {ALL_KINDS})
    _state.kinds = {}


def reset() -> None:
    """Forget everything loaded (tests; after installing a plugin in-process)."""
    global _state
    _state = _State()
    from harness.extend import contracts

    contracts.forget()


@dataclass(frozen=True)
class _Claim:
    entry: PluginEntry
    replace: bool
    hook: str


def _claims(kind: str) -> dict[tuple[str, str], list[_Claim]]:
    """What each plugin declaring ``kind`` registers, one plugin at a time so that one raising
    plugin does not hide the others."""
    from harness.extend import contracts

    hook_name = KINDS[kind]
    claims: dict[tuple[str, str], list[_Claim]] = {}
    for impl in getattr(_load_kind(kind).hook, hook_name).get_hookimpls():
        origin = _state.origin.get(id(impl.plugin), _Origin(impl.plugin_name, "?", "?", {ALL_KINDS}))
        if kind not in origin.kinds and ALL_KINDS not in origin.kinds:
            continue  # loaded for another kind: the answer must not depend on what loaded first

        def register(name: str, factory: Callable[..., Any], description: str = "", *,
                     replace: bool = False, _origin: _Origin = origin, **extra: Any) -> None:
            entry = PluginEntry(kind, name, factory, description, _origin.plugin, _origin.package,
                                _origin.version, extra=dict(extra))
            try:
                contracts.check_registration(entry)  # a class missing a method is refused here
            except PluginError as exc:  # only this one: the plugin's other registrations stand
                _fail(_origin.plugin, _origin.package, hook_name, exc)
                return
            claims.setdefault((kind, name), []).append(_Claim(entry, bool(replace), hook_name))

        try:
            impl.function(register=register)
        except Exception as exc:
            _fail(origin.plugin, origin.package, hook_name, exc)
    return claims


def _kind_registry(kind: str) -> dict[str, PluginEntry]:
    if kind not in _state.kinds:
        found: dict[str, PluginEntry] = {}
        for (_, name), claimed in sorted(_claims(kind).items()):
            winner = _resolve_claims(kind, name, claimed)
            if winner is not None:
                found[name] = winner
        _state.kinds[kind] = found
    return _state.kinds[kind]


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
    """Every kind's registry (imports every plugin: `harness plugins`; prefer ``entries(kind)``)."""
    return {kind: _kind_registry(kind) for kind in KINDS}


def load_failures(kind: str | None = None) -> list[LoadFailure]:
    """What failed to load, after loading the plugins of ``kind`` (default: of every kind)."""
    if kind:
        _kind_registry(_check_kind(kind))
    else:
        registry()
        get_plugin_manager()
    return list(_state.failures)


def _check_kind(kind: str) -> str:
    kind = kind.replace("-", "_")
    if kind.endswith("s") and kind[:-1] in KINDS:
        kind = kind[:-1]
    if kind not in KINDS:
        hint = suggest(kind, list(KINDS))
        raise PluginError(f"unknown plugin kind {kind!r}" + (f"; did you mean {hint!r}?" if hint else "")
                          + f" Kinds: {', '.join(KINDS)}.")
    return kind


def entries(kind: str | None = None) -> list[PluginEntry]:
    """Every registered implementation, optionally of one kind, sorted by kind then name."""
    kinds = [_check_kind(kind)] if kind else list(KINDS)
    return [e for k in kinds for _, e in sorted(_kind_registry(k).items())]


def provenance(used: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """``{kind, name, package, version}`` of each loaded plugin among ``used`` (kind, name) pairs,
    sorted: what results and checkpoints record about the code that made them."""
    wanted = set(used)
    rows = [{"kind": e.kind, "name": e.name, "package": e.package, "version": e.version}
            for e in entries() if (e.kind, e.name) in wanted]
    return sorted(rows, key=lambda p: (p["kind"], p["name"]))


def get(kind: str, name: str) -> PluginEntry:
    """Look up one implementation; unknown names fail with the closest known name."""
    kind = _check_kind(kind)
    known = _kind_registry(kind)
    if name in known:
        return known[name]
    raise UnknownPluginError(unknown_name(kind, name))


def check_name(kind: str, name: str, also: Iterable[str] = ()) -> None:
    """``name`` is a registered plugin of ``kind`` or one of ``also`` (the words an option takes
    besides plugin names, e.g. ``demo`` for a dataset); else UnknownPluginError whose "did you
    mean" and list of known names count ``also`` too."""
    also = list(also)
    if name in also:
        return
    kind = _check_kind(kind)
    if name not in _kind_registry(kind):
        raise UnknownPluginError(unknown_name(kind, name, also))


def unknown_name(kind: str, name: str, also: Iterable[str] = ()) -> str:
    """The one line for an unknown ``name`` of ``kind``: the closest known name (plugins and
    ``also``), every known name, and why a plugin may be missing (a conflict, HARNESS_PLUGINS,
    a plugin that failed to load)."""
    kind = _check_kind(kind)
    known = sorted({*_kind_registry(kind), *also})
    hint = suggest(name, known)
    message = f"no {kind.replace('_', ' ')} named {name!r}"
    if hint:
        message += f"; did you mean {hint!r}?"
    message += f" Known: {', '.join(known) or '(none loaded)'}."
    if (kind, name) in _state.conflicts:
        message = f"no {kind.replace('_', ' ')} named {name!r} is usable: {_state.conflicts[(kind, name)]}."
    elif _state.excluded and _restriction() is not None:
        message += (f" {ENV_RESTRICT}={os.environ.get(ENV_RESTRICT)!r} restricts which installed plugins load "
                    f"(left out: {', '.join(sorted(_state.excluded))}); unset it or add the plugin's entry point to it.")
    broken = [f.plugin for f in _state.failures]
    if broken:
        message += f" Plugins that failed to load: {', '.join(broken)}."
    return message


def create(kind: str, name: str, *args: Any, **options: Any) -> Any:
    """A ready instance of plugin ``name`` of ``kind`` built with ``options``; the first instance
    of each plugin is checked against its kind's contract (``harness.extend.contracts``)."""
    from harness.extend import contracts

    entry = get(kind, name)
    unknown = contracts.unknown_options(entry, options)
    if unknown:  # one line naming the option, before a TypeError from deep inside the factory
        raise UnknownOptionError(unknown[0])
    return contracts.check_instance(entry, entry.factory(*args, **options))
