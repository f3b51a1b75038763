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

import math
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

#: Mel analysis: 25 ms windows every 10 ms (the usual speech/music front end).
MEL_WIN_S = 0.025
MEL_HOP_S = 0.010
#: log(mel + eps); the affine below maps typical log-mel values to roughly
#: zero mean / unit scale so even a randomly initialised audio CNN sees a
#: well-conditioned input (silence -> about -1.8, loud tones -> about +2).
LOG_MEL_EPS = 1e-6
LOG_MEL_OFFSET = 4.0
LOG_MEL_SCALE = 5.5
#: Bumped whenever decoding changes the pixels or samples handed to the CNNs
#: (it enters the feature-cache key, so old cache entries stop matching).
#: 2: frames area-resized in YUV 4:2:2, then converted to RGB.
PREPROCESSING_VERSION = 2
#: Decoding tolerance when comparing a frame time with a step time (rounding
#: of 29.97 fps time bases must not push a frame to the next step).
TIME_EPS = 1e-4


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


def mel_frames(sample_rate: int, audio_window_s: float) -> int:
    """Number of mel frames in one window (each frame lies fully inside it)."""
    win = max(1, round(MEL_WIN_S * sample_rate))
    hop = max(1, round(MEL_HOP_S * sample_rate))
    length = round(audio_window_s * sample_rate)
    if length < win:
        raise ValueError(f"audio_window_s={audio_window_s} is shorter than one {MEL_WIN_S}s mel frame")
    return 1 + (length - win) // hop


class MelWindows:
    """Log-mel spectrogram (torchaudio's filterbank and window, computed in NumPy).

    The maths is torchaudio's ``MelSpectrogram(center=False, power=2)``, but it
    runs in the decode worker thread next to a CNN that owns the intra-op
    thread pool: NumPy's single-threaded FFT plus a banded filterbank product
    keep the decode side off OpenMP/BLAS thread pools, whose spin-waiting on a
    busy machine made the same small ops 10-100x slower.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, audio_window_s: float = 1.0):
        import torchaudio

        self.sample_rate = int(sample_rate)
        self.n_mels = int(n_mels)
        self.window_samples = round(audio_window_s * sample_rate)
        self.num_frames = mel_frames(sample_rate, audio_window_s)
        self.win = max(1, round(MEL_WIN_S * sample_rate))
        self.hop = max(1, round(MEL_HOP_S * sample_rate))
        self.window = torch.hann_window(self.win).numpy().astype(np.float32)
        fb = torchaudio.functional.melscale_fbanks(
            n_freqs=self.win // 2 + 1,
            f_min=0.0,
            f_max=self.sample_rate / 2,
            n_mels=self.n_mels,
            sample_rate=self.sample_rate,
        ).numpy()  # [n_freqs, n_mels], each band non-zero on a few bins only
        self.bands: list[tuple[int, int, np.ndarray]] = []
        for m in range(self.n_mels):
            nz = np.nonzero(fb[:, m])[0]
            lo, hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
            self.bands.append((lo, hi, fb[lo:hi, m].astype(np.float32)))

    def frames(self, signal: np.ndarray) -> np.ndarray:
        """Normalised log-mel columns ``[n_mels, J]`` of a continuous signal (frame j at j*hop)."""
        signal = np.ascontiguousarray(signal, dtype=np.float32)
        if len(signal) < self.win:
            return np.zeros((self.n_mels, 0), dtype=np.float32)
        framed = np.lib.stride_tricks.sliding_window_view(signal, self.win)[:: self.hop]
        spec = np.fft.rfft(framed * self.window, axis=1)
        power = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)
        mel = np.empty((self.n_mels, power.shape[0]), dtype=np.float32)
        for m, (lo, hi, w) in enumerate(self.bands):
            mel[m] = power[:, lo:hi] @ w if hi > lo else 0.0
        return (np.log(mel + LOG_MEL_EPS) + LOG_MEL_OFFSET) / LOG_MEL_SCALE

    def __call__(self, windows: np.ndarray) -> torch.Tensor:
        """``[m, window_samples]`` audio -> ``[m, 1, n_mels, F]`` normalised log-mel."""
        out = np.stack([self.frames(w)[:, : self.num_frames] for w in np.atleast_2d(windows)])
        return torch.from_numpy(out[:, None])

    def empty(self) -> torch.Tensor:
        return torch.zeros((0, 1, self.n_mels, self.num_frames), dtype=torch.float32)


#: Planar 8-bit YUV sources are scaled in YUV first, then converted to RGB at
#: the target size. Scaling to 4:2:2 keeps more of the chroma than 4:2:0 would.
_YUV_INTERMEDIATE = {"yuv420p": "yuv422p", "yuv422p": "yuv422p", "yuvj420p": "yuvj422p", "yuvj422p": "yuvj422p"}


class FrameScaler:
    """Resize a decoded frame to ``height x width`` RGB ``uint8`` (HWC) with area averaging.

    swscale's direct "scale while converting YUV to RGB" path costs 2-2.5x
    more than scaling the YUV planes and then converting at the small size.
    On real and synthetic clips the two-step result is as close as the direct
    bilinear one, or closer, to a full-resolution RGB area resize (PSNR
    28.7 vs 28.3 dB on noise texture, 38.4 vs 37.6 dB on Big Buck Bunny).
    Other pixel formats take the direct path. The swscale contexts are kept
    between frames: ``frame.reformat`` would build a new one for every frame.
    ``threads=1``: swscale's own pool would fight the CNN for cores.
    """

    def __init__(self, height: int, width: int):
        from av.video.reformatter import VideoReformatter

        self.height, self.width = int(height), int(width)
        self._scale = VideoReformatter()
        self._to_rgb = VideoReformatter()

    def __call__(self, frame) -> np.ndarray:
        mid = _YUV_INTERMEDIATE.get(frame.format.name)
        if mid is None:
            rgb = self._scale.reformat(frame, self.width, self.height, "rgb24", interpolation="AREA", threads=1)
        else:
            small = self._scale.reformat(frame, self.width, self.height, mid, interpolation="AREA", threads=1)
            rgb = self._to_rgb.reformat(small, format="rgb24", threads=1)
        return rgb.to_ndarray()


def _as_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


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
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
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
        self._container = None
        self.info = self._open()

    # --- opening -------------------------------------------------------
    def _open(self) -> MediaInfo:
        import av

        p = Path(self.path)
        if not p.exists():
            raise MediaError(f"{self.path}: file not found")
        if p.is_dir():
            raise MediaError(f"{self.path}: is a directory, not a video file")
        if p.stat().st_size == 0:
            raise MediaError(f"{self.path}: zero-byte file")
        try:
            container = av.open(self.path, metadata_errors="ignore")
        except av.FFmpegError as e:
            why = getattr(e, "strerror", None) or str(e)
            raise MediaError(f"{self.path}: not a readable video (corrupt, truncated or not a video: {why})") from e
        except (OSError, UnicodeError) as e:
            raise MediaError(f"{self.path}: cannot open: {e}") from e
        if not container.streams.video:
            kind = "an audio-only file" if container.streams.audio else "no streams"  # before close(): it empties streams
            container.close()
            raise MediaError(f"{self.path}: no video stream ({kind})")
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
    def _frame_of(self, k: int, sr: int, hop: int) -> int:
        """Mel frame where step k's window starts (frames are on a grid from step 0's window)."""
        return round(round(k * sr / self.fps) / hop)

    def __iter__(self) -> Iterator[StepChunk]:
        import av

        if self._container is None:
            raise MediaError(f"{self.path}: stream already consumed or closed")
        container = self._container
        try:
            yield from self._decode(av, container)
        except av.FFmpegError as e:
            why = getattr(e, "strerror", None) or str(e)
            raise MediaError(f"{self.path}: decoding failed after {self.num_steps} steps ({why})") from e
        except MemoryError as e:
            raise MediaError(f"{self.path}: out of memory while decoding ({self.info.width}x{self.info.height})") from e
        finally:
            self.close()

    def _decode(self, av, container) -> Iterator[StepChunk]:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        if self.decode_threads:
            vs.codec_context.thread_count = self.decode_threads
        as_ = container.streams.audio[0] if (self.with_audio and container.streams.audio) else None
        streams = [vs] + ([as_] if as_ is not None else [])

        t0 = _seconds(vs.start_time, vs.time_base)  # step times are relative to the video start
        vtb = float(vs.time_base)
        last_frame = None
        height, width = self.size
        step_dt = 1.0 / self.fps
        half_win = self.mel.window_samples // 2
        sr = self.sample_rate
        # Audio beyond the video's end is useless: stop computing windows there.
        audio_limit_steps = None
        if self.info.declared_duration:
            audio_limit_steps = int(math.floor((self.info.declared_duration + 1.0) * self.fps)) + 1

        frames: list[np.ndarray] = []  # HWC uint8
        frame_times: list[float] = []
        frame_start = 0
        next_k = 0  # next step waiting for a frame
        last_time = -math.inf

        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr) if as_ is not None else None
        # Audio is analysed ONCE as a continuous log-mel sequence on a fixed
        # grid (frame j starts at sample g0 + j*hop, g0 = start of step 0's
        # window); step k's window is F consecutive columns of it. Overlapping
        # windows (1 s every 0.25 s) would otherwise redo each FFT 4 times.
        # When sr/fps is not a multiple of the hop, a window snaps to the
        # nearest frame (<= hop/2 = 5 ms off centre). Raw samples are kept only
        # until their frames are computed, columns only until no step needs them.
        win, hop, n_cols = self.mel.win, self.mel.hop, self.mel.num_frames
        g0 = -half_win
        buf = np.zeros(0, dtype=np.float32)  # raw samples from the next uncomputed frame on
        next_j = 0  # next mel frame to compute
        cols: list[np.ndarray] = []  # computed columns [n_mels, *] still needed
        cols_start = 0  # frame index of the first kept column
        n_kept = 0
        audio_origin: int | None = None
        sample_cap = None  # ignore audio beyond the end of the video (+ a window)
        if audio_limit_steps is not None:
            sample_cap = g0 + (self._frame_of(audio_limit_steps, sr, hop) + n_cols) * hop + win
        mel_k = 0  # next step whose mel window is pending
        mel_windows: list[np.ndarray] = []
        mel_start = 0
        chunk_size = self.chunk_size

        # With ``helper_thread`` the calling thread only demuxes and decodes.
        # Resizing the sampled frames and all audio work (resampling, log-mel,
        # cutting windows) run in one helper thread, handed over a few times a
        # second (4 frames and 2 audio batches per second of video: no
        # per-decoded-frame hand-offs), and their results come back in order
        # through these deques. swscale, swresample and NumPy's FFT release the
        # GIL, so the helper overlaps with decoding. Everything the audio
        # closures below touch belongs to the helper until it is joined.
        # Without it, the same jobs run inline as they are submitted.
        ready_frames: deque = deque()  # (image, time, steps it fills)
        ready_mels: deque = deque()
        jobs: queue.Queue = queue.Queue(maxsize=8)  # bounded: a slow helper blocks the decoder
        failure: list[BaseException] = []

        def work() -> None:
            while (job := jobs.get()) is not None:
                if not failure:
                    try:
                        job()
                    except BaseException as e:  # noqa: BLE001 - re-raised in the decoding thread
                        failure.append(e)

        helper = None
        if self.helper_thread:
            helper = threading.Thread(target=work, name=f"sampler:{os.path.basename(self.path)}", daemon=True)
            helper.start()

        def submit(job) -> None:
            if helper is None:
                job()
                return
            if failure:
                raise failure[0]
            jobs.put(job)

        def join_helper() -> None:
            if helper is not None and helper.is_alive():
                jobs.put(None)
                helper.join()
            if failure:
                raise failure[0]

        def compute(final: bool = False) -> None:
            """Turn buffered samples into mel columns (in batches of >= 1 s)."""
            nonlocal buf, next_j, n_kept
            if len(buf) < win:
                return
            nf = 1 + (len(buf) - win) // hop
            if nf < 100 and not final:
                return
            m = self.mel.frames(buf[: (nf - 1) * hop + win])
            cols.append(m)
            n_kept += m.shape[1]
            buf = buf[nf * hop :]
            next_j += nf

        def emit(limit_k: int | None) -> None:
            """Cut every step window whose columns are all computed; drop what no step needs."""
            nonlocal mel_k, cols_start, n_kept
            while limit_k is None or mel_k < limit_k:
                j = self._frame_of(mel_k, sr, hop)
                if j + n_cols > next_j:
                    break
                if len(cols) > 1:
                    cols[:] = [np.concatenate(cols, axis=1)]
                a = j - cols_start
                ready_mels.append(cols[0][:, a : a + n_cols])
                mel_k += 1
            if cols:
                drop = min(self._frame_of(mel_k, sr, hop) - cols_start, n_kept)
                if drop > 0:
                    merged = np.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]
                    cols[:] = [np.ascontiguousarray(merged[:, drop:])] if drop < n_kept else []
                    cols_start += drop
                    n_kept -= drop

        pending: list[np.ndarray] = []  # decoded samples not yet merged into buf
        pending_n = 0

        def merge() -> None:
            """Move pending samples into buf and analyse them (once per ~1 s of audio)."""
            nonlocal buf, pending_n
            if pending:
                buf = np.concatenate([buf, *pending]) if len(buf) else np.concatenate(pending)
                pending.clear()
                pending_n = 0
            compute()
            emit(audio_limit_steps)

        def pad_silence(n: int) -> None:
            while n > 0:  # in pieces: a track starting minutes late must not allocate minutes
                piece = min(n, 10 * sr)
                add_audio(np.zeros(piece, dtype=np.float32), None)
                n -= piece

        def add_audio(samples: np.ndarray, start: int | None) -> None:
            """Queue resampled audio; the first call places it on the grid (zero-padded or cut)."""
            nonlocal audio_origin, pending_n
            if audio_origin is None:
                audio_origin = start if start is not None else 0
                if audio_origin < g0:
                    samples = samples[g0 - audio_origin :]
                else:
                    pad_silence(audio_origin - g0)
            if sample_cap is not None:
                room = sample_cap - (g0 + next_j * hop + len(buf) + pending_n)
                samples = samples[: max(0, room)]
            if len(samples):
                pending.append(samples)
                pending_n += len(samples)
                if len(buf) + pending_n >= win + 100 * hop:
                    merge()

        # Decoded audio frames are queued in an AudioFifo (a C memcpy each) and
        # resampled ~0.5 s at a time: one resampler call per AAC frame (~23 ms)
        # costs more than the resampling itself, and so does copying every
        # frame out to NumPy.
        fifo = av.AudioFifo() if resampler is not None else None
        fifo_layout = None  # AudioFifo checks format and rate, not the channel count
        fifo_start: int | None = None  # where the first queued sample sits (first batch only)

        def resample(frame, start: int | None) -> None:  # helper thread
            for out in resampler.resample(frame):
                # packed float mono -> a NumPy copy (cheaper than to_ndarray's reshapes)
                add_audio(np.frombuffer(out.planes[0], dtype=np.float32, count=out.samples).copy(), start)

        def new_resampler() -> None:  # helper thread
            nonlocal resampler
            resample(None, None)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)

        def flush_fifo() -> None:
            nonlocal fifo_start
            if fifo.samples:
                submit(lambda batch=fifo.read(), start=fifo_start: resample(batch, start))
            fifo_start = None

        def restart_audio() -> None:
            """Format, rate or layout changed mid-stream: drain and rebuild the fifo and resampler."""
            nonlocal fifo
            flush_fifo()
            submit(new_resampler)
            fifo = av.AudioFifo()

        def finish_audio() -> None:  # helper thread
            resample(None, None)
            merge()

        def drain() -> None:
            """Collect what the helper finished, in order."""
            while ready_frames:
                img, t, n = ready_frames.popleft()
                frames.extend([img] * n)
                frame_times.extend([t] * n)
            while ready_mels:
                mel_windows.append(ready_mels.popleft())

        def chunk() -> StepChunk:
            """The next (up to) chunk_size frames and mel windows."""
            nonlocal frames, frame_times, frame_start, mel_windows, mel_start
            nf = min(len(frames), chunk_size)
            nm = min(len(mel_windows), chunk_size)
            out = StepChunk(
                # NHWC in memory, NCHW by shape: torch sees a channels-last tensor (no copy)
                frames=torch.from_numpy(np.stack(frames[:nf])).permute(0, 3, 1, 2)
                if nf
                else torch.zeros((0, 3, height, width), dtype=torch.uint8),
                frame_start=frame_start,
                timestamps=np.asarray(frame_times[:nf], dtype=np.float64),
                mels=torch.from_numpy(np.stack(mel_windows[:nm])[:, None]) if nm else self.mel.empty(),
                mel_start=mel_start,
            )
            frame_start += nf
            mel_start += nm
            frames, frame_times, mel_windows = frames[nf:], frame_times[nf:], mel_windows[nm:]
            return out

        scaler = FrameScaler(height, width)
        try:
            for packet in container.demux(streams):
                if packet.stream.type == "video":
                    for frame in packet.decode():
                        # float maths on pts (frame.time builds Fractions: measurable at 25+ fps)
                        pts = frame.pts
                        if pts is None:
                            continue
                        t = pts * vtb
                        if t0 is None:
                            t0 = t
                        t -= t0
                        if t < last_time:  # out-of-order glitch: presentation order only moves forward
                            continue
                        last_time = t
                        last_frame = frame
                        if t + TIME_EPS < next_k * step_dt:
                            continue  # not needed: the next step's time has not come yet
                        n = 0  # steps this frame serves (more than one below `fps`)
                        while next_k * step_dt <= t + TIME_EPS:
                            next_k += 1
                            n += 1
                        submit(lambda frame=frame, t=t, n=n: ready_frames.append((scaler(frame), t, n)))
                        self.num_steps = next_k
                elif fifo is not None:
                    for frame in packet.decode():
                        if fifo_start is None and audio_origin is None:
                            ft = frame.time if frame.time is not None else (t0 or 0.0)
                            fifo_start = round((ft - (t0 or 0.0)) * sr)
                        frame.pts = None  # the fifo would insist on gapless timestamps
                        layout = frame.layout.nb_channels
                        if layout != fifo_layout and fifo_layout is not None:
                            restart_audio()
                        fifo_layout = layout
                        try:
                            fifo.write(frame)
                        except ValueError:  # sample format or rate changed
                            restart_audio()
                            fifo.write(frame)
                        if fifo.samples >= frame.sample_rate // 2:  # ~0.5 s queued
                            flush_fifo()
                if ready_frames or ready_mels:
                    drain()
                    while len(frames) >= chunk_size or len(mel_windows) >= chunk_size:
                        yield chunk()
            if fifo is not None:
                flush_fifo()
                submit(finish_audio)
        finally:
            join_helper()  # also when the consumer stops early or decoding failed
        drain()

        self.has_audio = audio_origin is not None
        if next_k == 0:
            raise MediaError(f"{self.path}: no decodable video frames (truncated or corrupt?)")
        self.num_steps = next_k
        fdur = float(last_frame.duration * vtb) if last_frame is not None and last_frame.duration else 0.0
        if not fdur and self.info.frame_rate:
            fdur = 1.0 / self.info.frame_rate
        self.duration = last_time + fdur
        if self.check_truncation and self.info.declared_duration:
            declared = self.info.declared_duration
            if self.duration < declared - max(1.0, 0.1 * declared):
                raise MediaError(
                    f"{self.path}: truncated: decoded {self.duration:.1f}s of a declared {declared:.1f}s"
                )
        if self.has_audio:
            # The last windows run past the end of the audio: zero-pad, then cut them.
            if mel_k < next_k:
                needed = g0 + (self._frame_of(next_k - 1, sr, hop) + n_cols - 1) * hop + win
                have = g0 + next_j * hop + len(buf)
                if needed > have:
                    buf = np.concatenate([buf, np.zeros(needed - have, dtype=np.float32)])
                compute(final=True)
                emit(next_k)
                drain()
            if mel_start + len(mel_windows) > next_k:  # audio ran longer than the video
                mel_windows = mel_windows[: max(0, next_k - mel_start)]
        else:
            mel_windows = []
        while frames or mel_windows:
            yield chunk()


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
