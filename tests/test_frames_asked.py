"""The face cache serves exactly the frames asked (issue 31, item 1): a request for N frames of a video
is the N indices ``sample_indices(decoded frames, N)``, cut as an empty cache would cut them, whatever
the cache held before; only what is missing is preprocessed; a changed file never serves old frames."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from fixtures.builders import video
from harness.data.cache import FaceCache
from harness.data.crop import CropRule
from harness.data.preprocess import preprocess
from harness.data.video import sample_indices
from harness.extend.types import VideoRecord

RULE = CropRule(crop_size=64)
TOTAL = 12  # frames of the test clip

pytestmark = pytest.mark.usefixtures("face_detector_plugin_only")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return video(tmp_path_factory.mktemp("media") / "a.mp4", frames=TOTAL)


def _record(path: Path, uid: str = "x/original/raw/a", label: int = 0, split: str = "test") -> VideoRecord:
    return VideoRecord(uid=uid, path=path, label=label, split=split, dataset="x", method="original")


def _fill(record: VideoRecord, cache: Path, frames: int):
    return preprocess([record], cache, rule=RULE, frames=frames, progress=False)


def _served(cache: Path, uid: str, frames: int) -> list[tuple[int, int, bytes, bytes]]:
    """(frame, face, crop pixels, landmarks) of every face a request for ``frames`` frames is served."""
    with FaceCache(cache, create=False) as index:
        return [(f.frame_index, f.face_index, f.image.tobytes(), f.landmarks.tobytes())
                for f in index.faces(uid, frames=frames)]


def _indices(cache: Path, uid: str, frames: int) -> list[int]:
    with FaceCache(cache, create=False) as index:
        return [i for i, _ in index.frames(uid, frames=frames)]


def test_a_request_gets_its_own_frames_in_both_directions_and_fills_only_what_is_missing(tmp_path, clip):
    record, cache = _record(clip), tmp_path / "cache"
    first = _fill(record, cache, 6)
    assert first.frames == 6 and _indices(cache, record.uid, 6) == sample_indices(TOTAL, 6).tolist()

    fewer = _fill(record, cache, 4)  # the cache holds more frames than asked
    four = sample_indices(TOTAL, 4).tolist()
    assert _indices(cache, record.uid, 4) == four
    # frame 0 is cut the same in every request (nothing before it): reused; the others are cut
    assert fewer.frames == len(four) - 1 and fewer.skipped == 0
    more = _fill(record, cache, 9)  # fewer than asked
    assert _indices(cache, record.uid, 9) == sample_indices(TOTAL, 9).tolist() and more.frames == 8

    again = _fill(record, cache, 6)  # asked again for 6: still there, nothing to do
    assert again.skipped == 1 and again.frames == 0
    assert _indices(cache, record.uid, 6) == sample_indices(TOTAL, 6).tolist()
    with FaceCache(cache, create=False) as index:
        asked = index.status(record.uid, frames=4)
        assert (asked.status, asked.frames_sampled, asked.frames_with_face) == ("done", 4, 4)
        assert index.status(record.uid, frames=5).status == "pending"  # never asked: not served
        assert index.faces(record.uid, frames=5) == []

    # what each request is served is what an empty cache gives it, crop for crop
    for frames in (4, 9, 6):
        empty = tmp_path / f"empty-{frames}"
        _fill(record, empty, frames)
        assert _served(cache, record.uid, frames) == _served(empty, record.uid, frames)


def test_training_draws_only_from_the_frames_the_run_cached(tmp_path, clip):
    from harness.run.train_stage import items_for
    from harness.training.samples import SelfBlendDataset

    record, cache = _record(clip, split="train"), tmp_path / "cache"
    _fill(record, cache, 3)
    _fill(record, cache, 7)
    with FaceCache(cache, create=False) as index:
        (item,) = items_for(index, [record], 3)
        assert (item.n_faces, item.frames) == (3, 3)
        allowed = {r["file"] for r in index.face_rows(record.uid, face_index=0, frames=3)}
    dataset = SelfBlendDataset(str(cache), [item], blender=None, img_size=64)
    picked = []
    dataset._cache = FaceCache(cache, create=False)
    load = dataset._cache.load_image
    dataset._cache.load_image = lambda name: picked.append(name) or load(name)
    rng = np.random.default_rng(0)
    for _ in range(30):
        dataset._pick_face(item, rng)
    dataset._cache.close()
    assert set(picked) == allowed  # all three frames drawn, none of the 7-frame request's others


def test_a_changed_file_is_redone_and_a_copied_one_keeps_its_frames(tmp_path, clip):
    cache = tmp_path / "cache"
    path = tmp_path / "v.mp4"
    shutil.copyfile(clip, path)
    record = _record(path)
    _fill(record, cache, 3)
    before = _served(cache, record.uid, 3)

    copied = tmp_path / "elsewhere" / "v.mp4"
    copied.parent.mkdir()
    shutil.copyfile(path, copied)  # a new mtime: only the content says it is the same video
    moved = _fill(_record(copied), cache, 3)
    assert (moved.skipped, moved.frames, moved.redone) == (1, 0, [])

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    path.write_bytes(bytes(data))
    redone = _fill(record, cache, 3)
    assert redone.redone == [record.uid] and redone.skipped == 0
    with FaceCache(cache, create=False) as index:
        from harness.data.fingerprint import content_digest

        assert index.status(record.uid).src_sha256 == content_digest(path)

    shutil.copyfile(clip, path)  # back to the first content: its frames are cut again, the same
    _fill(record, cache, 3)
    assert _served(cache, record.uid, 3) == before


LEGACY = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE videos (uid TEXT PRIMARY KEY, dataset TEXT NOT NULL, method TEXT NOT NULL, compression TEXT NOT NULL,
        label INTEGER NOT NULL, split TEXT NOT NULL, path TEXT NOT NULL, mask_path TEXT, status TEXT NOT NULL,
        cause TEXT, message TEXT, frames_total INTEGER NOT NULL DEFAULT 0, frames_sampled INTEGER NOT NULL DEFAULT 0,
        frames_with_face INTEGER NOT NULL DEFAULT 0, faces INTEGER NOT NULL DEFAULT 0,
        has_mask INTEGER NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0, updated REAL NOT NULL,
        src_size INTEGER, src_mtime REAL);
    CREATE TABLE frames (uid TEXT NOT NULL, frame_index INTEGER NOT NULL, faces INTEGER NOT NULL,
        PRIMARY KEY (uid, frame_index));
    CREATE TABLE faces (uid TEXT NOT NULL, frame_index INTEGER NOT NULL, face_index INTEGER NOT NULL,
        file TEXT NOT NULL, mask_file TEXT, landmarks BLOB NOT NULL, box TEXT NOT NULL, crop_box TEXT NOT NULL,
        score REAL NOT NULL, size INTEGER, crc INTEGER, mask_size INTEGER, mask_crc INTEGER,
        PRIMARY KEY (uid, frame_index, face_index));
"""


def _as_legacy(cache: Path) -> None:
    """Rewrite a cache's index as caches before frame histories were: one index, no chain column."""
    (part,) = (cache / "index").glob("*.sqlite")
    db = sqlite3.connect(str(cache / "index.sqlite"))
    db.executescript(LEGACY)
    db.execute("ATTACH DATABASE ? AS p", (str(part),))
    db.execute("INSERT INTO meta SELECT * FROM p.meta")
    db.execute("INSERT INTO videos SELECT uid, dataset, method, compression, label, split, path, mask_path, status,"
               " cause, message, frames_total, frames_sampled, frames_with_face, faces, has_mask, seconds, updated,"
               " src_size, src_mtime FROM p.videos")
    db.execute("INSERT INTO frames SELECT uid, frame_index, faces FROM p.frames")
    db.execute("INSERT INTO faces SELECT uid, frame_index, face_index, file, mask_file, landmarks, box, crop_box,"
               " score, size, crc, mask_size, mask_crc FROM p.faces")
    db.commit()
    db.close()
    shutil.rmtree(cache / "index")


def test_an_old_cache_serves_its_rows_as_the_frames_they_are(tmp_path, clip):
    record, cache = _record(clip), tmp_path / "cache"
    _fill(record, cache, 5)
    before = _served(cache, record.uid, 5)
    _as_legacy(cache)
    assert _served(cache, record.uid, 5) == before  # its own request: served as it was
    with FaceCache(cache, create=False) as index:
        assert index.status(record.uid, frames=3).status == "pending"  # another request: not these rows
    filled = _fill(record, cache, 3)
    assert filled.frames == 2 and filled.skipped == 0  # frame 0 kept, the two others cut
    assert _served(cache, record.uid, 5) == before
    empty = tmp_path / "empty"
    _fill(record, empty, 3)
    assert _served(cache, record.uid, 3) == _served(empty, record.uid, 3)
