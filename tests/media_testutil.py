"""Tiny real videos with known timestamps, frame contents and sounds (written with PyAV).

The media tests need more control than the demo generator gives: each frame's
grey level encodes its index (so a test can tell *which* frame a step took),
frame times can be arbitrary (variable frame rate), and the sound can be a
tone that starts at a known second (to check audio/visual alignment).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def grey_of(index: int) -> int:
    """Grey level of frame ``index`` (distinct after lossy coding: steps of 10; cycles every 24)."""
    return 10 + 10 * (index % 24)


def index_of(frame_uint8) -> int:
    """Inverse of :func:`grey_of` from a decoded (and resized) frame."""
    return int(round((float(frame_uint8.float().mean()) - 10) / 10))


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
    import av

    path = Path(path)
    w, h = size
    out = av.open(str(path), mode="w")
    if frame_times is None:
        rate = Fraction(fps).limit_denominator(1001)
        n = int(round(duration * float(rate)))
        frame_times = [i / float(rate) for i in range(n)]
        vs = out.add_stream("libx264", rate=rate)
        tb = 1 / rate
        pts = list(range(n))
    else:
        vs = out.add_stream("libx264", rate=25)
        tb = Fraction(1, 1000)
        pts = [int(round(t * 1000)) for t in frame_times]
    if start:  # shift every timestamp (a millisecond time base keeps it exact)
        tb = Fraction(1, 1000)
        pts = [int(round((t + start) * 1000)) for t in frame_times]
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    vs.codec_context.time_base = tb
    vs.options = {"preset": "ultrafast", "crf": "10", "bf": "0"}
    a_s = None
    if audio:
        a_s = out.add_stream("aac", rate=audio_rate)
        a_s.layout = "stereo" if channels == 2 else "mono"
    events: list[tuple[float, str, int]] = [(t, "v", i) for i, t in enumerate(frame_times)]
    if a_s is not None:
        hop = 1024
        total = int(duration * audio_rate)
        events += [(s / audio_rate, "a", s) for s in range(0, total, hop)]
    events.sort(key=lambda e: (e[0], e[1] == "a"))
    for _t, kind, idx in events:
        if kind == "v":
            img = np.full((h, w, 3), grey_of(idx), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = pts[idx]
            frame.time_base = tb
            packets = vs.encode(frame)
        else:
            n = 1024
            tt = (idx + np.arange(n)) / audio_rate
            sig = np.zeros(n, dtype=np.float32)
            if tone_hz:
                on = tt >= tone_start
                sig[on] = 0.5 * np.sin(2 * np.pi * tone_hz * tt[on])
            arr = np.repeat(sig[None, :], channels, axis=0).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(arr, format="fltp", layout=a_s.layout.name)
            frame.sample_rate = audio_rate
            frame.pts = idx + int(round(start * audio_rate))
            frame.time_base = Fraction(1, audio_rate)
            packets = a_s.encode(frame)
        for p in packets:
            out.mux(p)
    for s in (vs, a_s):
        if s is not None:
            for p in s.encode():
                out.mux(p)
    out.close()
    return path


def write_audio_only(path: str | Path, duration: float = 1.0) -> Path:
    """An M4A with one AAC stream and no picture."""
    import av

    out = av.open(str(path), mode="w", format="mp4")
    a_s = out.add_stream("aac", rate=16000)
    a_s.layout = "mono"
    for i in range(int(duration * 16000) // 1024):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        frame.pts = i * 1024
        for p in a_s.encode(frame):
            out.mux(p)
    for p in a_s.encode():
        out.mux(p)
    out.close()
    return Path(path)
