"""Tiny real videos with known timestamps, frame contents and sounds, and a reader to check them.

The media tests need more control than the demo generator gives: each frame's
grey level encodes its index (so a test can tell *which* frame a step took),
frame times can be arbitrary (variable frame rate), and the sound can be a
tone that starts at a known second (to check audio/visual alignment). Files
are written with the library's one PyAV writer (:mod:`fiftyone_genre.demo.mediawriter`).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from fiftyone_genre.demo.mediawriter import AudioTrack, VideoTrack, cfr_times, write_media


def grey_of(index: int) -> int:
    """Grey level of frame ``index`` (distinct after lossy coding: steps of 10; cycles every 24)."""
    return 10 + 10 * (index % 24)


def index_of(frame_uint8) -> int:
    """Inverse of :func:`grey_of` from a decoded (and resized) frame."""
    return int(round((float(frame_uint8.float().mean()) - 10) / 10))


def _tone(tone_hz: float | None, tone_start: float, rate: int, channels: int):
    """Silence, then a sine of ``tone_hz`` from ``tone_start`` seconds on."""

    def signal(start: int, n: int) -> np.ndarray:
        tt = (start + np.arange(n)) / rate
        sig = np.zeros(n, dtype=np.float32)
        if tone_hz:
            on = tt >= tone_start
            sig[on] = 0.5 * np.sin(2 * np.pi * tone_hz * tt[on])
        return np.repeat(sig[None, :], channels, axis=0)

    return signal


def write_video(
    path: str | Path,
    duration: float = 2.0,
    fps: float | Fraction = 25,
    size: tuple[int, int] = (64, 48),
    frame_times: list[float] | None = None,
    audio: bool = True,
    tone_hz: float | None = None,
    tone_start: float = 0.0,
    audio_rate: int = 44100,
    channels: int = 2,
    start: float = 0.0,
) -> Path:
    """An H.264/AAC MP4. ``frame_times`` (seconds) makes it variable frame rate.

    Frame ``i`` is a flat grey of :func:`grey_of(i)`. The audio (stereo 44.1
    kHz by default, so decoding must resample) is silence, then a sine of
    ``tone_hz`` from ``tone_start`` on. Audio and video packets are muxed in
    time order, as real files are. ``start`` (seconds) shifts every timestamp,
    so MPEG-TS segments written with increasing starts can be concatenated.
    """
    w, h = size
    vfr = frame_times is not None
    times = list(frame_times) if vfr else cfr_times(duration, fps)
    video = VideoTrack(
        frames=(np.full((h, w, 3), grey_of(i), dtype=np.uint8) for i in range(len(times))),
        times=[t + start for t in times],
        size=size,
        rate=25 if vfr else fps,
        options={"preset": "ultrafast", "crf": "10", "bf": "0"},
        time_base=Fraction(1, 1000) if vfr or start else None,
    )
    sound = None
    if audio:
        signal = _tone(tone_hz, tone_start, audio_rate, channels)
        sound = AudioTrack(signal, int(duration * audio_rate), audio_rate, channels, start=start)
    return write_media(path, video, sound)


def write_audio_only(path: str | Path, duration: float = 1.0) -> Path:
    """An M4A with one AAC stream (mono 16 kHz silence) and no picture."""
    n = int(duration * 16000) // 1024 * 1024
    return write_media(path, audio=AudioTrack(lambda s, k: np.zeros((1, k), np.float32), n, 16000), format="mp4")


def streams(path: Path) -> dict:
    """What a file holds: video (codec, w, h), frame times and mean RGB; audio (codec, rate) and samples."""
    import av

    with av.open(str(path)) as c:
        out = {"video": None, "audio": None, "times": []}
        if c.streams.video:
            v = c.streams.video[0]
            out["video"] = (v.codec_context.name, v.width, v.height)
            frames = list(c.decode(v))
            out["times"] = [f.time for f in frames]
            out["mean_rgb"] = np.mean([f.to_ndarray(format="rgb24").mean((0, 1)) for f in frames], 0)
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            out["audio"] = (a.codec_context.name, a.rate)
            out["samples"] = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(a)])
    return out
