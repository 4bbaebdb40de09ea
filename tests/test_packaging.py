"""Packaging: every package folder ships, every built-in entry point imports, configs round-trip."""

from __future__ import annotations

import json

import importlib
import importlib.metadata as md
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

from harness.vocab.config import RunConfig, save_config

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_declared_in_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = set(project["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("harness", "harness"), ("plugins", "harness_plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]))
    assert found == declared


def test_builtin_entry_points_import_and_implement_the_kind_they_declare():
    from harness.extend.registry import KINDS, kind_group

    found = 0
    for kind, hook in KINDS.items():
        for ep in md.entry_points(group=kind_group(kind)):
            if ep.dist and ep.dist.name == "deepfake-harness":
                found += 1
                assert hasattr(importlib.import_module(ep.value), hook), f"{ep.value} is declared a {kind} plugin"
    assert found >= 15
    # every built-in declares its kind: none sits in the catch-all group that loads for every kind
    assert not [ep for ep in md.entry_points(group="harness") if ep.dist and ep.dist.name == "deepfake-harness"]


def test_run_config_round_trips(tmp_path):
    config = RunConfig(blender="sbi", backbone="vit-s", blender_options={"x": 1}, test_datasets=["ffpp"])
    config.train.max_steps = 7
    save_config(config, tmp_path / "c.json")
    again = RunConfig.from_dict(json.loads((tmp_path / "c.json").read_text()))
    assert again == config and again.run_key() == config.run_key()
    assert RunConfig(seed=1).run_key() != RunConfig(seed=2).run_key()
