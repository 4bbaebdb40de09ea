"""Stage 1: the run's dataset plugins, opened with their options, and the training dataset's
train and validation records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.common.ui import console
from harness.extend.contracts import dataset_notes, dataset_splits
from harness.extend.types import DatasetNotFoundError, VideoRecord
from harness.vocab.config import RunConfig
from harness.run.paths import RunError


def dataset_options(config: RunConfig, name: str, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The options dataset plugin ``name`` is opened with: the config's, then ``extra``'s (e.g. the
    demo's root) where the config sets nothing, and the run's compression where the plugin takes one."""
    options: dict[str, Any] = dict(config.dataset_options.get(name, {}))
    if name != config.train_dataset:
        options.pop("val_fraction", None)  # a validation split is carved from the training dataset only
    for key, value in (extra or {}).get(name, {}).items():
        options.setdefault(key, value)
    if _takes_option(name, "compression"):
        options.setdefault("compression", config.compression)
    return options


def _takes_option(name: str, option: str) -> bool:
    """Whether dataset plugin ``name`` takes the keyword ``option`` (its declared options)."""
    from harness.extend import contracts
    from harness.extend.registry import PluginError, get

    try:
        return contracts.takes(get("dataset", name), option)
    except PluginError:
        return False  # an unknown plugin is reported when it is opened


def dataset_names(config: RunConfig) -> list[str]:
    """The dataset plugins a run opens: the training dataset, then each other test dataset."""
    return [config.train_dataset] + [n for n in dict.fromkeys(config.test_datasets) if n != config.train_dataset]


def open_datasets(config: RunConfig, extra: dict[str, dict[str, Any]] | None = None, names: list[str] | None = None) -> dict[str, Any]:
    """Instantiate the train and test dataset plugins (or just ``names``); every missing one is reported
    before failing. ``extra``: options per dataset name used where the config gives none
    (``harness.data.demo.dataset_options``)."""
    import harness
    from harness.data.roots import data_root

    if names is None:
        names = dataset_names(config)
    opened: dict[str, Any] = {}
    missing: list[str] = []
    # A data root holds one folder per dataset: the plugins look under $HARNESS_DATA/<folder> when opened.
    with data_root(config.data_root):
        for name in names:
            try:
                dataset = harness.plugin("dataset", name, **dataset_options(config, name, extra))
                report = dataset.check()
                if not report.found:
                    raise DatasetNotFoundError(_not_found_text(report))
                opened[name] = dataset
            except DatasetNotFoundError as exc:
                missing.append(f"{name}: {exc}")  # plain text: the CLI prints messages escaped
    if missing:
        text = "\n".join(missing)
        raise RunError(
            f"{len(missing)} dataset(s) not found:\n{text}\n"
            "Point --root (or HARNESS_DATA) at your data, narrow --test, or try the embedded demo: "
            "harness run --data demo"
        )
    return opened


def _not_found_text(report: Any) -> str:
    looked = ", ".join(str(p) for p in report.looked_in) or "(nowhere)"
    return f"looked in {looked}. {report.how_to_get}".strip()


def records_of(dataset: Any, split: str, label: int | None = None) -> list[VideoRecord]:
    return [r for r in dataset.records(split) if label is None or r.label == label]


@dataclass
class TrainingSplits:
    """The training dataset's real records for training and for validation, and how they were chosen."""

    train: list[VideoRecord]
    val: list[VideoRecord]
    notes: list[str]


def training_splits(config: RunConfig, datasets: dict[str, Any]) -> TrainingSplits:
    """Train and val records of the training dataset. A dataset without a val split trains without
    validation: fine for ``--selection last`` (said so), an error for ``--selection best-val``."""
    name = config.train_dataset
    dataset = datasets[name]
    train = records_of(dataset, "train", 0)
    has_val = "val" in dataset_splits(dataset)
    val = records_of(dataset, "val", 0) if has_val else []
    notes = dataset_notes(dataset)
    if not train:
        raise RunError(f"dataset {name} has no real training videos; point it at a folder of real videos "
                       "(--train-dir DIR for your own data)")
    if not val:
        how = ("pass --val-fraction 0.1 to carve a validation split from the training identities (subfolders)"
               if _takes_option(name, "val_fraction") else "train on a dataset with a validation split (ffpp)")
        if config.train.selection == "best-val":
            raise RunError(f"--selection best-val needs validation data, but dataset {name} has none: {how}, "
                           "or use --selection last")
        note = f"dataset {name} has no validation split: the checkpoint is the last epoch (--selection last); {how}"
        notes.append(note)
        from rich.markup import escape

        console.print(f"[yellow]{escape(note)}[/yellow]")
    return TrainingSplits(train, val, notes)
