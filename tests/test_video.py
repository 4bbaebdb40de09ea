"""Defensive decoding: real frame counts, even sampling, corrupt and truncated files, images."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.builders import corrupt
from harness.data.video import VideoDecodeError, read_frames, read_frames_indexed, sample_indices, write_video


def _clip(n: int) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.zeros((64, 96, 3), np.uint8)
        f[:, :, 0] = i * 8  # frame number readable from the red channel
        frames.append(f)
    return frames


def test_sample_indices_linspace():
    assert sample_indices(300, 32).tolist() == np.linspace(0, 299, 32).round().astype(int).tolist()
    assert sample_indices(5, 32).tolist() == [0, 1, 2, 3, 4]
    assert sample_indices(0, 32).size == 0
    idx = sample_indices(33, 32)
    assert len(np.unique(idx)) == len(idx) and idx[0] == 0 and idx[-1] == 32


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_roundtrip_and_sampling(tmp_path, codec):
    path = write_video(tmp_path / f"v_{codec}.mp4", _clip(20), codec=codec)
    frames, total = read_frames(path)
    assert total == 20 and len(frames) == 20 and frames[0].shape == (64, 96, 3)
    found, total = read_frames_indexed(path, count=4)
    assert total == 20 and [i for i, _ in found] == [0, 6, 13, 19]
    assert abs(int(found[2][1][..., 0].mean()) - 13 * 8) <= 6  # really frame 13, decoded in order
    some, _ = read_frames_indexed(path, indices=[3, 50])
    assert [i for i, _ in some] == [3]


def test_corrupt_and_missing_name_the_file(tmp_path):
    bad = corrupt(tmp_path / "bad.mp4")
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        read_frames(bad, count=4)
    with pytest.raises(VideoDecodeError, match="does not exist"):
        read_frames(tmp_path / "nope.mp4")


def test_truncated_video_counts_decoded_frames(tmp_path):
    path = write_video(tmp_path / "t.mkv", [np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)
                                            for i in range(30)], codec="mpeg4")
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"  # a streamable container: the head still decodes
    cut.write_bytes(data[: len(data) * 2 // 3])
    found, total = read_frames_indexed(cut, count=8)
    assert 0 < total < 30 and len(found) == min(8, total) and found[-1][0] == total - 1


def test_image_is_a_one_frame_video(tmp_path):
    import cv2

    image = np.zeros((40, 50, 3), np.uint8)
    image[..., 2] = 200  # red in RGB
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    frames, total = read_frames(tmp_path / "a.png", count=32)
    assert total == 1 and len(frames) == 1 and frames[0][0, 0].tolist() == [0, 0, 200]
    (tmp_path / "b.png").write_bytes(b"nope")
    with pytest.raises(VideoDecodeError, match="b.png"):
        read_frames(tmp_path / "b.png")


def test_a_process_forked_after_decoding_still_decodes_and_encodes(tmp_path):
    """Preprocessing forks its workers after the parent has read videos. PyAV 18.1.1 kept a
    converter whose threads the child does not inherit: the child waited forever (a CI hang)."""
    import os
    import signal
    import time

    from harness.evaluation.perturb import h264_roundtrip

    path = tmp_path / "v.mp4"
    frames = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(5)]
    write_video(path, frames, fps=10)
    parent, _ = read_frames(path)
    h264_roundtrip(frames, 23)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when it read the same frames and encoded again
        try:
            child, _ = read_frames(path)
            write_video(tmp_path / "child.mp4", frames, fps=10)
            ok = len(child) == len(parent) and all(np.array_equal(a, b) for a, b in zip(child, parent))
            ok = ok and len(h264_roundtrip(frames, 23)) == len(frames)
        finally:
            os._exit(0 if ok else 1) if "ok" in locals() else os._exit(2)
    deadline = time.monotonic() + 120  # a hang never ends; a busy machine still finishes in seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("a process forked after the parent decoded a video never finished decoding")
    assert os.waitstatus_to_exitcode(status) == 0
