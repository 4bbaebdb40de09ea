"""Your own data on the command line: ``--train-dir``, ``--test-csv`` and ``--val-fraction`` become the
``folder`` dataset's options, shared by ``harness run``, ``harness datasets`` and ``harness preprocess``.

    harness run --train-dir ~/reals --test-csv ~/test.csv           # train and test on your data
    harness run --test-csv ~/test.csv                               # FF++ training, your test set
    harness run --train-dir ~/reals --val-fraction 0.1 --selection best-val

Paths are stored absolute (symlinks kept as named) in the run's config, so ``--config`` reruns
work from any folder.
"""

from __future__ import annotations

from harness.extend.defaults import defaults
from harness.common.errors import HarnessError

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

FOLDER = defaults().user_dataset  # the dataset plugin your own folders fill


class UserDataError(HarnessError, ValueError):
    """A user-data option is unusable; the message says which and what to do."""


def _absolute(path: Path) -> str:
    return os.path.abspath(Path(path).expanduser())


def folder_options(train_dir: Path | None = None, test_csv: Path | None = None,
                   val_fraction: float | None = None) -> dict[str, Any]:
    """The folder dataset's options from the CLI values, checked (paths absolute)."""
    options: dict[str, Any] = {}
    if train_dir is not None:
        if not Path(train_dir).expanduser().is_dir():
            what = "is not a folder" if Path(train_dir).expanduser().exists() else "does not exist"
            raise UserDataError(f"--train-dir {train_dir} {what}: give the folder that holds your REAL training "
                                "videos/images (subfolders are searched)")
        options["train_dir"] = _absolute(train_dir)
    if test_csv is not None:
        if not Path(test_csv).expanduser().is_file():
            what = "is a folder, not a CSV file" if Path(test_csv).expanduser().is_dir() else "does not exist"
            raise UserDataError(f"--test-csv {test_csv} {what}: give a CSV with rows 'path,label[,source[,video]]'")
        options["test_csv"] = _absolute(test_csv)
    if val_fraction is not None:
        if not 0.0 <= val_fraction < 1.0:
            raise UserDataError(f"--val-fraction {val_fraction:g}: give a share in [0, 1), e.g. 0.1 for a tenth of the "
                                "training identities")
        if train_dir is None:
            raise UserDataError("--val-fraction carves a validation split from --train-dir: give --train-dir too")
        options["val_fraction"] = float(val_fraction)
    return options


def apply_to_run(config: Any, data: str | None, test: str | None, root: Path | None, train_dir: Path | None,
                 test_csv: Path | None, val_fraction: float | None) -> Any:
    """``config`` with the user-data options applied: ``--train-dir`` trains on the folder dataset (unless
    ``--data`` names another), ``--test-csv`` tests on it (added to ``--test`` when that is given).
    ``root`` needs nothing here: the data root reaches the folder dataset through $HARNESS_DATA."""
    if train_dir is None and test_csv is None and val_fraction is None:
        # --data folder --root DIR: the data root becomes $HARNESS_DATA, where the folder dataset looks
        # for train/ and test.csv (in DIR itself, then DIR/folder), next to the other datasets' folders
        return config
    if train_dir is not None and data not in (None, FOLDER):
        raise UserDataError(f"--train-dir gives the '{FOLDER}' dataset's training videos, but --data is {data!r}: "
                            f"drop --data (or use --data {FOLDER})")
    if val_fraction is not None and train_dir is None and config.train_dataset != FOLDER:
        raise UserDataError("--val-fraction carves a validation split from --train-dir: give --train-dir too")
    new = folder_options(train_dir, test_csv, val_fraction if train_dir is not None else None)
    if train_dir is not None or test_csv is not None:
        # what the files are now, so an edited CSV or a changed folder is a new run, not "already finished"
        new["fingerprint"] = fingerprint(new.get("train_dir"), new.get("test_csv"))
    if val_fraction is not None and train_dir is None:
        if not 0.0 <= val_fraction < 1.0:
            raise UserDataError(f"--val-fraction {val_fraction:g}: give a share in [0, 1)")
        new["val_fraction"] = float(val_fraction)
    options = dict(config.dataset_options)
    options[FOLDER] = {**options.get(FOLDER, {}), **new}
    changes: dict[str, Any] = {"dataset_options": options}
    if train_dir is not None:
        changes.update(train_dataset=FOLDER, demo=False)
    if test_csv is not None:
        tests = list(config.test_datasets) if test else []
        changes["test_datasets"] = tests + [FOLDER] if FOLDER not in tests else tests
    return replace(config, **changes)


def fingerprint(train_dir: str | None, test_csv: str | None) -> str:
    """A short hash of the CSV's bytes and of the training folder's file list (names, sizes, times)."""
    import hashlib

    digest = hashlib.sha1()
    if test_csv is not None:
        digest.update(Path(test_csv).read_bytes())
    if train_dir is not None:
        seen: set[str] = set()
        for current, dirs, files in os.walk(train_dir, followlinks=True):
            real = os.path.realpath(current)
            if real in seen:  # a symlink loop
                dirs[:] = []
                continue
            seen.add(real)
            dirs.sort()
            for name in sorted(files):
                try:
                    stat = os.stat(os.path.join(current, name))
                except OSError:
                    continue
                rel = os.path.relpath(os.path.join(current, name), train_dir)
                digest.update(f"{rel}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]
