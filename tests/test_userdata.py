"""Your own data end to end: `harness run --train-dir DIR --test-csv FILE` through the real CLI,
and every way a user's CSV can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.builders import build_user_data, video
from harness.cli import build_app
from harness.extend.types import FRAME_SEPARATOR, DatasetLayoutError
from harness_plugins.datasets.folder import FolderDataset

runner = CliRunner()
TINY = ("--backbone", "mobilenetv2", "--pretrained", "none", "--img-size", "64", "--max-steps", "1", "--batch-size", "2",
        "--eval-frames", "2", "--workers", "0", "--device", "cpu")


def invoke(*args: str):
    return runner.invoke(build_app(), [str(a) for a in args], catch_exceptions=False)


def one_results(folder: Path) -> dict:
    files = sorted(folder.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


@pytest.fixture
def user_data(tmp_path):
    return build_user_data(tmp_path / "mine")


@pytest.mark.slow
def test_run_trains_on_a_folder_and_tests_on_a_csv(user_data, tmp_path, monkeypatch, one_thread):
    """Relative, absolute and symlinked paths, a source column and frames of one video, straight from
    `harness run`; the results land in the run folder's results/, nothing is written elsewhere."""
    train_dir, csv = user_data
    monkeypatch.chdir(tmp_path)  # like a clone: everything the run writes must land in ./runs
    runs = tmp_path / "runs"
    result = invoke("run", "--train-dir", train_dir, "--test-csv", csv, *TINY)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "no validation split" in out and "--selection last" in out

    results = one_results(runs / "results")
    from harness.reporting.results import validate

    validate(results)
    config = results["config"]
    assert (config["train_dataset"], config["test_datasets"]) == ("folder", ["folder"])
    folder = dict(config["dataset_options"]["folder"])
    assert len(folder.pop("fingerprint")) == 12
    assert folder == {"train_dir": str(train_dir), "test_csv": str(csv)}
    assert results["training"]["train_videos"] == 4  # a1, a2, the symlinked bob/b1 and the photo
    assert results["training"]["val_videos"] == 0 and results["selection_rule"] == "last"
    assert any("no validation split" in n for n in results["training"]["notes"])

    block = results["datasets"]["folder"]
    # 6 CSV rows, two of them frames of one video: 5 videos
    assert block["counts"]["videos"] == 5 and block["counts"]["frame_records"] == 6
    assert block["counts"]["videos_scored"] == 5
    groups = block["groups"]
    assert set(groups) == {"all", "cam", "gan"}
    assert groups["all"]["video"]["auc"]["n"] == 5
    # "cam" holds reals and fakes: its AUC compares its own 2 reals with its own fake
    assert groups["cam"]["video"]["auc"]["n"] == 3
    # "gan" holds fakes only (a far file and the 2-frame video): against every real
    assert groups["gan"]["video"]["auc"]["n"] == 2 + 2
    # one fake in "cam": no CI, and the summary says why; the other groups are small: marked
    assert groups["cam"]["video"]["auc"]["ci_low"] is None and "1 fake item" in groups["cam"]["video"]["auc"]["no_ci"]
    assert "no CI (1 fake)" in out and "n<10" in out
    # no validation split: nothing to calibrate a threshold on, and the checkpoint says so
    run_folder = runs / results["run_id"]
    record = json.loads((run_folder / "checkpoint" / "model.json").read_text())["threshold"]
    assert record["value"] is None and "no validation split" in record["reason"]
    assert (runs / "LEADERBOARD.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "runs"]  # no leaderboards/ written here

    # The recorded config reruns (from another folder) and is recognised as finished.
    run_dir = next(p for p in runs.iterdir() if p.name != "results" and p.is_dir())
    monkeypatch.chdir(train_dir)
    again = invoke("run", "--config", run_dir / "config.json", "--backbone", "mobilenetv2", "--runs-dir", runs)
    assert again.exit_code == 0 and "already finished" in again.output


def test_val_fraction_carves_identities_and_allows_best_val(user_data, tmp_path):
    train_dir, csv = user_data
    ds = FolderDataset(train_dir=train_dir, val_fraction=0.34)
    val = list(ds.records("val"))
    train = list(ds.records("train"))
    ids = {ds.identity(r) for r in val}
    assert len(ids) == 1 and not ids & {ds.identity(r) for r in train}  # one of 3 people, never in both
    assert len(val) + len(train) == 4 and any("1 of 3 identities" in n for n in ds.notes)
    again = FolderDataset(train_dir=train_dir, val_fraction=0.34)
    assert [r.uid for r in again.records("val")] == [r.uid for r in val]  # deterministic

    from dataclasses import replace

    from harness.vocab.config import RunConfig
    from harness.run.datasets import training_splits
    from harness.run.paths import RunError

    config = RunConfig(train_dataset="folder")
    best = replace(config, train=replace(config.train, selection="best-val"))
    splits = training_splits(best, {"folder": FolderDataset(train_dir=train_dir, val_fraction=0.34)})
    assert len(splits.val) == len(val) and any("carved" in n for n in splits.notes)  # recorded in the results
    with pytest.raises(RunError, match="best-val needs validation data"):
        training_splits(best, {"folder": FolderDataset(train_dir=train_dir)})
    last = training_splits(config, {"folder": FolderDataset(train_dir=train_dir)})
    assert last.val == [] and any("--selection last" in n for n in last.notes)

    no_val = invoke("run", "--train-dir", train_dir, "--test-csv", csv, "--selection", "best-val",
                    "--runs-dir", tmp_path / "runs", *TINY)
    assert no_val.exit_code == 2
    text = " ".join(no_val.output.split())
    assert "best-val needs validation data" in text and "--val-fraction" in text
    bad = invoke("run", "--test-csv", csv, "--val-fraction", "0.2", "--runs-dir", tmp_path / "runs")
    assert bad.exit_code == 2 and "--train-dir" in bad.output


def test_run_with_root_holding_train_and_test_csv(tmp_path, monkeypatch):
    """`harness run --data folder --test folder --root DIR` with DIR/train/ and DIR/test.csv."""
    import harness.run.stages as pipeline

    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "elsewhere"))  # open_datasets points it at --root
    root = tmp_path / "data"
    video(root / "train" / "a.mp4")
    video(root / "clips" / "x.mp4")
    (root / "test.csv").write_text("clips/x.mp4,real\n")
    seen = {}

    def fake_run(cfg, paths, **kw):
        seen["datasets"] = pipeline.open_datasets(cfg, None)

    monkeypatch.setattr("harness.run.config_check.check_weights", lambda cfg: None)  # the run is a stand-in: so are its weights
    monkeypatch.setattr(pipeline, "run", fake_run)
    result = invoke("run", "--data", "folder", "--test", "folder", "--root", root, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    ds = seen["datasets"]["folder"]
    assert [r.path.name for r in ds.records("train")] == ["a.mp4"]
    assert [r.path.name for r in ds.records("test")] == ["x.mp4"]


def test_an_edited_csv_is_a_new_run(user_data, tmp_path, monkeypatch):
    import harness.run.stages as pipeline

    train_dir, csv = user_data
    started = []
    monkeypatch.setattr("harness.run.config_check.check_weights", lambda cfg: None)  # the run is a stand-in: so are its weights
    monkeypatch.setattr(pipeline, "run", lambda cfg, paths, **kw: started.append(cfg.run_key()))
    for _ in range(2):
        assert invoke("run", "--train-dir", train_dir, "--test-csv", csv, "--runs-dir", tmp_path / "r").exit_code == 0
    csv.write_text(csv.read_text().replace("cam/fake_1.mp4,fake", "cam/fake_1.mp4,real"))
    assert invoke("run", "--train-dir", train_dir, "--test-csv", csv, "--runs-dir", tmp_path / "r").exit_code == 0
    (train_dir / "alice" / "a3.mp4").write_bytes((train_dir / "alice" / "a1.mp4").read_bytes())
    assert invoke("run", "--train-dir", train_dir, "--test-csv", csv, "--runs-dir", tmp_path / "r").exit_code == 0
    assert started[0] == started[1] and len(set(started[1:])) == 3  # same data: same run; edited: new runs


def test_user_data_options_are_checked_before_any_work(tmp_path):
    runs = tmp_path / "runs"
    missing = invoke("run", "--train-dir", tmp_path / "nope", "--runs-dir", runs)
    assert missing.exit_code == 2 and "does not exist" in " ".join(missing.output.split())
    other = invoke("run", "--data", "ffpp", "--train-dir", tmp_path, "--runs-dir", runs)
    assert other.exit_code == 2 and "--data is 'ffpp'" in " ".join(other.output.split())
    folder_csv = invoke("run", "--test-csv", tmp_path, "--runs-dir", runs)
    assert folder_csv.exit_code == 2 and "not a CSV file" in " ".join(folder_csv.output.split())
    assert not runs.exists()


# -- the CSV ------------------------------------------------------------------------------------
def _csv(tmp_path: Path, text: str) -> Path:
    for name in ("a.mp4", "b.mp4", "sub/c.mp4"):
        if not (tmp_path / name).exists():
            video(tmp_path / name)
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def _error(csv: Path) -> str:
    with pytest.raises(DatasetLayoutError) as info:
        list(FolderDataset(test_csv=csv).records("test"))
    return " ".join(str(info.value).split())


def test_csv_accepts_header_comments_relative_absolute_and_symlinks(tmp_path):
    video(tmp_path / "far" / "d.mp4")
    (tmp_path / "link").symlink_to(tmp_path / "far", target_is_directory=True)
    csv = _csv(tmp_path, f"# comment\nfile,label,domain\na.mp4,REAL,x\n\n{tmp_path / 'b.mp4'},Fake,x\n"
                         "link/d.mp4,1,y\n  # indented comment\nsub/c.mp4,0,y\n")
    records = {r.path.name: r for r in FolderDataset(test_csv=csv).records("test")}
    assert {k: (r.label, r.method) for k, r in records.items()} == {
        "a.mp4": (0, "x"), "b.mp4": (1, "x"), "d.mp4": (1, "y"), "c.mp4": (0, "y")}
    assert records["d.mp4"].path == tmp_path / "link" / "d.mp4"  # the symlink's name is kept
    no_header = _csv(tmp_path, "a.mp4,0\nb.mp4,1,gan\n")
    assert {r.method for r in FolderDataset(test_csv=no_header).records("test")} == {"original", "gan"}


def test_same_file_names_in_two_csvs_never_share_a_uid(tmp_path):
    one = _csv(tmp_path / "one", "a.mp4,0\n")
    two = _csv(tmp_path / "two", "a.mp4,0\n")
    uid = lambda csv: next(FolderDataset(test_csv=csv).records("test")).uid  # noqa: E731
    assert uid(one) != uid(two) and uid(one).startswith("folder/original/raw/a_")


@pytest.mark.parametrize("text, expected", [
    ("a.mp4,maybe\n", r"t.csv:1: label 'maybe' for 'a.mp4' is not 0/1 or real/fake"),
    ("path,label\na.mp4\n", "t.csv:2: label '' for 'a.mp4'"),
    (",1\n", "t.csv:1: no path"),
    ("a.mp4,0\nb.mp4,1\na.mp4,0\n", "t.csv:3: {d}/a.mp4 is already listed on line 1"),
    ("a.mp4,0\n./a.mp4,1\n", "t.csv:2: {d}/a.mp4 is listed as fake here and as real on line 1: contradicting labels"),
    ("a.mp4,0\nlink.mp4,1\n", "t.csv:2: {d}/link.mp4 is listed as fake here and as real on line 1"),
    ("a.mp4,1,s,v\nb.mp4,0,s,v\n", "t.csv:2: frame of video 'v' labelled real, but line 1"),
    ("a.mp4,0,all\n", "t.csv:1: source 'all' is reserved"),
    ("notes.txt,0\n", "t.csv:1: 'notes.txt' is not a video or image file"),
    ("a.mp4,0,s,v,extra\n", "t.csv:1: 5 cells but 4 columns"),
    ("path,lable\na.mp4,0\n", "unknown column 'lable'; did you mean 'label'?"),
    ("# only a comment\n", "t.csv: no rows"),
    ("missing.mp4,0\n", "t.csv:1: {d}/missing.mp4"),
])
def test_bad_csv_rows_name_file_and_line(tmp_path, text, expected):
    (tmp_path / "link.mp4").parent.mkdir(parents=True, exist_ok=True)
    video(tmp_path / "a.mp4")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "a.mp4")
    message = _error(_csv(tmp_path, text))
    assert expected.format(d=tmp_path) in message, message


def test_many_bad_rows_are_reported_together(tmp_path):
    message = _error(_csv(tmp_path, "a.mp4,x\nb.mp4,y\nsub/c.mp4,0\n"))
    assert "2 problem(s)" in message and "t.csv:1" in message and "t.csv:2" in message
    assert "nothing was preprocessed" in message


def test_a_bad_csv_stops_the_run_before_preprocessing(tmp_path, monkeypatch, session_cache):
    import harness.data.preprocess as preprocess_module

    calls = []
    monkeypatch.setattr(preprocess_module, "preprocess", lambda *a, **k: calls.append(a))
    video(tmp_path / "train" / "a.mp4")
    csv = _csv(tmp_path / "t", "a.mp4,0\nb.mp4,1\na.mp4,1\n")
    result = invoke("run", "--train-dir", tmp_path / "train", "--test-csv", csv, "--runs-dir", tmp_path / "runs", *TINY)
    assert result.exit_code == 2 and not calls
    assert "t.csv:3" in result.output and "contradicting labels" in " ".join(result.output.split())


def test_test_file_that_is_also_a_training_file_is_refused(tmp_path):
    video(tmp_path / "train" / "a.mp4")
    csv = tmp_path / "t.csv"
    csv.write_text("train/a.mp4,0\n")
    with pytest.raises(DatasetLayoutError, match="t.csv:1: .*also a training file"):
        list(FolderDataset(train_dir=tmp_path / "train", test_csv=csv).records("test"))


def test_frames_of_one_video_share_the_video_uid(tmp_path):
    from harness.extend.types import video_uid

    csv = _csv(tmp_path, "path,label,video,source\na.mp4,1,v,s\nb.mp4,1,v,s\nsub/c.mp4,0,w,s\n")
    test = list(FolderDataset(test_csv=csv).records("test"))
    assert all(FRAME_SEPARATOR in r.uid for r in test)
    assert len({video_uid(r.uid) for r in test}) == 2 and len({r.uid for r in test}) == 3


def test_frames_are_scored_as_one_video(monkeypatch):
    """score_videos pools the frames of records that are frames of one video."""
    from types import SimpleNamespace

    import numpy as np

    import harness.evaluation.runner as R

    faces = {"d/m/raw/v@@1": [0.2], "d/m/raw/v@@2": [0.6], "d/m/raw/w": [0.9]}
    monkeypatch.setattr(R, "predict_faces", lambda model, crops, *a: (np.array([c[0, 0, 0] / 100 for c in crops]), np.zeros((len(crops), 4, 4))))
    monkeypatch.setattr(R, "resize_crop", lambda image, size: image)
    cache = SimpleNamespace(faces=lambda uid, frames=None: [SimpleNamespace(image=np.full((2, 2, 3), int(faces[uid][0] * 100), np.uint8),
                                                               frame_index=0, face_index=0, mask=None)])
    videos = [SimpleNamespace(uid=u, label=1, method="m", path=Path(u.split('@@')[0] + '.mp4')) for u in faces]
    scores = R.score_videos(None, cache, videos, R.EvalSetup(), None, show=False)
    assert sorted(scores.video) == ["d/m/raw/v", "d/m/raw/w"]
    assert scores.video["d/m/raw/v"] == pytest.approx(0.4) and scores.video["d/m/raw/w"] == pytest.approx(0.9)
    assert len(scores.frame) == 3 and R.score_set("frame", scores).labels.tolist() == [1, 1, 1]


def test_per_source_views_compare_reals_and_fakes_of_one_source():
    import numpy as np

    from harness.extend.views import score_views
    from harness.extend.types import ScoreSet

    data = ScoreSet("video", list("abcdef"), np.array([0, 1, 0, 1, 0, 1]), np.linspace(0, 1, 6),
                    ["yt", "yt", "tv", "tv", "original", "gan"])
    views = score_views(data)
    assert views["yt"].ids == ["a", "b"] and views["tv"].ids == ["c", "d"]
    assert views["gan"].ids == ["a", "c", "e", "f"]  # fakes only: against every real


# -- the same options on `harness datasets` and `harness preprocess` ------------------------------
def test_doctor_checks_your_own_data(user_data, tmp_path):
    train_dir, csv = user_data
    report = tmp_path / "report.json"
    ok = invoke("datasets", "--train-dir", train_dir, "--test-csv", csv, "--val-fraction", "0.34", "--json", report)
    assert ok.exit_code == 0, ok.output
    (folder,) = json.loads(report.read_text())
    assert folder["name"] == "folder" and folder["found"] and folder["problems"] == []
    counts = folder["counts"]
    assert (counts["train/real"] + counts["val/real"], counts["val/real"] >= 1) == (4, True)
    assert (counts["test/real/cam"], counts["test/fake/cam"], counts["test/fake/gan"]) == (2, 1, 3)
    assert counts["test/frame-videos"] == 1

    video(tmp_path / "t" / "a.mp4")
    (tmp_path / "t" / "broken.mp4").write_bytes(b"not a video at all")
    (tmp_path / "t" / "list.csv").write_text("a.mp4,0\nbroken.mp4,1\ngone.mp4,1\n")
    bad = invoke("datasets", "--test-csv", tmp_path / "t" / "list.csv", "--json", report)
    assert bad.exit_code == 1
    (folder,) = json.loads(report.read_text())
    assert folder["counts"]["unreadable"] == 1 and folder["counts"]["missing"] == 1
    text = " ".join(folder["problems"])
    assert "broken.mp4" in text and "gone.mp4" in text

    (tmp_path / "t" / "dup.csv").write_text("a.mp4,0\n./a.mp4,0\n")
    dup = invoke("datasets", "--test-csv", tmp_path / "t" / "dup.csv", "--json", report)
    assert dup.exit_code == 1 and "dup.csv:2" in json.loads(report.read_text())[0]["problems"][0]


def test_preprocess_takes_the_same_options(tmp_path):
    from harness.data.cache import FaceCache

    video(tmp_path / "reals" / "p1" / "a.mp4", frames=3)
    video(tmp_path / "reals" / "p2" / "b.mp4", frames=3)
    video(tmp_path / "t" / "x.mp4", frames=3)
    (tmp_path / "t" / "t.csv").write_text("x.mp4,fake\n")
    cache = tmp_path / "cache"
    common = ("--cache", cache, "--frames", "2", "--crop-size", "64")
    bad_csv = tmp_path / "t" / "bad.csv"
    bad_csv.write_text("x.mp4,fake\nx.mp4,real\n")
    bad = runner.invoke(build_app(), ["preprocess", "--train-dir", str(tmp_path / "reals"), "--test-csv", str(bad_csv),
                                      *map(str, common)])
    assert bad.exit_code == 2 and "bad.csv:2" in " ".join(bad.output.split())
    assert not (cache / "index.sqlite").exists() or not FaceCache(cache).videos()  # nothing preprocessed

    result = invoke("preprocess", "--train-dir", tmp_path / "reals", "--test-csv", tmp_path / "t" / "t.csv",
                    "--val-fraction", "0.5", *common)
    assert result.exit_code == 0, result.output
    with FaceCache(cache) as fc:
        splits = sorted((v.split, v.label) for v in fc.videos())
    assert splits == [("test", 1), ("train", 0), ("val", 0)]


# -- strict columns; the doctor names the test CSV -------------------------------------------------
@pytest.mark.parametrize("header, says", [
    ("path,label,group", "unknown column 'group'; accepted columns: path (or file, filename), label, source (or domain), video"),
    ("file,label,sourse", "unknown column 'sourse'; did you mean 'source'? accepted columns: path (or file, filename)"),
])
def test_an_unknown_csv_column_is_refused_in_one_line(tmp_path, header, says):
    video(tmp_path / "a.mp4")
    csv = _csv(tmp_path, f"{header}\na.mp4,0,x\n")
    result = invoke("preprocess", "--test-csv", csv, "--cache", tmp_path / "cache")
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = [l for l in result.output.splitlines() if l.strip()]
    assert f"{csv}:1: {says}" in " ".join(result.output.split())
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.npz"))
    doctor = invoke("datasets", "--test-csv", csv, "--json", tmp_path / "r.json")
    (folder,) = json.loads((tmp_path / "r.json").read_text())
    assert doctor.exit_code == 1 and not folder["found"] and "unknown column" in folder["problems"][0]
    assert folder["looked_in"] == [str(csv)]


def test_doctor_where_names_the_training_folder_and_the_test_csv(user_data, tmp_path):
    train_dir, csv = user_data
    # wide: no folded paths; an empty cache home: no completeness table from other tests' caches
    result = runner.invoke(build_app(), ["datasets", "--train-dir", str(train_dir), "--test-csv", str(csv)],
                           env={"COLUMNS": "400", "HARNESS_CACHE": str(tmp_path / "empty-cache")}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("folder ")]
    assert str(train_dir) in row
    assert any(str(csv) in line for line in result.output.splitlines())
