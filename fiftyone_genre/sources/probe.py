"""One PyAV open per file: the readability check *and* the sample's ``fo.VideoMetadata``.

FiftyOne's ``compute_metadata`` starts an ``ffprobe`` process per video; on
13,320 UCF101 clips that is minutes of process start-up. Opening the file in
process with PyAV costs a header parse plus one decoded frame, and the same
open already has to happen to decide whether the file is usable. PyAV
releases the GIL while it demuxes and decodes, so a small thread pool
overlaps the file reads. ``ffprobe`` stays as a fallback for the rare file
whose stream PyAV reads but whose numbers it cannot give.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiftyone_genre.utils import ProgressFn, not_a_file, not_a_video, track


@dataclass
class Probe:
    """What one open of a file found: metadata when usable, else the reason why not."""

    metadata: Any = None  # fo.VideoMetadata
    problem: str | None = None


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _metadata(path: Path, container, stream, frame, size: int):
    """``fo.VideoMetadata`` from an open container (the numbers ffprobe would give)."""
    import fiftyone as fo

    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else None
    duration = _seconds(stream.duration, stream.time_base)
    if duration is None and container.duration is not None:
        duration = container.duration / 1_000_000
    frames = stream.frames or (round(duration * fps) if duration and fps else None)
    ctx = stream.codec_context
    tag = ctx.codec_tag if isinstance(getattr(ctx, "codec_tag", None), str) else ""
    return fo.VideoMetadata(
        size_bytes=size,
        mime_type=mimetypes.guess_type(str(path))[0] or "video",
        frame_width=ctx.width or frame.width,
        frame_height=ctx.height or frame.height,
        frame_rate=fps,
        total_frame_count=frames,
        duration=duration,
        encoding_str=tag.strip("\x00") or ctx.name,
    )


def _ffprobe_metadata(path: Path):
    """Fallback: FiftyOne's ffprobe-based metadata (None when it fails too)."""
    import fiftyone as fo

    try:
        return fo.VideoMetadata.build_for(str(path))
    except Exception:  # noqa: BLE001 - ffprobe missing or failing: no metadata, not fatal
        return None


def _stat_problem(path: Path) -> tuple[str | None, int]:
    try:
        st = path.stat()
    except OSError as e:
        return f"cannot stat file ({e.strerror or e})", 0
    if (why := not_a_file(st)) is not None:  # a FIFO, a device: never opened (a FIFO blocks)
        return why, 0
    return ("zero-byte file" if st.st_size == 0 else None), st.st_size


def probe_video(path: str | Path, with_metadata: bool = True) -> Probe:
    """Open ``path`` once: why it cannot be used, or its metadata.

    Decoding one frame catches truncated files whose header parses; the
    demuxer name catches still images and text that FFmpeg opens anyway.
    """
    import av

    p = Path(path)
    problem, size = _stat_problem(p)
    if problem:
        return Probe(problem=problem)
    try:
        with av.open(str(p)) as container:
            if (why := not_a_video(container)) is not None:
                return Probe(problem=why)
            if not container.streams.video:
                return Probe(problem="no video stream (audio-only file)")
            stream = container.streams.video[0]
            frame = next(iter(container.decode(stream)), None)
            if frame is None:
                return Probe(problem="no decodable video frames")
            if not with_metadata:
                return Probe()
            try:
                return Probe(metadata=_metadata(p, container, stream, frame, size))
            except (AttributeError, TypeError, ValueError, ZeroDivisionError):
                return Probe(metadata=_ffprobe_metadata(p))
    except Exception as e:  # noqa: BLE001 - PyAV raises many FFmpeg error types
        detail = getattr(e, "strerror", None) or str(e)
        return Probe(problem=f"cannot be decoded ({detail})")


def probe_problem(path: str | Path) -> str | None:
    """Why a video cannot be used (None when it opens and has a video stream)."""
    return probe_video(path, with_metadata=False).problem


def default_workers() -> int:
    """Threads for probing: one per core, up to 8 (opening a file is CPU work; more threads than cores contend)."""
    return max(1, min(8, os.cpu_count() or 1))


def probe_many(
    paths: list[str],
    workers: int | None = None,
    progress: ProgressFn | None = None,
    desc: str = "read video metadata",
) -> list[Probe]:
    """:func:`probe_video` for every path, in order, on a thread pool, with progress."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(paths) < 8:
        return [probe_video(p) for p in track(paths, desc=desc, progress=progress)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genre-probe") as pool:
        results = pool.map(probe_video, paths)
        return list(track(results, total=len(paths), desc=desc, progress=progress))


@contextmanager
def iter_probes(paths: list[str], workers: int | None = None) -> Iterator[Iterator[Probe]]:
    """:func:`probe_video` results in order, computed ahead on a thread pool.

    The consumer pulls results as it needs them while the pool keeps reading
    the next files; leaving the block early cancels what has not started.
    An exception in a probe thread reaches the consumer at ``next()``.
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(paths) < 8:
        yield (probe_video(p) for p in paths)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genre-probe")
    try:
        yield pool.map(probe_video, paths)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
