"""The stable plugin API: ``harness.api`` is the one core module a plugin imports, every name it
promises resolves, and importing it is free of numpy and torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import harness.api as api

ROOT = Path(__file__).resolve().parents[1]


def core_imports(path: Path) -> list[str]:
    """The ``harness...`` modules a file imports (any depth), as written."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "harness" else [f"harness.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n == "harness" or n.startswith("harness.")]
    return found


def test_built_in_plugins_import_only_the_plugin_api():
    offenders = {}
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        bad = [m for m in core_imports(path) if m != "harness.api"]
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert not offenders, f"plugins must import the core through harness.api only: {offenders}"


def test_every_promised_name_resolves():
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert callable(api.auto_window) and api.STRIDES == (4, 8, 16, 32)


def test_an_unknown_name_lists_the_api():
    try:
        api.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "hookimpl" in str(exc) and "VideoRecord" in str(exc)
    else:
        raise AssertionError("harness.api.no_such_thing resolved")


def test_importing_the_api_costs_no_numpy_or_torch():
    code = "import sys, harness.api; print(sorted(m for m in ('numpy', 'torch', 'cv2', 'sklearn') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
