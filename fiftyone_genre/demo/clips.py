"""Generated clips whose genre shows in *both* the picture and the sound.

Cross-modal design (why a single modality cannot win): each genre is a pair
``(visual cue, audio cue)`` from :data:`GENRE_CUES`. Every visual cue is shared
by exactly two genres and so is every audio cue, arranged in a cycle::

    Action (0,0)  Animation (0,1)  Horror (1,1)
    Romance (1,2) Sports (2,2)     Science Fiction (2,0)

The picture alone narrows a clip to two genres (at best 50 % accuracy), the
sound alone as well; only both together identify it.

* Visual cue = the dominant background hue family (red / green / blue). It is
  the frame's *mean colour*, so it survives a randomly initialised CNN with
  global pooling. Nuisance that carries no genre: moving shapes of random
  colour, size and speed, brightness jitter and sensor noise.
* Audio cue = a tone band (~300 / ~1000 / ~3000 Hz, jittered a few percent)
  with a cue-specific harmonic stack and amplitude-modulation rate, so the cue
  is visible both as a position and as a texture in a mel spectrogram (a
  global-pooled audio CNN is nearly blind to position alone), plus noise.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.demo.mediawriter import (
    AudioTrack,
    VideoTrack,
    cfr_times,
    frames_of,
    write_media,
)

#: genre -> (visual cue, audio cue); each cue value is shared by exactly two genres.
GENRE_CUES: dict[str, tuple[int, int]] = {
    g.ACTION: (0, 0),
    g.ANIMATION: (0, 1),
    g.HORROR: (1, 1),
    g.ROMANCE: (1, 2),
    g.SPORTS: (2, 2),
    g.SCIENCE_FICTION: (2, 0),
}


#: visual cue -> centre hue in degrees (red, green, blue families).
VISUAL_HUES: tuple[float, ...] = (0.0, 120.0, 240.0)
VISUAL_CUE_NAMES: tuple[str, ...] = ("red", "green", "blue")
#: audio cue -> (fundamental Hz, number of harmonics, amplitude-modulation Hz).
AUDIO_BANDS: tuple[tuple[float, int, float], ...] = (
    (300.0, 4, 2.0),
    (1000.0, 2, 5.0),
    (3000.0, 1, 11.0),
)


AUDIO_CUE_NAMES: tuple[str, ...] = ("low", "mid", "high")
DEFAULT_SAMPLE_RATE = 16000
#: container -> (PyAV format name, video codec, default audio codec, pixel format)
CONTAINERS: dict[str, tuple[str, str, str, str]] = {
    "mp4": ("mp4", "libx264", "aac", "yuv420p"),
    "avi": ("avi", "mpeg4", "pcm_s16le", "yuv420p"),
    "mkv": ("matroska", "libx264", "aac", "yuv420p"),
}


def cues_for(genre: str) -> tuple[int, int]:
    """The (visual, audio) cue pair of a genre; a clear error for unknown names."""
    try:
        return GENRE_CUES[genre]
    except KeyError:
        raise ValueError(
            f"unknown genre {genre!r}; synthetic cues exist for {', '.join(GENRE_CUES)}"
        ) from None


def genre_rng(seed: int, genre: str, salt: str = "") -> np.random.Generator:
    # A stable per-(seed, genre) stream: Python's hash() is salted per process.
    key = [seed & 0xFFFFFFFF, *(ord(c) for c in genre + "|" + salt)]
    return np.random.default_rng(key)


def _background_rgb(visual_cue: int, rng: np.random.Generator) -> np.ndarray:
    hue = (VISUAL_HUES[visual_cue] + rng.uniform(-15, 15)) % 360
    sat = rng.uniform(0.55, 0.9)
    val = rng.uniform(0.55, 0.9)
    return np.array(colorsys.hsv_to_rgb(hue / 360.0, sat, val), dtype=np.float32) * 255.0


class _Scene:
    """Background of the cue's hue + moving nuisance shapes, rendered per frame."""

    def __init__(self, visual_cue: int, size: tuple[int, int], rng: np.random.Generator):
        self.w, self.h = size
        self.rng = rng
        self.bg = _background_rgb(visual_cue, rng)
        # a mild gradient so the frame is not one flat colour
        gy = np.linspace(-1.0, 1.0, self.h, dtype=np.float32)[:, None, None]
        self.gradient = gy * rng.uniform(-20, 20)
        self.brightness = rng.uniform(0.85, 1.15)
        self.shapes = []
        for _ in range(int(rng.integers(1, 4))):
            sw = int(self.w * rng.uniform(0.08, 0.25))
            sh = int(self.h * rng.uniform(0.08, 0.25))
            self.shapes.append(
                {
                    "size": (max(2, sw), max(2, sh)),
                    "pos": np.array([rng.uniform(0, self.w - sw), rng.uniform(0, self.h - sh)]),
                    "vel": rng.uniform(-3, 3, size=2) * max(1.0, self.w / 128),
                    "color": rng.uniform(0, 255, size=3).astype(np.float32),
                    "round": bool(rng.integers(0, 2)),
                }
            )
        yy, xx = np.mgrid[0 : self.h, 0 : self.w]
        self._yy, self._xx = yy, xx

    def frame(self, t: float) -> np.ndarray:
        img = np.empty((self.h, self.w, 3), dtype=np.float32)
        img[:] = self.bg
        img += self.gradient
        for s in self.shapes:
            sw, sh = s["size"]
            x0, y0 = s["pos"] + s["vel"] * t * 25.0
            # bounce inside the frame
            x0 = _bounce(x0, self.w - sw)
            y0 = _bounce(y0, self.h - sh)
            xi, yi = int(x0), int(y0)
            if s["round"]:
                cx, cy = x0 + sw / 2, y0 + sh / 2
                mask = ((self._xx - cx) / (sw / 2)) ** 2 + ((self._yy - cy) / (sh / 2)) ** 2 <= 1
                img[mask] = s["color"]
            else:
                img[yi : yi + sh, xi : xi + sw] = s["color"]
        flicker = self.brightness * (1.0 + 0.04 * np.sin(2 * np.pi * 0.7 * t))
        img *= flicker
        img += self.rng.normal(0.0, 6.0, size=img.shape).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)


def _bounce(x: float, span: float) -> float:
    if span <= 0:
        return 0.0
    period = 2 * span
    x = x % period
    return x if x <= span else period - x


def make_audio(
    audio_cue: int,
    duration: float,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Mono float32 samples in [-1, 1] carrying the audio cue (see module docstring)."""
    rng = rng or np.random.default_rng(0)
    f0, harmonics, am = AUDIO_BANDS[audio_cue]
    f0 *= rng.uniform(0.96, 1.04)
    am *= rng.uniform(0.9, 1.1)
    n = max(1, int(round(duration * sample_rate)))
    t = np.arange(n, dtype=np.float64) / sample_rate
    tone = np.zeros(n)
    for k in range(1, harmonics + 1):
        if f0 * k < sample_rate / 2 * 0.95:
            tone += np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k
    tone /= np.max(np.abs(tone)) + 1e-9
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * am * t + rng.uniform(0, 2 * np.pi))
    gain = rng.uniform(0.3, 0.6)
    noise = rng.normal(0.0, rng.uniform(0.02, 0.06), size=n)
    return np.clip(gain * envelope * tone + noise, -1.0, 1.0).astype(np.float32)


def _frame_times(duration: float, fps: float, vfr: bool, rng: np.random.Generator) -> list[float]:
    """Presentation times (s); VFR clips get irregular gaps between 0.3x and 2x the period."""
    if not vfr:
        return cfr_times(duration, fps)
    period = 1.0 / fps
    times, t = [], 0.0
    while t < duration - 1e-9:
        times.append(t)
        t += period * float(rng.choice([0.3, 0.5, 1.0, 1.0, 1.5, 2.0]))
    return times


def _check_clip_args(path, container: str, audio: bool, video: bool, vfr: bool, size) -> tuple[int, int]:
    """Refuse impossible combinations up front with a sentence naming the file."""
    if container not in CONTAINERS:
        raise ValueError(f"unknown container {container!r}; choose one of {', '.join(CONTAINERS)}")
    if not (audio or video):
        raise ValueError(f"{path}: a clip needs a video or an audio stream")
    if vfr and container == "avi":
        raise ValueError(f"{path}: AVI cannot hold variable frame rate; use container='mp4'")
    width, height = int(size[0]), int(size[1])
    if video and (width % 2 or height % 2 or width < 16 or height < 16):
        raise ValueError(f"{path}: size must be even and at least 16x16, got {width}x{height}")
    return width, height


def _picture(visual_cue: int, size: tuple[int, int], duration: float, fps: float, vfr: bool,
             codec: str, pix_fmt: str, rng: np.random.Generator) -> VideoTrack:  # fmt: skip
    """The visual cue as a lazily rendered track (libx264 fast and small; MPEG-4 Part 2 by bit rate)."""
    scene = _Scene(visual_cue, size, rng)
    times = _frame_times(duration, fps, vfr, rng)
    return VideoTrack(
        frames=frames_of(scene.frame, times),
        times=times,
        size=size,
        rate=fps,
        codec=codec,
        pix_fmt=pix_fmt,
        options={"preset": "ultrafast", "crf": "28"} if codec == "libx264" else {},
        bit_rate=None if codec == "libx264" else 400_000,
        time_base=Fraction(1, 1000) if vfr else None,
    )


def write_clip(
    path: str | Path,
    genre: str,
    duration: float = 4.0,
    fps: float = 25.0,
    size: tuple[int, int] = (128, 96),
    audio: bool = True,
    container: str = "mp4",
    seed: int = 0,
    vfr: bool = False,
    audio_codec: str | None = None,
    video: bool = True,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
) -> Path:
    """Write one real encoded clip carrying ``genre``'s visual and audio cues.

    ``container`` "mp4" -> H.264 yuv420p + AAC; "avi" -> MPEG-4 Part 2 + PCM
    s16le; "mkv" -> H.264 + AAC. ``vfr=True`` writes irregular frame
    timestamps (MP4/MKV only: AVI has no per-frame timestamps). ``video=False``
    writes an audio-only file. ``size`` is (width, height) and must be even
    for yuv420p.
    """
    size = _check_clip_args(path, container, audio, video, vfr, size)
    visual_cue, audio_cue = cues_for(genre)
    fmt, vcodec, default_acodec, pix_fmt = CONTAINERS[container]
    picture = None
    if video:
        picture = _picture(visual_cue, size, duration, fps, vfr, vcodec, pix_fmt, genre_rng(seed, genre))
    sound = None
    if audio:  # its own random stream: the same sound with or without a picture
        samples = make_audio(audio_cue, duration, sample_rate, genre_rng(seed, genre, "audio"))
        sound = AudioTrack.from_array(samples, sample_rate, codec=audio_codec or default_acodec)
    return write_media(path, picture, sound, format=fmt)


def write_mixed_clip(
    path: str | Path,
    genres: Sequence[str],
    segment_s: float = 10.0,
    fps: float = 25.0,
    size: tuple[int, int] = (128, 96),
    seed: int = 0,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
) -> Path:
    """An H.264/AAC MP4 whose genre changes: ``genres[i]``'s cues from ``i * segment_s`` seconds.

    Each segment is a clip of its genre as :func:`write_clip` draws it (its
    own scene and soundtrack), cut together: the picture's hue family and the
    tone band change at the same frame, so the true genre at any time is
    known exactly (what a genre timeline should find).
    """
    if not genres or segment_s <= 0:
        raise ValueError(f"{path}: a mixed clip needs at least one genre and segments longer than 0 s")
    size = _check_clip_args(path, "mp4", True, True, False, size)
    scenes = [_Scene(cues_for(genre)[0], size, genre_rng(seed, genre, f"mixed{i}")) for i, genre in enumerate(genres)]
    times = cfr_times(segment_s * len(genres), fps)

    def render(t: float) -> np.ndarray:
        i = min(int(t // segment_s), len(scenes) - 1)
        return scenes[i].frame(t - i * segment_s)

    picture = VideoTrack(
        frames=frames_of(render, times), times=times, size=size, rate=fps,
        codec="libx264", options={"preset": "ultrafast", "crf": "28"},
    )  # fmt: skip
    parts = [
        make_audio(cues_for(genre)[1], segment_s, sample_rate, genre_rng(seed, genre, f"mixed{i}-audio"))
        for i, genre in enumerate(genres)
    ]
    sound = AudioTrack.from_array(np.concatenate(parts), sample_rate, codec="aac")
    return write_media(path, picture, sound, format="mp4")


__all__ = [
    "AUDIO_BANDS",
    "GENRE_CUES",
    "VISUAL_HUES",
    "cues_for",
    "make_audio",
    "write_clip",
    "write_mixed_clip",
]
