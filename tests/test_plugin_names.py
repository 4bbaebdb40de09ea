"""Plugin names are unique per kind whatever the load order; HARNESS_PLUGINS is named when it is
the reason a plugin is missing, and a misspelt name in it is reported."""

from __future__ import annotations

import importlib.metadata as md
import json
import warnings

import pytest
from typer.testing import CliRunner

import harness
from harness.cli import build_app
from harness.extend import registry as plugins
from tests.test_plugins import fake_site, write_dist  # noqa: F401  (fixture)

TAKE_MULTIPART = '''
from harness import hookimpl

class Mine:
    def __call__(self, face, landmarks, rng):
        raise NotImplementedError

@hookimpl
def register_blenders(register):
    register("multipart", Mine, "a third-party multipart"{extra})
'''


def _load(order: str, monkeypatch) -> dict:
    """Load with the entry points in their natural or reversed order; what won and what failed."""
    real = md.entry_points

    def ordered(**kwargs):
        eps = list(real(**kwargs))
        return eps[::-1] if order == "reversed" else eps

    monkeypatch.setattr(md, "entry_points", ordered)
    plugins.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        entry = plugins.registry()["blender"].get("multipart")
        failures = plugins.load_failures()
    return {"entry": entry, "failures": failures}


@pytest.mark.parametrize("order", ["natural", "reversed"])
def test_a_third_party_plugin_cannot_silently_take_a_builtin_name(fake_site, monkeypatch, order):
    write_dist(fake_site, "tplug-taker", {"taker": "tplug_taker"}, {"tplug_taker": TAKE_MULTIPART.format(extra="")})
    got = _load(order, monkeypatch)
    assert got["entry"].package == "deepfake-harness"
    failure = next(f for f in got["failures"] if f.plugin == "taker")
    assert "already provided by" in failure.error and "replace=True" in failure.error


@pytest.mark.parametrize("order", ["natural", "reversed"])
def test_an_explicit_replacement_wins_and_is_shown(fake_site, monkeypatch, order):
    write_dist(fake_site, "tplug-taker", {"taker": "tplug_taker"}, {"tplug_taker": TAKE_MULTIPART.format(extra=", replace=True")})
    got = _load(order, monkeypatch)
    assert got["entry"].package == "tplug-taker" and "deepfake-harness" in got["entry"].replaces
    assert not [f for f in got["failures"] if f.plugin == "taker"]
    out = CliRunner().invoke(build_app(), ["plugins", "--kind", "blender", "--json"], catch_exceptions=False)
    row = next(r for r in json.loads(out.stdout)["plugins"] if r["name"] == "multipart")
    assert row["package"] == "tplug-taker" and "deepfake-harness" in row["replaces"]


@pytest.mark.parametrize("order", ["natural", "reversed"])
def test_two_third_party_plugins_claiming_one_name_are_both_refused(fake_site, monkeypatch, order):
    source = TAKE_MULTIPART.replace('"multipart"', '"samename"').format(extra="")
    write_dist(fake_site, "tplug-one", {"one": "tplug_one"}, {"tplug_one": source})
    write_dist(fake_site, "tplug-two", {"two": "tplug_two"}, {"tplug_two": source.replace("Mine", "Other")})
    _load(order, monkeypatch)
    assert "samename" not in plugins.registry()["blender"]
    with pytest.raises(plugins.UnknownPluginError, match="tplug-one.*tplug-two"):
        plugins.get("blender", "samename")


def test_a_plugin_left_out_by_harness_plugins_names_the_variable(only_plugins):
    only_plugins("sbi")
    with pytest.raises(plugins.UnknownPluginError) as info:
        plugins.get("blender", "multipart")
    assert "HARNESS_PLUGINS" in str(info.value)


def test_a_misspelt_name_in_harness_plugins_is_reported(only_plugins):
    only_plugins("multipar,sbi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        failures = plugins.load_failures()
    failure = next(f for f in failures if f.plugin == "multipar")
    assert "HARNESS_PLUGINS" in failure.error and "did you mean 'multipart'" in failure.error
