"""The CLI starts without the heavy libraries: `harness --help`, `harness plugins` and every
command's `--help` import no torch (nor scikit-learn or timm), measured through the real entry
point in a fresh interpreter. Commands are plugins of the CLI: a broken one is reported, not
skipped in silence. (How fast it starts is measured in benchmarks/bench_cli.py, not here.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.extend import registry
from tests.test_plugins import fake_site, write_dist  # noqa: F401  (fixture)

HEAVY = ("torch", "sklearn", "timm", "torchvision", "dlib", "scipy")


def imported(args: list[str], extra_path: Path | None = None) -> tuple[set[str], subprocess.CompletedProcess]:
    """Top-level packages a fresh `python -m harness ARGS` imported (from -X importtime), and its result."""
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_PLUGINS"}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "harness", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()
               if line.startswith("import time:")}
    return modules, done


@pytest.mark.parametrize("args", [
    ["--help"], ["plugins"], ["plugins", "--json"], ["run", "--help"], ["predict", "--help"],
    ["preprocess", "--help"], ["datasets", "--help"], ["leaderboard", "--help"], ["report", "--help"],
    ["blend", "preview", "--help"],
], ids=lambda a: " ".join(a))
def test_help_and_plugins_import_no_heavy_library(args):
    modules, done = imported(args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "harness" in modules  # the measurement saw the CLI's own imports
    assert not modules & set(HEAVY), f"`harness {' '.join(args)}` imported {sorted(modules & set(HEAVY))}"


BROKEN_COMMANDS = '''
from harness.api import hookimpl

@hookimpl
def register_commands(app):
    raise RuntimeError("no commands today")
'''

GOOD_COMMANDS = '''
import typer
from harness.api import hookimpl

@hookimpl
def register_commands(app):
    @app.command("hello")
    def hello(name: str = "world"):
        """Say hello (a third-party command)."""
        typer.echo(f"hello {name}")
'''


def test_a_plugin_command_mounts_like_a_builtin_and_a_broken_one_is_reported(fake_site):
    write_dist(fake_site, "tplug-cmds", {"hello": "tplug_hello"}, {"tplug_hello": GOOD_COMMANDS}, group="harness.commands")
    write_dist(fake_site, "tplug-badcmds", {"badcmds": "tplug_badcmds"}, {"tplug_badcmds": BROKEN_COMMANDS},
               group="harness.commands")
    modules, done = imported(["hello", "--name", "there"], extra_path=fake_site)
    assert done.returncode == 0 and "hello there" in done.stdout, done.stdout + done.stderr
    assert "badcmds" in done.stdout + done.stderr and "no commands today" in done.stdout + done.stderr
    assert not modules & set(HEAVY)
    _, helped = imported(["--help"], extra_path=fake_site)
    assert "hello" in helped.stdout and "run" in helped.stdout  # the built-ins are still there


def test_a_core_command_module_that_fails_to_import_is_a_load_failure(fresh_plugins, monkeypatch):
    monkeypatch.setattr(registry, "DEFAULT_PLUGINS", (*registry.DEFAULT_PLUGINS, "harness.commands.no_such_command"))
    registry.reset()
    with pytest.warns(registry.PluginLoadWarning, match="no_such_command"):
        hooks = registry.command_hooks()
    assert {"harness.commands.run", "harness.commands.predict"} <= {plugin for plugin, _, _ in hooks}
    failure = next(f for f in registry.load_failures("blender") if f.plugin == "harness.commands.no_such_command")
    assert failure.stage == "import" and "ModuleNotFoundError" in failure.error
