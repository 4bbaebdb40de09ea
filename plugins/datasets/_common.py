"""What every dataset plugin shares: finding the data root, safe label-file paths, count checks.

Root resolution order (first hit wins): the ``root=`` argument; ``$HARNESS_DATA_<NAME>``;
``$HARNESS_DATA/<folder>`` for each of the dataset's usual folder names; ``./datasets/<folder>``.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Iterable, Iterator

from harness.api import DatasetLayoutError, DatasetNotFoundError, DatasetReport, VideoRecord, suggest

ENV_DATA = "HARNESS_DATA"
SPLITS = ("train", "val", "test")


def candidate_roots(name: str, folders: Iterable[str], root: str | Path | None = None) -> list[Path]:
    """Where to look for dataset ``name``, in order."""
    if root is not None:
        return [Path(root).expanduser()]
    out: list[Path] = []
    own = os.environ.get(f"{ENV_DATA}_{name.upper()}")
    if own:
        out.append(Path(own).expanduser())
    base = os.environ.get(ENV_DATA)
    folders = list(dict.fromkeys([name, *folders]))
    if base:
        out.extend(Path(base).expanduser() / f for f in folders)
    out.extend(Path("datasets") / f for f in folders)
    return out


def find_root(candidates: list[Path], marker: callable) -> Path | None:
    """The first candidate that exists and looks like the dataset (``marker(path) -> bool``)."""
    for path in candidates:
        if path.is_dir() and marker(path):
            return path
    return None


def not_found(name: str, looked: list[Path], how_to_get: str) -> DatasetNotFoundError:
    where = "\n  ".join(str(p.resolve()) if not p.is_absolute() else str(p) for p in looked) or "(nowhere)"
    return DatasetNotFoundError(
        f"dataset {name!r} not found. Looked in:\n  {where}\n"
        f"Pass root=DIR (CLI: --root), or set ${ENV_DATA}_{name.upper()} or ${ENV_DATA}.\n{how_to_get}"
    )


def inside(root: Path, relative: str, label_file: Path) -> Path:
    """``root/relative`` for an entry of an official label file.

    The check is on the text of the entry, not on where symlinks lead: a dataset folder (or any
    subfolder, e.g. one on another disk) may be a symlink and is followed. What is refused is an
    entry that is absolute or climbs out of the root with ``..``: an official label file only names
    files inside its own dataset, so such an entry means the file was edited or replaced, and
    following it would let a label file make the harness read (and cache faces from) any file on
    this machine."""
    text = relative.strip().replace("\\", "/")
    if not text or Path(text).is_absolute() or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise DatasetLayoutError(
            f"{label_file}: entry {relative!r} is an absolute or empty path; this official label file lists "
            "paths relative to the dataset root, so the entry means the file was edited or replaced. "
            "Restore the official file."
        )
    normal = posixpath.normpath(text)
    if normal == ".." or normal.startswith("../"):
        raise DatasetLayoutError(
            f"{label_file}: entry {relative!r} points outside the dataset root {root}; refusing to follow it "
            "(an official label file only names files inside its dataset, and following it would read a file "
            "the dataset does not own). Restore the official file. Symlinked folders inside the root are fine."
        )
    return absolute(root) / normal


def absolute(path: Path) -> Path:
    """``path`` made absolute without resolving symlinks (a symlinked data folder keeps its name)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def read_json_file(path: Path, fix: str) -> object:
    """Parse a dataset's JSON label/index file; a broken one is a layout error naming the file and ``fix``."""
    from harness.api import InputFileError, read_json

    try:
        return read_json(path, "label file")
    except InputFileError as exc:
        raise DatasetLayoutError(f"{exc}; {fix}") from None


def close_name(name: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` (``registry.suggest``), else a case-insensitive match."""
    choices = list(choices)
    return suggest(name, choices) or {c.lower(): c for c in choices}.get(name.lower())


def compare_counts(report: DatasetReport) -> None:
    """Add a problem line for every expected count that differs from what was found."""
    for key, want in report.expected.items():
        got = report.counts.get(key, 0)
        if got != want:
            report.problems.append(
                f"count {key}: found {got}, the protocol expects {want} (difference {got - want:+d})"
            )


def count_records(records: Iterator[VideoRecord], counts: dict[str, int]) -> None:
    """Tally ``split/real|fake/method`` and ``split/real|fake`` keys."""
    for r in records:
        kind = "fake" if r.label == 1 else "real"
        for key in (f"{r.split}/all", f"{r.split}/{kind}", f"{r.split}/{kind}/{r.method}"):
            counts[key] = counts.get(key, 0) + 1


class BaseDataset:
    """Shared behaviour. Subclasses set ``name``, ``folders``, ``how_to_get`` and implement
    ``_marker(path)``, ``_build_index()`` (every record, split assigned) and ``_expected()``."""

    name = "base"
    folders: tuple[str, ...] = ()
    how_to_get = ""
    splits: tuple[str, ...] = SPLITS

    def __init__(self, root: str | Path | None = None, check_counts: bool = True, allow_missing: bool = False) -> None:
        self._cache: list[VideoRecord] | None = None  # the index, built once by _index()
        self.looked_in, self.root = self._locate(root)
        self.check_counts = bool(check_counts)
        self.allow_missing = bool(allow_missing)
        self.notes: list[str] = []  # recorded deviations from the protocol (fallbacks)

    def _locate(self, root: str | Path | None) -> tuple[list[Path], Path | None]:
        """(where to look, the data root or None)."""
        looked_in = candidate_roots(self.name, self.folders, root)
        if root is not None and Path(root).expanduser().is_dir():
            return looked_in, Path(root).expanduser()  # explicit: layout problems get reported
        return looked_in, find_root(looked_in, self._marker)

    # -- to implement --------------------------------------------------------------------------
    def _marker(self, path: Path) -> bool:
        raise NotImplementedError

    def _build_index(self) -> list[VideoRecord]:
        raise NotImplementedError

    def _expected(self) -> dict[str, int]:
        return {}

    def _layout_problems(self) -> list[str]:
        """Extra checks (wrong folder names ...) reported by ``check()``."""
        return []

    def _extra_counts(self, report: DatasetReport) -> None:
        """Add counts the records do not give (files on disk ...); ``check()`` calls it once the root is found,
        before comparing counts with ``_expected()``."""

    # -- shared --------------------------------------------------------------------------------
    def _index(self) -> list[VideoRecord]:
        if self._cache is None:
            self._cache = self._build_index()
        return self._cache

    def require_root(self) -> Path:
        if self.root is None:
            raise not_found(self.name, self.looked_in, self.how_to_get)
        return self.root

    def records(self, split: str) -> Iterator[VideoRecord]:
        """The split's records; raises if any listed file is missing (unless allow_missing)."""
        if split not in self.splits:
            raise ValueError(f"dataset {self.name}: unknown split {split!r}; splits are {', '.join(self.splits)}")
        self.require_root()
        chosen = [r for r in self._index() if r.split == split]
        missing = [r for r in chosen if not r.path.exists()]
        if missing and not self.allow_missing:
            shown = "\n  ".join(str(r.path) for r in missing[:5])
            layout = "".join(f"\n  {p}" for p in self._layout_problems())
            raise DatasetLayoutError(
                f"dataset {self.name}: {len(missing)} of {len(chosen)} {split} videos are missing, e.g.\n  {shown}\n"
                + (f"Layout problems:{layout}\n" if layout else "") +
                "Complete the download (`harness datasets` lists what is missing), or skip them (they are then "
                f"reported, not scored): `harness preprocess {self.name} --allow-missing`, `harness evaluate ... "
                f"--allow-missing`, or in a run config (harness run --config FILE) \"dataset_options\": "
                f"{{\"{self.name}\": {{\"allow_missing\": true}}}}."
            )
        if missing:
            self.notes.append(f"{len(missing)} missing {split} videos skipped (allow_missing=True)")
        missing_set = {r.uid for r in missing}
        return iter([r for r in chosen if r.uid not in missing_set])

    def check(self) -> DatasetReport:
        report = DatasetReport(name=self.name, found=self.root is not None, root=self.root,
                               looked_in=list(self.looked_in), how_to_get=self.how_to_get)
        if self.root is None:
            report.problems.append("not found")
            return report
        try:
            report.problems.extend(self._layout_problems())
            records = self._index()
        except (DatasetLayoutError, DatasetNotFoundError) as exc:
            report.problems.append(str(exc))
            self._extra_counts(report)
            return report
        present: list[VideoRecord] = []
        missing: list[VideoRecord] = []
        for r in records:
            (present if r.path.exists() else missing).append(r)
        count_records(iter(present), report.counts)
        if missing:
            report.counts["missing"] = len(missing)
            shown = ", ".join(str(r.path.relative_to(self.root)) if r.path.is_relative_to(self.root) else str(r.path)
                              for r in missing[:5])
            report.problems.append(f"{len(missing)} listed videos are missing, e.g. {shown}")
        self._extra_counts(report)
        if self.check_counts:
            report.expected = self._expected()
            compare_counts(report)
        report.problems.extend(self.notes)
        return report
