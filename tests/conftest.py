"""Shared test set-up: an isolated cache folder, quiet progress bars, a clean plugin registry."""

from __future__ import annotations

import os
from pathlib import Path

# The kernels every `harness` command pins at start (harness/common/kernels.py), before anything here
# imports torch: in-process scores equal a subprocess run's bit for bit.
from harness.common.kernels import select_at_start  # noqa: E402 - light: no torch

select_at_start()

import pytest  # noqa: E402

from fixtures.plugin_env import plugins_only
from fixtures.tiny_demo import TinyDemo, build_tiny_demo

# Every test runs offline against caches it makes itself.
os.environ.setdefault("HARNESS_PROGRESS", "0")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("harness-cache")
    os.environ["HARNESS_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> TinyDemo:
    """One tiny demo experiment (seeds 0 and 1, perturbed) shared read-only by the modules that
    evaluate, compare or re-score a finished run."""
    return build_tiny_demo(tmp_path_factory.mktemp("tiny-demo"))


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    """Torch threads for the whole suite, restored afterwards: two on the 2-core target machine,
    one per worker under pytest-xdist (two workers with two threads each would fight for 2 cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One torch thread for this test (runs compared number for number with single-thread workers)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_cache(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(session_cache))
    monkeypatch.setenv("TORCH_HOME", str(session_cache / "torch"))


@pytest.fixture
def fresh_plugins():
    """Forget loaded plugins before and after a test that changes what is installed."""
    from harness.extend import registry as plugins

    plugins.reset()
    yield plugins
    plugins.reset()


@pytest.fixture(scope="module")
def face_detector_plugin_only():
    """For a whole module: only the dlib face detector loads (the torch-heavy plugins are not needed)."""
    with plugins_only("dlib_faces"):
        yield


@pytest.fixture
def only_plugins(fresh_plugins, monkeypatch: pytest.MonkeyPatch):
    """``only_plugins("multipart,sbi")``: load just these entry points (HARNESS_PLUGINS) in this test."""

    def use(names: str):
        monkeypatch.setenv("HARNESS_PLUGINS", names)
        fresh_plugins.reset()
        return fresh_plugins

    return use
