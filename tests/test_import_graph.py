"""The core's import graph has no cycle, and every layer imports only the layers below it.

Every import counts, at module level or inside a function (a deferred import that holds a cycle
together is still a cycle). Imports under ``if TYPE_CHECKING:`` never run and are left out."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "harness"

#: The floors, bottom first: a package imports only packages on floors below its own (two packages
#: on one floor import neither each other). ``harness.vocab`` is the vocabulary every layer above
#: reads: the run's configuration and folder, the robustness conditions' names.
LAYERS: list[set[str]] = [
    {"common"},
    {"extend"},
    {"data"},
    {"vocab"},
    {"models", "reporting"},
    {"training"},
    {"evaluation"},
    {"run"},
    {"predict"},
    {"api", "commands", "cli", "__main__"},
]


def _module(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The harness modules ``source`` (module ``module``) imports, anywhere in it."""
    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {r for a in node.names if (r := resolve(a.name))}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found |= {r for r in [target if target in known else resolve(base)] if r}
    # importing a submodule runs its packages' __init__ first: that is not an edge back to them
    return {m for m in found if m != module and not module.startswith(m + ".")}


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in CORE.rglob("*.py")}
    return {m: imports_of(p.read_text(encoding="utf-8"), m, p.name == "__init__.py", set(files)) for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_a_cycle_is_found_whether_its_import_is_deferred_or_not() -> None:
    known = {"harness", "harness.a", "harness.b"}
    a = imports_of("from harness.b import x\n", "harness.a", False, known)
    b = imports_of("def f():\n    from harness import a\n", "harness.b", False, known)
    assert cycles({"harness.a": a, "harness.b": b}) == [["harness.a", "harness.b"]]
    typed = imports_of("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness.a import A\n", "harness.b", False, known)
    assert cycles({"harness.a": a, "harness.b": typed}) == []


def test_the_core_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "harness.evaluation.stage" in graph["harness.run.evaluate"]
    assert cycles(graph) == []


def floor_of(module: str) -> int | None:
    """The floor of ``module``'s package (``harness.run.stages`` -> run's); None for ``harness`` itself."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    found = [i for i, floor in enumerate(LAYERS) if parts[1] in floor]
    assert found, f"{module}: its package is on no floor of LAYERS; add it where it belongs"
    return found[0]


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a package to one on its own floor or above (``harness`` itself is exempt)."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            mine, theirs = floor_of(module), floor_of(target)
            if None in (mine, theirs) or module.split(".")[1] == target.split(".")[1]:
                continue
            if theirs > mine or (theirs == mine and {module.split(".")[1], target.split(".")[1]} - LAYERS[-1]):
                found.append(f"{module} -> {target}")
    return found


def test_no_import_runs_back_up() -> None:
    found = upward(import_graph())
    assert not found, "these imports run from a lower layer to a higher one (move the shared name down):\n" + "\n".join(found)


def test_an_upward_import_is_found_deferred_or_not() -> None:
    known = {"harness", "harness.models.bundle", "harness.run.stages", "harness.vocab.folder"}
    deferred = imports_of("def f():\n    from harness.run.stages import run_id\n", "harness.models.bundle", False, known)
    down = imports_of("from harness.vocab.folder import RunFolder\n", "harness.models.bundle", False, known)
    assert upward({"harness.models.bundle": deferred}) == ["harness.models.bundle -> harness.run.stages"]
    assert upward({"harness.models.bundle": down}) == []
