"""Content identity of data files: the same bytes give the same digest wherever they lie, an edit
gives another, and the memo never serves a stale digest."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from harness.common.digest import sha256_file, sha256_json
from harness.data.fingerprint import MEMO_FILE, content_digest, records_fingerprint
from harness.extend.types import VideoRecord


def _record(uid: str, path: Path, label: int = 0) -> VideoRecord:
    return VideoRecord(uid=uid, path=path, label=label, split="test", dataset="d", method="original")


def test_digest_is_of_content_not_place(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(b"frames" * 1000)
    moved = tmp_path / "other" / "a.bin"
    moved.parent.mkdir()
    shutil.copy(a, moved)
    assert content_digest(a) == content_digest(moved) == hashlib.sha256(b"frames" * 1000).hexdigest()
    assert sha256_file(a) == content_digest(a)


def test_edit_is_seen_even_with_the_same_size(tmp_path: Path) -> None:
    path = tmp_path / "v.bin"
    path.write_bytes(b"a" * 64)
    first = content_digest(path)
    assert (Path(os.environ["HARNESS_CACHE"]) / MEMO_FILE).is_file()  # remembered
    path.write_bytes(b"b" * 64)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later mtime, as any edit gives
    assert content_digest(path) == hashlib.sha256(b"b" * 64).hexdigest() != first


def test_damaged_memo_is_only_a_shortcut(tmp_path: Path) -> None:
    path = tmp_path / "v.bin"
    path.write_bytes(b"xyz")
    (Path(os.environ["HARNESS_CACHE"]) / MEMO_FILE).write_bytes(b"not a database")
    assert content_digest(path) == hashlib.sha256(b"xyz").hexdigest()


def test_records_fingerprint_follows_labels_and_content_not_order(tmp_path: Path) -> None:
    one, two = tmp_path / "1.mp4", tmp_path / "2.mp4"
    one.write_bytes(b"one")
    two.write_bytes(b"two")
    base = records_fingerprint([_record("d/x/1", one), _record("d/x/2", two, 1)])
    assert records_fingerprint([_record("d/x/2", two, 1), _record("d/x/1", one)]) == base
    assert records_fingerprint([_record("d/x/1", one), _record("d/x/2", two, 0)]) != base  # a label flipped
    two.write_bytes(b"TWO")
    assert records_fingerprint([_record("d/x/1", one), _record("d/x/2", two, 1)]) != base  # content changed
    assert sha256_json({"b": 1, "a": [1, 2]}) == sha256_json({"a": [1, 2], "b": 1})
