"""A face cache that verifies what it serves, through the real `harness preprocess` CLI: damaged or
missing crops are redone to the undamaged bytes, --verify/--repair/--compact, a damaged index part,
a read-only cache and a full disk in one line, a changed failed video retried, a dead worker costing
only its video, lossless crops equal to the raw crop, old JPEG caches still read."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fixtures.builders import build_ffpp, corrupt
from fixtures.cache_index import crop_bytes, index_rows
from fixtures.plugin_env import plugins_only
from harness.cli import build_app
from harness.data.cache import FaceCache

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _plugins():
    """For the whole module: the dlib detector and the FF++ dataset plugin only (no torch-heavy ones)."""
    with plugins_only("dlib_faces,ffpp"):
        yield


@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory) -> Path:
    return build_ffpp(tmp_path_factory.mktemp("data") / "ffpp", methods=("Deepfakes",), masks=True)


def _args(root: Path, cache: Path, *extra: str) -> list[str]:
    return ["preprocess", "ffpp", "--root", str(root), "--methods", "DF", "--split", "test", "--frames", "2",
            "--crop-size", "64", "--cache", str(cache), *extra]


def _ok(args: list[str]) -> str:
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich wraps at 80 columns wherever a temporary path ends


def _one_line_exit_2(args: list[str]) -> str:
    result = runner.invoke(build_app(), args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture(scope="module")
def baseline(ffpp_root, tmp_path_factory) -> tuple[Path, list, dict]:
    cache = tmp_path_factory.mktemp("base") / "cache"
    _ok(_args(ffpp_root, cache))
    return cache, index_rows(cache), crop_bytes(cache)


def _copy(baseline, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(baseline[0], cache)
    return cache


def _crops(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "faces").rglob("*_00.png"))


def test_truncated_and_missing_crops_are_redone_to_the_undamaged_bytes(baseline, ffpp_root, tmp_path):
    cache = _copy(baseline, tmp_path)
    crops = _crops(cache)
    crops[0].write_bytes(crops[0].read_bytes()[:100])  # truncated
    crops[-1].unlink()  # missing
    check = runner.invoke(build_app(), ["preprocess", "--verify", "--cache", str(cache)])
    assert check.exit_code == 1 and "2 damaged video(s)" in check.output and "--repair" in check.output
    out = _ok(_args(ffpp_root, cache))
    assert "redone 2 video(s)" in out
    assert index_rows(cache) == baseline[1] and crop_bytes(cache) == baseline[2]
    assert "crops: ok" in _ok(["preprocess", "--verify", "--cache", str(cache)])


def test_a_damaged_crop_is_never_served_and_repair_redoes_it(baseline, ffpp_root, tmp_path):
    from harness.data.cache import CacheDamageError

    cache = _copy(baseline, tmp_path)
    crop = _crops(cache)[0]
    data = bytearray(crop.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes: only the checksum sees it
    crop.write_bytes(bytes(data))
    with FaceCache(cache, create=False) as index:
        relative = str(crop.relative_to(cache))
        uid = next(v.uid for v in index.videos() if any(r["file"] == relative for r in index.face_rows(v.uid)))
        with pytest.raises(CacheDamageError, match="damaged") as caught:
            index.faces(uid)
        assert uid in str(caught.value) and "--repair" in str(caught.value)
    assert "redone" not in _ok(_args(ffpp_root, cache))  # same size: only the checksum sees it
    out = _ok(_args(ffpp_root, cache, "--repair"))
    assert "redone 1 video(s)" in out and uid in out
    assert index_rows(cache) == baseline[1] and crop_bytes(cache) == baseline[2]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_index_part_is_reported_set_aside_and_rebuilt(baseline, ffpp_root, tmp_path, damage):
    cache = _copy(baseline, tmp_path)
    part = next((cache / "index").glob("*.sqlite"))
    data = part.read_bytes()
    part.write_bytes(b"garbage, not a database" * 100 if damage == "garbage" else data[: len(data) // 3])
    check = runner.invoke(build_app(), ["preprocess", "--verify", "--cache", str(cache)])
    assert check.exit_code == 1 and f"index part {part} is damaged" in check.output
    out = _ok(_args(ffpp_root, cache))
    assert "is damaged" in out and "set aside" in out
    assert index_rows(cache) == baseline[1] and crop_bytes(cache) == baseline[2]


@pytest.mark.parametrize("error,says", [("attempt to write a readonly database", "is read-only"),
                                        ("database or disk is full", "is full")])
def test_a_read_only_cache_and_a_full_disk_are_one_line(baseline, ffpp_root, tmp_path, monkeypatch, error, says):
    import harness.data.cache as cache_module

    cache = _copy(baseline, tmp_path)
    real = cache_module._Part

    def part(path, writable):  # what SQLite answers on a read-only mount / a full disk (root ignores chmod)
        if writable:
            raise sqlite3.OperationalError(error)
        return real(path, writable)

    monkeypatch.setattr(cache_module, "_Part", part)
    _ok(_args(ffpp_root, cache))  # everything cached: nothing to write, a read-only cache still serves
    shutil.rmtree(cache / "index")
    line = _one_line_exit_2(_args(ffpp_root, cache))
    assert says in line and str(cache) in line


def test_a_failed_video_whose_file_changed_is_retried(tmp_path):
    root = build_ffpp(tmp_path / "ffpp", methods=("Deepfakes",), masks=False)
    from harness_plugins.datasets.ffpp import FFPP

    record = next(iter(FFPP(root, methods=["DF"]).records("test")))
    good = record.path.read_bytes()
    corrupt(record.path)
    cache = tmp_path / "cache"
    _ok(_args(root, cache))
    with FaceCache(cache, create=False) as index:
        assert index.status(record.uid).cause == "corrupt_video"
    assert "redone" not in _ok(_args(root, cache))  # unchanged: its failure is final
    record.path.write_bytes(good)  # re-downloaded
    out = _ok(_args(root, cache))
    assert "redone 1 video(s)" in out
    with FaceCache(cache, create=False) as index:
        assert index.status(record.uid).status == "done"


def test_a_dead_worker_costs_only_its_video(ffpp_root, tmp_path, monkeypatch):
    from harness_plugins.datasets.ffpp import FFPP

    victim = sorted(r.uid for r in FFPP(ffpp_root, methods=["DF"]).records("test"))[1]
    monkeypatch.setenv("HARNESS_FAULT", f"preprocess.video.{victim}:1")  # that video SIGKILLs its worker (an OOM kill)
    cache = tmp_path / "cache"
    out = _ok(_args(ffpp_root, cache, "--workers", "2"))
    assert "worker_died" in out and victim in out
    with FaceCache(cache, create=False) as index:
        statuses = {v.uid: (v.status, v.cause) for v in index.videos()}
    assert statuses.pop(victim) == ("failed", "worker_died")
    assert statuses and all(s == "done" for s, _ in statuses.values())


def test_the_bar_counts_cached_videos(baseline, ffpp_root, tmp_path, monkeypatch):
    import harness.common.ui

    tasks = []
    real = harness.common.ui.progress

    def recording(*args, **kwargs):
        bar = real(*args, **kwargs)
        add = bar.add_task
        bar.add_task = lambda *a, **k: tasks.append(k) or add(*a, **k)
        return bar

    monkeypatch.setattr(harness.common.ui, "progress", recording)
    _ok(_args(ffpp_root, _copy(baseline, tmp_path)))
    assert tasks[0]["total"] == 4 and tasks[0]["completed"] == 4  # 4/4, not 0/0


def test_cached_crops_are_the_raw_crops_bit_for_bit(baseline):
    """Lossless: what training and evaluation read is what predict cuts from the same frame."""
    from harness.data.crop import CropRule
    from harness.data.faces import FaceFinder
    from harness.data.video import read_frames_indexed
    from harness.extend.registry import create

    cache, _, _ = baseline
    with FaceCache(cache, create=False) as index:
        assert index.crop_format == "png"
        rule = CropRule.from_dict(index.crop_rule)
        video_row = index.videos(status="done")[0]
        cached = index.faces(video_row.uid)
        frames, _ = read_frames_indexed(video_row.path, count=2)
        finder = FaceFinder(create("face_detector", "dlib"), fast=True)
        raw = [image for _, frame in frames for _, _, image in rule.crops(finder.find(frame), frame)]
    assert len(raw) == len(cached)
    for face, image in zip(cached, raw):
        assert np.array_equal(face.image, image)


def _legacy_cache(root: Path) -> str:
    """A cache as written before index parts and PNG: one WAL index.sqlite, JPEG crops, no checksums."""
    import cv2

    root.mkdir(parents=True)
    uid = "x/original/raw/old"
    (root / "faces").mkdir()
    cv2.imwrite(str(root / "faces" / "a.jpg"), np.full((32, 32, 3), 120, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
    db = sqlite3.connect(str(root / "index.sqlite"))
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE videos (uid TEXT PRIMARY KEY, dataset TEXT NOT NULL, method TEXT NOT NULL, compression TEXT NOT NULL,
            label INTEGER NOT NULL, split TEXT NOT NULL, path TEXT NOT NULL, mask_path TEXT, status TEXT NOT NULL,
            cause TEXT, message TEXT, frames_total INTEGER NOT NULL DEFAULT 0, frames_sampled INTEGER NOT NULL DEFAULT 0,
            frames_with_face INTEGER NOT NULL DEFAULT 0, faces INTEGER NOT NULL DEFAULT 0,
            has_mask INTEGER NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0, updated REAL NOT NULL);
        CREATE TABLE frames (uid TEXT NOT NULL, frame_index INTEGER NOT NULL, faces INTEGER NOT NULL);
        CREATE TABLE claims (uid TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
            heartbeat REAL NOT NULL);
        CREATE TABLE faces (uid TEXT NOT NULL, frame_index INTEGER NOT NULL, face_index INTEGER NOT NULL,
            file TEXT NOT NULL, mask_file TEXT, landmarks BLOB NOT NULL, box TEXT NOT NULL, crop_box TEXT NOT NULL,
            score REAL NOT NULL);
    """)
    db.execute("INSERT INTO meta VALUES ('crop_rule', ?)", (json.dumps({"crop_size": 32}),))
    db.execute("INSERT INTO videos VALUES (?, 'x', 'original', 'raw', 0, 'test', '/nowhere.mp4', NULL, 'done', NULL,"
               " NULL, 1, 1, 1, 1, 0, 0.1, 1.0)", (uid,))
    db.execute("INSERT INTO frames VALUES (?, 0, 1)", (uid,))
    db.execute("INSERT INTO faces VALUES (?, 0, 0, 'faces/a.jpg', NULL, ?, '[0,0,1,1]', '[0,0,1,1]', 0.9)",
               (uid, np.zeros((68, 2), np.float32).tobytes()))
    db.commit()
    db.close()
    return uid


def test_an_old_jpeg_cache_still_reads_says_its_format_and_compacts(tmp_path):
    cache = tmp_path / "old"
    uid = _legacy_cache(cache)
    with FaceCache(cache, create=False) as index:
        assert index.crop_format == "jpeg" and index.writing_format() == "jpeg"  # new videos stay JPEG there
        assert index.faces(uid)[0].image.shape == (32, 32, 3)
    before = index_rows(cache)
    assert "(jpeg): 1 done videos, 1 crops: ok" in _ok(["preprocess", "--verify", "--cache", str(cache)])
    out = _ok(["preprocess", "--compact", "--cache", str(cache)])
    assert "old single index.sqlite was converted" in out
    assert not (cache / "index.sqlite").exists() and len(list((cache / "index").glob("*.sqlite"))) == 1
    assert index_rows(cache) == before
    with FaceCache(cache, create=False) as index:
        assert index.crop_format == "jpeg"


def test_verify_without_a_cache_is_one_line(tmp_path):
    assert "no face cache" in _one_line_exit_2(["preprocess", "--verify", "--cache", str(tmp_path / "none")])


# ---------------------------------------------------------------------------------- issue 31, item 8
def test_compact_sets_a_damaged_part_aside_and_never_deletes_it(baseline, ffpp_root, tmp_path):
    cache = _copy(baseline, tmp_path)
    part = next((cache / "index").glob("*.sqlite"))
    damaged = part.read_bytes()[: part.stat().st_size // 3]  # a copy cut short: every video of the cache is in it
    part.write_bytes(damaged)
    out = _ok(["preprocess", "--compact", "--cache", str(cache)])
    aside = list((cache / "index").glob(f"{part.name}.damaged-*"))
    assert "set aside 1 damaged part(s)" in out and len(aside) == 1 and aside[0].name in out
    assert aside[0].read_bytes() == damaged and not part.exists()  # kept whole, under another name
    assert aside[0].name in _ok(["preprocess", "--verify", "--cache", str(cache)])  # verify says it is there
    _ok(_args(ffpp_root, cache))  # its videos are missing from the index: preprocessed again
    assert index_rows(cache) == baseline[1] and crop_bytes(cache) == baseline[2]


@pytest.fixture
def read_only(monkeypatch):
    """What a read-only mount answers to every write under ``root`` (root ignores chmod, so the
    refusals are made here): creating a file, renaming, and opening an SQLite file for writing."""
    import errno
    import os
    import tempfile

    import harness.data.cache as cache_module

    def under(path, root) -> bool:
        return str(Path(path).resolve()).startswith(str(Path(root).resolve()))

    def use(root: Path) -> None:
        real_mkstemp, real_rename, real_part = tempfile.mkstemp, os.rename, cache_module._Part

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and under(dir, root):
                raise OSError(errno.EROFS, "Read-only file system", str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        def rename(src, dst, *args, **kwargs):
            if under(src, root):
                raise OSError(errno.EROFS, "Read-only file system", str(src))
            return real_rename(src, dst, *args, **kwargs)

        def part(path, writable):
            if writable and under(path, root):
                raise sqlite3.OperationalError("attempt to write a readonly database")
            return real_part(path, writable)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(os, "rename", rename)
        monkeypatch.setattr(cache_module, "_Part", part)

    return use


@pytest.mark.parametrize("command", ["compact", "repair"])
def test_a_cache_command_that_must_write_on_a_read_only_cache_is_one_line(baseline, ffpp_root, tmp_path, read_only,
                                                                          command):
    cache = _copy(baseline, tmp_path)
    (cache / "index" / "second.sqlite").write_bytes(next((cache / "index").glob("*.sqlite")).read_bytes())
    before = sorted(p.name for p in (cache / "index").iterdir())
    read_only(cache)
    args = ["preprocess", "--compact", "--cache", str(cache)] if command == "compact" else _args(ffpp_root, cache, "--repair")
    line = _one_line_exit_2(args)
    assert "read-only" in line and str(cache) in line and f"--{command}" in line
    assert sorted(p.name for p in (cache / "index").iterdir()) == before


def test_verify_and_the_doctor_read_a_read_only_cache(baseline, tmp_path, read_only):
    cache = _copy(baseline, tmp_path)
    read_only(cache)
    assert "crops: ok" in _ok(["preprocess", "--verify", "--cache", str(cache)])
    (tmp_path / "no-datasets").mkdir()  # a data root that exists and holds nothing
    doctor = runner.invoke(build_app(), ["datasets", "--cache", str(cache), "--root", str(tmp_path / "no-datasets")])
    assert doctor.exit_code == 0 and "Traceback" not in doctor.output, doctor.output


@pytest.mark.slow
def test_every_cache_command_on_a_read_only_mount_is_one_line_or_its_report(baseline, ffpp_root, tmp_path):
    """The same on a real read-only bind mount, where this machine lets a test make one (a user and
    mount namespace: `unshare -rm`)."""
    import subprocess
    import sys

    cache = _copy(baseline, tmp_path)
    (tmp_path / "no-datasets").mkdir()  # a data root that exists and holds nothing
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no user and mount namespace here (unshare -rm)")
    harness = f"{sys.executable} -m harness"
    script = (f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache} || exit 99\n"
              f"{harness} preprocess --verify --cache {cache}; echo \"rc=$?\"\n"
              f"{harness} preprocess --compact --cache {cache}; echo \"rc=$?\"\n"
              f"{harness} {' '.join(_args(ffpp_root, cache, '--repair'))}; echo \"rc=$?\"\n"
              f"{harness} datasets --cache {cache} --root {tmp_path / 'no-datasets'} > /dev/null; echo \"rc=$?\"\n")
    env = {**os.environ, "HARNESS_PROGRESS": "0", "HARNESS_PLUGINS": "dlib_faces,ffpp", "COLUMNS": "300"}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=600)
    out = done.stdout + done.stderr
    assert "Traceback" not in out and [line for line in out.splitlines() if line.startswith("rc=")] == \
        ["rc=0", "rc=2", "rc=2", "rc=0"], out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("read-only" in e for e in errors), out
