"""Fixed threads and CPU kernels for a run whose numbers are published as they are: the demo.

A CPU training run is chaotic in the last bit: the number of threads changes how reductions are
split, and each instruction set (AVX2, AVX-512, AMX) has its own kernels in torch (ATen, oneDNN,
MKL) and in OpenCV. Measured here on one run of the demo's MobileNetV2: 1 or 2 threads, or AVX2
instead of AVX-512 kernels, give other gradients from the first step, and after 150 steps the
expression warp's video AUC ranged 87.5 to 96.9 between such settings. So the demo's training pins
them (its evaluation uses the process's threads, as `harness evaluate` of its checkpoint does: the
thread count moves a score's last bits, about 1e-6, not an AUC):

- the demo scale's torch threads (``harness.data.demo.TRAIN_THREADS``: 2 for the default demo),
  whatever the machine has or ``OMP_NUM_THREADS`` says;
- torch's deterministic algorithms;
- torch's AVX2 kernels, which every x86-64 CPU since 2013 runs: ATen's (``ATEN_CPU_CAPABILITY``),
  oneDNN's (``ONEDNN_MAX_CPU_ISA``) and MKL's reproducible AVX2 branch (``MKL_CBWR``). Each library
  reads its variable once, at its first kernel, so they must be set before the process computes
  anything: every `harness` command does at start (``select_at_start``); a process that already ran
  torch kernels keeps its own, and ``pin_kernels`` says so (``Pinned.pinned`` False);
- OpenCV single-threaded, without its run-time dispatched SIMD code and IPP (``setUseOptimized``):
  the float paths of warps, blurs, colour conversion and seamless cloning round differently per CPU.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

#: torch threads of a demo run: the 2 cores the demo is sized for (fewer cores still give the same numbers)
DEMO_THREADS = 2
#: the CPU code paths the demo's numbers are computed with, read by each library at its first kernel
KERNEL_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
PINNED_CAPABILITY = "AVX2"


def select_at_start() -> None:
    """Ask torch, oneDNN and MKL for the pinned kernel set. Each reads its variable once, at its
    first kernel, so the CLI calls this before it computes anything: every harness command then
    computes with AVX2 kernels on any x86-64 CPU (a GPU's kernels are not touched), and a run's
    scores and a later `evaluate` or `predict` of its checkpoint use the same ones. Other CPUs
    (ARM) keep their own: these names are x86's. ``HARNESS_NATIVE_KERNELS=1`` keeps the CPU's own
    (faster on AVX-512/AMX machines; its CPU numbers then match only that machine's)."""
    import platform

    if platform.machine().lower() in ("x86_64", "amd64") and os.environ.get("HARNESS_NATIVE_KERNELS") != "1":
        os.environ.update(KERNEL_ENV)


@dataclass(frozen=True)
class Pinned:
    """What a process computes with after ``pin_kernels``: torch's CPU capability and threads."""

    capability: str
    threads: int

    @property
    def pinned(self) -> bool:
        return self.capability == PINNED_CAPABILITY

    def note(self) -> str | None:
        """One line when the kernels differ from the pinned ones, else None."""
        if self.pinned:
            return None
        return (f"torch runs its {self.capability} CPU kernels here, not {PINNED_CAPABILITY} (a CPU without it, or a "
                "process that computed before the demo started): the numbers may differ from the shipped demo's")


def capability() -> str:
    """torch's CPU kernel set in this process (it is fixed at the first kernel)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def pin_kernels(threads: int = DEMO_THREADS) -> Pinned:
    """Fix threads and kernels for the rest of the process (see the module docstring)."""
    import cv2
    import torch

    os.environ.update(KERNEL_ENV)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    cv2.setNumThreads(1)
    cv2.setUseOptimized(False)
    return Pinned(capability(), torch.get_num_threads())


@contextmanager
def opencv_baseline() -> Iterator[None]:
    """OpenCV single-threaded on its baseline code (no run-time dispatched SIMD, no IPP) for a block:
    what generates the demo's data, so its bytes do not depend on the CPU that made them."""
    import cv2

    saved = cv2.getNumThreads(), cv2.useOptimized()
    cv2.setNumThreads(1)
    cv2.setUseOptimized(False)
    try:
        yield
    finally:
        cv2.setNumThreads(saved[0])
        cv2.setUseOptimized(saved[1])


@contextmanager
def pinned_kernels(threads: int = DEMO_THREADS) -> Iterator[Pinned]:
    """``pin_kernels`` for a block; threads and switches are restored after it (the kernel set stays:
    it cannot change once chosen)."""
    import torch

    saved = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        with opencv_baseline():
            yield pin_kernels(threads)
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
