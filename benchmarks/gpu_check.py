"""The GPU check (issue 35): the paper's setting on one lent GPU, prepared on the CPU machine.

    python benchmarks/gpu_check.py prepare [--folder .gpu_check]        # CPU machine (gpu_check_prepare.sh)
    python benchmarks/gpu_check.py check [--device cuda] [--budget 480]  # GPU machine (gpu_check.sh installs first)
    python benchmarks/gpu_check.py check --device cpu --smoke            # anywhere, in under a minute (the test)

``check`` trains the demo with the paper's setting (multipart blender, Swin-T, 256 px, batch 16 =
8 reals + their 8 self-blends, SAM, bf16 autocast on a GPU, ``--pretrained none``), then ResNet50
and ViT-S for fewer steps, each through the real ``harness run`` command, and reports:

- steps/s and images/s over the steps after warm-up, from the ``time`` field of each step record in
  ``train_log.jsonl`` (``data``: seconds waiting for the batch; ``step``: seconds computing it, which
  ends on reading the loss, so the device has finished the step). Wall-clock steps/s of the whole
  train stage (start-up, checkpoints and validation included) beside it;
- the share of each step spent waiting for data (DataLoader with ``--workers`` processes);
- peak GPU memory of each run's process (torch's allocator: allocated and reserved);
- evaluation faces/s: the model alone on the cached test faces (batch 32, after a warm-up batch)
  and the run's whole evaluation stage (cache reads, aggregation, metrics);
- the same checkpoint's scores on the same faces on the device and on the CPU (largest difference);
- the Swin run again under ``torchrun --nproc_per_node 1`` (a process group of one: NCCL on a GPU,
  gloo on the CPU, DDP) and whether its losses equal the plain run's within TOLERANCES.

One JSON file (written after every phase) and a table (stdout and a markdown file). The check stops
within ``--budget`` seconds: a phase that would overrun is stopped with SIGTERM (the harness saves
at the next step and exits), what it logged so far is kept, and the phases after it are skipped.

The face cache comes prepared (``prepare``: the demo tree and its faces, found with dlib here), so
the GPU machine needs no face detector and no video decoder; its wheels come from the same folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve()
FOLDER = Path(os.environ.get("GPU_CHECK_FOLDER") or ROOT / ".gpu_check").resolve()  # what prepare makes
SCHEMA = "gpu-check/1"
MAX_FOLDER_MIB = 50  # what the device tool carries comfortably (64 MiB for everything carried)
GRACE_S = 30  # after SIGTERM, for the step in flight and the checkpoint save
RESERVE_S = GRACE_S + 15  # kept back from each process's limit: the grace period, then the report
MIN_PHASE_S = RESERVE_S + 30  # a phase with less left than this is skipped, not started

#: when the torchrun run "equals" the plain one. The same weights and batch give the same first loss up
#: to kernel order (bf16 autocast on a GPU); later steps go through GPU kernels that add in any order
#: (atomics in backward), so they drift a little, and only the run's mean loss must agree closely.
TOLERANCES = {
    "first_step_loss_rel": 1e-3,
    "first_10_steps_loss_rel": 2e-2,
    "mean_loss_rel": 5e-2,
    "face_score_abs": 1e-3,  # device vs CPU, fp32 inference: TF32 convolutions on a GPU stay well below
}

#: modules the GPU image lacks that a run with a prepared cache never imports (face detection, video decoding)
NOT_NEEDED = ("dlib", "av", "face_recognition_models")
#: what the image lacks and a run imports: shipped as wheels with their dependencies
SHIPPED_ROOTS = ("albumentations", "jsonschema", "matplotlib")
#: big binaries every GPU image with torch, scikit-learn, OpenCV and scikit-image already has
IN_EVERY_IMAGE = {"numpy", "scipy", "pillow", "opencv-python-headless", "opencv-python", "torch", "torchvision"}


@dataclass(frozen=True)
class Sizes:
    demo_scale: str
    img_size: int
    batch_size: int
    steps: int  # Swin (and the torchrun rerun)
    short_steps: int  # ResNet50 and ViT-S
    workers: int
    frames_per_video: int  # samples per training video per epoch: enough for one epoch (no loader restarts)


FULL = Sizes("default", 256, 16, 300, 150, min(8, max(1, (os.cpu_count() or 2) // 2)), 512)
SMOKE = Sizes("tiny", 64, 4, 2, 2, 0, 512)
MODELS = ("swin", "resnet50", "vit-s")
#: most important first: a short budget loses the last ones (the torchrun run compares the steps it made)
PHASES = ("swin", "faces", "resnet50", "vit-s", "torchrun-swin")


# --------------------------------------------------------------------------------------------- utils

def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant figures: a rate keeps its precision whether it is 0.02
    steps/s on a CPU smoke run or 40 on a GPU (rounding to decimals made images/s 0.2 of 0.216)."""
    return float(f"{value:.{digits}g}")

def now() -> float:
    return time.monotonic()


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = now()

    def left(self) -> float:
        return self.seconds - (now() - self.start)

    def used(self) -> float:
        return now() - self.start


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Whole lines only: a run stopped mid-write leaves a partial last line."""
    out = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 25) -> list[str]:
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]


# ------------------------------------------------------------------------------- the harness processes
def child_main(argv: list[str]) -> None:
    """``gpu_check.py child --memory FILE -- HARNESS ARGS``: the harness CLI in this process, then its
    peak GPU memory and process group written to FILE (rank 0)."""
    memory, args = Path(argv[argv.index("--memory") + 1]), argv[argv.index("--") + 1 :]
    import torch

    from harness.cli import main

    code: int = 0
    try:
        main(args)
    except SystemExit as exc:  # typer ends with SystemExit, 0 included
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        write_memory(memory, torch)
    sys.exit(code)


def write_memory(path: Path, torch: Any) -> None:
    import torch.distributed as dist

    group = dist.get_backend() if dist.is_available() and dist.is_initialized() else None
    if group is not None and dist.get_rank() != 0:
        return
    record: dict[str, Any] = {"process_group": group, "world": dist.get_world_size() if group else 1}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        record["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        record["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 3)
    path.write_text(json.dumps(record))


def faces_main(argv: list[str]) -> None:
    """``gpu_check.py faces RUN_DIR DEVICE OUT [REPEATS]``: the run's checkpoint on the cached test faces,
    timed on DEVICE, then on the CPU; the largest score and mask differences."""
    run_dir, device, out = Path(argv[0]), argv[1], Path(argv[2])
    repeats = int(argv[3]) if len(argv) > 3 else 3
    import numpy as np
    import torch

    crops, meta_model = test_crops(run_dir)
    timed = score_crops(run_dir, crops, device, torch, repeats)
    on_cpu = score_crops(run_dir, crops, "cpu", torch, repeats=1) if device != "cpu" else timed
    result = {
        "faces": len(crops), "device": device, "batch_size": 32, "img_size": meta_model["img_size"],
        "faces_per_s": timed["faces_per_s"], "cpu_faces_per_s": on_cpu["faces_per_s"],
        "score_max_abs_diff": float(np.abs(timed["scores"] - on_cpu["scores"]).max()),
        "score_mean_abs_diff": float(np.abs(timed["scores"] - on_cpu["scores"]).mean()),
        "mask_max_abs_diff": (float(np.abs(timed["masks"] - on_cpu["masks"]).max())
                              if timed["masks"] is not None else None),
    }
    write_memory(out.with_suffix(".memory.json"), torch)
    out.write_text(json.dumps(result))


def test_crops(run_dir: Path) -> tuple[list[Any], dict[str, Any]]:
    """Every cached face of the test videos, cut by the checkpoint's own crop rule."""
    from harness.data.cache import FaceCache, faces_cache_root
    from harness.data.crop import CropRule
    from harness.models.bundle import load_meta

    meta = load_meta(run_dir / "checkpoint")
    root = faces_cache_root(CropRule.from_dict(meta["crop"]), os.environ.get("HARNESS_CACHE"))
    with FaceCache(root, create=False) as cache:
        crops = [face.image for video in cache.videos(split="test") for face in cache.faces(video.uid)]
    return crops, meta


def score_crops(run_dir: Path, crops: list[Any], device: str, torch: Any, repeats: int = 3) -> dict[str, Any]:
    """Scores and masks of ``crops``; faces/s is the median of ``repeats`` timed passes after a warm-up batch."""
    from harness.evaluation.runner import predict_faces
    from harness.models.bundle import input_scale, load_model

    model, meta = load_model(run_dir / "checkpoint", device)
    dev = torch.device(device)
    args = (meta["img_size"], dev, 32, input_scale(meta))
    predict_faces(model, crops[:32], *args)  # warm-up: kernel choice, allocator; results come back to the host
    rates, scores, masks = [], None, None
    for _ in range(repeats):
        started = time.perf_counter()
        scores, masks = predict_faces(model, crops, *args)  # ends on .cpu(): synchronised
        rates.append(len(crops) / (time.perf_counter() - started))
    return {"faces_per_s": round(statistics.median(rates), 1), "scores": scores, "masks": masks}


# ---------------------------------------------------------------------------------------- the check
@dataclass
class Check:
    device: str
    sizes: Sizes
    smoke: bool
    out: Path
    work: Path
    cache_home: Path
    budget: Budget
    block: bool
    report: dict[str, Any]

    def env(self) -> dict[str, str]:
        env = dict(os.environ, HARNESS_CACHE=str(self.cache_home), HARNESS_PROGRESS="0", PYTHONUNBUFFERED="1",
                   COLUMNS="200")  # the logs' summary lines unwrapped
        env.pop("HARNESS_PLUGINS", None)
        env.pop("HARNESS_FAULT", None)
        if self.smoke:  # tiny tensors on a shared machine: one thread each, no oversubscription
            env["OMP_NUM_THREADS"] = "1"
        if self.block:  # prove the prepared cache is enough: no detector, no decoder (what the GPU image lacks)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocker(self.work)), env.get("PYTHONPATH")]))
            env["GPU_CHECK_BLOCK"] = ",".join(NOT_NEEDED)
        return env

    def save(self) -> None:
        self.report["elapsed_s"] = round(self.budget.used(), 1)
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "gpu_check.json"
        path.with_suffix(".tmp").write_text(json.dumps(self.report, indent=2))  # phases in the order they ran
        path.with_suffix(".tmp").replace(path)


def blocker(work: Path) -> Path:
    """A sitecustomize that makes GPU_CHECK_BLOCK's modules unimportable, as on the GPU image."""
    folder = work / "block"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import os, sys\n"
        "_BLOCKED = set(filter(None, os.environ.get('GPU_CHECK_BLOCK', '').split(',')))\n"
        "class _Blocked:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in _BLOCKED:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (not on the GPU image)', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Blocked())\n"
    )
    return folder


def run_process(cmd: list[str], log: Path, check: Check, cwd: Path, reserve: float = RESERVE_S) -> dict[str, Any]:
    """Run ``cmd`` (its own process group) with what is left of the budget; on overrun SIGTERM (the
    harness saves at the next step boundary and exits 143), then SIGKILL after a grace period."""
    limit = check.budget.left() - reserve
    log.parent.mkdir(parents=True, exist_ok=True)
    started = now()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=check.env(), cwd=cwd, start_new_session=True)
        timed_out = False
        try:
            rc = proc.wait(timeout=max(1.0, limit))
        except subprocess.TimeoutExpired:
            timed_out = True
            rc = stop(proc)
    return {"rc": rc, "seconds": round(now() - started, 1), "timed_out": timed_out, "log": str(log),
            "without": list(NOT_NEEDED) if check.block else []}


def stop(proc: subprocess.Popen) -> int:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def harness_args(check: Check) -> list[str]:
    s = check.sizes
    return ["--data", "demo", "--demo-scale", s.demo_scale, "--blender", "multipart", "--pretrained", "none",
            "--img-size", str(s.img_size), "--batch-size", str(s.batch_size), "--workers", str(s.workers),
            "--device", check.device]


def write_configs(check: Check) -> dict[str, Path]:
    """One recorded configuration per backbone, from the harness's own dry run, with the steps of this
    check and enough samples per video that the run is one epoch (a new epoch restarts the loader's workers)."""
    s = check.sizes
    cmd = [sys.executable, str(SELF), "child", "--memory", str(check.work / "dry.memory.json"), "--", "run",
           *harness_args(check), "--backbone", ",".join(MODELS), "--dry-run", "--runs-dir", str(check.work / "dry")]
    proc = subprocess.run(cmd, env=check.env(), cwd=check.work, capture_output=True, text=True,
                          timeout=max(10.0, check.budget.left() - RESERVE_S))
    if proc.returncode != 0:
        raise RuntimeError(f"harness run --dry-run failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
    runs = json.loads(proc.stdout[proc.stdout.index("{"):])["runs"]
    paths = {}
    for run in runs:
        config = run["config"]
        steps = s.steps if config["backbone"] == "swin" else s.short_steps
        config["train"].update(max_steps=steps, frames_per_video=s.frames_per_video)
        paths[config["backbone"]] = check.work / "configs" / f"{config['backbone']}.json"
        paths[config["backbone"]].parent.mkdir(parents=True, exist_ok=True)
        paths[config["backbone"]].write_text(json.dumps(config, indent=2))
    return paths


def train_phase(check: Check, name: str, config: Path, torchrun: bool = False) -> dict[str, Any]:
    """One `harness run --config ...` (plain or under torchrun); what its files say about it."""
    runs, memory = check.work / "runs" / name, check.work / f"{name}.memory.json"
    shutil.rmtree(runs, ignore_errors=True)
    args = ["run", "--config", str(config), "--runs-dir", str(runs), "--device", check.device]
    if check.sizes.demo_scale != "default":
        args += ["--demo-scale", check.sizes.demo_scale]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "--master-addr", "127.0.0.1",
                "--master-port", str(free_port())] if torchrun else [sys.executable]
    cmd = [*launcher, str(SELF), "child", "--memory", str(memory), "--", *args]
    result = run_process(cmd, check.out / "logs" / f"{name}.log", check, check.work)
    result["command"] = "harness " + " ".join(args)
    run_dir = next((p.parent for p in runs.glob("*/config.json")), None)
    result["preprocessed"] = preprocessed(check.out / "logs" / f"{name}.log")
    if run_dir is not None:
        result.update(run_outputs(run_dir, check))
        keep_small_files(run_dir, check.out / "runs" / name)
    if memory.is_file():
        result["process"] = json.loads(memory.read_text())
    result["status"] = "ok" if result["rc"] == 0 else "timeout" if result["timed_out"] else "failed"
    if result["status"] == "failed":
        result["log_tail"] = tail(check.out / "logs" / f"{name}.log")
    return result


def run_outputs(run_dir: Path, check: Check) -> dict[str, Any]:
    config = json.loads((run_dir / "config.json").read_text())
    out: dict[str, Any] = {"run_dir": str(run_dir), "backbone": config["backbone"], "img_size": config["img_size"],
                           "batch_size": config["train"]["batch_size"], "amp": config["train"]["amp"],
                           "workers": config["train"]["workers"], "sam_rho": config["train"]["sam_rho"]}
    out["train"] = train_stats(run_dir / "train_log.jsonl", config["train"]["batch_size"])
    results = run_dir / "results.json"
    if results.is_file():
        out["run"] = run_stats(json.loads(results.read_text()))
    return out


def preprocessed(log: Path) -> dict[str, int]:
    """The counts of the run's "preprocessed: videos N, skipped N, done N, failed N, ..." line: with
    a prepared cache every video is skipped and none done or failed (no face was looked for)."""
    import re

    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    at = text.find("preprocessed:")
    if at < 0:
        return {}
    line = text[at:].splitlines()[0]
    return {key: int(value) for key, value in re.findall(r"(videos|skipped|done|failed|no_face) (\d+)", line)}


def warmup_steps(n: int) -> int:
    """Steps left out of the throughput: the first ones pay for kernel choice, the allocator and the
    workers' start. 10 % of the run, 5 to 20 steps (1 of a 2-step smoke run)."""
    return 0 if n <= 1 else min(n - 1, max(5, min(20, n // 10)))


def train_stats(log: Path, batch_size: int) -> dict[str, Any]:
    steps: dict[int, dict[str, Any]] = {}
    for record in read_jsonl(log):
        if "loss" in record and isinstance(record.get("time"), dict):
            steps[record["step"]] = record  # a step logged twice (redone after a resume) keeps its last record
    ordered = [steps[k] for k in sorted(steps)]
    skip = warmup_steps(len(ordered))
    kept = ordered[skip:]
    data = [r["time"]["data"] for r in kept]
    compute = [r["time"]["step"] for r in kept]
    total = sum(data) + sum(compute)
    stats: dict[str, Any] = {"steps": len(ordered), "warmup_steps_excluded": skip, "measured_steps": len(kept),
                             "losses": [r["loss"] for r in ordered]}
    if total > 0:
        stats.update({
            "steps_per_s": significant(len(kept) / total),
            "images_per_s": significant(len(kept) * batch_size / total),
            "data_wait_share": round(sum(data) / total, 4),
            "data_wait_ms": {"p50": ms(quantile(data, 0.5)), "p95": ms(quantile(data, 0.95)), "max": ms(max(data))},
            "step_ms": {"p50": ms(quantile(compute, 0.5)), "p95": ms(quantile(compute, 0.95))},
            "first_step_s": round(ordered[0]["time"]["data"] + ordered[0]["time"]["step"], 3),
        })
    return stats


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 2)


def run_stats(results: dict[str, Any]) -> dict[str, Any]:
    timings, training = results.get("timings", {}), results.get("training", {})
    block = next(iter(results.get("datasets", {}).values()), {})
    counts = block.get("counts", {})
    faces = counts.get("frames", 0) - counts.get("frames_no_face", 0)  # demo frames hold one face each
    eval_s, train_s = timings.get("eval_s"), timings.get("train_s")
    auc = block.get("groups", {}).get("all", {}).get("video", {}).get("auc", {}).get("value")
    return {
        "train_s": train_s, "eval_s": eval_s, "preprocess_s": timings.get("preprocess_s"),
        "wall_steps_per_s": round(training["steps"] / train_s, 3) if train_s and training.get("steps") else None,
        "eval_faces": faces, "eval_stage_faces_per_s": round(faces / eval_s, 1) if eval_s else None,
        "video_auc": auc, "final_loss": training.get("final_loss"),
    }


def keep_small_files(run_dir: Path, to: Path) -> None:
    """The run's log, configuration and results travel back with the report (not the checkpoint)."""
    to.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "train_log.jsonl", "results.json"):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, to / name)


def faces_phase(check: Check, run_dir: str) -> dict[str, Any]:
    out = check.work / "faces.json"
    cmd = [sys.executable, str(SELF), "faces", run_dir, check.device, str(out), "1" if check.smoke else "3"]
    result = run_process(cmd, check.out / "logs" / "faces.log", check, check.work)
    if out.is_file():
        result.update(json.loads(out.read_text()))
        diff = result["score_max_abs_diff"]
        result["within_tolerance"] = diff <= TOLERANCES["face_score_abs"]
    if out.with_suffix(".memory.json").is_file():
        result["process"] = json.loads(out.with_suffix(".memory.json").read_text())
    result["status"] = "ok" if result["rc"] == 0 and out.is_file() else "timeout" if result["timed_out"] else "failed"
    if result["status"] == "failed":
        result["log_tail"] = tail(check.out / "logs" / "faces.log")
    return result


def compare_losses(plain: list[float], other: list[float]) -> dict[str, Any]:
    """The torchrun run's losses against the plain run's, step by step, over the steps both made."""
    n = min(len(plain), len(other))
    if n == 0:
        return {"steps_compared": 0, "equal_within_tolerance": False}

    def rel(a: float, b: float) -> float:
        return abs(a - b) / max(abs(a), 1e-12)

    first10 = max(rel(a, b) for a, b in zip(plain[:10], other[:10]))
    out = {
        "steps_compared": n,
        "first_step_loss_rel": rel(plain[0], other[0]),
        "first_10_steps_loss_rel": first10,
        "mean_loss_rel": rel(statistics.fmean(plain[:n]), statistics.fmean(other[:n])),
        "max_loss_abs": max(abs(a - b) for a, b in zip(plain[:n], other[:n])),
    }
    out["equal_within_tolerance"] = all(out[k] <= TOLERANCES[k] for k in TOLERANCES if k in out)
    return out


def torchrun_phase(check: Check, config: Path, plain: dict[str, Any]) -> dict[str, Any]:
    result = train_phase(check, "torchrun-swin", config, torchrun=True)
    losses = result.get("train", {}).get("losses", [])
    result["comparison"] = compare_losses(plain.get("train", {}).get("losses", []), losses)
    expected = "nccl" if check.device.startswith("cuda") else "gloo"
    group = result.get("process", {}).get("process_group")
    result["comparison"]["process_group"] = group
    result["comparison"]["expected_process_group"] = expected
    if group != expected:
        result["comparison"]["equal_within_tolerance"] = False
    return result


def environment(device: str) -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                           "cpu_count": os.cpu_count(), "torch": torch.__version__, "cuda": torch.version.cuda,
                           "device": device}
    for dist in ("deepfake-harness", "timm", "torchvision", "numpy", "albumentations", "opencv-python-headless"):
        try:
            env[dist] = md.version(dist)
        except md.PackageNotFoundError:
            env[dist] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        env["gpu"] = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                      "capability": f"{props.major}.{props.minor}", "count": torch.cuda.device_count(),
                      "cudnn": torch.backends.cudnn.version(), "bf16": torch.cuda.is_bf16_supported(),
                      "nccl": ".".join(map(str, torch.cuda.nccl.version())), "driver": nvidia_driver()}
    return env


def nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: torch {torch.__version__} sees no CUDA GPU here; pass --device cpu")
    return name


def check_main(argv: list[str]) -> int:  # shape: the phases in their order, each saved as it ends
    args = check_parser().parse_args(argv)
    sizes = replace(SMOKE if args.smoke else FULL, **{k: v for k, v in (
        ("steps", args.steps), ("short_steps", args.short_steps), ("workers", args.workers),
        ("demo_scale", args.demo_scale), ("img_size", args.img_size), ("batch_size", args.batch_size)) if v is not None})
    out = Path(args.out).resolve()
    work = Path(args.work or (out / "work" if args.smoke else FOLDER / "work")).resolve()
    report: dict[str, Any] = {"schema": SCHEMA, "status": "running", "smoke": args.smoke, "budget_s": args.budget,
                              "settings": asdict(sizes), "tolerances": TOLERANCES, "phases": {}}
    check = Check(device="cpu", sizes=sizes, smoke=args.smoke, out=out, work=work, budget=Budget(args.budget),
                  cache_home=Path(args.cache or (work / "cache" if args.smoke else FOLDER / "home")).resolve(),
                  block=False, report=report)
    report["install"] = json.loads(Path(args.install).read_text()) if args.install else None
    manifest = FOLDER / "manifest.json"
    report["prepared"] = json.loads(manifest.read_text()) if manifest.is_file() and not args.smoke else None
    if report["install"] and report["install"].get("status") != "ok":
        return finish(check, "install failed")
    shutil.rmtree(work, ignore_errors=True)  # the previous check's runs: each phase starts from nothing
    work.mkdir(parents=True)
    try:
        check.device = pick_device(args.device)
    except ValueError as exc:  # cuda asked for and none visible: say so in the report
        report["error"] = str(exc)
        return finish(check, "failed")
    report["environment"] = environment(check.device)
    check.save()
    # A smoke run without a prepared cache: its first run fills one (with dlib, as the preparation step
    # does), and every later phase runs without a face detector or a video decoder, as on the GPU.
    check.block = args.smoke and bool(args.cache)
    configs: dict[str, Path] | None = None
    for name in args.phases.split(","):
        if check.budget.left() < MIN_PHASE_S:
            report["phases"][name] = {"status": "skipped", "reason": f"{check.budget.left():.0f}s of the budget left"}
            continue
        try:
            configs = configs or write_configs(check)  # the first phase that runs asks the harness for them
        except (RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
            report["phases"][name] = {"status": "failed", "reason": f"no run configuration: {exc}"}
            return finish(check, "failed")
        report["phases"][name] = run_phase(check, name, configs)
        check.block = args.smoke
        check.save()
    status = "complete" if all(p.get("status") == "ok" for p in report["phases"].values()) else "partial"
    return finish(check, status)


def run_phase(check: Check, name: str, configs: dict[str, Path]) -> dict[str, Any]:
    phases = check.report["phases"]
    if name == "faces":
        swin = phases.get("swin", {})
        if "run_dir" not in swin or not (Path(swin["run_dir"]) / "checkpoint").is_dir():
            return {"status": "skipped", "reason": "the Swin run left no checkpoint"}
        return faces_phase(check, swin["run_dir"])
    if name == "torchrun-swin":
        return torchrun_phase(check, configs["swin"], phases.get("swin", {}))
    return train_phase(check, name, configs[name])


def finish(check: Check, status: str) -> int:
    check.report["status"] = status
    check.save()
    table = render_table(check.report)
    (check.out / "gpu_check.md").write_text(table + "\n")
    print(table)
    print(f"\n{check.out / 'gpu_check.json'}")
    return 0 if status == "complete" else 1


def check_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpu_check.py check", description="Measure the paper's setting on this machine's accelerator.")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cuda, cuda:N or cpu")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, 2 steps, its own tiny cache unless --cache (CPU tests)")
    p.add_argument("--budget", type=float, default=480, help="seconds for the whole check (default 480)")
    p.add_argument("--out", default=str(FOLDER / "result"), help="folder for gpu_check.json, gpu_check.md, logs/")
    p.add_argument("--work", default=None, help="scratch folder for the runs (checkpoints; not copied back)")
    p.add_argument("--cache", default=None, help="cache home holding the prepared demo and faces (HARNESS_CACHE)")
    p.add_argument("--install", default=None, help="the install step's JSON record (gpu_check.sh writes it)")
    p.add_argument("--steps", type=int, default=None, help="Swin steps (default 300; smoke 2)")
    p.add_argument("--short-steps", type=int, default=None, help="ResNet50 / ViT-S steps (default 150; smoke 2)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default min(8, cores/2); smoke 0)")
    p.add_argument("--img-size", type=int, default=None, help="model input side (default 256; smoke 64)")
    p.add_argument("--batch-size", type=int, default=None, help="images per step, half real (default 16, the paper's; smoke 4)")
    p.add_argument("--demo-scale", default=None, help="the prepared demo's size: default (the check) or tiny (smoke)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, in this order (default {','.join(PHASES)})")
    return p


# ------------------------------------------------------------------------------------------ the table
def render_table(report: dict[str, Any]) -> str:
    env = report.get("environment") or {}
    gpu = env.get("gpu") or {}
    lines = [f"GPU check ({report.get('status')}, {report.get('elapsed_s')} s of {report.get('budget_s')} s)"
             + (" SMOKE: sizes too small to mean anything" if report.get("smoke") else ""),
             f"device: {env.get('device')} {gpu.get('name', '')} | torch {env.get('torch')} CUDA {env.get('cuda')} "
             f"cuDNN {gpu.get('cudnn')} NCCL {gpu.get('nccl')} driver {gpu.get('driver')} | python {env.get('python')} "
             f"| harness {env.get('deepfake-harness')} timm {env.get('timm')} | {env.get('cpu_count')} CPUs", "",
             "| model | status | steps | steps/s | images/s | data wait | step p50 ms | peak GiB (alloc/reserved) "
             "| wall steps/s | eval stage faces/s | video AUC |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("swin", "resnet50", "vit-s", "torchrun-swin"):
        lines.append(table_row(name, report.get("phases", {}).get(name)))
    lines += ["", *notes(report)]
    return "\n".join(lines)


def table_row(name: str, phase: dict[str, Any] | None) -> str:
    phase = phase or {"status": "not run"}
    t, r, p = phase.get("train", {}), phase.get("run", {}), phase.get("process", {})

    def f(value: Any, spec: str = "") -> str:
        return "-" if value is None else format(value, spec)

    share = t.get("data_wait_share")
    peak = f"{f(p.get('peak_allocated_gib'))}/{f(p.get('peak_reserved_gib'))}" if "peak_allocated_gib" in p else "-"
    return (f"| {name} | {phase.get('status')} | {f(t.get('steps'))} | {f(t.get('steps_per_s'))} | {f(t.get('images_per_s'))} "
            f"| {'-' if share is None else f'{100 * share:.1f} %'} | {f(t.get('step_ms', {}).get('p50'))} | {peak} "
            f"| {f(r.get('wall_steps_per_s'))} | {f(r.get('eval_stage_faces_per_s'))} | {f(r.get('video_auc'), '.3f')} |")


def notes(report: dict[str, Any]) -> list[str]:
    phases = report.get("phases", {})
    out = []
    faces = phases.get("faces") or {}
    if "faces_per_s" in faces:
        out.append(f"evaluation, Swin checkpoint, model only (batch 32, {faces['faces']} cached test faces): "
                   f"{faces['faces_per_s']} faces/s on {faces['device']}, {faces['cpu_faces_per_s']} on the CPU; "
                   f"largest |score difference| {faces['score_max_abs_diff']:.2e} (tolerance {TOLERANCES['face_score_abs']}), "
                   f"largest mask difference {faces['mask_max_abs_diff']}")
    elif faces:
        out.append(f"evaluation faces/s and device-vs-CPU scores: {faces.get('status')} {faces.get('reason', '')}")
    cmp_ = (phases.get("torchrun-swin") or {}).get("comparison")
    if cmp_ and cmp_.get("steps_compared"):
        out.append(f"torchrun --nproc_per_node 1 ({cmp_.get('process_group')}, DDP) vs plain, {cmp_['steps_compared']} steps: "
                   f"first-step loss rel diff {cmp_['first_step_loss_rel']:.1e}, first 10 steps {cmp_['first_10_steps_loss_rel']:.1e}, "
                   f"mean loss {cmp_['mean_loss_rel']:.1e}: "
                   + ("equal within tolerance" if cmp_["equal_within_tolerance"] else "NOT equal within tolerance"))
    settings = report.get("settings", {})
    out.append(f"settings: multipart blender, {settings.get('img_size')} px, batch {settings.get('batch_size')} images "
               f"(half real, half self-blended), SAM (two forward/backward passes per step), bf16 autocast on a GPU, "
               f"--pretrained none, {settings.get('workers')} DataLoader workers; steps/s after "
               f"{'the first step' if report.get('smoke') else 'the warm-up steps'}, the device synchronised at each step's end")
    return out


# ------------------------------------------------------------------------------------ the preparation
def build_cache(home: Path, demo_scale: str, work: Path, logs: Path) -> dict[str, Any]:
    """The demo tree and its faces in cache home ``home``, through the harness's own command: a one-step
    run fills the face cache for every split with the settings the check's runs ask for (the demo's
    frames and crop rule), so they find every face cached. Smallest model, CPU."""
    work.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "harness", "run", "--data", "demo", "--demo-scale", demo_scale, "--backbone", "mobilenetv2",
           "--pretrained", "none", "--img-size", "32", "--batch-size", "2", "--max-steps", "1", "--workers", "0",
           "--device", "cpu", "--runs-dir", str(work / "runs")]
    env = dict(os.environ, HARNESS_CACHE=str(home), HARNESS_PROGRESS="0")
    env.pop("HARNESS_PLUGINS", None)
    started = now()
    with (logs / "cache.log").open("w") as fh:
        proc = subprocess.run(cmd, env=env, cwd=work, stdout=fh, stderr=subprocess.STDOUT, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"building the demo face cache failed (rc {proc.returncode}); see {logs / 'cache.log'}")
    return {"status": "ok", "seconds": round(now() - started, 1), "home": str(home)}


def closure(roots: tuple[str, ...], python_version: str) -> dict[str, str]:
    """The installed distributions ``roots`` need, with this environment's versions (what was tested)."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    marker_env = {"python_version": python_version, "python_full_version": f"{python_version}.0", "extra": "",
                  "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                  "implementation_name": "cpython", "platform_python_implementation": "CPython", "os_name": "posix"}
    found: dict[str, str] = {}
    stack = list(roots)
    while stack:
        name = canonicalize_name(stack.pop())
        if name in found:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed here: install the project first (make test)") from None
        found[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(marker_env):
                stack.append(req.name)
    return found


def build_wheels(wheels: Path, python_version: str) -> dict[str, Any]:
    """The project's wheel (no dependencies: dlib, PyAV, the weight wheels stay behind) and what the
    image lacks (SHIPPED_ROOTS and their dependencies but IN_EVERY_IMAGE), pinned to the versions here."""
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=ROOT)
    pins = {n: v for n, v in closure(SHIPPED_ROOTS, python_version).items() if n not in IN_EVERY_IMAGE}
    platforms = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64"]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps", "--implementation", "cp",
           "--python-version", python_version, *[a for p in platforms for a in ("--platform", p)], "-d", str(wheels),
           *[f"{n}=={v}" for n, v in sorted(pins.items())]]
    subprocess.run(cmd, check=True)
    return {"shipped": pins, "roots": list(SHIPPED_ROOTS), "not_shipped": sorted(IN_EVERY_IMAGE),
            "never_needed": list(NOT_NEEDED), "python_version": python_version}


def archive_cache(home: Path, archive: Path) -> None:
    """The demo tree and the face cache (index and crops), not the transient claim files."""
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "/claims" in info.name or info.name.endswith("-wal") or info.name.endswith("-shm") else info

    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        for part in ("demo", "faces"):
            tar.add(home / part, arcname=part, filter=keep)


def verify_archive(archive: Path, work: Path, demo_scale: str) -> dict[str, Any]:
    """The archive, unpacked elsewhere, serves the check's Swin run with face detection and video
    decoding made impossible (what the GPU image lacks): one step, tiny model size, CPU."""
    home = work / "verify-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(home, filter="data")
    out = work / "verify-out"
    cmd = [sys.executable, str(SELF), "check", "--device", "cpu", "--smoke", "--demo-scale", demo_scale, "--phases", "swin",
           "--steps", "1", "--out", str(out), "--work", str(work / "verify-work"), "--cache", str(home), "--budget", "1200"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    report = json.loads((out / "gpu_check.json").read_text()) if (out / "gpu_check.json").is_file() else {}
    swin = report.get("phases", {}).get("swin", {})
    counts = swin.get("preprocessed", {})
    ok = proc.returncode == 0 and swin.get("status") == "ok" and counts.get("videos", 0) > 0 \
        and counts.get("skipped") == counts.get("videos") and counts.get("done") == counts.get("failed") == 0
    if not ok:
        raise SystemExit(f"the prepared cache does not serve a run without a face detector: see {out} "
                         f"({'; '.join(swin.get('log_tail', [])[-3:]) or proc.stdout[-500:]})")
    return {"status": "ok", "preprocessed": counts, "eval_faces": swin["run"]["eval_faces"]}


def prepare_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gpu_check.py prepare", description="Build the folder the GPU check needs.")
    p.add_argument("--folder", default=str(FOLDER), help="output folder (git-ignored .gpu_check/ by default)")
    p.add_argument("--python-version", default="3.12", help="the GPU image's Python (wheels are for this version)")
    p.add_argument("--demo-scale", default=FULL.demo_scale, help="default (the check) or tiny")
    args = p.parse_args(argv)
    folder = Path(args.folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    stage = folder / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    wheels = build_wheels(folder / "wheels", args.python_version)
    cache = build_cache(stage / "home", args.demo_scale, stage, stage / "logs")
    archive_cache(stage / "home", folder / "cache.tar.gz")
    verified = verify_archive(folder / "cache.tar.gz", stage, args.demo_scale)
    shutil.rmtree(stage, ignore_errors=True)
    manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_commit(), "wheels": wheels,
                "cache": {"demo_scale": args.demo_scale, "built_in_s": cache["seconds"], "archive": "cache.tar.gz",
                          "verified_without_detector": verified},
                "files": {p.name: p.stat().st_size for p in sorted((folder / "wheels").iterdir())}}
    manifest["files"]["cache.tar.gz"] = (folder / "cache.tar.gz").stat().st_size
    manifest["total_mib"] = round(sum(manifest["files"].values()) / 2**20, 1)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"{folder}: {manifest['total_mib']} MiB ({len(manifest['files']) - 1} wheels + cache.tar.gz "
          f"{manifest['files']['cache.tar.gz'] / 2**20:.1f} MiB); limit {MAX_FOLDER_MIB} MiB")
    return 0 if manifest["total_mib"] <= MAX_FOLDER_MIB else 1


def git_commit() -> str | None:
    proc = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def main() -> None:
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "child":
        child_main(rest)
    elif command == "faces":
        faces_main(rest)
    elif command == "check":
        sys.exit(check_main(rest))
    elif command == "prepare":
        sys.exit(prepare_main(rest))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
