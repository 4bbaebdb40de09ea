"""The resolved configuration of one run: everything needed to reproduce it, saved with it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.common.digest import sha256_parts
from harness.extend.defaults import defaults

#: The paper's test protocol: FF++ (DF, F2F, FS, NT), Celeb-DF v2, DFDC, DFDC-Preview.
PAPER_TEST_DATASETS = defaults().test_datasets


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 16  # images per step: batch_size/2 reals + their batch_size/2 self-blended fakes
    frames_per_video: int = 8  # sampled per real video per epoch (paper)
    cache_frames: int = 32  # frames cached per training video, the pool those 8 are drawn from
    # The "adamw" recipe (harness.vocab.recipes): on the demo, at 150 equal steps, it reached video
    # AUC 95.3 / mask IoU 50.2 where the paper's SGD lr 1e-3 reached 59.4 / 13.3 (docs/protocol.md,
    # "Training recipe"). The paper's recipe is `--recipe paper`.
    optimizer: str = "adamw"  # SAM's base optimizer: "adamw" or "sgd" (the paper's, with momentum)
    lr: float = 5e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    sam_rho: float = 0.05  # SAM's neighbourhood radius; 0 = the base optimizer alone (half the cost per step)
    lr_schedule: str = "cosine"  # "cosine" | "constant"
    warmup: int = 0  # steps of linear learning-rate warm-up from lr/warmup before the schedule
    grad_clip: float = 1.0
    amp: bool = True  # mixed precision on GPU only
    max_steps: int | None = None  # cap (demo, smoke tests); None = full epochs
    workers: int = 2
    selection: str = "last"  # "last" epoch or "best-val" (AUC on self-blended val): never test data
    val_every: int = 1


@dataclass
class EvalConfig:
    frames_per_video: int = 32  # evenly spaced over the whole video
    frame_aggregation: str = "max"  # over the faces of one frame
    video_aggregation: str = "mean"  # over the frames of one video
    batch_size: int = 32
    bootstrap: int = 1000
    threshold: float = 0.5


@dataclass
class LossConfig:
    alpha: float = 1.0  # L_C, classification
    beta: float = 1.0  # L_M, pixel mask
    gamma: float = 1.0  # L_m, local diversity
    sim_form: str = "proj"  # "proj" (projection head), "cosine" (classifier's features: collapses), "token", "literal"
    pairs: str = "fakes-balanced"  # L_m over fakes, same/cross-region pairs weighted equally; "all" as printed
    delta: float = 0.0  # L_t: BCE of the token map P_m against the downsampled mask (opt-in)
    min_grid: int = 4  # L_m and L_t are off below this many stride-32 tokens a side (64 px -> 2x2)
    dice: float = 1.0  # weight of a soft Dice term over the fakes added to L_M (0: the printed BCE alone)


#: A loss section recorded with exactly these keys predates ``pairs``/``min_grid``/``dice``; it ran
#: with every pair of every image, token losses at any grid size and no Dice: rerun it that way.
RECORDED_BEFORE_PAIRS = {"alpha", "beta", "gamma", "sim_form", "delta"}
LEGACY_LOSS: dict[str, Any] = {"pairs": "all", "min_grid": 1, "dice": 0.0}


#: How and where a run executes, not what it computes, with the value the run key holds each at.
#: They are recorded with the run (config.json, results) but never part of its identity, so a run
#: resumed on another device, with more workers or from another data root continues the same run.
#: The fixed values are the ones every id before this split was computed with for the published
#: demo run, so its id (and every id computed with these values) is unchanged.
EXECUTION_FIELDS: dict[str, Any] = {"device": "auto", "data_root": None, "name": "", "train.workers": 0}

#: (section, field) -> the value that reproduces what runs did before the field existed; run_key
#: leaves such a field out at that value (see RunConfig.run_key). Section "" is the top level.
KEY_NEUTRAL: dict[tuple[str, str], Any] = {("train", "warmup"): 0, ("", "demo_scale"): "default"}


@dataclass
class RunConfig:
    blender: str = defaults().blender
    blender_options: dict[str, Any] = field(default_factory=dict)
    backbone: str = defaults().backbone
    backbone_options: dict[str, Any] = field(default_factory=dict)
    pretrained: bool | str = "imagenet"  # the paper initialises every encoder from ImageNet; False: random
    img_size: int = 224
    train_dataset: str = defaults().train_dataset
    test_datasets: list[str] = field(default_factory=lambda: list(PAPER_TEST_DATASETS))
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_root: str | None = None
    compression: str = "c23"
    face_detector: str = defaults().face_detector
    crop_size: int = 256
    crop_margin: float = 0.3
    seed: int = 0
    device: str = "auto"
    name: str = ""
    demo: bool = False
    demo_scale: str = "default"  # the demo's size (harness.data.demo.SCALES): "default", or "tiny" for tests
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """The configuration a file records. Every field is checked against its declared type first
        (a ConfigError naming the field: ``train.lr = "abc": must be a finite number``), and
        ``pretrained`` takes every spelling ``--pretrained`` takes ("none" is False)."""
        from harness.vocab.config_check import check_types, check_values

        nested = {"train": TrainConfig, "eval": EvalConfig, "loss": LossConfig}
        if not isinstance(data, dict):
            raise ValueError(f"a run configuration is a JSON object of fields, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown run config keys: {', '.join(sorted(unknown))}")
        values = cli_spellings(dict(data))
        check_types(values, cls)
        loss = values.get("loss")
        if isinstance(loss, dict) and RECORDED_BEFORE_PAIRS <= set(loss) and "pairs" not in loss:
            values["loss"] = {**LEGACY_LOSS, **loss}  # a config recorded before these options existed
        for key, kind in nested.items():
            if key in values and isinstance(values[key], dict):
                values[key] = kind(**values[key])
        config = cls(**values)
        check_values(config)  # and ranges and words, as on the command line (not this machine's memory)
        return config

    def experiment(self) -> dict[str, Any]:
        """The fields that decide the results: the configuration with every execution field (how and
        where it runs, ``EXECUTION_FIELDS``) held at one fixed value."""
        data = self.to_dict()
        for dotted, value in EXECUTION_FIELDS.items():
            section, _, key = dotted.rpartition(".")
            (data[section] if section else data)[key] = value
        return data

    def validate(self) -> None:
        """Raise ConfigError, one line naming the option and the fix, when a value cannot run
        (harness/vocab/config_check.py); every entry point calls it before any work."""
        from harness.vocab.config_check import check_run_config

        check_run_config(self)

    def run_key(self) -> str:
        """A short stable hash of the experiment (sweeps skip finished runs by it, resume finds its
        folder by it): the same on another device, with other workers, data root or display name.

        A setting added after runs were published is hashed only when it differs from its neutral
        value (KEY_NEUTRAL), the behaviour every earlier run had: their run ids stay the same."""
        data = self.experiment()
        for (section, key), neutral in KEY_NEUTRAL.items():
            fields_ = data[section] if section else data
            if fields_.get(key) == neutral:
                del fields_[key]
        blob = json.dumps(data, sort_keys=True, default=str)  # not canonical_json: ids predate it
        return sha256_parts([blob.encode()])[:10]

    def experiment_label(self) -> str:
        """The blender (with its options) and the backbone: the readable part of the run id."""
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.blender_options.items()))
        return f"{self.blender}{'[' + opts + ']' if opts else ''}+{self.backbone}"

    def label(self) -> str:
        """The display name: --name, else the experiment label."""
        return self.name or self.experiment_label()


def pretrained_value(value: str) -> bool | str:
    """``--pretrained`` (and a recorded ``pretrained``): 'imagenet' (or 'timm', 'true'), 'none' (or
    'false', 'scratch': random initialisation), or a weights file path."""
    lowered = value.strip().lower()
    if lowered in ("imagenet", "timm", "true"):
        return "imagenet"
    if lowered in ("none", "false", "scratch"):
        return False
    return value


def cli_spellings(values: dict[str, Any]) -> dict[str, Any]:
    """A recorded configuration read with every spelling the command line takes for the same value:
    ``pretrained`` as ``--pretrained`` takes it ("none" is False), and ``demo`` as the training or a
    test dataset as ``--data demo`` / ``--test demo`` take it (the demo's dataset, ``demo: true``)."""
    from harness.vocab.config_check import DEMO, ConfigError

    if isinstance(values.get("pretrained"), str):
        values["pretrained"] = pretrained_value(values["pretrained"])
    if values.get("train_dataset") == DEMO:
        values.update(train_dataset=defaults().demo_dataset, demo=True)
    tests = values.get("test_datasets")
    if isinstance(tests, list) and DEMO in tests:
        if not values.get("demo"):
            raise ConfigError(f"test_datasets: {DEMO!r} is the demo's test set, scored by a demo run: set "
                              f'"train_dataset": "{DEMO}" (as --data {DEMO}) or name the test datasets')
        values["test_datasets"] = list(dict.fromkeys(defaults().demo_dataset if t == DEMO else t for t in tests))
    return values


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str))
