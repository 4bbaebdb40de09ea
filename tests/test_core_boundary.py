"""The core (``harness/``) imports no built-in plugin: plugins build on the core, never the other way.

Checked on the source with ``ast``: ``import harness_plugins...``, ``from harness_plugins... import``
and any string literal naming a ``harness_plugins`` module (``importlib.import_module(...)``,
``__import__(...)``) count. Docstrings and comments may mention the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "harness"
PLUGINS = "harness_plugins"


def _is_plugin_module(name: str | None) -> bool:
    return bool(name) and (name == PLUGINS or name.startswith(PLUGINS + "."))


def _docstring_ids(tree: ast.AST) -> set[int]:
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }


def plugin_imports(source: str) -> list[str]:
    """``line: what`` for every reference to a plugin module in ``source``."""
    tree = ast.parse(source)
    docstrings = _docstring_ids(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if _is_plugin_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and _is_plugin_module(node.module):
            found.append(f"{node.lineno}: from {node.module} import ...")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and _is_plugin_module(node.value.strip())):
            found.append(f"{node.lineno}: {node.value!r}")
    return found


@pytest.mark.parametrize(
    "source",
    [
        "import harness_plugins.faces.dlib_faces",
        "import os, harness_plugins as hp",
        "from harness_plugins.blenders.preview import render_preview",
        "from harness_plugins import faces",
        "def f():\n    from harness_plugins.faces import dlib_faces\n",
        "import importlib\nimportlib.import_module('harness_plugins.faces.dlib_faces')",
        "__import__('harness_plugins')",
    ],
)
def test_every_form_of_plugin_import_is_caught(source: str) -> None:
    assert plugin_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        '"""Plugins live in ``harness_plugins``."""',
        "import harness_pluginsx",
        "from harness.extend.registry import create  # not harness_plugins",
        "x = 'see harness_plugins.faces for an example'",
    ],
)
def test_mentions_are_not_imports(source: str) -> None:
    assert not plugin_imports(source)


def test_the_core_imports_no_plugin() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 20
    found = {str(p.relative_to(CORE.parent)): plugin_imports(p.read_text(encoding="utf-8")) for p in files}
    assert {path: hits for path, hits in found.items() if hits} == {}


#: built-in plugin names that are also plain words of the core's messages and values: the face
#: detector of pre-cropped faces is called ``none`` (``--face-detector none``)
COMMON_WORDS = {"none"}


def builtin_plugin_names() -> set[str]:
    """The names the built-in plugins register (evaluators aside: their names are also the metric
    keys of every results file, which the core reads and writes by design; and COMMON_WORDS)."""
    from harness.extend import registry

    return {e.name for e in registry.entries()
            if e.package == registry.BUILTIN_PACKAGE and e.kind != "evaluator" and e.name not in COMMON_WORDS}


def plugin_names_used(source: str, names: set[str]) -> list[str]:
    """``line: 'name'`` for each string constant of ``source`` equal to a plugin name, except dict
    keys and ``.get(key)`` keys (a field of a file, not a choice of plugin) and lines that say
    ``# not a plugin`` (a package name that happens to match)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    keys = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys if k is not None}
    keys |= {id(node.args[0]) for node in ast.walk(tree) if isinstance(node, ast.Call) and node.args
             and isinstance(node.func, ast.Attribute) and node.func.attr == "get"}
    return [f"{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
            and id(node) not in keys and "# not a plugin" not in lines[node.lineno - 1]]


def test_the_core_names_no_built_in_plugin(fresh_plugins) -> None:
    """Which plugin a run uses when none is named is data (harness/reference/run_defaults.json)."""
    names = builtin_plugin_names()
    assert {"multipart", "swin", "ffpp", "dlib", "folder"} <= names
    found = {str(p.relative_to(CORE.parent)): plugin_names_used(p.read_text(encoding="utf-8"), names)
             for p in sorted(CORE.rglob("*.py"))}
    assert {path: hits for path, hits in found.items() if hits} == {}


def test_a_named_plugin_is_caught_and_a_field_key_is_not() -> None:
    names = {"dlib", "folder"}
    assert plugin_names_used("detector = 'dlib'\nif name == 'folder': pass", names) == ["1: 'dlib'", "2: 'folder'"]
    assert plugin_names_used("out = {'folder': 1}\nx = out.get('folder')", names) == []
    assert plugin_names_used("pkg = ('dlib-bin', 'dlib')  # not a plugin: distributions", names) == []


#: the files and folders of runs/<run_id>/, named by harness/vocab/folder.py alone
RUN_FOLDER_MODULE = "harness/vocab/folder.py"
RUN_FILES = {"config.json", "results.json", "train_log.jsonl", "report.md", "evaluation.json", "run.lock"}
RUN_DIRS = {"checkpoint", "scores", "examples", "figures", "blocks", "tensorboard"}


def run_folder_names(source: str) -> list[str]:
    """``line: 'name'`` for a run-folder file name spelled anywhere in ``source`` (docstrings aside),
    and for a run-folder directory name used in a path: ``x / "scores"``, ``Path("figures")``."""
    tree = ast.parse(source)
    docstrings = _docstring_ids(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value in RUN_FILES or any(node.value.endswith("/" + f) for f in RUN_FILES):
                found.append(f"{node.lineno}: {node.value!r}")
        parts: list[ast.AST] = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            parts = [node.left, node.right]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("Path", "joinpath"):
            parts = list(node.args)
        found += [f"{p.lineno}: {p.value!r}" for p in parts
                  if isinstance(p, ast.Constant) and isinstance(p.value, str) and p.value.strip("/") in RUN_DIRS]
    return found


def test_a_run_folder_name_is_caught_in_every_form() -> None:
    assert run_folder_names('a = "results.json"') == ["1: 'results.json'"]
    assert run_folder_names('p = run_dir / "scores" / "x.csv"') == ["1: 'scores'"]
    assert run_folder_names('p = Path("figures")') == ["1: 'figures'"]
    assert run_folder_names('"Writes results.json"\nx = {"figures": 1}\ny = results.get("checkpoint")') == []


def test_only_the_run_folder_module_spells_a_run_folder_name() -> None:
    found = {str(p.relative_to(CORE.parent)): run_folder_names(p.read_text(encoding="utf-8"))
             for p in sorted(CORE.rglob("*.py"))}
    assert found.pop(RUN_FOLDER_MODULE), "the run folder module names them"
    assert {path: hits for path, hits in found.items() if hits} == {}


# --------------------------------------------------------------------------------------------
# No probing of plugins: the core reads a plugin only through harness/extend/contracts.py
# --------------------------------------------------------------------------------------------
CONTRACTS_MODULE = "harness/extend/contracts.py"
PROBES = {"getattr", "hasattr", "signature"}

#: the probes the core keeps, each of an object that is not a plugin: (file, "call") -> why
NOT_PLUGINS = {
    ("harness/api.py", "getattr(importlib.import_module(module), attribute)"): "the API's own lazy names",
    ("harness/extend/registry.py", "getattr(_load_kind(kind).hook, hook_name)"): "pluggy's hook relay, by hook name",
    ("harness/models/pretrained.py", "getattr(model, 'pretrained_cfg', None)"): "a timm model's pretrained config",
    ("harness/models/weights.py", "getattr(family, 'checkpoint_filter_fn', None)"): "a timm model family's converter",
    ("harness/commands/run.py", "getattr(config, f.name)"): "the fields of RunConfig, a dataclass",
}


def probes(source: str) -> list[str]:
    """``getattr(...)``, ``hasattr(...)`` and ``[inspect.]signature(...)`` calls in ``source``, as written."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if name in PROBES:
                found.append(ast.unparse(node))
    return found


def test_every_form_of_probe_is_caught() -> None:
    source = ("a = getattr(d, 'notes', [])\nb = hasattr(d, 'splits')\nimport inspect\nc = inspect.signature(f)\n"
              "from inspect import signature\nd = signature(f).parameters\n")
    assert probes(source) == ["getattr(d, 'notes', [])", "hasattr(d, 'splits')", "inspect.signature(f)", "signature(f)"]
    assert probes("x = d.notes if capable(d, 'dataset', 'notes') else []\ndef __getattr__(name): ...") == []


def test_the_core_probes_no_plugin() -> None:
    """A new probe fails here: declare the member as a capability (harness/extend/types.py), a
    factory option or a register() option (contracts.REGISTER_OPTIONS) and ask contracts."""
    found = {(str(p.relative_to(CORE.parent)), call) for p in sorted(CORE.rglob("*.py"))
             if str(p.relative_to(CORE.parent)) != CONTRACTS_MODULE for call in probes(p.read_text(encoding="utf-8"))}
    assert found - set(NOT_PLUGINS) == set(), "probe outside harness/extend/contracts.py"
    assert set(NOT_PLUGINS) - found == set(), "an allowed probe is gone: remove it from NOT_PLUGINS"
