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
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fiftyone_genre.utils import not_a_video, shown

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
#: 3: each step takes the frame shown at its time (last frame with pts <= t), frames rotated upright.
PREPROCESSING_VERSION = 3
#: Decoding tolerance when comparing a frame time with a step time (rounding
#: of 29.97 fps time bases must not push a frame to the next step).
TIME_EPS = 1e-4
#: The longest jump between consecutive frame times (and the latest audio
#: start) kept as is; longer ones are clipped to this (see StepSampler), so a
#: bogus timestamp costs at most this many seconds of repeated steps.
MAX_GAP_S = 60.0


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
        """The frame upright (display matrix applied), ``height x width x 3``."""
        quarters = _quarter_turns(frame)
        # a quarter turn swaps the sides: scale to the turned size, then turn
        h, w = (self.width, self.height) if quarters % 2 else (self.height, self.width)
        mid = _YUV_INTERMEDIATE.get(frame.format.name)
        if mid is None:
            rgb = self._scale.reformat(frame, w, h, "rgb24", interpolation="AREA", threads=1)
        else:
            small = self._scale.reformat(frame, w, h, mid, interpolation="AREA", threads=1)
            rgb = self._to_rgb.reformat(small, format="rgb24", threads=1)
        img = rgb.to_ndarray()
        return np.ascontiguousarray(np.rot90(img, quarters)) if quarters else img


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that show ``frame`` upright (phone videos).

    The display matrix (or the old ``rotate`` tag, which FFmpeg turns into
    one) is read by PyAV as ``frame.rotation``: degrees counter-clockwise,
    the same sense as ``np.rot90``. Angles that are not a multiple of 90
    round to the nearest quarter; flips in the matrix are ignored.
    """
    degrees = getattr(frame, "rotation", 0) or 0
    return round(float(degrees) / 90.0) % 4


def _as_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


# --- the decoder's parts: each one testable alone ---------------------------------
class StepSampler:
    """Which decoded frame each sampling step shows (pure timing, no decoding).

    Step ``k`` sits at ``t_k = k / fps`` and takes the frame *shown* at that
    moment: the last frame whose time is ``<= t_k`` (within :data:`TIME_EPS`),
    so sparse or variable-rate video stays aligned with the audio window
    centred on ``t_k``. Steps before the first frame take the first frame.
    A frame is held until the next one arrives, because only then is it
    known how many steps it serves; a frame that serves none is dropped
    before any pixel work. :meth:`finish` gives the last frame the steps up
    to the end of its display time, so no tail is dropped.

    Gaps: a jump of more than ``max_gap_s`` between consecutive frames (a
    muxing error, a stream shifted by an hour) is clipped to ``max_gap_s``:
    later frames move earlier by the excess, recorded in :attr:`gaps`. A
    hostile timestamp therefore costs at most ``max_gap_s * fps`` repeated
    steps, never memory proportional to the jump.
    """

    def __init__(self, fps: float, max_gap_s: float | None = None):
        self.step_dt = 1.0 / float(fps)
        self.max_gap_s = MAX_GAP_S if max_gap_s is None else float(max_gap_s)
        self.next_k = 0  # steps given a frame so far
        self.held: tuple[object, float] | None = None  # (frame, time) waiting for its steps
        self.last_time = -math.inf  # timeline time of the latest accepted frame
        self.shift = 0.0  # seconds removed by clipped gaps so far
        self.gaps: list[tuple[float, float]] = []  # (timeline time, seconds removed)

    def offer(self, t: float, frame: object) -> tuple[object, float, int] | None:
        """A decoded frame at ``t`` s (from the stream start); returns ``(frame, time, steps)`` released.

        The released frame is the *previously* held one, with the number of
        consecutive steps it serves; None when it serves none (or this is
        the first frame, or ``frame`` is out of order and ignored).
        """
        t -= self.shift
        if t < self.last_time:  # out-of-order glitch: presentation order only moves forward
            return None
        before = self.last_time if self.held is not None else 0.0
        if t - before > self.max_gap_s:
            excess = t - before - self.max_gap_s
            self.shift += excess
            self.gaps.append((before, excess))
            t -= excess
        out = self._release(t) if self.held is not None else None
        self.held, self.last_time = (frame, t), t
        return out

    def _release(self, until: float) -> tuple[object, float, int] | None:
        """The held frame with the steps before ``until`` (those a later frame cannot show)."""
        n = 0
        while self.next_k * self.step_dt < until - TIME_EPS:
            self.next_k += 1
            n += 1
        frame, t = self.held
        return (frame, t, n) if n else None

    def finish(self, frame_duration: float) -> tuple[object, float, int] | None:
        """End of stream: the last frame serves the steps until its display time ends.

        ``frame_duration`` is capped at ``max_gap_s`` (bogus durations); a
        clip whose frames served no step still gets one.
        """
        if self.held is None:
            return None
        end = self.last_time + min(max(frame_duration, 0.0), self.max_gap_s)
        out = self._release(end)
        if out is None and self.next_k == 0:
            self.next_k = 1
            out = (self.held[0], self.held[1], 1)
        self.held = None
        return out


class Helper:
    """Runs jobs in order on one background thread (or inline); every failure reaches the caller.

    A job's exception, or a failure of the thread itself, is re-raised in the
    submitting thread at its next :meth:`submit` or at :meth:`join`. A
    submit never blocks on a dead helper: the bounded queue is polled
    together with the thread's liveness, so a failed helper cannot hang the
    decoder (a full queue with nobody reading it).
    """

    def __init__(self, name: str, threaded: bool = True, max_jobs: int = 8):
        self.error: BaseException | None = None
        self.jobs: queue.Queue = queue.Queue(maxsize=max_jobs)  # bounded: a slow helper blocks the decoder
        self.thread = threading.Thread(target=self._run, name=name, daemon=True) if threaded else None
        if self.thread is not None:
            self.thread.start()

    def _next_job(self):
        return self.jobs.get()

    def _run(self) -> None:
        try:
            while (job := self._next_job()) is not None:
                if self.error is None:
                    try:
                        job()
                    except BaseException as e:  # noqa: BLE001 - re-raised in the decoding thread
                        self.error = e
        except BaseException as e:  # noqa: BLE001 - the thread itself failed
            self.error = self.error or e

    def check(self) -> None:
        """Raise the helper's failure, if any, in the calling thread."""
        if self.error is not None:
            raise self.error
        if self.thread is not None and not self.thread.is_alive():
            raise RuntimeError(f"helper thread {self.thread.name} stopped unexpectedly")

    def _put(self, item) -> None:
        while True:
            self.check()
            try:
                self.jobs.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def submit(self, job) -> None:
        if self.thread is None:
            job()
        else:
            self._put(job)

    def join(self) -> None:
        """Wait for every submitted job (the rest are skipped after a failure); raise the first failure."""
        if self.thread is not None:
            while self.thread.is_alive():
                try:
                    self.jobs.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self.thread.join()
        if self.error is not None:
            raise self.error


class AudioFeed:
    """Decoded audio frames -> mono float32 at ``rate``, resampled about 0.5 s at a time.

    Decoder side (:meth:`write`, :meth:`close`): frames are queued in an
    AudioFifo (a C memcpy each), because one resampler call per AAC frame
    (~23 ms) costs more than the resampling itself. A change of sample
    format, rate or channel count mid-stream (broadcast TS) drains the fifo
    and rebuilds fifo and resampler. Worker side (the submitted jobs): the
    resampler, whose output goes to ``sink(samples, start)``; ``start`` (in
    samples from the video start) is given with the first batch only.
    """

    def __init__(self, rate: int, sink, submit):
        import av

        self._av = av
        self.rate = int(rate)
        self.sink = sink
        self.submit = submit
        self.fifo = av.AudioFifo()
        self.layout: int | None = None  # AudioFifo checks format and rate, not the channel count
        self.start: int | None = None
        self.placed = False
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=self.rate)

    def write(self, frame, t0: float) -> None:
        if not self.placed and self.start is None:
            ft = frame.time if frame.time is not None else t0
            self.start = round((ft - t0) * self.rate)
        frame.pts = None  # the fifo would insist on gapless timestamps
        layout = frame.layout.nb_channels
        if self.layout is not None and layout != self.layout:
            self._restart()
        self.layout = layout
        try:
            self.fifo.write(frame)
        except ValueError:  # sample format or rate changed
            self._restart()
            self.fifo.write(frame)
        if self.fifo.samples >= frame.sample_rate // 2:  # ~0.5 s queued
            self.flush()

    def flush(self) -> None:
        if self.fifo.samples:
            batch, start = self.fifo.read(), self.start
            self.submit(lambda: self._resample(batch, start))
            self.placed = True
        self.start = None

    def close(self) -> None:
        """End of stream: hand on what is queued and what the resampler still holds."""
        self.flush()
        self.submit(lambda: self._resample(None, None))

    def _restart(self) -> None:
        self.flush()
        self.submit(self._new_resampler)
        self.fifo = self._av.AudioFifo()

    def _new_resampler(self) -> None:  # worker side
        self._resample(None, None)
        self.resampler = self._av.AudioResampler(format="flt", layout="mono", rate=self.rate)

    def _resample(self, frame, start: int | None) -> None:  # worker side
        for out in self.resampler.resample(frame):
            # packed float mono -> a NumPy copy (cheaper than to_ndarray's reshapes)
            self.sink(np.frombuffer(out.planes[0], dtype=np.float32, count=out.samples).copy(), start)


class MelGrid:
    """Mono samples -> each step's log-mel window, cut from one continuous log-mel sequence.

    Audio is analysed ONCE on a fixed grid (mel frame ``j`` starts at sample
    ``g0 + j * hop``, ``g0`` = start of step 0's window); step ``k``'s window
    is the ``F`` consecutive columns from :meth:`frame_of`. Overlapping
    windows (1 s every 0.25 s) would otherwise redo each FFT 4 times. When
    ``sr / fps`` is not a multiple of the hop, a window snaps to the nearest
    frame (<= hop/2 = 5 ms off centre). Raw samples are kept only until their
    frames are computed, columns only until no step needs them, so memory
    does not grow with the length of the audio. Finished windows wait in
    :attr:`ready` (thread-safe) in step order.
    """

    #: silence is added in pieces of this many seconds (a late track or a long tail)
    PAD_PIECE_S = 10.0

    def __init__(self, mel: MelWindows, fps: float, limit_steps: int | None = None):
        self.mel, self.fps, self.sr = mel, float(fps), mel.sample_rate
        self.win, self.hop, self.n_cols = mel.win, mel.hop, mel.num_frames
        self.g0 = -(mel.window_samples // 2)
        self.limit = limit_steps  # audio beyond the end of the video (+ a window) is ignored
        self.cap = None if limit_steps is None else self.g0 + (self.frame_of(limit_steps) + self.n_cols) * self.hop + self.win
        self.buf = np.zeros(0, dtype=np.float32)  # raw samples from the next uncomputed frame on
        self.next_j = 0  # next mel frame to compute
        self.cols: list[np.ndarray] = []  # computed columns [n_mels, *] still needed
        self.cols_start = 0  # frame index of the first kept column
        self.n_kept = 0
        self.next_k = 0  # next step whose window is pending
        self.origin: int | None = None  # sample (from the video start) of the first audio
        self.clipped_start = 0  # samples of a late start that were not padded (see add)
        self.pending: list[np.ndarray] = []  # samples not yet merged into buf
        self.pending_n = 0
        self.ready: deque = deque()

    def frame_of(self, k: int) -> int:
        """Mel frame where step k's window starts."""
        return round(round(k * self.sr / self.fps) / self.hop)

    def add(self, samples: np.ndarray, start: int | None) -> None:
        """Queue samples; the first call places them on the grid (zero-padded or cut).

        A track that starts more than :data:`MAX_GAP_S` after the video is
        padded by that much only (recorded in :attr:`clipped_start`): an hour
        of silence would otherwise be analysed before the first sound.
        """
        if self.origin is None:
            self.origin = start if start is not None else 0
            if self.origin < self.g0:
                samples = samples[self.g0 - self.origin :]
            else:
                lead = self.origin - self.g0
                self.clipped_start = max(0, lead - int(MAX_GAP_S * self.sr))
                self._pad(lead - self.clipped_start)
        if self.cap is not None:
            room = self.cap - (self.g0 + self.next_j * self.hop + len(self.buf) + self.pending_n)
            samples = samples[: max(0, room)]
        if len(samples):
            self.pending.append(samples)
            self.pending_n += len(samples)
            if len(self.buf) + self.pending_n >= self.win + 100 * self.hop:
                self.merge()

    def _pad(self, n: int) -> None:
        piece = int(self.PAD_PIECE_S * self.sr)
        while n > 0:  # in pieces: a track starting late must not allocate it all at once
            self.add(np.zeros(min(n, piece), dtype=np.float32), None)
            n -= piece

    def merge(self) -> None:
        """Move pending samples into the buffer and analyse them (about once per second of audio)."""
        if self.pending:
            self.buf = np.concatenate([self.buf, *self.pending]) if len(self.buf) else np.concatenate(self.pending)
            self.pending.clear()
            self.pending_n = 0
        self._compute()
        self._emit(self.limit)

    def _compute(self, final: bool = False) -> None:
        """Turn buffered samples into mel columns (in batches of >= 1 s unless ``final``)."""
        if len(self.buf) < self.win:
            return
        nf = 1 + (len(self.buf) - self.win) // self.hop
        if nf < 100 and not final:
            return
        m = self.mel.frames(self.buf[: (nf - 1) * self.hop + self.win])
        self.cols.append(m)
        self.n_kept += m.shape[1]
        self.buf = self.buf[nf * self.hop :]
        self.next_j += nf

    def _emit(self, limit_k: int | None) -> None:
        """Cut every step window whose columns are all computed; drop what no step needs."""
        while limit_k is None or self.next_k < limit_k:
            j = self.frame_of(self.next_k)
            if j + self.n_cols > self.next_j:
                break
            if len(self.cols) > 1:
                self.cols[:] = [np.concatenate(self.cols, axis=1)]
            a = j - self.cols_start
            self.ready.append(self.cols[0][:, a : a + self.n_cols])
            self.next_k += 1
        if self.cols:
            drop = min(self.frame_of(self.next_k) - self.cols_start, self.n_kept)
            if drop > 0:
                merged = np.concatenate(self.cols, axis=1) if len(self.cols) > 1 else self.cols[0]
                self.cols[:] = [np.ascontiguousarray(merged[:, drop:])] if drop < self.n_kept else []
                self.cols_start += drop
                self.n_kept -= drop

    def finish(self, n_steps: int) -> Iterator[None]:
        """Zero-pad past the end of the audio until steps ``< n_steps`` all have windows.

        A generator: it pauses after each :attr:`PAD_PIECE_S` piece, so the
        caller can hand the windows on (a video whose sound stops early must
        not allocate its whole silent tail at once).
        """
        self.merge()
        if self.next_k >= n_steps:
            return
        needed = self.g0 + (self.frame_of(n_steps - 1) + self.n_cols - 1) * self.hop + self.win
        have = self.g0 + self.next_j * self.hop + len(self.buf)
        piece = int(self.PAD_PIECE_S * self.sr)
        while needed > have:
            n = min(needed - have, piece)
            self.buf = np.concatenate([self.buf, np.zeros(n, dtype=np.float32)])
            have += n
            self._compute(final=True)
            self._emit(n_steps)
            yield
        self._compute(final=True)
        self._emit(n_steps)


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

        p = Path(self.path)
        if not p.exists():
            raise MediaError(f"{shown(self.path)}: file not found")
        if p.is_dir():
            raise MediaError(f"{shown(self.path)}: is a directory, not a video file")
        if p.stat().st_size == 0:
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
    cutting windows) run on a :class:`Helper`, handed over a few times a
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
        self.helper = Helper(f"sampler:{shown(os.path.basename(clip.path))}", threaded=clip.helper_thread)
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
