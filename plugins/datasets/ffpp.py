"""FaceForensics++ (FF++), laid out as its official download script writes it.

    original_sequences/youtube/{raw,c23,c40}/videos/000.mp4 .. 999.mp4
    manipulated_sequences/<Method>/{raw,c23,c40}/videos/<target>_<source>.mp4
    manipulated_sequences/<Method>/masks/videos/<target>_<source>.mp4   (not FaceShifter)
    original_sequences/actors/... + manipulated_sequences/DeepFakeDetection/...   (DFD, optional)

Splits are the official ``{train,val,test}.json`` (lists of ``["953", "974"]`` pairs, 360/70/70)
from the FaceForensics repository; the user supplies them (``splits=DIR``; default: the root, then
root/splits). No split is ever invented: missing files raise, unless ``split_fallback="test"`` is
given, which puts every video in "test" and records that choice in ``notes`` and the report.

Methods: DF/F2F/FS/NT by default (the paper's protocol); FaceShifter and DeepFakeDetection when
named in ``methods`` (the doctor counts them whenever present). DFD has no official split: its
videos are a test-only set. ``c0`` and ``raw`` name the same (uncompressed) level; uids say ``raw``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from harness.api import DatasetLayoutError, DatasetReport, VideoRecord, hookimpl

from ._common import BaseDataset, close_name, read_json_file

PROTOCOL_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
EXTRA_METHODS = ("FaceShifter", "DeepFakeDetection")
ALIASES = {"DF": "Deepfakes", "F2F": "Face2Face", "FS": "FaceSwap", "NT": "NeuralTextures",
           "FSh": "FaceShifter", "DFD": "DeepFakeDetection"}
COMPRESSIONS = ("raw", "c23", "c40")
#: official pairs per split (x2 real ids, x2 fakes per method)
PAIRS = {"train": 360, "val": 70, "test": 70}
DFD_EXPECTED = {"real": 363, "fake": 3068}  # DeepFakeDetection (c23) as distributed
SPLITS_URL = "https://github.com/ondyari/FaceForensics/tree/master/dataset/splits"
HOW_TO_GET = (
    "FaceForensics++: fill in the request form linked from https://github.com/ondyari/FaceForensics "
    "(README, 'Access'), then run the download script you receive, e.g. "
    "`python download-FaceForensics.py DIR -d all -c c23 -t videos` (add `-t masks` for masks). "
    f"The split files train.json/val.json/test.json are in the FaceForensics repo: {SPLITS_URL}; "
    "put them in DIR or DIR/splits, or pass splits=DIR."
)


def canonical_compression(compression: str) -> str:
    value = str(compression).strip().lower()
    if value in ("c0", "raw"):
        return "raw"
    if value not in COMPRESSIONS:
        raise ValueError(f"ffpp: compression must be one of raw (= c0), c23, c40; got {compression!r}")
    return value


def canonical_methods(methods: Iterable[str] | str | None) -> tuple[str, ...]:
    if methods is None:
        return PROTOCOL_METHODS
    if isinstance(methods, str):
        methods = [m for m in methods.split(",") if m.strip()]
    known = PROTOCOL_METHODS + EXTRA_METHODS
    out = []
    for m in methods:
        name = ALIASES.get(m.strip(), m.strip())
        if name not in known:
            hint = close_name(name, list(known) + list(ALIASES))
            raise ValueError(
                f"ffpp: unknown method {m!r}" + (f"; did you mean {hint!r}?" if hint else "")
                + f" Methods: {', '.join(known)} (or {', '.join(ALIASES)})."
            )
        out.append(name)
    return tuple(dict.fromkeys(out))


class FFPP(BaseDataset):
    name = "ffpp"
    folders = ("ffpp", "FaceForensics++", "FaceForensics", "ff++")
    how_to_get = HOW_TO_GET
    splits = ("train", "val", "test")

    def __init__(
        self,
        root: str | Path | None = None,
        compression: str = "c23",
        methods: Iterable[str] | str | None = None,
        splits: str | Path | None = None,
        check_counts: bool = True,
        split_fallback: str | None = None,
        allow_missing: bool = False,
        masks: bool = True,
    ) -> None:
        super().__init__(root, check_counts=check_counts, allow_missing=allow_missing)
        self.compression = canonical_compression(compression)
        self.methods = canonical_methods(methods)
        self.splits_dir = Path(splits).expanduser() if splits is not None else None
        if split_fallback not in (None, "test"):
            raise ValueError(f"ffpp: split_fallback must be None or 'test', got {split_fallback!r}")
        self.split_fallback = split_fallback
        self.masks = masks

    # -- layout --------------------------------------------------------------------------------
    def _marker(self, path: Path) -> bool:
        return (path / "original_sequences").is_dir() or (path / "manipulated_sequences").is_dir()

    def _level_dir(self, parent: Path) -> Path:
        """parent/<compression>, accepting c0 for raw and any letter case on disk (C23, RAW)."""
        if (parent / self.compression).is_dir():
            return parent / self.compression
        names = {"raw", "c0"} if self.compression == "raw" else {self.compression}
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if child.is_dir() and child.name.lower() in names:
                    return child
        return parent / self.compression

    def _layout_problems(self) -> list[str]:
        root = self.require_root()
        problems = []
        for top in ("original_sequences", "manipulated_sequences"):
            if not (root / top).is_dir():
                near = close_name(top, [p.name for p in root.iterdir() if p.is_dir()])
                problems.append(f"missing folder {root / top}" + (f" (found {root / near}: rename it to {top})" if near else ""))
        manip = root / "manipulated_sequences"
        if manip.is_dir():
            for child in sorted(p for p in manip.iterdir() if p.is_dir()):
                if child.name not in PROTOCOL_METHODS + EXTRA_METHODS:
                    near = close_name(child.name, PROTOCOL_METHODS + EXTRA_METHODS)
                    problems.append(
                        f"unknown method folder {child}" + (f": rename it to {manip / near}" if near else
                                                            f"; expected one of {', '.join(PROTOCOL_METHODS + EXTRA_METHODS)}")
                    )
            for method in self.methods:
                mdir = manip / method
                if mdir.is_dir() and not self._level_dir(mdir).is_dir():
                    levels = sorted(p.name for p in mdir.iterdir() if p.is_dir() and p.name != "masks")
                    usable = sorted({canonical_compression(n) for n in levels if n.lower() in COMPRESSIONS + ("c0",)})
                    advice = (f"; or use what is there: --compression {' / '.join(usable)} (harness run, harness preprocess)"
                              if usable else "")
                    problems.append(f"{mdir} has no {self.compression}/ folder (has: {', '.join(levels) or 'nothing'}); "
                                    f"download it with -c {self.compression}" + advice)
        youtube = root / "original_sequences" / "youtube"
        if (root / "original_sequences").is_dir() and not self._level_dir(youtube).is_dir():
            problems.append(f"missing folder {self._level_dir(youtube) / 'videos'} (the real videos at {self.compression})")
        return problems

    # -- splits --------------------------------------------------------------------------------
    def _split_dirs(self) -> list[Path]:
        root = self.require_root()
        return [self.splits_dir] if self.splits_dir is not None else [root, root / "splits"]

    def load_splits(self) -> dict[str, list[tuple[str, str]]] | None:
        """{split: [(a, b), ...]} from the official JSON files; None under the recorded fallback."""
        dirs = self._split_dirs()
        found: dict[str, Path] = {}
        for split in self.splits:
            for d in dirs:
                if (d / f"{split}.json").is_file():
                    found[split] = d / f"{split}.json"
                    break
        missing = [s for s in self.splits if s not in found]
        if missing:
            if self.split_fallback == "test" and not found:
                note = ("split files missing: split_fallback='test' puts EVERY video in 'test' "
                        "(not the official protocol)")
                if note not in self.notes:
                    self.notes.append(note)
                return None
            looked = ", ".join(str(d) for d in dirs)
            raise DatasetLayoutError(
                f"ffpp: missing official split file(s) {', '.join(m + '.json' for m in missing)} (looked in {looked}). "
                f"Get train.json/val.json/test.json from {SPLITS_URL} and put them in the dataset root or "
                "root/splits, or pass splits=DIR. The harness never invents a split "
                "(split_fallback='test' evaluates every video as test, and says so)."
            )
        pairs: dict[str, list[tuple[str, str]]] = {}
        owner: dict[str, str] = {}
        for split, path in found.items():
            data = read_json_file(path, f"restore the official file from {SPLITS_URL}")
            if not isinstance(data, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) and x.isdigit() for x in p) for p in data
            ):
                raise DatasetLayoutError(
                    f"{path}: expected a JSON list of id pairs like [[\"953\", \"974\"], ...]; restore the official "
                    f"file from {SPLITS_URL}"
                )
            for a, b in data:
                for vid in (a, b):
                    if vid in owner and owner[vid] != split:
                        raise DatasetLayoutError(
                            f"{path}: video {vid} is also in {owner[vid]}.json; splits must not overlap. "
                            f"Restore the official files from {SPLITS_URL}"
                        )
                    owner[vid] = split
            pairs[split] = [(a, b) for a, b in data]
        return pairs

    # -- records -------------------------------------------------------------------------------
    def _record(self, path: Path, label: int, split: str, method: str, mask: Path | None = None,
                mask_kind: str = "binary") -> VideoRecord:
        return VideoRecord(uid=f"ffpp/{method}/{self.compression}/{path.stem}", path=path, label=label,
                           split=split, dataset="ffpp", method=method, compression=self.compression,
                           mask_path=mask, mask_kind=mask_kind)

    def _fake(self, method: str, name: str, split: str) -> VideoRecord:
        root = self.require_root()
        mdir = root / "manipulated_sequences" / method
        path = self._level_dir(mdir) / "videos" / f"{name}.mp4"
        mask = mdir / "masks" / "videos" / f"{name}.mp4"
        use_mask = self.masks and method != "FaceShifter" and mask.is_file()
        return self._record(path, 1, split, method, mask if use_mask else None,
                            "grey" if method == "NeuralTextures" else "binary")

    def _build_index(self) -> list[VideoRecord]:
        root = self.require_root()
        youtube = self._level_dir(root / "original_sequences" / "youtube") / "videos"
        pair_methods = [m for m in self.methods if m != "DeepFakeDetection"]
        records: list[VideoRecord] = []
        splits = self.load_splits()
        if splits is None:  # recorded fallback: whatever is on disk, all "test"
            records += [self._record(p, 0, "test", "original") for p in sorted(youtube.glob("*.mp4"))]
            for method in pair_methods:
                vids = self._level_dir(root / "manipulated_sequences" / method) / "videos"
                records += [self._fake(method, p.stem, "test") for p in sorted(vids.glob("*.mp4"))]
        else:
            for split, pairs in splits.items():
                ids = sorted({v for pair in pairs for v in pair})
                records += [self._record(youtube / f"{v}.mp4", 0, split, "original") for v in ids]
                for method in pair_methods:
                    for a, b in pairs:
                        records += [self._fake(method, f"{a}_{b}", split), self._fake(method, f"{b}_{a}", split)]
        if "DeepFakeDetection" in self.methods:
            records += self._dfd()
        return records

    def _dfd(self) -> list[VideoRecord]:
        root = self.require_root()
        actors = self._level_dir(root / "original_sequences" / "actors") / "videos"
        fakes = self._level_dir(root / "manipulated_sequences" / "DeepFakeDetection") / "videos"
        out = [self._record(p, 0, "test", "actors") for p in sorted(actors.glob("*.mp4"))]
        mask_dir = root / "manipulated_sequences" / "DeepFakeDetection" / "masks" / "videos"
        for p in sorted(fakes.glob("*.mp4")):
            mask = mask_dir / p.name
            out.append(self._record(p, 1, "test", "DeepFakeDetection", mask if self.masks and mask.is_file() else None))
        return out

    def _expected(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.split_fallback == "test" and self.notes:
            return out
        for split, n in PAIRS.items():
            out[f"{split}/real"] = 2 * n
            for method in self.methods:
                if method != "DeepFakeDetection":
                    out[f"{split}/fake/{method}"] = 2 * n
        if "DeepFakeDetection" in self.methods:
            out["test/real/actors"] = DFD_EXPECTED["real"]
            out["test/fake/DeepFakeDetection"] = DFD_EXPECTED["fake"]
        return out

    def _extra_counts(self, report: DatasetReport) -> None:
        """What is present beyond the chosen methods, and the masks."""
        manip = self.root / "manipulated_sequences"
        for method in EXTRA_METHODS:
            vids = self._level_dir(manip / method) / "videos"
            if method not in self.methods and vids.is_dir():
                report.counts[f"present/{method}"] = sum(1 for _ in vids.glob("*.mp4"))
        for method in self.methods:
            masks = manip / method / "masks" / "videos"
            if masks.is_dir():
                report.counts[f"masks/{method}"] = sum(1 for _ in masks.glob("*.mp4"))


@hookimpl
def register_datasets(register):
    register("ffpp", FFPP, "FaceForensics++ (DF/F2F/FS/NT [+FaceShifter, DFD]); official split JSONs; masks")
