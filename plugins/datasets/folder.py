"""Your own data: train from any folder of real videos/images, test from any CSV.

``train_dir=DIR``: every video or image under DIR (recursively) is a real training sample
(images are 1-frame videos). ``test_csv=FILE``: rows ``path,label[,group]`` (a header row is
optional), paths relative to the CSV's folder and never outside it, label ``0``/``1`` or
``real``/``fake``, group (e.g. the generator) used as the method for per-group metrics.
"""

from __future__ import annotations

import csv
from pathlib import Path

from harness import hookimpl
from harness.data.cache import safe_name
from harness.data.video import is_media
from harness.types import DatasetLayoutError, DatasetNotFoundError, DatasetReport, VideoRecord

from ._common import BaseDataset, inside

LABEL_WORDS = {"0": 0, "1": 1, "real": 0, "fake": 1}
HOW_TO_GET = (
    "folder: your own data. Pass train_dir=DIR (real videos/images) and/or test_csv=FILE "
    "(rows 'path,label[,group]', label 0/1 or real/fake, paths relative to the CSV)."
)


class FolderDataset(BaseDataset):
    name = "folder"
    how_to_get = HOW_TO_GET
    splits = ("train", "test")

    def __init__(self, root: str | Path | None = None, train_dir: str | Path | None = None,
                 test_csv: str | Path | None = None, name: str = "folder", allow_missing: bool = False,
                 **_ignored: object) -> None:
        self.name = name
        self.train_dir = Path(train_dir).expanduser() if train_dir else None
        self.test_csv = Path(test_csv).expanduser() if test_csv else None
        if root is not None and self.train_dir is None and self.test_csv is None:
            base = Path(root).expanduser()
            self.train_dir = base / "train" if (base / "train").is_dir() else None
            self.test_csv = base / "test.csv" if (base / "test.csv").is_file() else None
        super().__init__(check_counts=False, allow_missing=allow_missing)

    def _locate(self, root: str | Path | None) -> tuple[list[Path], Path | None]:
        """Where the configured train_dir / test_csv are; no search."""
        looked_in = [p for p in (self.train_dir, self.test_csv) if p is not None]
        return looked_in, self.train_dir or (self.test_csv.parent if self.test_csv else None)

    def require_root(self) -> Path:
        if self.train_dir is None and self.test_csv is None:
            raise DatasetNotFoundError(f"dataset {self.name!r} is not configured. {HOW_TO_GET}")
        for path in self.looked_in:
            if not path.exists():
                raise DatasetNotFoundError(f"dataset {self.name!r}: {path} does not exist. {HOW_TO_GET}")
        return self.root  # type: ignore[return-value]

    def _uid(self, method: str, relative: str) -> str:
        stem = relative.replace("\\", "/").rsplit(".", 1)[0]
        return f"{self.name}/{safe_name(method)}/raw/{'__'.join(safe_name(p) for p in stem.split('/'))}"

    def _train(self) -> list[VideoRecord]:
        if self.train_dir is None:
            return []
        out = []
        for path in sorted(p for p in self.train_dir.rglob("*") if p.is_file() and is_media(p)):
            rel = path.relative_to(self.train_dir).as_posix()
            out.append(VideoRecord(uid=self._uid("original", rel), path=path, label=0, split="train",
                                   dataset=self.name, method="original"))
        if not out:
            raise DatasetLayoutError(f"{self.train_dir}: no video or image files found (mp4/avi/mov/png/jpg ...)")
        return out

    def _test(self) -> list[VideoRecord]:
        if self.test_csv is None:
            return []
        base = self.test_csv.parent
        out = []
        with self.test_csv.open(newline="") as fh:
            for number, row in enumerate(csv.reader(fh), 1):
                if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                    continue
                cells = [c.strip() for c in row]
                if number == 1 and cells[0].lower() == "path":
                    continue  # header
                if len(cells) < 2 or cells[1].lower() not in LABEL_WORDS:
                    raise DatasetLayoutError(
                        f"{self.test_csv}:{number}: expected 'path,label[,group]' with label 0/1 or real/fake, got {row!r}"
                    )
                label = LABEL_WORDS[cells[1].lower()]
                group = cells[2] if len(cells) > 2 and cells[2] else ("fake" if label else "original")
                path = inside(base, cells[0], self.test_csv)
                out.append(VideoRecord(uid=self._uid(group, cells[0]), path=path, label=label, split="test",
                                       dataset=self.name, method=group))
        return out

    def _build_index(self) -> list[VideoRecord]:
        records = self._train() + self._test()
        seen: set[str] = set()
        for r in records:
            if r.uid in seen:
                raise DatasetLayoutError(f"{self.name}: two files give the uid {r.uid}; rename one")
            seen.add(r.uid)
        return records

    def check(self) -> DatasetReport:
        if self.train_dir is None and self.test_csv is None:
            return DatasetReport(name=self.name, found=False, root=None, looked_in=[],
                                 problems=["not configured (needs train_dir= and/or test_csv=)"], how_to_get=HOW_TO_GET)
        try:
            self.require_root()
        except DatasetNotFoundError as exc:
            return DatasetReport(name=self.name, found=False, root=None, looked_in=self.looked_in,
                                 problems=[str(exc)], how_to_get=HOW_TO_GET)
        return super().check()


@hookimpl
def register_datasets(register):
    register("folder", FolderDataset, "your own data: train_dir= (real videos/images), test_csv= (path,label[,group])")
