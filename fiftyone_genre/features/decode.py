"""Streaming audio-visual decoding: one demux pass per video, bounded memory.

The paper wrote every sampled frame to disk as a JPEG and converted the audio
with an external tool. Here one PyAV pass over the container does both:

* **Video**: every frame is decoded (codec threads on), but only the frames
  that serve a sampling step are converted. Step ``k`` sits at
  ``t_k = k / fps`` seconds after the video stream's start and takes the first
  frame whose presentation time is ``>= t_k``, so the sampling follows real
  timestamps: variable frame rate and 29.97 fps files sample correctly, and a
  frame rate below ``fps`` repeats frames instead of drifting. The chosen frame
  is resized by swscale to the backbone's input size (a square: the whole
  picture is kept, as the paper's 299x299 frames did; see :class:`FrameScaler`)
  and returned as ``uint8`` (4x smaller than float; normalisation happens on
  the device).
* **Audio**: decoded in the same pass, resampled to mono ``sample_rate`` by
  ``av.AudioResampler`` and kept in a *rolling* buffer. As soon as the samples
  around ``t_k`` (``audio_window_s`` wide, centred on it) have arrived, step
  ``k``'s log-mel window is computed and the buffer is trimmed, so visual step
  ``t`` and audio step ``t`` describe the same moment and memory does not grow
  with the length of the video.

Frames and mel windows are yielded in :class:`StepChunk` s as they become
ready. They are indexed by step (``frame_start`` / ``mel_start``) rather than
forced into lock-step: a muxer that puts audio seconds ahead of (or behind)
the video would otherwise force us to hold raw frames until the other stream
caught up. The consumer appends both sequences and they line up by index.
"""

from __future__ import annotations

import functools
import math
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fiftyone_genre.features.audio import AudioFeed, MelGrid, MelWindows
from fiftyone_genre.features.pipeline import SerialWorker
from fiftyone_genre.features.sampling import FrameScaler, StepSampler
from fiftyone_genre.utils import not_a_file, not_a_video, shown

#: Bumped whenever decoding changes the pixels or samples handed to the CNNs
#: (it enters the feature-cache key, so old cache entries stop matching).
#: 2: frames area-resized in YUV 4:2:2, then converted to RGB.
#: 3: each step takes the frame shown at its time (last frame with pts <= t), frames rotated upright.
PREPROCESSING_VERSION = 3


class MediaError(ValueError):
    """A video cannot be decoded; the message names the file and the problem."""


@dataclass
class MediaInfo:
    """What the container says before decoding (used for messages and checks)."""

    path: str
    has_video: bool
    has_audio: bool
    width: int
    height: int
    frame_rate: float | None
    declared_duration: float | None
    audio_rate: int | None


@dataclass
class StepChunk:
    """The frames and/or mel windows that became ready since the previous chunk.

    ``frames[i]`` belongs to step ``frame_start + i`` and ``mels[j]`` to step
    ``mel_start + j``; either part may be empty.
    """

    frames: torch.Tensor  # uint8 [n, 3, H, W]
    frame_start: int
    timestamps: np.ndarray  # [n] presentation time (s) of the frame chosen for each step
    mels: torch.Tensor  # float32 [m, 1, n_mels, F]
    mel_start: int

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_mels(self) -> int:
        return int(self.mels.shape[0])


@dataclass
class DecodedClip:
    """A whole clip decoded into memory (tests, fine-tuning, benchmarks)."""

    frames: torch.Tensor  # uint8 [T, 3, H, W]
    mels: torch.Tensor  # float32 [T, 1, n_mels, F] (zeros without audio)
    timestamps: np.ndarray  # [T]
    has_audio: bool
    duration: float
    step_times: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _as_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


class ChunkBuilder:
    """Sampled frames and mel windows -> :class:`StepChunk` s of at most ``size`` each.

    The helper thread appends to :attr:`ready_frames` (image, time, steps it
    fills); :meth:`drain` moves those and a grid's windows over in order.
    """

    def __init__(self, size: int, height: int, width: int, mel: MelWindows):
        self.size, self.height, self.width, self.mel = size, height, width, mel
        self.ready_frames: deque = deque()
        self.frames: list[np.ndarray] = []  # HWC uint8
        self.times: list[float] = []
        self.mels: list[np.ndarray] = []
        self.frame_start = 0
        self.mel_start = 0

    def drain(self, grid: MelGrid | None) -> None:
        while self.ready_frames:
            img, t, n = self.ready_frames.popleft()
            self.frames.extend([img] * n)
            self.times.extend([t] * n)
        while grid is not None and grid.ready:
            self.mels.append(grid.ready.popleft())

    def full(self) -> bool:
        return len(self.frames) >= self.size or len(self.mels) >= self.size

    def pending(self) -> bool:
        return bool(self.frames or self.mels)

    def keep_mels(self, n_steps: int | None) -> None:
        """Drop windows past step ``n_steps`` (audio longer than video); all when None (no audio)."""
        keep = 0 if n_steps is None else max(0, n_steps - self.mel_start)
        del self.mels[keep:]

    def chunk(self) -> StepChunk:
        """The next (up to) ``size`` frames and mel windows."""
        nf = min(len(self.frames), self.size)
        nm = min(len(self.mels), self.size)
        out = StepChunk(
            # NHWC in memory, NCHW by shape: torch sees a channels-last tensor (no copy)
            frames=torch.from_numpy(np.stack(self.frames[:nf])).permute(0, 3, 1, 2)
            if nf
            else torch.zeros((0, 3, self.height, self.width), dtype=torch.uint8),
            frame_start=self.frame_start,
            timestamps=np.asarray(self.times[:nf], dtype=np.float64),
            mels=torch.from_numpy(np.stack(self.mels[:nm])[:, None]) if nm else self.mel.empty(),
            mel_start=self.mel_start,
        )
        self.frame_start += nf
        self.mel_start += nm
        del self.frames[:nf], self.times[:nf], self.mels[:nm]
        return out


class ClipStream:
    """One video opened for streaming; iterate for :class:`StepChunk` s.

    Opening checks the container (raising :class:`MediaError` for a missing,
    empty, non-video or stream-less file) so callers can report the problem
    before any work. After iteration, ``num_steps``, ``has_audio`` and
    ``duration`` describe what was decoded.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float = 4.0,
        image_size: int | tuple[int, int] = 299,
        sample_rate: int = 16000,
        n_mels: int = 64,
        audio_window_s: float = 1.0,
        chunk_size: int = 32,
        decode_threads: int = 2,
        with_audio: bool = True,
        mel: MelWindows | None = None,
        check_truncation: bool = True,
        helper_thread: bool = True,
    ):
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        self.path = str(path)
        self.fps = float(fps)
        self.size = _as_size(image_size)
        self.chunk_size = max(1, int(chunk_size))
        self.decode_threads = max(0, int(decode_threads))
        #: Resize and audio work on a helper thread. Off, everything stays on
        #: the calling thread, so decoding keeps at most ``decode_threads``
        #: cores busy (the extractor's choice when a background decoder runs
        #: beside CPU CNNs).
        self.helper_thread = bool(helper_thread)
        self.with_audio = with_audio
        self.check_truncation = check_truncation
        self.mel = mel or MelWindows(sample_rate, n_mels, audio_window_s)
        self.sample_rate = self.mel.sample_rate
        self.num_steps = 0
        self.duration = 0.0
        self.has_audio = False
        #: timestamp jumps clipped to MAX_GAP_S: (timeline time, seconds removed)
        self.gaps: list[tuple[float, float]] = []
        #: seconds of a late audio start that were not padded (start > MAX_GAP_S)
        self.audio_start_clipped_s = 0.0
        self._container = None
        self.info = self._open()

    # --- opening -------------------------------------------------------
    def _open(self) -> MediaInfo:
        import av

        try:
            st = Path(self.path).stat()
        except FileNotFoundError:
            raise MediaError(f"{shown(self.path)}: file not found") from None
        except OSError as e:  # a symlink loop, a folder we may not enter
            raise MediaError(f"{shown(self.path)}: cannot open: {e.strerror or e}") from None
        if (why := not_a_file(st)) is not None:  # before av.open: a FIFO would block it
            raise MediaError(f"{shown(self.path)}: {why}")
        if st.st_size == 0:
            raise MediaError(f"{shown(self.path)}: zero-byte file")
        try:
            container = av.open(self.path, metadata_errors="ignore")
        except av.FFmpegError as e:
            why = getattr(e, "strerror", None) or str(e)
            raise MediaError(f"{shown(self.path)}: not a readable video (corrupt, truncated or not a video: {why})") from e
        except (OSError, UnicodeError) as e:
            raise MediaError(f"{shown(self.path)}: cannot open: {e}") from e
        reason = not_a_video(container)
        if reason is not None:
            container.close()
            raise MediaError(f"{shown(self.path)}: {reason}")
        if not container.streams.video:
            kind = "an audio-only file" if container.streams.audio else "no streams"  # before close(): it empties streams
            container.close()
            raise MediaError(f"{shown(self.path)}: no video stream ({kind})")
        self._container = container
        vs = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        declared = _seconds(vs.duration, vs.time_base)
        if declared is None and container.duration is not None:
            declared = container.duration / 1_000_000
        rate = vs.average_rate or vs.guessed_rate
        return MediaInfo(
            path=self.path,
            has_video=True,
            has_audio=audio is not None,
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            frame_rate=float(rate) if rate else None,
            declared_duration=declared,
            audio_rate=audio.codec_context.sample_rate if audio is not None else None,
        )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> ClipStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- decoding ------------------------------------------------------
    def __iter__(self) -> Iterator[StepChunk]:
        import av

        if self._container is None:
            raise MediaError(f"{shown(self.path)}: stream already consumed or closed")
        container = self._container
        try:
            yield from self._decode(container)
        except av.FFmpegError as e:
            why = getattr(e, "strerror", None) or str(e)
            raise MediaError(f"{shown(self.path)}: decoding failed after {self.num_steps} steps ({why})") from e
        except MemoryError as e:
            raise MediaError(f"{shown(self.path)}: out of memory while decoding ({self.info.width}x{self.info.height})") from e
        finally:
            self.close()

    def _decode(self, container) -> Iterator[StepChunk]:
        """The demux loop: packets to their stream's part, chunks out as soon as they are full."""
        d = _Decoding(self, container)
        try:
            for packet in container.demux(d.streams):
                if packet.stream.type == "video":
                    d.on_video(packet)
                elif d.feed is not None:
                    d.on_audio(packet)
                yield from d.full_chunks()
            d.end_of_stream()
        finally:
            d.helper.join()  # also when the consumer stops early or decoding failed
        yield from d.finish()


class _Decoding:
    """One pass over a container: the parts of the decoder wired together.

    The calling thread demuxes and decodes; with ``helper_thread`` the pixel
    work of the sampled frames and all audio work (resampling, log-mel,
    cutting windows) run on a :class:`~fiftyone_genre.features.pipeline.SerialWorker`
    (in order, every failure re-raised here), handed over a few times a
    second (4 frames and 2 audio batches per second of video). swscale,
    swresample and NumPy's FFT release the GIL, so the helper overlaps with
    decoding. Everything the audio parts touch belongs to the helper until it
    is joined. Without it, the same jobs run inline as they are submitted.
    """

    def __init__(self, clip: ClipStream, container):
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        if clip.decode_threads:
            vs.codec_context.thread_count = clip.decode_threads
        audio = container.streams.audio[0] if (clip.with_audio and container.streams.audio) else None
        self.clip, self.streams = clip, [vs] + ([audio] if audio is not None else [])
        self.t0 = _seconds(vs.start_time, vs.time_base)  # step times are relative to the video start
        self.vtb = float(vs.time_base)
        self.sampler = StepSampler(clip.fps)
        self.scaler = FrameScaler(*clip.size)
        self.out = ChunkBuilder(clip.chunk_size, *clip.size, clip.mel)
        self.helper = SerialWorker(f"sampler:{shown(os.path.basename(clip.path))}", threaded=clip.helper_thread)
        self.grid = self.feed = None
        if audio is not None:
            declared = clip.info.declared_duration
            # audio beyond the video's end is useless: stop computing windows there
            limit = int(math.floor((declared + 1.0) * clip.fps)) + 1 if declared else None
            self.grid = MelGrid(clip.mel, clip.fps, limit)
            self.feed = AudioFeed(clip.sample_rate, self.grid.add, self.helper.submit)

    def on_video(self, packet) -> None:
        for frame in packet.decode():
            pts = frame.pts  # float maths on pts (frame.time builds Fractions: measurable at 25+ fps)
            if pts is None:
                continue
            t = pts * self.vtb
            if self.t0 is None:
                self.t0 = t
            self._convert(self.sampler.offer(t - self.t0, frame))

    def _convert(self, released: tuple | None) -> None:
        if released is not None:
            self.helper.submit(functools.partial(self._scale, *released))
            self.clip.num_steps = self.sampler.next_k

    def _scale(self, frame, t: float, n: int) -> None:  # helper thread
        self.out.ready_frames.append((self.scaler(frame), t, n))

    def on_audio(self, packet) -> None:
        for frame in packet.decode():
            self.feed.write(frame, self.t0 or 0.0)

    def full_chunks(self) -> Iterator[StepChunk]:
        if self.out.ready_frames or (self.grid is not None and self.grid.ready):
            self.out.drain(self.grid)
            while self.out.full():
                yield self.out.chunk()

    def end_of_stream(self) -> None:
        """The last frame's steps, the audio still queued."""
        held = self.sampler.held
        fdur = float(held[0].duration * self.vtb) if held is not None and held[0].duration else 0.0
        if not fdur and self.clip.info.frame_rate:
            fdur = 1.0 / self.clip.info.frame_rate
        self.frame_duration = fdur
        self._convert(self.sampler.finish(fdur))
        if self.feed is not None:
            self.feed.close()
            self.helper.submit(self.grid.merge)

    def finish(self) -> Iterator[StepChunk]:
        """After the helper is joined: check what was decoded, pad the audio, the last chunks."""
        clip, s = self.clip, self.sampler
        self.out.drain(self.grid)
        clip.has_audio = self.grid is not None and self.grid.origin is not None
        if s.next_k == 0:
            raise MediaError(f"{shown(clip.path)}: no decodable video frames (truncated or corrupt?)")
        clip.num_steps = s.next_k
        clip.duration = s.last_time + min(self.frame_duration, s.max_gap_s)
        clip.gaps = list(s.gaps)
        self._check_truncation(s.last_time + s.shift + self.frame_duration)
        if clip.has_audio:
            clip.audio_start_clipped_s = self.grid.clipped_start / clip.sample_rate
            for _ in self.grid.finish(clip.num_steps):  # the silent tail, a piece at a time
                yield from self.full_chunks()
            self.out.drain(self.grid)
        self.out.keep_mels(clip.num_steps if clip.has_audio else None)
        while self.out.pending():
            yield self.out.chunk()

    def _check_truncation(self, decoded_s: float) -> None:
        declared = self.clip.info.declared_duration
        if self.clip.check_truncation and declared and decoded_s < declared - max(1.0, 0.1 * declared):
            raise MediaError(
                f"{shown(self.clip.path)}: truncated: decoded {decoded_s:.1f}s of a declared {declared:.1f}s"
            )


def decode_clip(path: str | os.PathLike, fps: float = 4.0, image_size: int | tuple[int, int] = 299, **kwargs) -> ClipStream:
    """Open ``path`` for streaming; iterate the result for :class:`StepChunk` s.

    >>> stream = decode_clip("a.mp4", fps=4, image_size=224)
    >>> for chunk in stream: ...        # frames uint8 [n,3,224,224], mels [m,1,64,98]
    >>> stream.num_steps, stream.has_audio, stream.duration
    """
    return ClipStream(path, fps=fps, image_size=image_size, **kwargs)


def decode_all(path: str | os.PathLike, fps: float = 4.0, image_size: int | tuple[int, int] = 299, **kwargs) -> DecodedClip:
    """Decode a whole (short) clip into aligned tensors; zeros for missing audio."""
    stream = ClipStream(path, fps=fps, image_size=image_size, **kwargs)
    frames, times, mels = [], [], []
    for c in stream:
        if c.num_frames:
            frames.append(c.frames)
            times.append(c.timestamps)
        if c.num_mels:
            mels.append(c.mels)
    t = stream.num_steps
    frames_t = torch.cat(frames)
    if stream.has_audio:
        mels_t = torch.cat(mels)
    else:
        mels_t = torch.zeros((t, 1, stream.mel.n_mels, stream.mel.num_frames), dtype=torch.float32)
    assert frames_t.shape[0] == t and mels_t.shape[0] == t, (frames_t.shape, mels_t.shape, t)
    return DecodedClip(
        frames=frames_t,
        mels=mels_t,
        timestamps=np.concatenate(times),
        has_audio=stream.has_audio,
        duration=stream.duration,
        step_times=np.arange(t) / stream.fps,
    )
