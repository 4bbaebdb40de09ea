"""Dataset plugins on fixture trees that mirror each official layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.builders import (CELEB_TEST, DFDC_TEST, FFPP_SPLITS, build_celebdf, build_dfdc, build_dfdcp,
                               build_ffpp, build_folder)
from harness.extend.types import DatasetLayoutError, DatasetNotFoundError
from harness_plugins.datasets.celebdf import CelebDF
from harness_plugins.datasets.dfdc import DFDC
from harness_plugins.datasets.dfdcp import DFDCP
from harness_plugins.datasets.ffpp import FFPP
from harness_plugins.datasets.folder import FolderDataset


@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory) -> Path:
    return build_ffpp(tmp_path_factory.mktemp("ffpp"), compressions=("c23", "raw"), extra=("FaceShifter",))


def test_ffpp_counts_labels_splits(ffpp_root):
    ds = FFPP(ffpp_root)
    test = list(ds.records("test"))
    reals = [r for r in test if r.label == 0]
    assert sorted(r.path.stem for r in reals) == ["006", "007"]
    assert all(r.method == "original" for r in reals)
    fakes = [r for r in test if r.label == 1]
    assert len(fakes) == 4 * 2  # 4 methods x (a_b, b_a)
    assert {r.path.stem for r in fakes} == {"006_007", "007_006"}
    train = list(ds.records("train"))
    assert sum(r.label == 0 for r in train) == 4 and sum(r.label == 1 for r in train) == 4 * 4
    assert all(r.split == "train" for r in train)
    assert not {r.path.stem for r in train} & {r.path.stem for r in test}


def test_ffpp_uids_unique_across_methods(ffpp_root):
    records = [r for s in ("train", "val", "test") for r in FFPP(ffpp_root).records(s)]
    uids = [r.uid for r in records]
    assert len(uids) == len(set(uids))
    shared = [r.uid for r in records if r.path.stem == "000_003"]
    assert sorted(shared) == sorted(f"ffpp/{m}/c23/000_003" for m in
                                    ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"))


def test_ffpp_masks_and_kinds(ffpp_root):
    by_method = {r.method: r for r in FFPP(ffpp_root, methods=["DF", "NT", "FaceShifter"]).records("test") if r.label}
    assert by_method["Deepfakes"].mask_path.is_file() and by_method["Deepfakes"].mask_kind == "binary"
    assert by_method["NeuralTextures"].mask_kind == "grey"
    assert by_method["FaceShifter"].mask_path is None


def test_ffpp_raw_and_c0_are_the_same(ffpp_root):
    raw = [r.uid for r in FFPP(ffpp_root, compression="raw").records("test")]
    c0 = [r.uid for r in FFPP(ffpp_root, compression="c0").records("test")]
    assert raw == c0 and raw[0].split("/")[2] == "raw"
    assert all("/raw/" in str(r.path) for r in FFPP(ffpp_root, compression="c0").records("val"))


def test_ffpp_c0_folder_on_disk(tmp_path):
    root = build_ffpp(tmp_path / "f", compressions=("c0",), masks=False)
    assert len(list(FFPP(root, compression="raw").records("val"))) == 2 + 4 * 2


def test_ffpp_doctor_reports_count_difference(ffpp_root):
    report = FFPP(ffpp_root).check()
    assert report.found and report.counts["test/real"] == 2 and report.counts["test/fake/Deepfakes"] == 2
    assert report.expected["test/real"] == 140 and report.expected["train/fake/FaceSwap"] == 720
    assert any("test/real: found 2, the protocol expects 140 (difference -138)" in p for p in report.problems)
    assert report.counts["present/FaceShifter"] == 8
    quiet = FFPP(ffpp_root, check_counts=False).check()
    assert quiet.expected == {} and quiet.problems == []


def test_ffpp_missing_split_file_names_it(tmp_path):
    root = build_ffpp(tmp_path / "f", masks=False)
    (root / "val.json").unlink()
    with pytest.raises(DatasetLayoutError, match=r"val\.json") as info:
        list(FFPP(root).records("test"))
    assert "FaceForensics" in str(info.value)
    assert any("val.json" in p for p in FFPP(root).check().problems)


def test_ffpp_splits_option_and_fallback(tmp_path):
    root = build_ffpp(tmp_path / "f", masks=False, splits_in=None)
    with pytest.raises(DatasetLayoutError, match="train.json"):
        list(FFPP(root).records("train"))
    ds = FFPP(root, split_fallback="test")
    assert len(list(ds.records("test"))) == 8 + 4 * 8 and list(ds.records("train")) == []
    assert any("split_fallback" in n for n in ds.notes)
    sdir = tmp_path / "mysplits"
    sdir.mkdir()
    for split, pairs in FFPP_SPLITS.items():
        (sdir / f"{split}.json").write_text(json.dumps(pairs))
    assert len(list(FFPP(root, splits=sdir).records("test"))) == 2 + 8


def test_ffpp_wrong_folder_name(tmp_path):
    root = build_ffpp(tmp_path / "f", masks=False)
    (root / "manipulated_sequences" / "Deepfakes").rename(root / "manipulated_sequences" / "Deepfake")
    problems = FFPP(root).check().problems
    assert any("Deepfake" in p and "rename it to" in p and "Deepfakes" in p for p in problems)
    with pytest.raises(DatasetLayoutError, match="rename it to"):
        list(FFPP(root).records("test"))


def test_ffpp_missing_and_allow_missing(tmp_path):
    root = build_ffpp(tmp_path / "f", masks=False)
    (root / "manipulated_sequences" / "FaceSwap" / "c23" / "videos" / "006_007.mp4").unlink()
    with pytest.raises(DatasetLayoutError, match="006_007.mp4"):
        list(FFPP(root).records("test"))
    ds = FFPP(root, allow_missing=True)
    assert len(list(ds.records("test"))) == 9 and ds.notes
    assert FFPP(root).check().counts["missing"] == 1


def test_ffpp_bad_options():
    with pytest.raises(ValueError, match="did you mean"):
        FFPP(methods=["Deepfake"])
    with pytest.raises(ValueError, match="c23"):
        FFPP(compression="c99")


def test_not_found_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "nowhere"))
    monkeypatch.delenv("HARNESS_DATA_FFPP", raising=False)
    with pytest.raises(DatasetNotFoundError) as info:
        list(FFPP().records("test"))
    text = str(info.value)
    assert str(tmp_path / "nowhere" / "ffpp") in text and "github.com/ondyari/FaceForensics" in text


def test_env_roots(tmp_path, monkeypatch, ffpp_root):
    monkeypatch.setenv("HARNESS_DATA_FFPP", str(ffpp_root))
    assert FFPP().root == ffpp_root
    monkeypatch.delenv("HARNESS_DATA_FFPP")
    monkeypatch.setenv("HARNESS_DATA", str(ffpp_root.parent))
    build_celebdf(ffpp_root.parent / "Celeb-DF-v2")
    assert CelebDF().root == ffpp_root.parent / "Celeb-DF-v2"


# -- Celeb-DF --------------------------------------------------------------------------------
def test_celebdf_polarity_and_split(tmp_path):
    ds = CelebDF(build_celebdf(tmp_path / "c"))
    test = list(ds.records("test"))
    assert len(test) == len(CELEB_TEST)
    labels = {r.path.relative_to(ds.root).as_posix(): r.label for r in test}
    assert labels["Celeb-real/id0_0000.mp4"] == 0 and labels["YouTube-real/00000.mp4"] == 0  # file says 1 = real
    assert labels["Celeb-synthesis/id0_id1_0000.mp4"] == 1
    train = list(ds.records("train"))
    assert len(train) == 9 - 5 and not {r.uid for r in train} & {r.uid for r in test}
    report = ds.check()
    assert report.counts["test/real"] == 2 and any("expects 178" in p for p in report.problems)


def test_celebdf_flipped_list_refused(tmp_path):
    flipped = [("0" if a == "1" else "1", b) for a, b in CELEB_TEST]
    root = build_celebdf(tmp_path / "c", lines=flipped)
    with pytest.raises(DatasetLayoutError, match="List_of_testing_videos.txt.*1 = real"):
        list(CelebDF(root).records("test"))
    assert any("flipped" in p for p in CelebDF(root).check().problems)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "Celeb-real/../../../etc/passwd"])
def test_label_file_outside_root_refused(tmp_path, bad):
    root = build_celebdf(tmp_path / "c", lines=[*CELEB_TEST, ("1", bad)])
    with pytest.raises(DatasetLayoutError, match="outside the dataset root|absolute"):
        list(CelebDF(root).records("test"))


def test_refusal_says_why(tmp_path):
    root = build_celebdf(tmp_path / "c", lines=[*CELEB_TEST, ("1", "Celeb-real/../../x.mp4")])
    with pytest.raises(DatasetLayoutError) as info:
        list(CelebDF(root).records("test"))
    text = str(info.value)
    assert "List_of_testing_videos.txt" in text and "only names files inside its dataset" in text
    assert "Symlinked folders inside the root are fine" in text


def _move_behind_symlink(folder: Path, elsewhere: Path) -> None:
    elsewhere.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere, target_is_directory=True)


def test_symlinked_subfolders_of_official_datasets_are_followed(tmp_path):
    """Large datasets often live on another disk behind a symlink: a linked subfolder (or root) works."""
    disk = tmp_path / "other-disk"
    celeb = build_celebdf(tmp_path / "c")
    _move_behind_symlink(celeb / "Celeb-synthesis", disk / "Celeb-synthesis")
    test = list(CelebDF(celeb).records("test"))
    assert len(test) == len(CELEB_TEST) and all(r.path.exists() for r in test)
    assert {r.path.parent for r in test if r.label} == {celeb / "Celeb-synthesis"}  # the link's name is kept
    assert CelebDF(celeb).check().counts["folder/Celeb-synthesis"] == 4

    dfdcp = build_dfdcp(tmp_path / "p")
    _move_behind_symlink(dfdcp / "method_A", disk / "method_A")
    assert len(list(DFDCP(dfdcp).records("test"))) == 3

    dfdc = build_dfdc(tmp_path / "d")
    _move_behind_symlink(dfdc / "test" / "videos", disk / "dfdc-videos")
    assert len(list(DFDC(dfdc).records("test"))) == len(DFDC_TEST)

    ffpp = build_ffpp(tmp_path / "f", masks=False)
    _move_behind_symlink(ffpp / "manipulated_sequences" / "Deepfakes", disk / "Deepfakes")
    assert sum(r.method == "Deepfakes" for r in FFPP(ffpp).records("test")) == 2
    (tmp_path / "linked-root").symlink_to(ffpp, target_is_directory=True)
    assert len(list(FFPP(tmp_path / "linked-root").records("test"))) == 2 + 8


def test_dfdc_outside_root_refused(tmp_path):
    root = build_dfdc(tmp_path / "d", rows=[("aaaaaaaaaa.mp4", "0"), ("../../../etc/passwd", "1")])
    with pytest.raises(DatasetLayoutError, match="outside the dataset root"):
        list(DFDC(root).records("test"))


# -- DFDC / DFDC-P / folder --------------------------------------------------------------------
def test_dfdc_labels(tmp_path):
    ds = DFDC(build_dfdc(tmp_path / "d"))
    test = {r.path.name: r.label for r in ds.records("test")}
    assert test == DFDC_TEST  # labels.csv: 1 = fake = harness convention
    train = {r.path.name: r.label for r in ds.records("train")}
    assert train == {"ffffffffff.mp4": 0, "gggggggggg.mp4": 1}
    report = ds.check()
    assert report.counts["test/fake"] == 3 and any("expects 2500" in p for p in report.problems)


def test_dfdc_bad_label_names_line(tmp_path):
    root = build_dfdc(tmp_path / "d", rows=[("aaaaaaaaaa.mp4", "FAKE")])
    with pytest.raises(DatasetLayoutError, match=r"labels.csv:2"):
        list(DFDC(root).records("test"))


def test_dfdcp_test_split_and_polarity(tmp_path):
    ds = DFDCP(build_dfdcp(tmp_path / "p"))
    test = list(ds.records("test"))
    assert sorted((r.method, r.label) for r in test) == [("method_A", 1), ("method_B", 1), ("original", 0)]
    assert len({r.uid for r in test}) == 3
    assert any("test/all: found 3, the protocol expects 777" in p for p in ds.check().problems)
    from fixtures.builders import DFDCP_INDEX

    flipped = {k: {**v, "label": "fake" if v["label"] == "real" else "real"} for k, v in DFDCP_INDEX.items()}
    with pytest.raises(DatasetLayoutError, match="dataset.json"):
        list(DFDCP(build_dfdcp(tmp_path / "q", index=flipped)).records("test"))


def test_folder_dataset(tmp_path):
    train_dir, csv = build_folder(tmp_path / "own")
    ds = FolderDataset(train_dir=train_dir, test_csv=csv)
    train = list(ds.records("train"))
    assert len(train) == 3 and all(r.label == 0 for r in train)
    assert {r.path.suffix for r in train} == {".mp4", ".png"}
    test = {r.path.name: (r.label, r.method) for r in ds.records("test")}
    assert test == {"real1.mp4": (0, "original"), "f1.mp4": (1, "gan"), "img.png": (0, "original")}
    # A user's CSV may point anywhere (../ or absolute); a file that is not there is named with its line.
    (csv.parent / "bad.csv").write_text("../../secret.mp4,1\n")
    with pytest.raises(DatasetLayoutError, match=r"bad.csv:1: .*secret.mp4"):
        list(FolderDataset(test_csv=csv.parent / "bad.csv").records("test"))
    (csv.parent / "bad2.csv").write_text("real1.mp4,maybe\n")
    with pytest.raises(DatasetLayoutError, match="bad2.csv:1"):
        list(FolderDataset(test_csv=csv.parent / "bad2.csv").records("test"))
    assert not FolderDataset().check().found


# -- the doctor ----------------------------------------------------------------------------------
def test_doctor_table(tmp_path, monkeypatch, only_plugins):
    from io import StringIO

    from rich.console import Console

    from harness.commands.datasets import datasets_command

    build_ffpp(tmp_path / "ffpp", masks=False)
    build_celebdf(tmp_path / "celebdf")
    monkeypatch.delenv("HARNESS_DATA_DFDC", raising=False)
    only_plugins("ffpp,celebdf,dfdc,dfdcp,folder")  # no torch-heavy plugins
    out = StringIO()
    reports = datasets_command(tmp_path, console=Console(file=out, width=1000))  # wide: no temporary path is cut
    by_name = {r.name: r for r in reports}
    assert by_name["ffpp"].found and by_name["celebdf"].found and not by_name["dfdc"].found
    assert by_name["ffpp"].counts["test/real"] == 2
    text = out.getvalue()
    assert "2 / 140 (-138)" in text and "ai.meta.com/datasets/dfdc" in text
    assert str(tmp_path / "dfdc") in text

