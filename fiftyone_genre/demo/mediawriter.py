"""One PyAV writer for every generated clip: the demo generator, the tests and the benchmarks.

Tests and benchmarks need files that behave like real ones: packets muxed in
time order, variable frame rates, audio at an odd rate or channel count, an
encoder's fixed audio frame size (AAC: 1024 samples). Writing them through one
function keeps those details in one place; callers only say *what* is in the
picture and the sound.

A track is lazy: frames come from an iterable and audio from a function of the
sample position, so a ten-minute benchmark clip never sits in memory. The file
is written to ``<stem>.part<suffix>`` and renamed when complete, so an
interrupted run never leaves a half-written clip under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

#: ``signal(start, n) -> float32 (channels, n)`` in [-1, 1]: the sound from sample ``start`` on.
Signal = Callable[[int, int], np.ndarray]

#: file suffix -> PyAV format name, for names PyAV cannot guess from (and the .part name).
FORMATS: dict[str, str] = {".mp4": "mp4", ".m4a": "mp4", ".mov": "mov", ".avi": "avi", ".mkv": "matroska", ".ts": "mpegts"}


@dataclass
class VideoTrack:
    """RGB frames (``uint8`` H x W x 3) shown at ``times`` (seconds)."""

    frames: Iterable[np.ndarray]
    times: Sequence[float]
    size: tuple[int, int]  # (width, height)
    rate: float = 25.0  # nominal frame rate (the stream's declared rate)
    codec: str = "libx264"
    options: dict[str, str] = field(default_factory=lambda: {"preset": "ultrafast", "crf": "28"})
    bit_rate: int | None = None
    pix_fmt: str = "yuv420p"
    #: None: 1/rate and frame i at pts i (constant rate); a finer base (1/1000) for irregular times
    time_base: Fraction | None = None

    def stream_rate(self) -> Fraction:
        return Fraction(self.rate).limit_denominator(1001)

    def base(self) -> Fraction:
        return self.time_base or 1 / self.stream_rate()


@dataclass
class AudioTrack:
    """``num_samples`` samples per channel from ``signal``, starting at ``start`` seconds."""

    signal: Signal
    num_samples: int
    rate: int = 16000
    channels: int = 1
    codec: str = "aac"
    start: float = 0.0

    @classmethod
    def from_array(cls, samples: np.ndarray, rate: int, codec: str = "aac") -> AudioTrack:
        """A track from samples in memory: mono ``(n,)`` or ``(channels, n)``."""
        data = np.atleast_2d(np.asarray(samples, dtype=np.float32))
        return cls(lambda s, n: data[:, s : s + n], data.shape[1], rate, data.shape[0], codec)

    @property
    def layout(self) -> str:
        return "mono" if self.channels == 1 else "stereo"


def cfr_times(duration: float, fps: float) -> list[float]:
    """Presentation times of a constant-rate clip: ``round(duration * fps)`` frames (at least 1)."""
    rate = Fraction(fps).limit_denominator(1001)
    n = max(1, int(round(duration * float(rate))))
    return [float(i / rate) for i in range(n)]


def write_media(
    path: str | Path,
    video: VideoTrack | None = None,
    audio: AudioTrack | None = None,
    format: str | None = None,
) -> Path:
    """Encode the tracks into ``path`` (format from the suffix unless given), packets in time order."""
    import av

    if video is None and audio is None:
        raise ValueError(f"{path}: a clip needs a video or an audio stream")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.part{path.suffix}")
    out = av.open(str(tmp), mode="w", format=format or FORMATS.get(path.suffix.lower()))
    try:
        _mux(out, video, audio)
    except BaseException:
        out.close()
        tmp.unlink(missing_ok=True)
        raise
    out.close()
    os.replace(tmp, path)
    return path


def _mux(out, video: VideoTrack | None, audio: AudioTrack | None) -> None:
    """Encode both tracks in presentation order, then flush the encoders."""
    vstream = _add_video(out, video) if video is not None else None
    astream = _add_audio(out, audio) if audio is not None else None
    frames = iter(video.frames) if video is not None else iter(())
    for _t, kind, index in _events(video, audio, _block_size(astream)):
        if kind == 0:
            packets = vstream.encode(_video_frame(video, next(frames), index))
        else:
            packets = astream.encode(_audio_frame(audio, astream, index))
        for packet in packets:
            out.mux(packet)
    for stream in (vstream, astream):
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)


def _events(video: VideoTrack | None, audio: AudioTrack | None, block: int) -> list[tuple[float, int, int]]:
    """(time, 0 = video / 1 = audio, frame index or first sample), sorted by time, video first on ties."""
    events: list[tuple[float, int, int]] = []
    if video is not None:
        events += [(float(t), 0, i) for i, t in enumerate(video.times)]
    if audio is not None:
        events += [(audio.start + s / audio.rate, 1, s) for s in range(0, audio.num_samples, block)]
    events.sort()
    return events


def _add_video(out, video: VideoTrack):
    stream = out.add_stream(video.codec, rate=video.stream_rate())
    stream.width, stream.height = int(video.size[0]), int(video.size[1])
    stream.pix_fmt = video.pix_fmt
    stream.codec_context.time_base = video.base()
    if video.time_base is not None:
        stream.time_base = video.time_base
    if video.options:
        stream.options = dict(video.options)
    if video.bit_rate:
        stream.codec_context.bit_rate = video.bit_rate
    return stream


def _video_frame(video: VideoTrack, image: np.ndarray, index: int):
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    base = video.base()
    frame.pts = int(round(video.times[index] / base))
    frame.time_base = base
    return frame


def _add_audio(out, audio: AudioTrack):
    stream = out.add_stream(audio.codec, rate=audio.rate)
    stream.layout = audio.layout
    return stream


def _block_size(astream) -> int:
    """Samples per encoded audio frame: the encoder's fixed size (AAC 1024, MP3 1152) or 1024."""
    if astream is None:
        return 1024
    return astream.codec_context.frame_size or 1024


_SAMPLE_TYPES: dict[str, tuple[type, float | None]] = {
    "s16": (np.int16, 32767.0),
    "s32": (np.int32, 2147483647.0),
    "flt": (np.float32, None),
    "dbl": (np.float64, None),
}


def _audio_frame(audio: AudioTrack, astream, start: int):
    """One encoder frame from sample ``start``: padded to the fixed size, in the encoder's format."""
    import av

    ctx = astream.codec_context
    fmt = ctx.format.name if ctx.format is not None else "s16"
    n = min(_block_size(astream), audio.num_samples - start)
    block = np.asarray(audio.signal(start, n), dtype=np.float32).reshape(audio.channels, -1)
    if ctx.frame_size and block.shape[1] < ctx.frame_size:
        block = np.pad(block, ((0, 0), (0, ctx.frame_size - block.shape[1])))
    dtype, scale = _SAMPLE_TYPES[fmt.rstrip("p")]
    arr = (block * scale if scale else block).astype(dtype)
    if not fmt.endswith("p"):  # packed: one row, channels interleaved
        arr = arr.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout=audio.layout)
    frame.sample_rate = audio.rate
    frame.pts = start + int(round(audio.start * audio.rate))
    frame.time_base = Fraction(1, audio.rate)
    return frame


def frames_of(render: Callable[[float], np.ndarray], times: Sequence[float]) -> Iterator[np.ndarray]:
    """Lazily render one frame per presentation time."""
    return (render(t) for t in times)
