"""Defensive video (and image) reading and writing with PyAV.

Container frame counts lie (missing index, variable frame rate, truncated downloads), so the frame
count this module reports is the number of frames it actually decoded. Decoding is sequential and
only the sampled frames are converted to RGB arrays, which keeps memory bounded by ``count``.
Images (png/jpg/...) are read as 1-frame videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


class VideoDecodeError(RuntimeError):
    """A video could not be opened or yielded no frame. The message names the file and the fix."""


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_media(path: str | Path) -> bool:
    suffix = Path(path).suffix.lower()
    return suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES


def sample_indices(total: int, k: int) -> np.ndarray:
    """``k`` frame indices spread evenly over ``[0, total)`` (linspace, unique, sorted).

    Fewer than ``k`` come back when the video has fewer than ``k`` frames.
    """
    if total <= 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k >= total:
        return np.arange(total, dtype=np.int64)
    return np.unique(np.linspace(0, total - 1, k).round().astype(np.int64))


def _fix_hint(path: Path) -> str:
    return (
        f"check that {path} is a complete video file (re-download or re-extract it; "
        f"`ffprobe {path}` shows what is wrong)"
    )


def _read_image(path: Path) -> np.ndarray:
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise VideoDecodeError(f"cannot read image {path}: missing or not a valid image file; replace it")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def count_packets(path: str | Path) -> int:
    """Video packets in the container (cheap: demux without decoding). An estimate of the frame
    count that is far more reliable than the container header, but still not the truth."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:  # e.g. an audio-only mp4: say so, not "index out of range"
                raise VideoDecodeError(f"{path} has no video stream (audio only?); {_fix_hint(path)}")
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f"cannot open video {path}: {exc}; {_fix_hint(path)}") from exc


def _packet_frames(packet: Any) -> list[Any] | None:
    """The frames of one packet, or None when it fails to decode."""
    import av

    try:
        return packet.decode()
    except av.FFmpegError:
        return None


def _demuxed_frames(container: Any, stream: Any) -> Iterator[Any]:
    """Every decoded frame of ``stream`` in order, and None for each packet that fails to decode and
    once when demuxing breaks off."""
    import av

    try:
        for packet in container.demux(stream):
            frames = _packet_frames(packet)
            if frames is None:
                yield None
                continue
            yield from frames
    except av.FFmpegError:
        yield None


def _decode(path: Path, keep: set[int] | None, threads: int) -> tuple[dict[int, np.ndarray], int, int]:
    """Decode every frame in order; return {index: rgb} for ``keep`` (all if None), the number of
    frames decoded and the number of packets that failed to decode."""
    import av

    kept: dict[int, np.ndarray] = {}
    total = 0
    errors = 0
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f"cannot open video {path}: {exc}; {_fix_hint(path)}") from exc
    with container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path} has no video stream; {_fix_hint(path)}")
        stream = container.streams.video[0]
        stream.thread_count = max(0, int(threads))
        stream.thread_type = "SLICE" if threads == 1 else "AUTO"
        for frame in _demuxed_frames(container, stream):
            if frame is None:
                errors += 1  # a damaged packet (skipped) or a truncated file (what was decoded is kept)
                continue
            if keep is None or total in keep:
                kept[total] = rgb_array(frame)
            total += 1
    return kept, total, errors


def read_frames(
    path: str | Path,
    indices: Sequence[int] | np.ndarray | None = None,
    count: int | None = None,
    threads: int = 1,
) -> tuple[list[np.ndarray], int]:
    """Decode a video (or read an image as one frame).

    indices: which decoded frames to return; count: sample that many evenly over the real frame
    count instead (``sample_indices``); neither: every frame. Returns ``(frames, total)`` where
    ``total`` is the number of frames actually decoded. Requested indices beyond ``total`` are
    simply absent from ``frames``; use ``read_frames_indexed`` to know which came back.
    """
    found, total = read_frames_indexed(path, indices=indices, count=count, threads=threads)
    return [frame for _, frame in found], total


def read_frames_indexed(
    path: str | Path,
    indices: Sequence[int] | np.ndarray | None = None,
    count: int | None = None,
    threads: int = 1,
) -> tuple[list[tuple[int, np.ndarray]], int]:
    """Like ``read_frames`` but returns ``[(frame_index, rgb), ...]`` so callers know the indices."""
    path = Path(path)
    if indices is not None and count is not None:
        raise ValueError("read_frames: pass indices= or count=, not both")
    if not path.exists():
        raise VideoDecodeError(f"{path} does not exist; check the dataset root or re-download the file")
    if is_image(path):
        image = _read_image(path)
        wanted = {0} if count is not None or indices is None else {int(i) for i in indices}
        return ([(0, image)] if 0 in wanted else []), 1
    if count is not None:
        # Sample over the packet count (cheap), then check against what really decoded.
        estimate = count_packets(path)
        wanted = set(sample_indices(estimate, count).tolist())
        kept, total, _ = _decode(path, wanted, threads)
        if total == 0:
            raise VideoDecodeError(f"{path}: no frame could be decoded; {_fix_hint(path)}")
        final = sample_indices(total, count).tolist()
        if not set(final) <= kept.keys():
            # The container lied (damaged packets, odd frame reordering): one more pass with the
            # indices computed from the true count.
            kept, total2, _ = _decode(path, set(final), threads)
            final = [i for i in final if i in kept]
        return [(i, kept[i]) for i in final], total
    keep = None if indices is None else {int(i) for i in indices}
    kept, total, _ = _decode(path, keep, threads)
    if total == 0:
        raise VideoDecodeError(f"{path}: no frame could be decoded; {_fix_hint(path)}")
    return sorted(kept.items()), total


def _even_rgb(frame: np.ndarray, path: Path) -> np.ndarray:
    """An RGB uint8 frame with even sides (yuv420p needs them): grey is repeated, odd sides padded."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"write_video({path}): frames must be RGB uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


# Pixel-format conversions (libswscale) on this thread alone: PyAV >= 18.1.1 keeps a converter
# whose worker threads a forked process does not inherit, so a preprocessing worker forked after
# the parent decoded a video waited on them forever (the CI hang of 2026-12-07).
def rgb_array(frame: Any) -> np.ndarray:
    """A decoded PyAV frame as RGB uint8 (H, W, 3)."""
    return frame.to_ndarray(format="rgb24", threads=1)


def encodable(stream: Any, rgb: np.ndarray) -> Any:
    """RGB uint8 (H, W, 3) as a frame in ``stream``'s pixel format, ready for ``stream.encode``."""
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(format=stream.codec_context.pix_fmt, threads=1)


def _video_stream(container: Any, codec: str, fps: int, width: int, height: int, pix_fmt: str, crf: int,
                  deterministic: bool) -> Any:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = width, height
    stream.pix_fmt = pix_fmt
    if codec in ("libx264", "h264"):
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        if deterministic:
            stream.options = {**stream.options, "threads": "1", "x264-params": "mbtree=0:rc-lookahead=0"}
    if deterministic:
        stream.codec_context.thread_count = 1
    return stream


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: int = 25,
    codec: str = "libx264",
    crf: int = 18,
    pix_fmt: str = "yuv420p",
    deterministic: bool = False,
) -> Path:
    """Write RGB uint8 frames (H, W, 3) to a video with PyAV. H.264 by default; ``codec="mpeg4"``
    also works. Odd sizes are padded to even (yuv420p needs it). Returns the path.

    ``deterministic=True`` makes the bytes a function of the frames alone: one encoder thread, and
    no macroblock-tree / lookahead rate control, whose decisions in libx264 varied with the
    process's memory (the same frames gave different files, and different decoded pixels, from run
    to run). It costs a little compression; the demo data uses it."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), mode="w")
    stream = None
    try:
        for frame in frames:
            frame = _even_rgb(frame, path)
            if stream is None:
                stream = _video_stream(container, codec, fps, frame.shape[1], frame.shape[0], pix_fmt, crf, deterministic)
            for packet in stream.encode(encodable(stream, frame)):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"write_video({path}): no frames given")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path
