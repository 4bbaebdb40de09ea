"""Celeb-DF v2: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and
``List_of_testing_videos.txt`` (518 lines ``<label> <folder>/<file>``, where **1 = real, 0 = fake**,
the opposite of the harness convention; 178 real + 340 fake). The listed videos are the "test"
split (the protocol); every other video is "train". A list whose labels contradict their folders
(a flipped or foreign file) is refused with the line that shows it.
"""

from __future__ import annotations

from pathlib import Path

from harness.api import DatasetLayoutError, DatasetReport, VideoRecord, hookimpl

from ._common import BaseDataset, close_name, inside

LIST_FILE = "List_of_testing_videos.txt"
FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}  # harness labels
FOLDER_COUNTS = {"Celeb-real": 590, "YouTube-real": 300, "Celeb-synthesis": 5639}
HOW_TO_GET = (
    "Celeb-DF v2: request access with the form linked from https://github.com/yuezunli/celeb-deepfakeforensics "
    "(README, 'Download'); unpack it so that DIR holds Celeb-real/, YouTube-real/, Celeb-synthesis/ and "
    f"{LIST_FILE}."
)


class CelebDF(BaseDataset):
    name = "celebdf"
    folders = ("celebdf", "Celeb-DF-v2", "Celeb-DF", "celeb-df-v2")
    how_to_get = HOW_TO_GET
    splits = ("train", "test")

    def _marker(self, path: Path) -> bool:
        return (path / LIST_FILE).is_file() or (path / "Celeb-synthesis").is_dir()

    def _layout_problems(self) -> list[str]:
        root = self.require_root()
        problems = []
        present = [p.name for p in root.iterdir() if p.is_dir()]
        for folder in FOLDERS:
            if not (root / folder).is_dir():
                near = close_name(folder, present)
                problems.append(f"missing folder {root / folder}" + (f" (found {root / near}: rename it)" if near and near != folder else ""))
        if not (root / LIST_FILE).is_file():
            problems.append(f"missing {root / LIST_FILE} (the official test list; it ships with Celeb-DF v2)")
        return problems

    def _record(self, path: Path, folder: str, label: int, split: str) -> VideoRecord:
        method = "original" if label == 0 else folder
        name = f"{folder}_{path.stem}" if label == 0 else path.stem  # two real folders share one method
        return VideoRecord(uid=f"celebdf/{method}/raw/{name}", path=path, label=label, split=split,
                           dataset="celebdf", method=method, compression="raw")

    def test_list(self) -> list[tuple[str, int]]:
        """[(relative path, harness label)] from the official list, polarity converted and checked."""
        root = self.require_root()
        list_file = root / LIST_FILE
        if not list_file.is_file():
            raise DatasetLayoutError(f"{list_file} is missing: it ships with Celeb-DF v2 ({HOW_TO_GET})")
        entries: list[tuple[str, int]] = []
        contradictions: list[str] = []
        for number, line in enumerate(list_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[0] not in ("0", "1"):
                raise DatasetLayoutError(
                    f"{list_file}:{number}: expected '<0|1> <folder>/<file>', got {line!r}; restore the official file"
                )
            rel = parts[1]
            inside(root, rel, list_file)
            folder = rel.replace("\\", "/").split("/")[0]
            if folder not in FOLDERS:
                raise DatasetLayoutError(
                    f"{list_file}:{number}: {rel!r} is not in {', '.join(FOLDERS)}; restore the official file"
                )
            label = 0 if parts[0] == "1" else 1  # Celeb-DF: 1 = real
            if label != FOLDERS[folder]:
                contradictions.append(f"line {number}: {line.strip()!r}")
            entries.append((rel, label))
        if contradictions:
            raise DatasetLayoutError(
                f"{list_file}: {len(contradictions)} of {len(entries)} labels contradict their folder "
                f"(e.g. {contradictions[0]}). In Celeb-DF v2 1 = real and 0 = fake: the file looks flipped or "
                "edited; restore the official List_of_testing_videos.txt."
            )
        return entries

    def _build_index(self) -> list[VideoRecord]:
        root = self.require_root()
        tested = self.test_list()
        test_set = {rel.replace("\\", "/") for rel, _ in tested}
        records = [self._record(root / rel, rel.split("/")[0], label, "test") for rel, label in tested]
        for folder, label in FOLDERS.items():
            for path in sorted((root / folder).glob("*.mp4")):
                if f"{folder}/{path.name}" not in test_set:
                    records.append(self._record(path, folder, label, "train"))
        return records

    def _expected(self) -> dict[str, int]:
        out = {"test/real": 178, "test/fake": 340}
        out.update({f"folder/{k}": v for k, v in FOLDER_COUNTS.items()})
        return out

    def _extra_counts(self, report: DatasetReport) -> None:
        for folder in FOLDERS:
            if (self.root / folder).is_dir():
                report.counts[f"folder/{folder}"] = sum(1 for _ in (self.root / folder).glob("*.mp4"))


@hookimpl
def register_datasets(register):
    register("celebdf", CelebDF, "Celeb-DF v2 (test list: 1 = real in the file, converted)")
