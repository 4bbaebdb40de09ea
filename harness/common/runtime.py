"""Where a process runs: its device and, under torchrun (DDP), its rank. gloo on CPU, NCCL on GPU.

Neutral ground: training, evaluation and predict all import it (predict never imports training).

`torchrun --nproc-per-node N -m harness run ...` sets RANK/WORLD_SIZE/LOCAL_RANK; everything here
reads them and does nothing in a plain single process (one torchrun process joins a group of one).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a ``DistributedDataParallel`` wrapper; any other model as it is."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def distributed() -> bool:
    """Whether this process is in a process group (launched by torchrun, one process included)."""
    return dist.is_available() and dist.is_initialized()


def launched() -> bool:
    """Started by torchrun or another env:// launcher: several processes, or one with the launcher's
    whole rendezvous environment. ``torchrun --nproc-per-node 1`` then joins a group of one, so it
    runs the code N processes run (DDP, NCCL on a GPU); a plain process has no such variables."""
    env = os.environ
    return int(env.get("WORLD_SIZE", "1")) > 1 or {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"} <= set(env)


def init_from_env(device: torch.device) -> bool:
    """Join the process group when launched by torchrun. Returns True when distributed."""
    if not launched() or dist.is_initialized():
        return distributed()
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (small Python objects: scores, ids)."""
    if world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def mean_scalar(value: float, device: torch.device) -> float:
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / world_size()


def pick_device(name: str = "auto", per_rank: bool = True) -> torch.device:
    """``auto`` -> a GPU when present, else cpu: this process's (``cuda:LOCAL_RANK``) with
    ``per_rank``, else plain ``cuda`` (one process: the current GPU, as predict reports it). A name
    that is not a device, or cuda without a visible GPU, is a ValueError saying what to pass instead."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if not per_rank:
            return torch.device("cuda")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"--device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA GPU is visible here; use --device cpu (or auto)")
    return device
