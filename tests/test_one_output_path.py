"""`harness run` and `harness evaluate` share one output path: the options both take are declared once
(harness/commands/options.py), one builder makes every results dict (harness.run.build.results_record)
and one writer writes the run folder (harness.run.outputs.write_outputs)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "harness"


def _defaults(command) -> dict:
    return {name: p.default for name, p in inspect.signature(command).parameters.items()}


def test_the_options_both_commands_take_are_one_declaration() -> None:
    from harness.commands.evaluate import evaluate_command
    from harness.commands.options import OPTIONS
    from harness.commands.run import run_command

    run, evaluate = _defaults(run_command), _defaults(evaluate_command)
    for name, option in OPTIONS.items():
        assert run[name] is option and evaluate[name] is option, f"--{name} is declared again by a command"
    # --data is each command's own (a training dataset, or the demo's test set), nothing else is shared
    assert set(run) & set(evaluate) == set(OPTIONS) | {"data"}


def _calls(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _dict_keys(module: Path) -> list[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return [k.value for n in ast.walk(tree) if isinstance(n, ast.Dict) for k in n.keys if isinstance(k, ast.Constant)]


def test_one_builder_makes_every_results_dict_and_one_writer_writes_the_folder() -> None:
    builders = sorted(str(p.relative_to(CORE)) for p in CORE.rglob("*.py") if "schema_version" in _dict_keys(p))
    assert builders == ["run/build.py"], builders
    for pipeline in ("run/stages.py", "run/evaluate.py"):
        assert {"write_outputs", "build_results"} <= _calls(CORE / pipeline), pipeline
    assert "results_record" in _calls(CORE / "run/evaluate.py") and "results_record" in _calls(CORE / "run/build.py")
    writers = sorted(str(p.relative_to(CORE)) for p in CORE.rglob("*.py") if "write_results" in _calls(p))
    assert writers == ["run/outputs.py", "run/publish.py"], writers  # publish copies a written results file


def test_a_run_and_an_evaluation_record_the_same_fields_around_their_own_sections(tiny_demo, tmp_path) -> None:
    """The shared experiment's run and an evaluation of its checkpoint (written by the other pipeline)."""
    import json

    from fixtures.tiny_demo import harness

    cache = tiny_demo.copy_cache(tmp_path / "cache")
    harness("evaluate", "--checkpoint", tiny_demo.seed0, "--runs-dir", tmp_path / "runs", cache=cache, cwd=tmp_path)
    [folder] = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("eval-")]
    evaluation = json.loads((folder / "results.json").read_text())
    run = tiny_demo.results(0)
    assert set(run) - set(evaluation) == {"selected", "training"}
    assert set(evaluation) - set(run) == {"kind", "provenance", "identity"}
    assert {p.name for p in folder.iterdir()} >= {"results.json", "report.md", "scores", "figures", "evaluation.json"}
