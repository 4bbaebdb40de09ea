"""The one check of a run's configuration, made before any work.

`harness run` (its options, a ``--config`` file, ``--dry-run``), `harness preprocess` and the Python
API (``harness.run.stages.run``) all call it, so a value that cannot run is refused in one line
(``ConfigError``: exit code 2 on the command line) before a dataset is opened, a frame decoded or
a step trained: never an empty model with a result, never a cache filled with nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.common.errors import HarnessError

if TYPE_CHECKING:
    from harness.run.config import RunConfig


class ConfigError(HarnessError, ValueError):
    """A configuration that cannot run (an option, a --config file, a Python API value); the message
    names the option or file and the fix, in one line."""

#: the model's contract (harness/models/detector.py): feature maps at strides 4 ... 32
IMG_STRIDE = 32
#: the largest input side accepted: one 1024 px image already needs gigabytes of activations
MAX_IMG_SIZE = 1024
#: what RunConfig.compression may name (FF++'s folders; raw is also spelled c0)
COMPRESSIONS = ("raw", "c0", "c23", "c40")
SELECTIONS = ("last", "best-val")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _at_least(value: Any, low: int, field: str, option: str, fix: str) -> None:
    if not _is_int(value) or value < low:
        named = f"{field} = {value!r}" if option == field else f"{option} {value!r} ({field})"
        raise ConfigError(f"{named}: must be an integer >= {low}; {fix}")


def check_frames(frames: Any, option: str = "--frames") -> None:
    """Frames per video, one number or one per split: each at least 1 (0 would cache no face and
    mark every video 'no face' for good)."""
    values = frames.items() if isinstance(frames, dict) else [("", frames)]
    for split, n in values:
        if not _is_int(n) or n < 1:
            where = f"{split}={n}" if split else f"{n}"
            raise ConfigError(f"{option} {where}: frames per video must be at least 1 for every split "
                              "(e.g. 32, or train=8,test=32)")


def check_img_size(img_size: Any, backbone: str = "") -> None:
    name = f" for backbone {backbone!r}" if backbone else ""
    if not _is_int(img_size) or img_size < IMG_STRIDE or img_size % IMG_STRIDE or img_size > MAX_IMG_SIZE:
        raise ConfigError(f"--img-size {img_size!r} (img_size){name}: must be a multiple of {IMG_STRIDE} "
                          f"from {IMG_STRIDE} to {MAX_IMG_SIZE} (the encoder's stride-32 grid; paper: 224)")


def check_device(device: Any) -> None:
    """The device's spelling (whether this machine has it is pick_device's question, at run time)."""
    text = str(device)
    kind, _, index = text.partition(":")
    if kind == "auto" and not index or kind in ("cpu", "mps") and not index or kind == "cuda" and (not index or index.isdigit()):
        return
    raise ConfigError(f"--device {text!r} is not a device name; use auto, cpu, cuda or cuda:N")


def check_run_config(config: RunConfig) -> None:
    """Raise ConfigError (one line naming the option and the fix) for the first value that cannot run."""
    t = config.train
    _at_least(t.epochs, 1, "train.epochs", "--epochs", "a run trains at least one epoch (paper: 100)")
    if t.max_steps is not None:
        _at_least(t.max_steps, 1, "train.max_steps", "--max-steps", "leave it out to train every epoch")
    if not _is_int(t.batch_size) or t.batch_size < 2 or t.batch_size % 2:
        raise ConfigError(f"--batch-size {t.batch_size!r} (train.batch_size): must be even and at least 2, "
                          "half reals and half their self-blended fakes (paper: 16)")
    _at_least(t.frames_per_video, 1, "train.frames_per_video", "train.frames_per_video",
              "frames sampled per real video per epoch (paper: 8)")
    _at_least(t.cache_frames, 1, "train.cache_frames", "train.cache_frames", "frames cached per training video (default 32)")
    _at_least(t.workers, 0, "train.workers", "--workers", "0 loads data in this process")
    _at_least(t.val_every, 0, "train.val_every", "train.val_every", "0 validates only at the end")
    if t.selection not in SELECTIONS:
        raise ConfigError(f"--selection {t.selection!r} (train.selection): must be 'last' or 'best-val' (never test data)")
    check_img_size(config.img_size, config.backbone)
    _at_least(config.crop_size, 16, "crop_size", "crop_size", "the cached face crop's side (default 256)")
    check_eval_config(config)


def check_eval_config(config: RunConfig) -> None:
    """What scoring reads (`harness evaluate` checks only this: the model's own sizes come from its
    bundle): the eval section, compression, device and seed."""
    e = config.eval
    _at_least(e.frames_per_video, 1, "eval.frames_per_video", "--eval-frames", "frames scored per test video (paper: 32)")
    _at_least(e.batch_size, 1, "eval.batch_size", "eval.batch_size", "images per evaluation batch (default 32)")
    _at_least(e.bootstrap, 0, "eval.bootstrap", "eval.bootstrap", "bootstrap resamples for the CIs (0: none)")
    if str(config.compression).strip().lower() not in COMPRESSIONS:
        raise ConfigError(f"--compression {config.compression!r}: use raw (= c0), c23 or c40")
    check_device(config.device)
    if not _is_int(config.seed):
        raise ConfigError(f"--seed {config.seed!r} (seed): must be an integer")


def check_plugin_options(config: RunConfig) -> None:
    """An option the run configuration gives a plugin that the plugin does not take is one line
    now (naming the field, the closest option and the ones it takes), not a TypeError in training."""
    from harness.extend import contracts, registry

    asked = [("blender", config.blender, "blender_options", config.blender_options),
             ("backbone", config.backbone, "backbone_options", config.backbone_options)]
    used = [config.train_dataset, *config.test_datasets]
    asked += [("dataset", name, f"dataset_options.{name}", config.dataset_options[name])
              for name in dict.fromkeys(used) if name in config.dataset_options]
    for kind, name, field, options in asked:
        unknown = contracts.unknown_options(registry.get(kind, name), options)
        if unknown:
            raise ConfigError(f"{field} of the run configuration: {unknown[0]}")
    check_trainable_detector(config.face_detector)


def check_trainable_detector(name: str) -> None:
    """Training self-blends faces along their 68 landmarks: a detector of pre-cropped faces gives none."""
    from harness.extend import registry

    if registry.get("face_detector", name).extra.get("precropped"):
        raise ConfigError(f"--face-detector {name}: it takes each image as one face, already cropped, with no landmarks, "
                          "and training blends faces along their 68 landmarks; train with a landmark detector (dlib also "
                          f"finds the face inside a crop), then score crops with `harness evaluate --face-detector {name}`")


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_folder(path: Path | None, option: str) -> None:
    """``path`` is or can become a folder: neither it nor a parent is a file."""
    if path is None:
        return
    found = _first_existing(Path(path))
    if not found.is_dir():
        what = "is a file" if found == Path(path) else f"is inside {found}, which is a file"
        raise ConfigError(f"{option} {path} {what}; it must be a folder: pass a folder path")


def check_file(path: Path | None, option: str) -> None:
    """``path`` is or can become a file: it is not a folder and no parent is a file."""
    if path is None:
        return
    if Path(path).is_dir():
        raise ConfigError(f"{option} {path} is a folder; it must be a file: pass a file path such as {Path(path) / 'LEADERBOARD.md'}")
    check_folder(Path(path).parent, option)


def check_run_paths(paths: Any) -> None:
    """A RunPaths' folders and leaderboard file are usable before the run begins (not after training)."""
    check_folder(paths.runs_dir, "--runs-dir")
    check_folder(paths.results_dir, "--results-dir")
    check_file(paths.leaderboard, "--leaderboard")
    check_folder(paths.cache_dir, "--cache-dir")
