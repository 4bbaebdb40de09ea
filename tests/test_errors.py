"""One error base: every user error is a ``harness.api.HarnessError``, and the CLI's guard catches
that base alone (its line, its exit code, no traceback; anything else keeps its traceback)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.api import HarnessError

CORE = Path(__file__).resolve().parents[1] / "harness"

USER_ERRORS = [
    "harness.vocab.config_check:ConfigError", "harness.extend.registry:PluginError", "harness.extend.registry:UnknownPluginError",
    "harness.models.bundle:CheckpointError", "harness.data.cache:CacheError", "harness.data.cache:CacheMismatchError",
    "harness.extend.types:DatasetLayoutError", "harness.extend.types:DatasetNotFoundError", "harness.run.paths:RunError",
    "harness.reporting.results:ResultsError", "harness.run.userdata:UserDataError", "harness.common.bounded:InputFileError",
    "harness.evaluation.perturb:PerturbSpecError", "harness.reporting.plots:ReportError", "harness.evaluation.compare:CompareError",
    "harness.predict.inference:PredictSetupError", "harness.run.lock:RunLockedError",
    "harness.reporting.leaderboard_protocol:ProtocolError", "harness.models.pretrained:PretrainedWeightsError",
    "harness_plugins.loggers.tensorboard:TensorBoardUnavailable", "harness_plugins.faces.retinaface:RetinaFaceUnavailable",
]


@pytest.mark.parametrize("target", USER_ERRORS)
def test_every_user_error_is_a_harness_error(target: str) -> None:
    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, HarnessError) and cls.exit_code == 2


def test_the_guard_prints_the_line_and_exit_code_of_any_harness_error() -> None:
    from harness.cli import _guard_all

    class Custom(HarnessError):
        exit_code = 3

    app = typer.Typer()

    @app.command()
    def boom(kind: str) -> None:
        if kind == "user":
            raise Custom("the [thing] is wrong; do this instead")
        raise ValueError("a bug")

    _guard_all(app)
    result = CliRunner().invoke(app, ["user"])
    assert result.exit_code == 3
    assert "error: the [thing] is wrong; do this instead" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["bug"])
    assert isinstance(result.exception, ValueError)  # not a user error: its traceback stays


def test_no_module_recognises_an_error_by_its_class_name() -> None:
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "__name__" and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "__class__":
                found.append(f"{path.relative_to(CORE.parent)}:{node.lineno}")
    assert found == []
