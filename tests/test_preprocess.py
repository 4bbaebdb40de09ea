"""Cached, resumable, shardable preprocessing on a tiny FF++-shaped tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures.builders import build_ffpp, corrupt, video
from fixtures.cache_index import index_rows
from harness.data.cache import FaceCache
from harness.data.crop import CropRule
from harness.data.preprocess import in_shard, parse_shard, preprocess
from harness.extend.types import VideoRecord
from harness_plugins.datasets.ffpp import FFPP

FRAMES = 3


pytestmark = pytest.mark.usefixtures("face_detector_plugin_only")


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[VideoRecord]:
    root = build_ffpp(tmp_path_factory.mktemp("ffpp"), methods=("Deepfakes", "NeuralTextures"))
    recs = list(FFPP(root, methods=["DF", "NT"]).records("test"))  # 2 real + 4 fake (with masks)
    extra = tmp_path_factory.mktemp("extra")
    recs.append(VideoRecord(uid="x/original/raw/corrupt", path=corrupt(extra / "c.mp4"), label=0, split="test",
                            dataset="x", method="original"))
    recs.append(VideoRecord(uid="x/original/raw/blank", path=video(extra / "b.mp4", kind="blank"), label=0,
                            split="test", dataset="x", method="original"))
    return recs


def _index(root: Path) -> list[tuple]:
    return index_rows(root)


def test_preprocess_stores_faces_masks_and_failures(tmp_path, records):
    summary = preprocess(records, tmp_path / "cache", frames=FRAMES, rule=CropRule(crop_size=64), progress=False)
    assert (summary.videos, summary.done, summary.failed, summary.no_face) == (8, 6, 1, 1)
    assert summary.failures_by_cause == {"corrupt_video": 1, "no_face": 1}
    assert summary.crop_rule["margin"] == 0.3 and summary.crop_rule["crop_size"] == 64
    cache = FaceCache(tmp_path / "cache")
    real = next(r for r in records if r.label == 0 and r.dataset == "ffpp")
    faces = cache.faces(real.uid)
    assert [f.frame_index for f in faces] == [0, 4, 7]  # linspace over the 8 decoded frames
    face = faces[0]
    assert face.image.shape == (64, 64, 3) and face.image.dtype == np.uint8
    assert face.landmarks.shape == (68, 2) and face.mask is None
    assert 0 <= face.landmarks.min() and face.landmarks.max() <= 64
    status = cache.status(real.uid)
    assert status.status == "done" and status.frames_total == 8 and status.frames_with_face == 3
    fake_nt = next(r for r in records if r.method == "NeuralTextures")
    masked = cache.faces(fake_nt.uid)
    assert masked[0].mask is not None and masked[0].mask.shape == (64, 64)
    mask = masked[0].mask
    assert 0.0 <= mask.min() and mask.max() == 1.0  # the faint grey render was thresholded to 1
    assert ((mask > 0.02) & (mask < 0.98)).mean() < 0.1  # only resampled edges are in between
    assert cache.status("x/original/raw/corrupt").cause == "corrupt_video"
    blank = cache.status("x/original/raw/blank")
    assert blank.status == "no_face" and blank.frames_sampled == FRAMES and cache.frames(blank.uid)[0][1] == 0
    assert {v.uid for v in cache.videos(split="test", dataset="ffpp")} == {r.uid for r in records[:6]}
    assert cache.summary()["faces"] == summary.faces
    cache.close()
    again = preprocess(records, tmp_path / "cache", frames=FRAMES, rule=CropRule(crop_size=64), progress=False)
    assert again.skipped == 8 and again.frames == 0  # idempotent


def test_interrupted_run_resumes_to_the_same_index(tmp_path, records):
    import harness.data.preprocess as pp

    preprocess(records, tmp_path / "full", frames=FRAMES, rule=CropRule(crop_size=64), progress=False)
    calls = {"n": 0}
    real = pp.process_video

    def dying(record, plan=None):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the run is killed while the 4th video is in flight
        return real(record, plan)

    pp.process_video = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            preprocess(records, tmp_path / "resumed", frames=FRAMES, rule=CropRule(crop_size=64), progress=False)
    finally:
        pp.process_video = real
    cache = FaceCache(tmp_path / "resumed")
    assert len(cache.videos(status="done")) + len(cache.videos(status="failed")) == 3
    cache.close()
    second = preprocess(records, tmp_path / "resumed", frames=FRAMES, rule=CropRule(crop_size=64), progress=False)
    assert second.skipped == 3 and second.done + second.failed + second.no_face == 5
    assert _index(tmp_path / "resumed") == _index(tmp_path / "full")


def test_parallel_workers_give_the_same_index(tmp_path, records):
    preprocess(records[:4], tmp_path / "serial", frames=2, rule=CropRule(crop_size=48), progress=False)
    preprocess(records[:4], tmp_path / "parallel", frames=2, rule=CropRule(crop_size=48), workers=2, progress=False)
    assert _index(tmp_path / "parallel") == _index(tmp_path / "serial")


def test_shards_partition_the_records(records, tmp_path):
    uids = [f"ffpp/Deepfakes/c23/{i:03d}_{i + 1:03d}" for i in range(200)]
    parts = [{u for u in uids if in_shard(u, (k, 3))} for k in range(3)]
    assert set.union(*parts) == set(uids) and sum(map(len, parts)) == 200 and all(parts)
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) is None
    for bad in ("4/4", "a/b", "1"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)
    s0 = preprocess(records[:6], tmp_path / "s", frames=1, rule=CropRule(crop_size=32), shard=(0, 2), progress=False)
    s1 = preprocess(records[:6], tmp_path / "s", frames=1, rule=CropRule(crop_size=32), shard=(1, 2), progress=False)
    assert s0.videos + s1.videos == 6 and s1.skipped == 0
    with FaceCache(tmp_path / "s") as cache:
        assert len(cache.videos()) == 6


def test_other_crop_rule_refused(tmp_path, records):
    from harness.data.cache import CacheMismatchError

    preprocess(records[:1], tmp_path / "c", frames=1, rule=CropRule(crop_size=32), progress=False)
    with pytest.raises(CacheMismatchError, match="crop rule"):
        preprocess(records[:1], tmp_path / "c", frames=1, rule=CropRule(crop_size=64), progress=False)


def test_cache_missing_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="harness preprocess"):
        FaceCache(tmp_path / "none", create=False)


def test_crop_rule_round_trips_and_reads_old_records():
    rule = CropRule(detector="retinaface", margin=0.25, forehead=0.1, crop_size=128)
    assert CropRule.from_dict(rule.to_dict()) == rule
    # an old checkpoint's {"size", "margin"} (no forehead, detector beside it) gets the old defaults
    old = CropRule.from_dict({"size": 128, "margin": 0.3}, detector="dlib")
    assert old == CropRule(crop_size=128) and old.forehead == 0.2
    assert CropRule.from_dict({"crop_size": 64, "unknown": 1}).crop_size == 64
    with pytest.raises(ValueError, match="crop_size"):
        CropRule(crop_size=8)


def test_cache_key_holds_the_forehead_and_keeps_old_folders(tmp_path):
    from harness.data.cache import faces_cache_root

    assert CropRule().cache_key() == "dlib-crop256-m0.3"  # the folder name before the forehead was in it
    assert CropRule(forehead=0.3).cache_key() != CropRule().cache_key()
    assert faces_cache_root(CropRule(crop_size=64), tmp_path) == tmp_path / "faces" / "dlib-crop64-m0.3-png"
    # a JPEG cache keeps its folder: the lossless one is a new cache beside it
    assert faces_cache_root(CropRule(crop_size=64), tmp_path, "jpeg") == tmp_path / "faces" / "dlib-crop64-m0.3"


def test_cache_made_before_the_forehead_was_recorded_is_still_used(tmp_path, records):
    """A cache whose stored rule lacks later fields matches the rule with those fields' old values."""
    with FaceCache(tmp_path / "old") as cache:
        old = CropRule(crop_size=32).to_dict()
        del old["forehead"], old["square"]
        cache.set_meta("crop_rule", old)
        cache.check_crop_rule(CropRule(crop_size=32))  # no error
        with pytest.raises(Exception, match="crop rule"):
            cache.check_crop_rule(CropRule(crop_size=32, forehead=0.4))


def test_an_open_cache_is_used_and_left_open(tmp_path, records):
    with FaceCache(tmp_path / "open") as cache:
        summary = preprocess(records[:1], cache, CropRule(crop_size=32), frames=1, progress=False)
        assert summary.cache_root == str(tmp_path / "open") and len(cache.videos()) == 1  # still open


def test_crop_rule_cut_matches_the_crop_functions():
    from harness.data.crop import crop_box, crop_image, landmarks_to_crop

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    landmarks = rng.uniform(40, 90, (68, 2)).astype(np.float32)
    rule = CropRule(margin=0.2, forehead=0.1, crop_size=48)
    crop, lm = rule.cut(frame, landmarks)
    box = crop_box(landmarks, margin=0.2, forehead=0.1)
    assert rule.box(landmarks) == box
    assert np.array_equal(crop, crop_image(frame, box, 48)) and np.allclose(lm, landmarks_to_crop(landmarks, box, 48))
    assert rule.cut(frame, landmarks, size=32)[0].shape == (32, 32, 3)
