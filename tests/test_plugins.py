"""The plugin system: built-ins load like third-party plugins, lookups suggest, failures are isolated."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import harness
from harness.extend import registry as plugins


def write_dist(site: Path, name: str, entry_points: dict[str, str], modules: dict[str, str],
               group: str = "harness") -> None:
    """Make an installed-looking distribution (dist-info + modules) under ``site``, its entry
    points in ``group`` (``harness``: every kind; ``harness.blenders`` ...: one kind)."""
    dist = site / f"{name.replace('-', '_')}-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = [f"[{group}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins):
    """A folder on sys.path where a test can 'install' plugins with write_dist."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in list(sys.modules):
        if name.startswith("tplug_"):
            del sys.modules[name]


GOOD = '''
import numpy as np
from harness import hookimpl
from harness.extend.types import BlendResult

class Copy:
    def __init__(self, strength=1.0):
        self.strength = strength
    def __call__(self, face, landmarks, rng):
        return BlendResult(face.copy(), np.zeros(face.shape[:2], np.float32), {"strength": self.strength})

@hookimpl
def register_blenders(register):
    register("copyblend", Copy, "test blender")
'''

RAISES_IN_HOOK = '''
from harness import hookimpl

@hookimpl
def register_backbones(register):
    raise RuntimeError("boom in hook")
'''


def test_builtins_are_registered_through_entry_points(fresh_plugins):
    kinds = {(e.kind, e.name): e for e in harness.plugins()}
    for key in [("blender", "multipart"), ("blender", "sbi"), ("backbone", "swin"), ("backbone", "swin-s"),
                ("backbone", "resnet50"), ("backbone", "vit-s"), ("dataset", "ffpp"), ("dataset", "celebdf"),
                ("dataset", "dfdc"), ("dataset", "dfdcp"), ("dataset", "folder"), ("face_detector", "dlib")]:
        assert key in kinds, key
        assert kinds[key].package == "deepfake-harness"
    assert any(e.kind == "evaluator" for e in harness.plugins())


def test_plugin_returns_ready_instance_with_options(fake_site):
    write_dist(fake_site, "tplug-good", {"good": "tplug_good"}, {"tplug_good": GOOD})
    blender = harness.plugin("blender", "copyblend", strength=0.5)
    face = np.full((64, 64, 3), 7, np.uint8)
    out = blender(face, np.zeros((68, 2), np.float32), np.random.default_rng(0))
    assert out.record == {"strength": 0.5}
    entry = plugins.get("blender", "copyblend")
    assert (entry.package, entry.version, entry.plugin) == ("tplug-good", "1.2.3", "good")


def test_unknown_name_suggests_closest(fresh_plugins):
    with pytest.raises(plugins.UnknownPluginError, match="did you mean 'multipart'"):
        harness.plugin("blender", "multpart")
    with pytest.raises(plugins.PluginError, match="unknown plugin kind"):
        harness.plugins("blendr")


def test_broken_plugins_are_named_and_others_still_work(fake_site):
    write_dist(fake_site, "tplug-good", {"good": "tplug_good"}, {"tplug_good": GOOD})
    write_dist(fake_site, "tplug-bad-import", {"badimport": "tplug_missing_module"}, {})
    write_dist(fake_site, "tplug-bad-hook", {"badhook": "tplug_badhook"}, {"tplug_badhook": RAISES_IN_HOOK})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = {e.name for e in harness.plugins()}
    messages = " ".join(str(w.message) for w in caught)
    assert "badimport" in messages and "tplug-bad-import" in messages
    assert "badhook" in messages and "boom in hook" in messages
    assert {"copyblend", "multipart"} <= names
    assert {f.plugin for f in plugins.load_failures()} == {"badimport", "badhook"}
    assert "swin" in {e.name for e in harness.plugins("backbone")}


def test_env_var_restricts_loaded_plugins(fake_site, monkeypatch):
    write_dist(fake_site, "tplug-good", {"good": "tplug_good"}, {"tplug_good": GOOD})
    monkeypatch.setenv("HARNESS_PLUGINS", "good,sbi")
    assert {e.name for e in harness.plugins("blender")} == {"copyblend", "sbi"}
    assert harness.plugins("backbone") == []


TRACKED = '''
import sys
from harness.api import hookimpl

sys.modules.setdefault("tplug_imports", []).append(__name__)  # what was imported, in order

class Noise:
    def __call__(self, face, landmarks, rng):
        raise NotImplementedError

@hookimpl
def register_blenders(register):
    register("noise", Noise, "test blender")

@hookimpl
def register_datasets(register):
    register("sneaky", object, "declared only as a blender plugin: never listed")
'''


def test_a_plugin_is_imported_only_when_its_kind_is_needed(fake_site):
    write_dist(fake_site, "tplug-lazy", {"lazy": "tplug_lazy"}, {"tplug_lazy": TRACKED}, group="harness.blenders")
    sys.modules.pop("tplug_imports", None)
    assert "folder" in {e.name for e in harness.plugins("dataset")}
    assert "tplug_lazy" not in sys.modules  # datasets asked: a blender plugin stays unimported
    assert "noise" in {e.name for e in harness.plugins("blender")}
    assert sys.modules["tplug_imports"] == ["tplug_lazy"]
    # The hook of a kind it did not declare is never asked, whatever loaded first.
    assert "sneaky" not in {e.name for e in harness.plugins("dataset")}
    entry = plugins.get("blender", "noise")
    assert (entry.plugin, entry.package, entry.version) == ("lazy", "tplug-lazy", "1.2.3")


MISSING_METHOD = '''
from harness.api import hookimpl

class NotABlender:
    def blend(self, face, landmarks, rng):  # should be __call__
        return face

class NoRecords:
    name = "norecords"
    def check(self):
        return None

@hookimpl
def register_blenders(register):
    register("wrongshape", NotABlender, "a blender without __call__")

@hookimpl
def register_datasets(register):
    register("norecords", lambda **kw: NoRecords(), "a dataset whose instances lack records()")

@hookimpl
def register_evaluators(register):
    register("badopt", object, "a misspelt register option", presets={})
'''


def test_a_plugin_breaking_its_contract_is_named_with_the_missing_member(fake_site):
    write_dist(fake_site, "tplug-contract", {"contract": "tplug_contract"}, {"tplug_contract": MISSING_METHOD})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blenders = {e.name for e in harness.plugins("blender")}
        harness.plugins("evaluator")
    assert "wrongshape" not in blenders  # refused as it registered: a class is checked at once
    failure = next(f for f in plugins.load_failures() if "wrongshape" in f.error)
    assert failure.plugin == "contract" and "`__call__`" in failure.error and "harness.api.Blender" in failure.error
    assert any("badopt" in f.error and "presets" in f.error for f in plugins.load_failures())
    # A factory function is checked on its first instance, before the core touches it.
    with pytest.raises(plugins.PluginError, match=r"dataset 'norecords' of plugin 'contract' \(tplug-contract\).*`records`"):
        harness.plugin("dataset", "norecords")


def test_capabilities_are_named_not_probed(fresh_plugins):
    from harness.extend import contracts

    multipart = harness.plugin("blender", "multipart")
    assert contracts.capable(multipart, "blender", "pair")
    dlib = harness.plugin("face_detector", "dlib")
    assert [c for c in contracts.CONTRACTS["face_detector"][1] if contracts.capable(dlib, "face_detector", c)] == ["two_stage", "upsample"]

    class PlainDetector:
        def detect(self, frame):
            return []

    assert not contracts.capable(PlainDetector(), "face_detector", "two_stage")
    with pytest.raises(KeyError, match="pair"):
        contracts.capable(multipart, "blender", "teleport")


def test_blender_presets_are_registered_by_the_blender(fresh_plugins):
    from harness.commands.run import blender_presets

    presets = blender_presets("multipart")
    assert presets["full"] == {"multi_part": True, "local_deformation": True}
    assert list(presets) == ["base", "deform", "multipart", "full"]
    assert blender_presets("sbi") == {}


DECLARED = '''
import numpy as np
from harness import hookimpl
from harness.api import BlendResult, LandmarkedDetector

class Copy:
    def __init__(self, strength=1.0, mode="copy"):
        self.strength = strength
    def __call__(self, face, landmarks, rng):
        return BlendResult(face.copy(), np.zeros(face.shape[:2], np.float32), {})

class Log:
    def __init__(self, run_dir, config=None):
        pass
    def log(self, record):
        pass
    def close(self):
        pass

def needs_tools():
    raise ImportError("the toolslog logger needs the tools package: pip install tools")

class FivePoints(LandmarkedDetector):
    def boxes(self, frame):
        return []
    def landmarks(self, frame, box):
        return np.zeros((68, 2), np.float32)

@hookimpl
def register_blenders(register):
    register("optblend", Copy, "its options are its keyword parameters")
    register("typopreset", Copy, "a preset naming an option it lacks", presets={"strong": {"strenght": 2.0}})

@hookimpl
def register_loggers(register):
    register("toolslog", Log, "checked before any work", check=needs_tools)
    register("badcheck", Log, "check is not a function", check="yes")

@hookimpl
def register_face_detectors(register):
    register("fivepoints", FivePoints, "records its landmark model", landmark_model="my 5-point model")
'''


def test_options_and_register_options_are_declared_and_checked(fake_site):
    """What the core reads from a plugin beyond its Protocol is declared: a factory's keyword
    options, and register(..., presets=, check=, landmark_model=); each is checked as it registers."""
    from harness.data.crop import CropRule
    from harness.extend import contracts
    from harness.run.build import resolved_options
    from harness.training.loggers import check_loggers

    write_dist(fake_site, "tplug-declared", {"declared": "tplug_declared"}, {"tplug_declared": DECLARED})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blenders = {e.name for e in harness.plugins("blender")}
        loggers = {e.name for e in harness.plugins("logger")}
    assert "optblend" in blenders and "typopreset" not in blenders
    failures = " ".join(f.error for f in plugins.load_failures())
    assert "preset 'strong': 'strenght' is not an option of blender 'typopreset' (did you mean 'strength'?)" in failures
    assert "toolslog" in loggers and "badcheck" not in loggers and "check must be a function" in failures

    entry = plugins.get("blender", "optblend")
    assert dict(contracts.options(entry).named) == {"strength": 1.0, "mode": "copy"} and contracts.takes(entry, "mode")
    assert resolved_options("optblend", {"mode": "x"}) == {"strength": 1.0, "mode": "x"}
    with pytest.raises(plugins.PluginError, match=r"^'strenght' is not an option of blender 'optblend' \(did you mean 'strength'\?\); its options: strength, mode$"):
        harness.plugin("blender", "optblend", strenght=2.0)
    with pytest.raises(ImportError, match="pip install tools"):
        check_loggers(["toolslog"])
    assert CropRule.for_detector("fivepoints").landmark_model == "my 5-point model"
    assert CropRule.for_detector("dlib").landmark_model == "dlib shape_predictor_68_face_landmarks"


MISSPELT_HOOK = '''
from harness import hookimpl

@hookimpl
def register_blender(register):
    register("never", object, "a hook pluggy would keep and never call")
'''


def test_a_hookimpl_naming_no_hook_is_refused_in_one_line_naming_it(fake_site):
    import os
    import subprocess

    write_dist(fake_site, "tplug-misspelt", {"misspelt": "tplug_misspelt"}, {"tplug_misspelt": MISSPELT_HOOK})
    write_dist(fake_site, "tplug-good", {"good": "tplug_good"}, {"tplug_good": GOOD})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "harness", "plugins"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    refused = [line for line in done.stderr.splitlines() if line.startswith("failed: plugin misspelt")]
    assert len(refused) == 1, refused
    assert "tplug_misspelt.register_blender names no harness hook" in refused[0]
    assert "did you mean 'register_blenders'" in refused[0]
    assert "copyblend" in done.stdout and "never" not in done.stdout
