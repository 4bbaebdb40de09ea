"""DFDC (Deepfake Detection Challenge). Test set: ``labels.csv`` (``filename,label``, **1 = fake**)
next to the videos (``videos/`` subfolder or the same folder), in the root or ``root/test``;
5000 videos, 2500 real / 2500 fake. Training parts ``dfdc_train_part_N/metadata.json``
(``{"x.mp4": {"label": "REAL"|"FAKE", ...}}``) give the "train" split when present.
"""

from __future__ import annotations

import csv
from pathlib import Path

from harness.api import DatasetLayoutError, VideoRecord, hookimpl

from ._common import BaseDataset, inside, read_json_file

LABELS = "labels.csv"
HOW_TO_GET = (
    "DFDC: accept the competition rules and download the test set (and optionally the training parts) from "
    "https://ai.meta.com/datasets/dfdc/ (or Kaggle: kaggle competitions download -c deepfake-detection-challenge). "
    "Unpack so that DIR holds labels.csv (or test/labels.csv) and the videos (videos/ next to it)."
)


class DFDC(BaseDataset):
    name = "dfdc"
    folders = ("dfdc", "DFDC")
    how_to_get = HOW_TO_GET
    splits = ("train", "test")

    def _marker(self, path: Path) -> bool:
        return (path / LABELS).is_file() or (path / "test" / LABELS).is_file() or any(path.glob("dfdc_train_part_*"))

    def labels_file(self) -> Path | None:
        root = self.require_root()
        for candidate in (root / LABELS, root / "test" / LABELS):
            if candidate.is_file():
                return candidate
        return None

    def _layout_problems(self) -> list[str]:
        if self.labels_file() is None:
            root = self.require_root()
            return [f"missing {root / LABELS} (or {root / 'test' / LABELS}): the test labels ship with the DFDC test set"]
        return []

    @staticmethod
    def _record(path: Path, label: int, split: str) -> VideoRecord:
        method = "DFDC" if label == 1 else "original"
        return VideoRecord(uid=f"dfdc/{method}/raw/{path.stem}", path=path, label=label, split=split,
                           dataset="dfdc", method=method, compression="raw")

    def _test(self) -> list[VideoRecord]:
        labels = self.labels_file()
        if labels is None:
            return []
        folder = labels.parent
        base = folder / "videos" if (folder / "videos").is_dir() else folder
        out = []
        with labels.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"filename", "label"} <= set(reader.fieldnames):
                raise DatasetLayoutError(
                    f"{labels}: expected a header 'filename,label' (got {reader.fieldnames}); restore the official file"
                )
            for number, row in enumerate(reader, 2):
                value = (row["label"] or "").strip()
                if value not in ("0", "1", "0.0", "1.0"):
                    raise DatasetLayoutError(f"{labels}:{number}: label {value!r} is not 0/1 (1 = fake); fix that line")
                inside(folder, row["filename"], labels)
                out.append(self._record(inside(base, row["filename"], labels), int(float(value)), "test"))
        return out

    def _train(self) -> list[VideoRecord]:
        root = self.require_root()
        out = []
        for part in sorted(root.glob("dfdc_train_part_*")):
            meta = part / "metadata.json"
            if not meta.is_file():
                raise DatasetLayoutError(f"{meta} is missing: every dfdc_train_part_N folder ships one; re-extract it")
            data = read_json_file(meta, "re-extract the part")
            for name, info in sorted(data.items()):
                label = str(info.get("label", "")).upper() if isinstance(info, dict) else ""
                if label not in ("REAL", "FAKE"):
                    raise DatasetLayoutError(f"{meta}: {name!r} has label {label!r}, expected REAL or FAKE")
                out.append(self._record(inside(part, name, meta), 1 if label == "FAKE" else 0, "train"))
        return out

    def _build_index(self) -> list[VideoRecord]:
        records = self._test() + self._train()
        seen: dict[str, Path] = {}
        for r in records:
            if r.uid in seen:
                raise DatasetLayoutError(f"dfdc: {r.path} and {seen[r.uid]} give the same uid {r.uid}; remove the duplicate")
            seen[r.uid] = r.path
        return records

    def _expected(self) -> dict[str, int]:
        return {"test/real": 2500, "test/fake": 2500}


@hookimpl
def register_datasets(register):
    register("dfdc", DFDC, "DFDC test set (labels.csv, 1 = fake) and training parts")
