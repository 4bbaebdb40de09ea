"""The core stays readable: no function body above ~50 lines or nested deeper than 4 blocks
without the reason written next to it (a ``# shape: ...`` comment on its ``def`` line), and the
core imports no built-in plugin (the boundary test, tests/test_core_boundary.py, has the rest)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 50
MAX_DEPTH = 4
BLOCKS = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.AsyncFor, ast.AsyncWith, ast.Match)


def depth(node: ast.AST, level: int = 0) -> int:
    """The deepest block nesting inside ``node``, not counting nested functions and classes."""
    deepest = level
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        deepest = max(deepest, depth(child, level + 1 if isinstance(child, BLOCKS) else level))
    return deepest


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of the body after the signature and docstring (a command's options are not logic)."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:] or body
    return node.end_lineno - body[0].lineno + 1


def offenders(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source, str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            n, d = body_lines(node), depth(node)
            if (n > MAX_LINES or d > MAX_DEPTH) and "# shape:" not in lines[node.lineno - 1]:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines, depth {d}")
    return found


def test_core_functions_are_short_and_shallow_or_say_why():
    found = offenders(ROOT / "harness")
    assert not found, "split these, or write the reason on the def line (# shape: ...):\n" + "\n".join(found)


def test_the_checker_sees_a_long_deep_function(tmp_path):
    nested = "def f(x):\n" + "".join("    " * (i + 1) + f"if x > {i}:\n" for i in range(5)) + "    " * 6 + "return x\n"
    long = "def g():\n" + "".join(f"    y{i} = {i}\n" for i in range(60))
    excused = "def h():  # shape: one table of 60 rows reads best in one place\n" + "".join(f"    z{i} = {i}\n" for i in range(60))
    (tmp_path / "m.py").write_text(nested + long + excused)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = offenders(tmp_path)
    finally:
        ROOT = saved
    assert [f.split(" ")[1] for f in found] == ["f:", "g:"]
