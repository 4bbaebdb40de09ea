"""The one check of a run's configuration, made before any work: its values and names (what any
machine can check from the configuration alone; harness.run.config_check adds what needs the
models, the loggers and the run's paths).

`harness run` (its options, a ``--config`` file, ``--dry-run``), `harness preprocess` and the Python
API (``harness.run.stages.run``) all call it, so a value that cannot run is refused in one line
(``ConfigError``: exit code 2 on the command line) before a dataset is opened, a frame decoded or
a step trained: never an empty model with a result, never a cache filled with nothing.

What it checks: every field of RunConfig against its declared type (``check_types``: a field added
later is checked by its declaration), every number finite and within its range (``RANGES``), the
words each field takes, and batch sizes and frame counts against the memory this machine has free
(``check_fits_memory``). `evaluate`, `predict`, `preprocess`, `compare` and `blend` check their own
numbers with the same helpers (``check_number``, ``check_seed``, ``check_frames``, ``check_workers``).
"""

from __future__ import annotations

import json
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.common.errors import HarnessError

if TYPE_CHECKING:
    from harness.vocab.config import RunConfig


class ConfigError(HarnessError, ValueError):
    """A configuration that cannot run (an option, a --config file, a Python API value); the message
    names the option or file and the fix, in one line."""

#: the model's contract (harness/models/detector.py): feature maps at strides 4 ... 32
IMG_STRIDE = 32
#: the largest input side accepted: one 1024 px image already needs gigabytes of activations
MAX_IMG_SIZE = 1024
#: what RunConfig.compression may name (FF++'s folders; raw is also spelled c0)
COMPRESSIONS = ("raw", "c0", "c23", "c40")
#: the words a configuration may use
SELECTIONS = ("last", "best-val")
OPTIMIZERS = ("sgd", "adamw")
LR_SCHEDULES = ("cosine", "constant")
#: L_m's similarity (harness.models.losses implements them): proj: cosine of the token projection
#: head (default) | cosine: cosine of the classifier's own stride-32 features (collapses, kept for
#: ablation) | token: 1 - |P_m_i - P_m_j| | literal: Eq. 16
SIM_FORMS = ("proj", "cosine", "token", "literal")
#: L_m's pairs: fakes-balanced: fakes only, same- and cross-region pairs weighted equally | all:
#: every pair of every image, as printed
PAIR_RULES = ("fakes-balanced", "all")
AGGREGATIONS = ("max", "mean", "median")  # harness.evaluation.runner.AGGREGATORS implements them
#: seeds feed numpy's and torch's generators (``default_rng([seed, ...])``, ``manual_seed``)
SEED_MAX = 2**32 - 1
#: bootstrap resamples: far past the point where a 95 % interval stops moving (paper: 1000)
MAX_BOOTSTRAP = 1_000_000


@dataclass(frozen=True)
class Range:
    """Where a number may lie: ``low``/``high`` (None: unbounded), open ends excluded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    fix: str = ""

    def holds(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def text(self) -> str:
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {_num(self.low)}"
        high = None if self.high is None else f"{'<' if self.high_open else '<='} {_num(self.high)}"
        if low and high:
            return f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"
        return low or high or ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


#: The range of every numeric field (dotted name) of a RunConfig. Every field is also checked
#: against its declared type (``check_types``): a field added without a range here is still
#: refused when it is of the wrong type or, for a float, not finite.
RANGES: dict[str, Range] = {
    "train.epochs": Range(1, fix="a run trains at least one epoch (paper: 100)"),
    "train.max_steps": Range(1, fix="leave it out to train every epoch"),
    "train.frames_per_video": Range(1, fix="frames sampled per real video per epoch (paper: 8)"),
    "train.cache_frames": Range(1, fix="frames cached per training video (default 32)"),
    "train.workers": Range(0, fix="0 loads data in this process"),
    "train.val_every": Range(0, fix="0 validates only at the end"),
    "train.lr": Range(0, low_open=True, fix="the learning rate must be positive (e.g. --lr 5e-4)"),
    "train.momentum": Range(0, 1, high_open=True, fix="SGD's momentum (paper: 0.9)"),
    "train.weight_decay": Range(0, fix="0 for none"),
    "train.sam_rho": Range(0, fix="SAM's radius (default 0.05); 0 = the base optimizer alone"),
    "train.warmup": Range(0, fix="steps of learning-rate warm-up (default 0)"),
    "train.grad_clip": Range(0, fix="the gradient-norm clip (default 1.0); 0 = none"),
    "eval.frames_per_video": Range(1, fix="frames scored per test video (paper: 32)"),
    "eval.batch_size": Range(1, fix="images per evaluation batch (default 32)"),
    "eval.bootstrap": Range(0, MAX_BOOTSTRAP, fix="bootstrap resamples for the CIs (0: none; default 1000)"),
    "eval.threshold": Range(0, 1, fix="a probability of fake (default 0.5)"),
    "loss.alpha": Range(0, fix="a loss weight (default 1)"),
    "loss.beta": Range(0, fix="a loss weight (default 1)"),
    "loss.gamma": Range(0, fix="a loss weight (default 1)"),
    "loss.delta": Range(0, fix="a loss weight (default 0)"),
    "loss.dice": Range(0, fix="a loss weight (default 1)"),
    "loss.min_grid": Range(0, fix="tokens a side below which the token losses are off (default 4)"),
    "crop_size": Range(16, fix="the cached face crop's side (default 256)"),
    "crop_margin": Range(0, fix="the crop's margin around the face (default 0.3)"),
    "seed": Range(0, SEED_MAX, fix="a seed of numpy's and torch's generators (default 0)"),
}

#: the option of `harness run` that sets a field, for the message (the field's own name otherwise)
OPTIONS: dict[str, str] = {
    "train.epochs": "--epochs", "train.max_steps": "--max-steps", "train.batch_size": "--batch-size",
    "train.workers": "--workers", "train.lr": "--lr", "train.weight_decay": "--weight-decay",
    "train.sam_rho": "--sam-rho", "train.warmup": "--warmup", "train.selection": "--selection",
    "train.optimizer": "--optimizer", "eval.frames_per_video": "--eval-frames", "seed": "--seed",
    "img_size": "--img-size", "compression": "--compression", "device": "--device",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _named(field: str, value: Any, option: str | None = None) -> str:
    """How a message names a value: ``--lr nan (train.lr)``, or ``train.cache_frames = 0``."""
    option = option or OPTIONS.get(field, field)
    if option == field:
        return f"{field} = {_show(value)}"
    return f"{option} {value!r}" if option.lstrip("-").replace("-", "_") == field else f"{option} {value!r} ({field})"


def _show(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except ValueError:  # nested too deep to print: its type says enough
        return type(value).__name__


def check_number(value: Any, rule: Range, field: str, option: str | None = None, integer: bool = False) -> None:
    """``value`` is a finite number (an integer when ``integer``) within ``rule``, else one line
    naming the option (or field), the range and ``rule.fix``."""
    kind = "an integer" if integer else "a finite number"
    if (integer and not _is_int(value)) or not _is_number(value) or not math.isfinite(value) or not rule.holds(value):
        raise ConfigError(f"{_named(field, value, option)}: must be {kind} {rule.text()}; {rule.fix}")


# ---------------------------------------------------------------------------------- types
def _describe(hint: Any) -> str:
    """A declared type in words: ``int | None`` -> "an integer or null"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict or hint is dict:
        return "an object"
    words = {int: "an integer", float: "a finite number", str: "text", bool: "true or false", type(None): "null"}
    return words.get(hint, "anything" if hint is Any else hint.__name__ if isinstance(hint, type) else str(hint))


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of declared type ``hint`` (a float must be finite; an int is a float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)) and all(_fits(v, args[0]) for v in value) if args else isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, Mapping) and all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    if hint is float:
        return _is_number(value) and math.isfinite(value)
    if hint is int:
        return _is_int(value)
    if hint is type(None):
        return value is None
    return isinstance(value, hint)


def check_types(data: Mapping[str, Any], cls: type, where: str = "", options: bool = False) -> None:
    """Every value of ``data`` (a dataclass's fields by name, sections nested) is of the type its
    field declares; else a ConfigError naming the field (``train.lr = "abc": must be a finite
    number``; with ``options``, the option that sets it: ``--lr nan (train.lr)``). A field added to
    the dataclass is checked by its declaration, with no code here."""
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        name = f"{where}{key}"
        if key not in hints:
            raise ConfigError(f"{name}: not a field of the run configuration; "
                              f"{where.rstrip('.') or 'it'} takes {', '.join(sorted(hints))}")
        hint = hints[key]
        if is_dataclass(hint):
            if not isinstance(value, Mapping) and not isinstance(value, hint):
                raise ConfigError(f"{name} = {_show(value)}: must be an object of the {key} settings "
                                  f"({', '.join(f.name for f in fields(hint))}); leave it out for the defaults")
            check_types(value if isinstance(value, Mapping) else _field_values(value), hint, f"{name}.", options)
        elif not _fits(value, hint):
            named = _named(name, value) if options else f"{name} = {_show(value)}"
            rule = RANGES.get(name)
            raise ConfigError(f"{named}: must be {_describe(hint)}" + (f" {rule.text()}; {rule.fix}" if rule else ""))


def _field_values(obj: Any) -> dict[str, Any]:
    return {f.name: vars(obj)[f.name] for f in fields(obj)}  # a dataclass's values, sections not copied


def _choice(value: Any, choices: tuple[str, ...], field: str, fix: str = "") -> None:
    if value not in choices:
        raise ConfigError(f"{_named(field, value)}: must be one of {', '.join(choices)}{'; ' + fix if fix else ''}")


# ---------------------------------------------------------------------------------- memory
def available_memory() -> int | None:
    """Bytes of memory this machine can still give (Linux's MemAvailable), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def image_bytes(img_size: int, crop_size: int) -> int:
    """Host memory one image of a batch needs at the least: its uint8 face crop, its float32 model
    input (3 channels) and its float32 mask at the model's side. A lower bound: activations add more."""
    return 3 * crop_size**2 + 16 * img_size**2


def check_fits_memory(count: int, each: int, option: str, what: str) -> None:
    """``count`` items of ``each`` bytes fit in the memory this machine has free, else one line
    saying how much they need, how much there is and the most that fits (never a swap storm that
    ignores SIGTERM for minutes)."""
    free = available_memory()
    if free is None or count * each <= free:
        return
    raise ConfigError(f"{option} {count}: {what} need at least {_size(count * each)} of memory ({_size(each)} each) "
                      f"and this machine has {_size(free)} free; use at most {max(1, free // each)}")


# ---------------------------------------------------------------------------------- the checks
def check_frames(frames: Any, option: str = "--frames", crop_size: int | None = None) -> None:
    """Frames per video, one number or one per split: each at least 1 (0 would cache no face and
    mark every video 'no face' for good), and one video's crops (at ``crop_size``) fit in memory."""
    values = frames.items() if isinstance(frames, dict) else [("", frames)]
    for split, n in values:
        if not _is_int(n) or n < 1:
            where = f"{split}={n}" if split else f"{n}"
            raise ConfigError(f"{option} {where}: frames per video must be at least 1 for every split "
                              "(e.g. 32, or train=8,test=32)")
        if crop_size is not None:
            check_fits_memory(n, 3 * crop_size**2, option, f"one video's {crop_size} px face crops")


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


def check_workers(workers: Any, field: str = "train.workers") -> None:
    """Worker processes: 0 (this process) up to four per CPU core (each holds a copy of the data
    pipeline; thousands would exhaust the machine before the first video)."""
    most = max(8, 4 * (os.cpu_count() or 1))
    check_number(workers, Range(0, most, fix=f"0 works in this process; this machine has {os.cpu_count()} CPU cores"),
                 field, "--workers", integer=True)


def check_seed(seed: Any, option: str = "--seed") -> None:
    check_number(seed, RANGES["seed"], "seed", option, integer=True)


def _check_ranges(config: RunConfig, sections: tuple[str, ...]) -> None:
    """Every field of RANGES in ``sections`` ("" for the top level) within its range; an optional
    field (``max_steps``) may be left out (None)."""
    for dotted, rule in RANGES.items():
        section, _, key = dotted.rpartition(".")
        if section not in sections:
            continue
        owner = vars(config)[section] if section else config
        hint = typing.get_type_hints(type(owner))[key]
        value = vars(owner)[key]
        if value is None and type(None) in typing.get_args(hint):
            continue
        check_number(value, rule, dotted, integer=int in (hint, *typing.get_args(hint)))


def check_run_config(config: RunConfig) -> None:
    """Raise ConfigError (one line naming the option and the fix) for the first value that cannot run:
    of the wrong type, out of its range, a word the run does not know, or a batch the machine's
    memory cannot hold."""
    check_values(config)
    t = config.train
    check_workers(t.workers)
    check_fits_memory(t.batch_size, image_bytes(config.img_size, config.crop_size), "--batch-size",
                      f"{t.batch_size} training images at {config.img_size} px")
    check_frames(t.cache_frames, "train.cache_frames", config.crop_size)
    check_eval_config(config)


def check_values(config: RunConfig) -> None:
    """What holds on any machine (RunConfig.from_dict checks a file with it): every field of its
    declared type, within its range, a word the run knows."""
    check_types(_field_values(config), type(config), options=True)
    _check_ranges(config, ("train", "loss", "eval", ""))
    t = config.train
    if t.batch_size < 2 or t.batch_size % 2:
        raise ConfigError(f"--batch-size {t.batch_size!r} (train.batch_size): must be even and at least 2, "
                          "half reals and half their self-blended fakes (paper: 16)")
    _choice(t.selection, SELECTIONS, "train.selection", "never test data")
    _choice(t.optimizer, OPTIMIZERS, "train.optimizer", "SAM wraps it unless --sam-rho 0")
    _choice(t.lr_schedule, LR_SCHEDULES, "train.lr_schedule")
    _choice(config.loss.sim_form, SIM_FORMS, "loss.sim_form")
    _choice(config.loss.pairs, PAIR_RULES, "loss.pairs")
    check_img_size(config.img_size, config.backbone)
    _check_eval_words(config)


def _check_eval_words(config: RunConfig) -> None:
    _choice(config.eval.frame_aggregation, AGGREGATIONS, "eval.frame_aggregation", "over the faces of one frame")
    _choice(config.eval.video_aggregation, AGGREGATIONS, "eval.video_aggregation", "over the frames of one video")
    if str(config.compression).strip().lower() not in COMPRESSIONS:
        raise ConfigError(f"--compression {config.compression!r}: use raw (= c0), c23 or c40")
    check_device(config.device)


def check_eval_config(config: RunConfig) -> None:
    """What scoring reads (`harness evaluate` checks only this: the model's own sizes come from its
    bundle): the eval section, compression, device and seed."""
    check_types({"eval": config.eval, "seed": config.seed, "compression": config.compression,
                 "device": config.device, "img_size": config.img_size, "crop_size": config.crop_size},
                type(config), options=True)
    _check_ranges(config, ("eval", ""))
    _check_eval_words(config)
    e = config.eval
    check_frames(e.frames_per_video, "--eval-frames", config.crop_size)
    check_fits_memory(e.batch_size, image_bytes(config.img_size, config.crop_size), "eval.batch_size",
                      f"{e.batch_size} test images at {config.img_size} px")
    check_demo_scale(config.demo_scale)


def check_demo_scale(scale: Any) -> None:
    from harness.data.demo import SCALES

    if not isinstance(scale, str) or scale not in SCALES:
        raise ConfigError(f"--demo-scale {scale!r} (demo_scale): use one of {', '.join(SCALES)}")


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


# ---------------------------------------------------------------------------------- names
#: the word the dataset options (``--data``, ``--test``) take besides dataset plugin names
DEMO = "demo"


def check_plugin_name(kind: str, name: str, option: str, also: tuple[str, ...] = ()) -> None:
    """``name`` is a plugin of ``kind`` (or one of ``also``), else one line naming the option, the
    closest known name and every known one: ``--data deme: no dataset named 'deme'; did you mean 'demo'?``."""
    from harness.extend import registry

    try:
        registry.check_name(kind, name, also)
    except registry.PluginError as exc:
        raise ConfigError(f"{option} {name}: {exc}") from None


def check_names(*, data: str | None = None, tests: typing.Sequence[str] = (), blenders: typing.Sequence[str] = (),
                backbones: typing.Sequence[str] = (), face_detector: str | None = None,
                loggers: typing.Sequence[str] = ()) -> None:
    """Every name a command was given, in the order a command line reads: the training dataset, the
    test sets, blenders, backbones, the face detector, the loggers. The first unknown one is a
    ConfigError with a suggestion; nothing is read or written here, so `run`, `evaluate`,
    `preprocess`, `predict` and every ``--dry-run`` call it before any work (`evaluate` and `predict`
    then check the checkpoint's importer: ``harness.models.importing.parse_spec``)."""
    if data is not None:
        check_plugin_name("dataset", data, "--data", (DEMO,))
    for name in tests:
        check_plugin_name("dataset", name, "--test", (DEMO,))
    for kind, option, names in (("blender", "--blender", blenders), ("backbone", "--backbone", backbones)):
        for name in names:
            check_plugin_name(kind, name, option)
    if face_detector is not None:
        check_plugin_name("face_detector", face_detector, "--face-detector")
    from harness.extend.defaults import defaults

    for name in loggers:
        if name != defaults().run_log:  # always on, whatever plugins load
            check_plugin_name("logger", name, "--logger")


def check_run_names(config: RunConfig, loggers: typing.Sequence[str] = (), blenders: typing.Sequence[str] | None = None,
                    backbones: typing.Sequence[str] | None = None) -> None:
    """The names of a run (a sweep's ``blenders`` and ``backbones``, else the config's own). A resolved
    configuration names the demo's dataset plugin, never the word ``demo`` (``RunConfig.from_dict`` and
    ``--data demo`` resolve it)."""
    if DEMO in (config.train_dataset, *config.test_datasets):
        raise ConfigError(f"dataset {DEMO!r} in a run configuration: the demo is a dataset plugin's data "
                          f"(harness.run.demo_run.demo_config(), or --data {DEMO} on the command line)")
    check_names(data=config.train_dataset, tests=config.test_datasets, blenders=blenders or [config.blender],
                backbones=backbones or [config.backbone], face_detector=config.face_detector, loggers=loggers)
