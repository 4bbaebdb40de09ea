"""Your own data: train from any folder of real videos/images, test from a labelled CSV.

``train_dir=DIR``: every video or image under DIR (recursively, symlinked folders followed) is a
real training sample; images are 1-frame videos. ``val_fraction=F`` (0 < F < 1) moves a
deterministic share of the training *identities* to a validation split (an identity is the first
subfolder under DIR, or the file itself when it sits directly in DIR), so ``--selection best-val``
has self-blended validation data that never shares a person with training. Without it the
dataset has no validation split.

``test_csv=FILE``: one test item per row::

    # comment lines start with '#'; blank lines are skipped
    path,label,source,video            <- optional header row (any order; names below)
    clips/a.mp4,real,youtube           <- relative to the CSV's folder
    /data/fakes/b.mp4,fake,youtube     <- or absolute; symlinks are followed
    frames/v1/0001.png,fake,gan,v1     <- frames of video "v1" are scored as ONE video

* ``path`` (also ``file``, ``filename``): a video or an image.
* ``label``: ``0``/``real`` or ``1``/``fake``.
* ``source`` (optional; also ``domain``): where the item comes from. A source that holds
  reals and fakes gets its own AUC from its reals and fakes only; a source with fakes only is
  compared with every real (as FF++ compares each method with all reals).
* ``video`` (optional): rows sharing a video name (within one source) are frames of that video and are
  scored together as one video (mean of their frame scores).

Without a header the columns are ``path,label[,source[,video]]``. A header column not named here
(e.g. ``group``) is refused. Every problem (a bad label,
a file listed twice, one file listed as real and as fake, a video whose frames disagree on the
label) is reported with its line number before anything is preprocessed.

Without train_dir/test_csv the plugin looks for a folder holding ``train/`` and/or ``test.csv``:
``root=DIR``, ``$HARNESS_DATA_FOLDER``, ``$HARNESS_DATA`` itself or ``$HARNESS_DATA/folder``,
``./datasets/folder``.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from harness.api import DatasetLayoutError, DatasetNotFoundError, DatasetReport, FRAME_SEPARATOR, VideoRecord, hookimpl, is_image, is_media, safe_name, suggest

from ._common import ENV_DATA, BaseDataset, absolute, candidate_roots

LABEL_WORDS = {"0": 0, "1": 1, "real": 0, "fake": 1}
COLUMNS = ("path", "label", "source", "video")
#: every header name accepted (lower case) -> its column. Nothing else is read: an unknown column
#: stops the run, since a guess (e.g. "group" as source, when it meant video) silently regroups results.
ALIASES = {"path": "path", "file": "path", "filename": "path", "label": "label", "source": "source",
           "domain": "source", "video": "video"}


def accepted_columns() -> str:
    """``path (or file, filename), label, source (or domain), video``."""
    parts = []
    for column in COLUMNS:
        others = [a for a, c in ALIASES.items() if c == column and a != column]
        parts.append(column + (f" (or {', '.join(others)})" if others else ""))
    return ", ".join(parts)
#: the group name the results reserve for the whole set
RESERVED = "all"
REAL_GROUP, FAKE_GROUP = "original", "fake"
MAX_PROBLEMS = 10
HOW_TO_GET = (
    "folder: your own data. CLI: --train-dir DIR (real videos/images) and/or --test-csv FILE "
    "(rows 'path,label[,source[,video]]', label 0/1 or real/fake, paths relative to the CSV or absolute); "
    "or --root DIR holding train/ and/or test.csv. Python: train_dir=, test_csv=."
)


@dataclass
class Row:
    """One CSV row, checked."""

    number: int
    given: str  # the path as written in the CSV
    path: Path
    label: int
    source: str | None
    video: str | None


def read_csv_lines(csv_path: Path) -> list[str]:
    """The lines of a test CSV, read within bounds; a file that is not a comma-separated text list
    (too large, not UTF-8, a NUL byte, separated by semicolons) is one DatasetLayoutError line."""
    from harness.api import MAX_CSV_BYTES, InputFileError, read_bounded_text

    try:
        text = read_bounded_text(csv_path, "test CSV", MAX_CSV_BYTES, encoding="utf-8-sig")
    except InputFileError as exc:
        raise DatasetLayoutError(str(exc)) from None
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if "\0" in line:  # no path holds one; the OS would refuse it later, with a traceback
            raise DatasetLayoutError(f"{csv_path}:{number}: a NUL byte; this is not a text CSV "
                                     "(save the file list as plain UTF-8 text)")
    first = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), "")
    if ";" in first and "," not in first:
        raise DatasetLayoutError(f"{csv_path}: rows are separated by ';' (a spreadsheet's regional CSV); "
                                 "save it with commas: path,label[,source[,video]]")
    return lines


def walk_media(folder: Path) -> list[Path]:
    """Every video/image under ``folder``, sorted, following symlinked folders (each real folder once)."""
    out: list[Path] = []
    seen: set[str] = set()
    for current, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:  # a symlink loop or a folder linked twice
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        out.extend(Path(current) / f for f in files if is_media(f))
    return sorted(out)


def probe(path: Path) -> str | None:
    """Why ``path`` cannot be read as an image or video (None when it can): opens it, decodes nothing."""
    try:
        if is_image(path):
            from PIL import Image

            with Image.open(path) as image:
                image.verify()
            return None
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
        return None
    except Exception as exc:  # any decoder error means "unreadable" to the doctor
        return f"{type(exc).__name__}: {exc}".strip()


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


class FolderDataset(BaseDataset):
    name = "folder"
    folders = ("folder",)
    how_to_get = HOW_TO_GET
    splits = ("train", "val", "test")

    def __init__(self, root: str | Path | None = None, train_dir: str | Path | None = None,
                 test_csv: str | Path | None = None, val_fraction: float = 0.0, name: str = "folder",
                 allow_missing: bool = False, probe_files: bool = False, fingerprint: str | None = None) -> None:
        self.name = name
        # a digest of the files that the command line records, so the run id follows the data's content;
        # the dataset itself reads the files, not this
        self.fingerprint = fingerprint
        self.probe_files = bool(probe_files)  # check() opens every file (the doctor does; a run does not)
        self.train_dir = Path(train_dir).expanduser() if train_dir else None
        self.test_csv = Path(test_csv).expanduser() if test_csv else None
        try:
            self.val_fraction = float(val_fraction or 0.0)
        except (TypeError, ValueError):
            raise ValueError(f"folder: val_fraction must be a number in [0, 1), got {val_fraction!r}") from None
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"folder: val_fraction must be in [0, 1) (e.g. 0.1 = a tenth of the training identities), "
                             f"got {val_fraction!r}")
        self.searched: list[Path] = []
        if self.train_dir is None and self.test_csv is None:
            self.searched = self._search_list(root)
            base = next((p for p in self.searched if self._marker(p)), None)
            if root is not None and base is None and Path(root).expanduser().is_dir():
                base = Path(root).expanduser()  # explicit: say what is missing in it
            if base is not None:
                self.train_dir = base / "train" if (base / "train").is_dir() else None
                self.test_csv = base / "test.csv" if (base / "test.csv").is_file() else None
                if self.train_dir is None and self.test_csv is None:
                    self.searched = [base]
        self.rows: list[Row] = []  # the test CSV's rows, once read
        super().__init__(check_counts=False, allow_missing=allow_missing)

    # -- where -----------------------------------------------------------------------------------
    def _search_list(self, root: str | Path | None) -> list[Path]:
        if root is not None:
            return [Path(root).expanduser()]
        out = candidate_roots(self.name, self.folders)
        base = os.environ.get(ENV_DATA)
        if base:  # $HARNESS_DATA may itself be the folder dataset (harness run --data folder --root DIR)
            own = os.environ.get(f"{ENV_DATA}_{self.name.upper()}")
            out.insert(1 if own else 0, Path(base).expanduser())
        return list(dict.fromkeys(out))

    def _marker(self, path: Path) -> bool:
        return path.is_dir() and ((path / "train").is_dir() or (path / "test.csv").is_file())

    def _locate(self, root: str | Path | None) -> tuple[list[Path], Path | None]:
        """Where the configured train_dir / test_csv are (or where a folder holding them was looked for)."""
        looked_in = [p for p in (self.train_dir, self.test_csv) if p is not None] or self.searched
        return looked_in, self.train_dir or (self.test_csv.parent if self.test_csv else None)

    def require_root(self) -> Path:
        if self.train_dir is None and self.test_csv is None:
            where = ", ".join(str(p) for p in self.searched)  # one line: the CLI's rule for user errors
            raise DatasetNotFoundError(
                f"dataset {self.name!r} is not configured" + (f"; no train/ folder or test.csv in {where}" if where else "")
                + f". {HOW_TO_GET}"
            )
        if self.train_dir is not None and not self.train_dir.is_dir():
            what = "is not a folder" if self.train_dir.exists() else "does not exist"
            raise DatasetNotFoundError(f"dataset {self.name!r}: training folder {self.train_dir} {what}. {HOW_TO_GET}")
        if self.test_csv is not None and not self.test_csv.is_file():
            what = "is not a file" if self.test_csv.exists() else "does not exist"
            raise DatasetNotFoundError(f"dataset {self.name!r}: test CSV {self.test_csv} {what}. {HOW_TO_GET}")
        return self.root  # type: ignore[return-value]

    # -- ids -------------------------------------------------------------------------------------
    def _name(self, path: Path, shown: str) -> str:
        """A readable, unique uid name: the file's stem and a hash of where it really is and of its size
        and modification time (two CSVs that both list ``real1.mp4`` never share cached faces, and a
        file replaced in place is preprocessed again)."""
        stem = shown.replace("\\", "/").rsplit(".", 1)[0].strip("/")
        parts = [safe_name(p) for p in stem.split("/") if p not in ("", ".", "..")][-3:]
        key = os.path.realpath(path)
        try:
            stat = os.stat(key)
            key += f"|{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            pass  # missing: reported by records()/check()
        return f"{'__'.join(parts) or 'item'}_{_short_hash(key)}"

    def _uid(self, group: str, name: str) -> str:
        return f"{self.name}/{safe_name(group)}/raw/{name}"

    def identity(self, record: VideoRecord) -> str:
        """Training identity: the first subfolder under train_dir, else the file itself."""
        try:
            rel = record.path.relative_to(absolute(self.train_dir)) if self.train_dir else record.path
        except ValueError:
            return str(record.path)
        return rel.parts[0] if len(rel.parts) > 1 else rel.as_posix()

    # -- training files --------------------------------------------------------------------------
    def _train(self) -> list[VideoRecord]:
        if self.train_dir is None:
            return []
        base = absolute(self.train_dir)
        out = []
        for path in walk_media(base):
            rel = path.relative_to(base).as_posix()
            out.append(VideoRecord(uid=self._uid(REAL_GROUP, self._name(path, rel)), path=path, label=0, split="train",
                                   dataset=self.name, method=REAL_GROUP))
        if not out:
            raise DatasetLayoutError(f"{self.train_dir}: no video or image files found (mp4/avi/mov/png/jpg ...)")
        if self.val_fraction > 0:
            out = self._carve(out)
        return out

    def _carve(self, records: list[VideoRecord]) -> list[VideoRecord]:
        """Move ``val_fraction`` of the identities (at least one) to "val": the identities whose sha1
        sorts first, so the choice depends on the names alone (deterministic, reproducible)."""
        ids = sorted({self.identity(r) for r in records}, key=lambda i: (hashlib.sha1(i.encode()).hexdigest(), i))
        if len(ids) < 2:
            raise DatasetLayoutError(
                f"{self.train_dir}: val_fraction={self.val_fraction:g} needs at least 2 identities (subfolders, or files "
                f"directly in the folder) to carve a validation split; found {len(ids)}. Put each person's videos in "
                "their own subfolder, or train without validation (--selection last)."
            )
        n_val = min(len(ids) - 1, max(1, round(self.val_fraction * len(ids))))
        chosen = set(ids[:n_val])
        out = [replace(r, split="val") if self.identity(r) in chosen else r for r in records]
        note = (f"validation split carved from the training folder: {n_val} of {len(ids)} identities "
                f"({sum(r.split == 'val' for r in out)} files), val_fraction={self.val_fraction:g}, chosen by sha1 of the identity name")
        if note not in self.notes:
            self.notes.append(note)
        return out

    # -- the test CSV ----------------------------------------------------------------------------
    def read_csv(self) -> list[Row]:
        """Every row of the test CSV, checked; raises one error listing every problem (file:line)."""
        assert self.test_csv is not None
        csv_path = self.test_csv
        base = absolute(csv_path).parent
        problems: list[str] = []
        rows: list[Row] = []
        columns: list[str | None] | None = None
        lines = read_csv_lines(csv_path)
        for number, cells in enumerate(csv.reader(lines), 1):
            # csv.reader yields one list per physical line here (no quoted newlines in a file list)
            cells = [c.strip() for c in cells]
            if not cells or not "".join(cells) or cells[0].startswith("#"):
                continue
            if columns is None and cells[0].lower() in ("path", "file", "filename"):
                columns = self._header(cells, number, problems)
                continue
            if columns is None:
                columns = list(COLUMNS)
            row = self._row(cells, columns, number, base, problems)
            if row is not None:
                rows.append(row)
        if not rows and not problems:
            problems.append(f"{csv_path}: no rows; expected lines 'path,label[,source[,video]]'")
        problems += self._conflicts(rows)
        if problems:
            shown = "\n  ".join(problems[:MAX_PROBLEMS])
            more = f"\n  ... and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
            raise DatasetLayoutError(
                f"test CSV {csv_path}: {len(problems)} problem(s); nothing was preprocessed:\n  {shown}{more}\n"
                "Rows read 'path,label[,source[,video]]': label 0/real or 1/fake, path relative to the CSV's folder "
                "or absolute, '#' starts a comment."
            )
        return rows

    def _header(self, cells: list[str], number: int, problems: list[str]) -> list[str | None]:
        columns: list[str | None] = []
        for cell in cells:
            key = ALIASES.get(cell.lower())
            if key is None:  # refused at once, in one line: every other check assumes the right columns
                near = suggest(cell.lower(), list(ALIASES))
                raise DatasetLayoutError(
                    f"test CSV {self.test_csv}:{number}: unknown column {cell!r}"
                    + (f"; did you mean {near!r}?" if near else ";")
                    + f" accepted columns: {accepted_columns()}; rename or remove it")
            if key in columns:
                problems.append(f"{self.test_csv}:{number}: column {key!r} appears twice in the header")
            columns.append(key)
        if "label" not in columns:
            problems.append(f"{self.test_csv}:{number}: the header has no 'label' column (columns: {', '.join(COLUMNS)})")
        return columns

    def _row(self, cells: list[str], columns: list[str | None], number: int, base: Path, problems: list[str]) -> Row | None:
        where = f"{self.test_csv}:{number}"
        if len(cells) > len(columns) and any(cells[len(columns):]):
            problems.append(f"{where}: {len(cells)} cells but {len(columns)} columns ({', '.join(c or '?' for c in columns)}): "
                            f"{','.join(cells)!r}. A comma in a file name needs quotes: \"a,b.mp4\"")
            return None
        values = {c: v for c, v in zip(columns, cells) if c is not None}
        path_text, label_text = values.get("path", ""), values.get("label", "")
        if not path_text:
            problems.append(f"{where}: no path in {','.join(cells)!r}")
            return None
        if label_text.lower() not in LABEL_WORDS:
            problems.append(f"{where}: label {label_text!r} for {path_text!r} is not 0/1 or real/fake")
            return None
        source = values.get("source") or None
        if source is not None and source.lower() == RESERVED:
            problems.append(f"{where}: source {source!r} is reserved for the whole test set in the results; rename it")
            return None
        path = Path(path_text).expanduser()
        path = path if path.is_absolute() else base / path
        if not is_media(path):
            problems.append(f"{where}: {path_text!r} is not a video or image file by its extension "
                            "(mp4/avi/mov/mkv/webm or png/jpg/bmp/webp/tif)")
            return None
        return Row(number, path_text, Path(os.path.normpath(path)), LABEL_WORDS[label_text.lower()], source,
                   values.get("video") or None)

    def _conflicts(self, rows: list[Row]) -> list[str]:
        """Duplicates (one file on two lines, also through a symlink), contradicting labels, and videos
        whose frames disagree on label or source."""
        problems: list[str] = []
        first: dict[str, Row] = {}
        for row in rows:
            key = os.path.realpath(row.path)
            seen = first.get(key)
            if seen is None:
                first[key] = row
            elif seen.label != row.label:
                word = ("real", "fake")
                problems.append(f"{self.test_csv}:{row.number}: {row.path} is listed as {word[row.label]} here and as "
                                f"{word[seen.label]} on line {seen.number}: contradicting labels; keep one line")
            else:
                problems.append(f"{self.test_csv}:{row.number}: {row.path} is already listed on line {seen.number} "
                                "(a duplicate would be scored twice); remove one line")
        videos: dict[tuple[str | None, str], Row] = {}
        for row in rows:
            if row.video is None:
                continue
            seen = videos.setdefault((row.source, row.video), row)
            if seen.label != row.label:
                problems.append(f"{self.test_csv}:{row.number}: frame of video {row.video!r} labelled "
                                f"{('real', 'fake')[row.label]}, but line {seen.number} labels the same video "
                                f"{('real', 'fake')[seen.label]}; every frame of a video has the video's label")
        return problems

    def _test(self) -> list[VideoRecord]:
        if self.test_csv is None:
            return []
        self.rows = self.read_csv()
        csv_key = os.path.realpath(self.test_csv)
        out = []
        for row in self.rows:
            group = row.source or (FAKE_GROUP if row.label else REAL_GROUP)
            given = Path(row.given).expanduser()
            name = self._name(row.path, row.path.name if given.is_absolute() else given.as_posix())
            if row.video is not None:
                video = f"{safe_name(row.video)}_{_short_hash(csv_key + chr(0) + (row.source or '') + chr(0) + row.video)}"
                name = f"{video}{FRAME_SEPARATOR}{name}"
            out.append(VideoRecord(uid=self._uid(group, name), path=row.path, label=row.label, split="test",
                                   dataset=self.name, method=group))
        return out

    def line_of(self, record: VideoRecord) -> int | None:
        """The CSV line a test record came from."""
        for row in self.rows:
            if row.path == record.path:
                return row.number
        return None

    def _build_index(self) -> list[VideoRecord]:
        train, test = self._train(), self._test()
        problems = []
        train_files = {os.path.realpath(r.path): r for r in train}
        for r in test:
            other = train_files.get(os.path.realpath(r.path))
            if other is not None:
                problems.append(f"{self.test_csv}:{self.line_of(r)}: {r.path} is also a training file ({other.path}); "
                                "a test item must not be trained on")
        if problems:
            shown = "\n  ".join(problems[:MAX_PROBLEMS])
            raise DatasetLayoutError(f"dataset {self.name}: {len(problems)} test item(s) are training files:\n  {shown}")
        return train + test

    # -- the doctor --------------------------------------------------------------------------------
    def records(self, split: str) -> Iterator[VideoRecord]:
        if split == "test" and self.test_csv is not None and not self.allow_missing:
            self.require_root()
            missing = [r for r in self._index() if r.split == "test" and not r.path.exists()]
            if missing:  # named with their CSV lines
                shown = "\n  ".join(f"{self.test_csv}:{self.line_of(r)}: {r.path}" for r in missing[:MAX_PROBLEMS])
                raise DatasetLayoutError(
                    f"dataset {self.name}: {len(missing)} file(s) listed in the test CSV do not exist:\n  {shown}\n"
                    "Fix the paths (relative to the CSV's folder, or absolute) or remove those lines, or skip them "
                    "(reported, not scored) with --allow-missing (`harness preprocess` and `harness evaluate`)."
                )
        return super().records(split)

    def check(self) -> DatasetReport:
        try:
            self.require_root()
        except DatasetNotFoundError as exc:
            return DatasetReport(name=self.name, found=False, root=None, looked_in=list(self.looked_in),
                                 problems=[str(exc)], how_to_get=HOW_TO_GET)
        report = super().check()
        if not report.found or any("problem(s)" in p or "training files" in p for p in report.problems):
            return report
        videos = {r.uid.split(FRAME_SEPARATOR, 1)[0] for r in self._index() if r.split == "test" and FRAME_SEPARATOR in r.uid}
        if videos:
            report.counts["test/frame-videos"] = len(videos)
        unreadable = []
        for r in self._index() if self.probe_files else []:
            if r.path.exists():
                why = probe(r.path)
                if why is not None:
                    unreadable.append(f"{r.path}: {why}")
        if unreadable:
            report.counts["unreadable"] = len(unreadable)
            report.problems.append(f"{len(unreadable)} file(s) cannot be read, e.g. " + "; ".join(unreadable[:3]))
        report.problems = [p for p in report.problems if p not in self.notes]  # the carve is a choice, not a problem
        return report


@hookimpl
def register_datasets(register):
    register("folder", FolderDataset,
             "your own data: train_dir= (real videos/images), test_csv= (path,label[,source[,video]])")
