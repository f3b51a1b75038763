"""The soundtrack as log-mel windows aligned with the sampled frames.

Audio is decoded in the same pass as the video, resampled to mono
(:class:`AudioFeed`) and analysed once on a fixed grid (:class:`MelGrid`):
step ``k``'s window (``audio_window_s`` wide, centred on ``t_k``) is cut from
one continuous log-mel sequence (:class:`MelWindows`), so visual step ``t``
and audio step ``t`` describe the same moment and memory does not grow with
the length of the video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np
import torch

from fiftyone_genre.features.sampling import MAX_GAP_S

#: Mel analysis: 25 ms windows every 10 ms (the usual speech/music front end).
MEL_WIN_S = 0.025
MEL_HOP_S = 0.010
#: log(mel + eps); the affine below maps typical log-mel values to roughly
#: zero mean / unit scale so even a randomly initialised audio CNN sees a
#: well-conditioned input (silence -> about -1.8, loud tones -> about +2).
LOG_MEL_EPS = 1e-6
LOG_MEL_OFFSET = 4.0
LOG_MEL_SCALE = 5.5


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
    busy machine slows such small ops by an order of magnitude or more.
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
