"""The core of importing (harness/models/importing.py): importers own their files (the core opens
none: detection asks each importer's ``accepts``), ``--checkpoint`` is parsed once for every
command ([IMPORTER:]FILE[?KEY=VALUE&...]), a file two importers accept is refused naming both,
the on-the-fly import cache is keyed by importer, version, options and the file's sha256, and an
importer class without ``version`` is refused when it registers."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from harness.cli import build_app

runner = CliRunner()
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class Echo(torch.nn.Module):
    """A one-weight classifier: the logit is the mean of the image times ``w``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor):
        from harness.api import ModelOutput

        return ModelOutput(logit=x.mean((1, 2, 3)) * self.w, token_logits=None, token_features=None, mask_logits=None)


class AnyFile:
    """A third party's importer that accepts every file (so a .h5 has two takers)."""

    version = "7"

    def __init__(self, scale: str = "1") -> None:
        self.scale = float(scale)

    def accepts(self, path: Path) -> bool:
        return True

    def read(self, path: Path):
        from harness.api import ImportedModel

        return ImportedModel(state_dict={"w": torch.full((1,), self.scale)},
                             meta={"model": {}, "architecture": "Echo", "img_size": 32, "input": {"scale": "unit"}})

    def build(self, options: dict) -> torch.nn.Module:
        return Echo()


class NoVersion:
    def accepts(self, path: Path) -> bool:
        return False

    def read(self, path: Path):
        raise ValueError("never")

    def build(self, options: dict):
        raise ValueError("never")


def _plugin() -> types.ModuleType:
    from harness.api import hookimpl

    module = types.ModuleType("anyfile_plugin")

    @hookimpl
    def register_importers(register) -> None:
        register("anyfile", AnyFile, "accepts anything")
        register("noversion", NoVersion, "has no version")

    module.register_importers = register_importers
    return module


@pytest.fixture
def anyfile():
    """The built-in importers plus ``anyfile`` (and the broken ``noversion``), registered in-process."""
    import warnings

    from harness.extend import registry

    registry.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry.register_module(_plugin(), "anyfile_plugin")
        registry.entries("importer")
    yield
    registry.reset()


def test_an_importer_class_without_version_is_refused_when_it_registers(anyfile):
    from harness.extend import registry

    names = [e.name for e in registry.entries("importer")]
    assert "anyfile" in names and "noversion" not in names
    failure = next(f for f in registry.load_failures("importer") if f.plugin == "anyfile_plugin")
    assert "noversion" in failure.error and "`version`" in failure.error


def test_a_file_two_importers_accept_is_one_line_naming_both(tmp_path, monkeypatch, anyfile):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.h5").write_bytes(HDF5_MAGIC + bytes(64))
    result = runner.invoke(build_app(), ["evaluate", "--checkpoint", str(tmp_path / "w.h5")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "'anyfile' and 'mesonet' both accept it" in lines[0] and f"anyfile:{tmp_path / 'w.h5'}" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_the_on_the_fly_cache_is_keyed_by_importer_version_options_and_file(tmp_path, monkeypatch, anyfile):
    from harness.common.digest import sha256_file
    from harness.models.bundle import load_meta
    from harness.models.importing import resolve_checkpoint

    source = tmp_path / "w.bin"
    source.write_bytes(b"weights")
    first = resolve_checkpoint(f"anyfile:{source}", tmp_path / "cache")
    assert first.name == f"anyfile-v7-{sha256_file(source)[:16]}" and first.parent.name == "imported"
    assert resolve_checkpoint(f"anyfile:{source}", tmp_path / "cache") == first  # reused
    scaled = resolve_checkpoint(f"anyfile:{source}?scale=2", tmp_path / "cache")
    assert scaled != first and load_meta(scaled)["origin"]["options"] == {"scale": "2"}
    monkeypatch.setattr(AnyFile, "version", "8")
    assert resolve_checkpoint(f"anyfile:{source}", tmp_path / "cache").name.startswith("anyfile-v8-")
    source.write_bytes(b"other weights")
    assert resolve_checkpoint(f"anyfile:{source}", tmp_path / "cache").name.endswith(sha256_file(source)[:16])
    origin = load_meta(first)["origin"]
    assert origin["importer"] == "anyfile" and origin["importer_version"] == "7" and origin["architecture"] == "Echo"


def test_parse_spec_reads_every_form_of_checkpoint(tmp_path):
    from harness.models.bundle import CheckpointError
    from harness.models.importing import parse_spec

    odd = tmp_path / "weird?name.pth"
    odd.write_bytes(b"x")
    assert parse_spec(str(odd)).path == odd and parse_spec(str(odd)).options == {}  # a path as written wins
    spec = parse_spec(f"deepfakebench:{tmp_path}/m.pth?arch=core&x=1")
    assert (spec.importer, spec.path, dict(spec.options)) == ("deepfakebench", tmp_path / "m.pth", {"arch": "core", "x": "1"})
    spec = parse_spec(f"{tmp_path}/m.pth?arch=core")
    assert spec.importer is None and spec.options == {"arch": "core"}
    with pytest.raises(CheckpointError, match="is not KEY=VALUE"):
        parse_spec(f"mesonet:{tmp_path}/m.h5?arch")
    with pytest.raises(CheckpointError, match="unknown importer 'nosuch'"):
        parse_spec("nosuch:file.pth")


def test_predict_and_import_take_the_same_forms_as_evaluate(tmp_path, monkeypatch, anyfile):
    """`predict --checkpoint NAME:FILE?opt=v` and `import NAME:FILE?opt=v` resolve like evaluate's."""
    from harness.models.bundle import load_meta

    monkeypatch.chdir(tmp_path)
    source = tmp_path / "w.bin"
    source.write_bytes(b"weights")
    result = runner.invoke(build_app(), ["import", f"anyfile:{source}?scale=3", "--out", "bundle"])
    assert result.exit_code == 0, result.output
    assert load_meta(tmp_path / "bundle")["origin"]["options"] == {"scale": "3"}
    result = runner.invoke(build_app(), ["import", "anyfile", f"{source}?bogus=1", "--out", "other"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "'bogus' is not an option of importer 'anyfile'" in lines[0]
    assert "its options: scale" in lines[0] and not (tmp_path / "other").exists()
    result = runner.invoke(build_app(), ["predict", str(tmp_path / "none.png"), "--checkpoint", f"anyfile:{source}?scale=3",
                                         "--detector", "dlib", "--json"])
    assert "no checkpoint at" not in result.output and "unknown" not in result.output, result.output
    assert result.exit_code == 1  # the model loaded; the missing input is the one failure


def test_checkpoint_strings_reads_key_names_without_loading(tmp_path):
    """Zip and legacy torch files and safetensors give their key names; other files give None."""
    from safetensors.torch import save_file

    from harness.models.importing import checkpoint_strings

    state = {"backbone.conv1.weight": torch.zeros(2), "backbone.fc1.weight": torch.zeros(1)}
    torch.save({"model": state, "epoch": 3}, tmp_path / "zip.pth")
    torch.save(state, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    save_file(state, str(tmp_path / "w.safetensors"))
    (tmp_path / "w.h5").write_bytes(HDF5_MAGIC + bytes(64))
    assert {"model", "epoch", *state} <= checkpoint_strings(tmp_path / "zip.pth")
    assert set(state) <= checkpoint_strings(tmp_path / "legacy.pth")
    assert checkpoint_strings(tmp_path / "w.safetensors") == set(state)
    assert checkpoint_strings(tmp_path / "w.h5") is None
