"""Shared test set-up: an isolated cache folder, quiet progress bars, a clean plugin registry."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Every test runs offline against caches it makes itself.
os.environ.setdefault("HARNESS_PROGRESS", "0")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("harness-cache")
    os.environ["HARNESS_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(session_cache))
    monkeypatch.setenv("TORCH_HOME", str(session_cache / "torch"))


@pytest.fixture
def fresh_plugins():
    """Forget loaded plugins before and after a test that changes what is installed."""
    from harness import registry as plugins

    plugins.reset()
    yield plugins
    plugins.reset()


def write_dist(site: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Make an installed-looking distribution (dist-info + modules) under ``site``."""
    dist = site / f"{name.replace('-', '_')}-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = ["[harness]"] + [f"{k} = {v}" for k, v in entry_points.items()]
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
