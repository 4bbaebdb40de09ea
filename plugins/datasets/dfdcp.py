"""DFDC-Preview: ``dataset.json`` keyed by relative video path, values ``{"label": "real"|"fake",
"set": "train"|"test"}``; folders ``original_videos/``, ``method_A/``, ``method_B/``. The "test"
set is the cross-dataset protocol; the literature reports about 777 test videos, the doctor
reports the count found. Labels that contradict their folder are refused.
"""

from __future__ import annotations

from pathlib import Path

from harness.api import DatasetLayoutError, VideoRecord, hookimpl

from ._common import BaseDataset, inside, read_json_file

INDEX = "dataset.json"
FOLDERS = {"original_videos": 0, "method_A": 1, "method_B": 1}
TEST_EXPECTED = 777  # approximate, as reported in the literature
HOW_TO_GET = (
    "DFDC Preview: download from https://ai.meta.com/datasets/dfdc/ (the 'preview' release, after accepting the "
    "terms); unpack so that DIR holds dataset.json, original_videos/, method_A/ and method_B/."
)


class DFDCP(BaseDataset):
    name = "dfdcp"
    folders = ("dfdcp", "DFDCP", "dfdc_preview", "DFDC-Preview")
    how_to_get = HOW_TO_GET
    splits = ("train", "test")

    def _marker(self, path: Path) -> bool:
        return (path / INDEX).is_file()

    def _layout_problems(self) -> list[str]:
        root = self.require_root()
        return [] if (root / INDEX).is_file() else [f"missing {root / INDEX}: it ships with DFDC Preview"]

    def _build_index(self) -> list[VideoRecord]:
        root = self.require_root()
        index = root / INDEX
        if not index.is_file():
            raise DatasetLayoutError(f"{index} is missing; {HOW_TO_GET}")
        data = read_json_file(index, "restore the official file")
        if not isinstance(data, dict):
            raise DatasetLayoutError(f"{index}: expected an object keyed by video path; restore the official file")
        records, contradictions = [], []
        for rel, info in sorted(data.items()):
            if not isinstance(info, dict) or info.get("label") not in ("real", "fake") or info.get("set") not in ("train", "test"):
                raise DatasetLayoutError(
                    f"{index}: entry {rel!r} needs label 'real'|'fake' and set 'train'|'test' (lower case), got {info!r}"
                )
            path = inside(root, rel, index)
            folder = rel.replace("\\", "/").split("/")[0]
            label = 1 if info["label"] == "fake" else 0
            if folder in FOLDERS and FOLDERS[folder] != label:
                contradictions.append(rel)
            method = "original" if label == 0 else folder
            name = rel.replace("\\", "/").split("/", 1)[-1].rsplit(".", 1)[0].replace("/", "_")
            records.append(VideoRecord(uid=f"dfdcp/{method}/raw/{name}", path=path, label=label, split=info["set"],
                                       dataset="dfdcp", method=method, compression="raw"))
        if contradictions:
            raise DatasetLayoutError(
                f"{index}: {len(contradictions)} labels contradict their folder (e.g. {contradictions[0]!r}); "
                "original_videos/ are real, method_A/ and method_B/ fake: restore the official file"
            )
        uids = [r.uid for r in records]
        if len(set(uids)) != len(uids):
            raise DatasetLayoutError(f"{index}: two entries map to the same video id; remove the duplicate")
        return records

    def _expected(self) -> dict[str, int]:
        return {"test/all": TEST_EXPECTED}


@hookimpl
def register_datasets(register):
    register("dfdcp", DFDCP, "DFDC-Preview (dataset.json 'test' set)")
