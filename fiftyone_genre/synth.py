"""Synthetic demo/test media whose genre shows in *both* the picture and the sound.

Real encoded videos (H.264/AAC in MP4, MPEG-4 Part 2/PCM in AVI) written with
PyAV, laid out like the public datasets (UCF101, HMDB51, Hollywood2,
YouTube-8M, a folder tree) so the importers, the feature extractor and the
model are exercised on the same kind of files a user has.

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
import csv
import json
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g

# --------------------------------------------------------------------------
# the cue table
# --------------------------------------------------------------------------

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


def _rng(seed: int, genre: str, salt: str = "") -> np.random.Generator:
    # A stable per-(seed, genre) stream: Python's hash() is salted per process.
    key = [seed & 0xFFFFFFFF, *(ord(c) for c in genre + "|" + salt)]
    return np.random.default_rng(key)


# --------------------------------------------------------------------------
# picture and sound
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------


def _frame_times(duration: float, fps: float, vfr: bool, rng: np.random.Generator) -> list[float]:
    """Presentation times (s); VFR clips get irregular gaps between 0.3x and 2x the period."""
    period = 1.0 / fps
    if not vfr:
        n = max(1, int(round(duration * fps)))
        return [i * period for i in range(n)]
    times, t = [], 0.0
    while t < duration - 1e-9:
        times.append(t)
        t += period * float(rng.choice([0.3, 0.5, 1.0, 1.0, 1.5, 2.0]))
    return times


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
    writes an audio-only file (for the bad-input corpus). ``size`` is
    (width, height) and must be even for yuv420p.
    """
    import av

    if container not in CONTAINERS:
        raise ValueError(f"unknown container {container!r}; choose one of {', '.join(CONTAINERS)}")
    if not (audio or video):
        raise ValueError(f"{path}: a clip needs a video or an audio stream")
    if vfr and container == "avi":
        raise ValueError(f"{path}: AVI cannot hold variable frame rate; use container='mp4'")
    width, height = int(size[0]), int(size[1])
    if video and (width % 2 or height % 2 or width < 16 or height < 16):
        raise ValueError(f"{path}: size must be even and at least 16x16, got {width}x{height}")
    visual_cue, audio_cue = cues_for(genre)
    fmt, vcodec, default_acodec, pix_fmt = CONTAINERS[container]
    acodec = audio_codec or default_acodec
    rng = _rng(seed, genre)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    out = av.open(str(tmp), mode="w", format=fmt)
    try:
        vstream = astream = None
        if video:
            rate = Fraction(fps).limit_denominator(1001)
            vstream = out.add_stream(vcodec, rate=rate)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
            if vfr:
                vstream.codec_context.time_base = Fraction(1, 1000)
                vstream.time_base = Fraction(1, 1000)
            if vcodec == "libx264":
                vstream.options = {"preset": "ultrafast", "crf": "28"}
            else:
                vstream.codec_context.bit_rate = 400_000
        if audio:
            astream = out.add_stream(acodec, rate=sample_rate)
            astream.layout = "mono"

        if vstream is not None:
            scene = _Scene(visual_cue, (width, height), rng)
            for i, t in enumerate(_frame_times(duration, fps, vfr, rng)):
                frame = av.VideoFrame.from_ndarray(scene.frame(t), format="rgb24")
                if vfr:
                    frame.pts = int(round(t * 1000))
                    frame.time_base = Fraction(1, 1000)
                else:
                    frame.pts = i
                for packet in vstream.encode(frame):
                    out.mux(packet)
            for packet in vstream.encode():
                out.mux(packet)

        if astream is not None:
            samples = make_audio(audio_cue, duration, sample_rate, rng)
            _encode_audio(out, astream, samples, sample_rate)
    except BaseException:
        out.close()
        tmp.unlink(missing_ok=True)
        raise
    out.close()
    os.replace(tmp, path)
    return path


def _encode_audio(out, astream, samples: np.ndarray, sample_rate: int) -> None:
    """Feed the encoder whole frames of its required size (AAC: 1024 samples)."""
    import av

    ctx = astream.codec_context
    fmt = ctx.format.name if ctx.format is not None else "s16"
    chunk = ctx.frame_size or 1024
    for start in range(0, len(samples), chunk):
        part = samples[start : start + chunk]
        if ctx.frame_size and len(part) < chunk:
            part = np.pad(part, (0, chunk - len(part)))
        if fmt.startswith("s16"):
            arr = (part * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            arr = (part * 2147483647).astype(np.int32)
        else:
            arr = part.astype(np.float32)
        # mono: planar and packed layouts are both one row of samples
        frame = av.AudioFrame.from_ndarray(arr[None, :], format=fmt, layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        for packet in astream.encode(frame):
            out.mux(packet)
    for packet in astream.encode():
        out.mux(packet)


# --------------------------------------------------------------------------
# dataset layouts
# --------------------------------------------------------------------------

LAYOUTS: tuple[str, ...] = ("folder", "ucf101", "hmdb51", "hollywood2", "yt8m")

#: Default source classes per layout -> the genre whose cues their clips carry.
DEFAULT_CLASSES: dict[str, dict[str, str]] = {
    "folder": {name: name for name in g.GENRES},
    "ucf101": {
        "Punch": g.ACTION,
        "PlayingGuitar": g.ANIMATION,
        "Knitting": g.HORROR,
        "IceDancing": g.ROMANCE,
        "HandstandPushups": g.SPORTS,  # the v_HandStandPushups_ file-name quirk
        "SkyDiving": g.SCIENCE_FICTION,
    },
    "hmdb51": {
        "punch": g.ACTION,
        "cartwheel": g.ANIMATION,
        "fall_floor": g.HORROR,
        "kiss": g.ROMANCE,
        "kick_ball": g.SPORTS,
        "draw_sword": g.SCIENCE_FICTION,
    },
    "hollywood2": {
        "FightPerson": g.ACTION,
        "Eat": g.ANIMATION,
        "GetOutCar": g.HORROR,
        "Kiss": g.ROMANCE,
        "Run": g.SPORTS,
        "DriveCar": g.SCIENCE_FICTION,
    },
    "yt8m": {
        "Explosion": g.ACTION,
        "Cartoon": g.ANIMATION,
        "Horror film": g.HORROR,
        "Wedding": g.ROMANCE,
        "Football": g.SPORTS,
        "Spacecraft": g.SCIENCE_FICTION,
    },
}

#: UCF101 official folds: test groups per fold (the rest of g01-g25 is train).
UCF101_TEST_GROUPS: dict[int, range] = {1: range(1, 8), 2: range(8, 15), 3: range(15, 22)}
#: Group numbers handed out in this order so small trees still have train and test clips.
_UCF_GROUP_ORDER = (1, 22, 8, 15, 2, 23, 9, 16, 3, 24, 10, 17, 4, 25, 11, 18, 5, 12, 19, 6, 13, 20)
#: HMDB51 tag per group index and fold: 1 = train, 2 = test, 0 = unused.
_HMDB_TAG_CYCLE = (1, 2, 1, 0)

#: Vertical1..3 written to the synthetic YT8M vocabulary.csv (as in the real one);
#: other classes get ("Arts & Entertainment", "", ""). Football relies on the
#: shipped mapping's ``vertical: Sports`` rule, so remap needs the verticals.
YT8M_VERTICALS: dict[str, tuple[str, str, str]] = {
    "Football": ("Sports", "", ""),
    "Vehicle": ("Autos & Vehicles", "", ""),
}

YT8M_RGB_DIM = 1024
YT8M_AUDIO_DIM = 128


@dataclass
class ClipRecord:
    """One clip the generator wrote (or meant to pair): what an importer must find."""

    path: str | None  # absolute path of the media file (None: YT8M record without media)
    genre: str  # the genre whose cues the clip carries
    labels: list[str]  # source class name(s), first = primary
    group: str  # expected `group` value, prefixed by source
    splits: dict[int, str] = field(default_factory=dict)  # fold -> official split
    video_id: str | None = None  # YT8M id
    readable: bool = True  # False for planted garbage files
    has_audio: bool = True
    autotrain: bool = False  # Hollywood2 automatic (noisy) train set

    @property
    def split(self) -> str | None:
        """The official split of fold 1 (the only fold most layouts have)."""
        return self.splits.get(1)


@dataclass
class Problem:
    """A planted defect and where a reader should report it."""

    kind: str  # "missing" | "malformed" | "unknown_class" | "unreadable" | "unpaired" | ...
    file: str  # the split/label file (or the media file for "unreadable")
    line: int | None  # 1-based line in `file`, None when not line-based
    detail: str  # the offending text or path


@dataclass
class Manifest:
    """Everything :func:`generate` wrote; tests compare importer output against it."""

    root: str
    layout: str
    classes: dict[str, str]  # source class -> genre of the cues its clips carry
    clips: list[ClipRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # layout details (media_dir, files)

    def importable(self, fold: int = 1) -> list[ClipRecord]:
        """Clips an importer should add: on disk (readable or not), listed or in the tree."""
        return [c for c in self.clips if c.path is not None]

    def by_path(self) -> dict[str, ClipRecord]:
        return {c.path: c for c in self.clips if c.path is not None}

    def problems_of(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path | None = None) -> Path:
        path = Path(path) if path else Path(self.root) / "manifest.json"
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    def __str__(self) -> str:
        n = len(self.clips)
        paired = sum(c.path is not None for c in self.clips)
        kinds: dict[str, int] = {}
        for p in self.problems:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        planted = ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())) or "none"
        return (
            f"{self.layout} tree at {self.root}: {n} clips ({paired} with media), "
            f"{len(self.classes)} classes; planted problems: {planted}"
        )


def _write_garbage(path: Path, rng: np.random.Generator, nbytes: int = 2048) -> Path:
    """A file with a video extension whose bytes are noise (no container inside)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"NOTAVIDEO" + rng.integers(0, 256, size=nbytes, dtype=np.uint8).tobytes())
    return path


def _write_lines(path: Path, lines: list[str], crlf: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nl = "\r\n" if crlf else "\n"
    path.write_bytes((nl.join(lines) + nl).encode("utf-8"))


def _resolve_classes(layout: str, classes: Any) -> dict[str, str]:
    if classes is None:
        return dict(DEFAULT_CLASSES[layout])
    if isinstance(classes, dict):
        out = dict(classes)
    else:
        names = list(classes)
        out = {name: g.GENRES[i % len(g.GENRES)] for i, name in enumerate(names)}
    for name, genre in out.items():
        cues_for(genre)
        if not name or "/" in name:
            raise ValueError(f"invalid class name {name!r}")
    return out


def generate(
    outdir: str | Path,
    layout: str = "folder",
    clips_per_class: int = 4,
    duration: float = 2.0,
    seed: int = 0,
    classes: dict[str, str] | list[str] | None = None,
    size: tuple[int, int] = (128, 96),
    fps: float = 25.0,
    container: str | None = None,
    audio: bool = True,
    missing: int = 0,
    malformed: int = 0,
    unknown_class: int = 0,
    unreadable: int = 0,
    crlf: bool = True,
    clips_per_group: int = 2,
    multilabel: float = 0.34,
    autotrain: bool = False,
    paired_fraction: float = 0.75,
    yt8m_levels: tuple[str, ...] = ("video", "frame"),
    progress=None,
) -> Manifest:
    """Write a tree of synthetic clips in ``layout`` and return its :class:`Manifest`.

    ``classes``: source class names, or a dict class -> genre whose cues the
    class's clips carry (default: :data:`DEFAULT_CLASSES`). ``missing``,
    ``malformed``, ``unknown_class`` and ``unreadable`` plant that many
    defects (split entries naming absent videos, broken lines, class indices
    or labels that do not exist, garbage media files); each is listed in
    ``Manifest.problems`` with its file and line. ``container`` defaults to
    "avi" for UCF101/HMDB51/Hollywood2 (as shipped) and "mp4" otherwise.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if clips_per_class < 1:
        raise ValueError(f"clips_per_class must be >= 1, got {clips_per_class}")
    root = Path(outdir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    class_map = _resolve_classes(layout, classes)
    if container is None:
        container = "avi" if layout in ("ucf101", "hmdb51", "hollywood2") else "mp4"
    manifest = Manifest(root=str(root), layout=layout, classes=class_map)
    rng = np.random.default_rng(seed)
    opts = {
        "duration": duration,
        "fps": fps,
        "size": size,
        "audio": audio,
        "container": container,
    }
    writer = {
        "folder": _gen_folder,
        "ucf101": _gen_ucf101,
        "hmdb51": _gen_hmdb51,
        "hollywood2": _gen_hollywood2,
        "yt8m": _gen_yt8m,
    }[layout]
    writer(
        manifest,
        root,
        class_map,
        clips_per_class,
        opts,
        rng,
        seed,
        plant={
            "missing": missing,
            "malformed": malformed,
            "unknown_class": unknown_class,
            "unreadable": unreadable,
        },
        crlf=crlf,
        clips_per_group=max(1, clips_per_group),
        multilabel=multilabel,
        autotrain=autotrain,
        paired_fraction=paired_fraction,
        yt8m_levels=yt8m_levels,
        progress=progress,
    )
    return manifest


class _ClipWriter:
    """Writes clips with a progress bar; garbage in place of the planted unreadable ones."""

    def __init__(self, opts: dict[str, Any], seed: int, total: int, progress=None, desc=""):
        from fiftyone_genre.utils import track

        self.opts = opts
        self.seed = seed
        self.count = 0
        self._bar = iter(track(range(total), total=total, desc=desc, progress=progress))

    def write(self, path: Path, genre: str, garbage: bool = False) -> None:
        self.count += 1
        next(self._bar, None)
        if garbage:
            _write_garbage(path, np.random.default_rng(self.seed + self.count))
        else:
            write_clip(path, genre, seed=self.seed * 100003 + self.count, **self.opts)

    def add(self, m: Manifest, path: Path, genre: str, garbage: bool, **record: Any) -> None:
        """Write one clip (or planted garbage) and record it, and its problem, in ``m``."""
        self.write(path, genre, garbage)
        m.clips.append(
            ClipRecord(
                path=str(path),
                genre=genre,
                readable=not garbage,
                has_audio=self.opts["audio"] and not garbage,
                **record,
            )
        )
        if garbage:
            m.problems.append(Problem("unreadable", str(path), None, "garbage bytes"))

    def close(self) -> None:
        for _ in self._bar:
            pass


def _pick(rng: np.random.Generator, n: int, k: int) -> list[int]:
    k = min(k, n)
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False)) if k else []


def _ext(opts: dict[str, Any]) -> str:
    return ".mkv" if opts["container"] == "mkv" else f".{opts['container']}"


def _gen_folder(m, root, classes, n, opts, rng, seed, plant, progress=None, **_):
    total = len(classes) * n
    bad = set(_pick(rng, total, plant["unreadable"]))
    w = _ClipWriter(opts, seed, total, progress, "synth folder")
    k = 0
    for label, genre in classes.items():
        for i in range(n):
            path = root / label / f"{label.replace(' ', '_').lower()}_{i:03d}{_ext(opts)}"
            rel = path.relative_to(root).with_suffix("").as_posix()
            w.add(m, path, genre, k in bad, labels=[label], group=f"folder:{root.name}/{rel}")
            k += 1
    w.close()
    m.extra["media_dir"] = str(root)


def _ucf_file_class(cls: str) -> str:
    """The class as spelled in file names (the HandstandPushups quirk)."""
    return "HandStandPushups" if cls == "HandstandPushups" else cls


def _gen_ucf101(
    m, root, classes, n, opts, rng, seed, plant, crlf=True, clips_per_group=2, progress=None, **_
):
    media = root / "UCF-101"
    lists = root / "ucfTrainTestlist"
    names = sorted(classes)
    index = {c: i + 1 for i, c in enumerate(names)}
    _write_lines(lists / "classInd.txt", [f"{index[c]} {c}" for c in names], crlf)
    total = len(names) * n
    bad = set(_pick(rng, total, plant["unreadable"]))
    w = _ClipWriter(opts, seed, total, progress, "synth ucf101")
    k = 0
    entries: list[tuple[str, int, dict[int, str]]] = []  # rel path, class index, splits
    for cls in names:
        genre = classes[cls]
        for i in range(n):
            gnum = _UCF_GROUP_ORDER[(i // clips_per_group) % len(_UCF_GROUP_ORDER)]
            cnum = (
                i % clips_per_group
                + 1
                + clips_per_group * (i // (clips_per_group * len(_UCF_GROUP_ORDER)))
            )
            fname = f"v_{_ucf_file_class(cls)}_g{gnum:02d}_c{cnum:02d}.avi"
            if opts["container"] != "avi":
                fname = fname[:-4] + _ext(opts)
            path = media / cls / fname
            splits = {f: ("test" if gnum in UCF101_TEST_GROUPS[f] else "train") for f in (1, 2, 3)}
            entries.append((f"{cls}/{fname}", index[cls], splits))
            w.add(m, path, genre, k in bad, labels=[cls], group=f"ucf101:{cls}_g{gnum:02d}", splits=splits)
            k += 1
    w.close()
    for fold in (1, 2, 3):
        train = [f"{rel} {ci}" for rel, ci, s in entries if s[fold] == "train"]
        test = [rel for rel, _, s in entries if s[fold] == "test"]
        if fold == 1:
            # plant defects in trainlist01 (the file a fold-1 import reads)
            tl = str(lists / "trainlist01.txt")
            for j in range(plant["unknown_class"]):
                if j < len(train):
                    rel = train[j].split()[0]
                    train[j] = f"{rel} {len(names) + 900 + j}"
                    m.problems.append(Problem("unknown_class", tl, j + 1, train[j]))
            for j in range(plant["missing"]):
                first = names[j % len(names)]
                rel = f"{first}/v_{_ucf_file_class(first)}_g25_c{90 + j:02d}.avi"
                train.append(f"{rel} {index[first]}")
                m.problems.append(Problem("missing", tl, len(train), rel))
            for j in range(plant["malformed"]):
                line = [
                    "this is not a split line",
                    "Punch/v_Punch_g01_c01.avi notanumber",
                    "a b c",
                ][j % 3]
                train.append(line)
                m.problems.append(Problem("malformed", tl, len(train), line))
        _write_lines(lists / f"trainlist0{fold}.txt", train, crlf)
        _write_lines(lists / f"testlist0{fold}.txt", test, crlf)
    m.extra.update(media_dir=str(media), lists_dir=str(lists))


def _gen_hmdb51(m, root, classes, n, opts, rng, seed, plant, clips_per_group=2, progress=None, **_):
    splits_dir = root / "testTrainMulti_7030_splits"
    names = sorted(classes)
    total = len(names) * n
    bad = set(_pick(rng, total, plant["unreadable"]))
    w = _ClipWriter(opts, seed, total, progress, "synth hmdb51")
    k = 0
    lines: dict[tuple[str, int], list[str]] = {}
    for ci, action in enumerate(names):
        genre = classes[action]
        for i in range(n):
            gi = i // clips_per_group
            movie = f"Synth_Movie{ci:02d}{gi:02d}"
            fname = f"{movie}_{action}_u_nm_np1_fr_med_{i % clips_per_group}{_ext(opts)}"
            path = root / action / fname
            splits = {}
            for fold in (1, 2, 3):
                tag = _HMDB_TAG_CYCLE[(gi + ci + fold - 1) % len(_HMDB_TAG_CYCLE)]
                splits[fold] = {1: "train", 2: "test", 0: "unused"}[tag]
                # the official files end their lines with a space
                lines.setdefault((action, fold), []).append(f"{fname} {tag} ")
            w.add(m, path, genre, k in bad, labels=[action], group=f"hmdb51:{movie}", splits=splits)
            k += 1
    w.close()
    first = names[0]
    f1 = lines[(first, 1)]
    sf = str(splits_dir / f"{first}_test_split1.txt")
    for j in range(plant["missing"]):
        f1.append(f"Gone_Movie{j}_{first}_u_nm_np1_fr_med_0{_ext(opts)} 1 ")
        m.problems.append(Problem("missing", sf, len(f1), f1[-1].strip()))
    for j in range(plant["malformed"]):
        line = ["just_one_token.avi", f"x_{first}_0.avi 7", "x y z"][j % 3]
        f1.append(line)
        m.problems.append(Problem("malformed", sf, len(f1), line))
    for (action, fold), body in lines.items():
        _write_lines(splits_dir / f"{action}_test_split{fold}.txt", body)
    for j in range(plant["unknown_class"]):
        # a split file for an action that has no video folder
        p = splits_dir / f"no_such_action{j}_test_split1.txt"
        _write_lines(p, [f"clip_no_such_action{j}_0.avi 1 "])
        m.problems.append(Problem("unknown_class", str(p), None, f"no_such_action{j}"))
    m.extra.update(media_dir=str(root), splits_dir=str(splits_dir))


def _gen_hollywood2(
    m,
    root,
    classes,
    n,
    opts,
    rng,
    seed,
    plant,
    multilabel=0.34,
    autotrain=False,
    progress=None,
    **_,
):
    clips_dir = root / "AVIClips"
    sets_dir = root / "ClipSets"
    names = sorted(classes)
    sets = ["train", "test"] + (["autotrain"] if autotrain else [])
    prefix = {
        "train": "actioncliptrain",
        "test": "actioncliptest",
        "autotrain": "actioncliptrain_auto",
    }
    # per set: clips_per_class clips per class (half for test), some with a second label
    plan: list[tuple[str, str, list[str]]] = []  # (set, clip name, labels)
    for s in sets:
        per = n if s != "test" else max(1, n // 2)
        num = 0
        for ci, cls in enumerate(names):
            for _i in range(per):
                num += 1
                labels = [cls]
                if len(names) > 1 and rng.random() < multilabel:
                    labels.append(
                        names[(ci + 1 + int(rng.integers(0, len(names) - 1))) % len(names)]
                    )
                plan.append((s, f"{prefix[s]}{num:05d}", labels))
    total = len(plan)
    bad = set(_pick(rng, total, plant["unreadable"]))
    w = _ClipWriter(opts, seed, total, progress, "synth hollywood2")
    for k, (s, clip, labels) in enumerate(plan):
        path = clips_dir / f"{clip}{_ext(opts)}"
        w.add(
            m, path, classes[labels[0]], k in bad, labels=labels, group=f"hollywood2:{clip}",
            splits={1: "train" if s != "test" else "test"}, autotrain=s == "autotrain",
        )  # fmt: skip
    w.close()
    for s in sets:
        in_set = [(clip, labels) for ss, clip, labels in plan if ss == s]
        _write_lines(sets_dir / f"actions_{s}.txt", [f"{c}  1" for c, _ in in_set])
        for cls in names:
            body = [f"{c}  {1 if cls in labels else -1}" for c, labels in in_set]
            if s == "train" and cls == names[0]:
                p = str(sets_dir / f"{cls}_train.txt")
                for j in range(plant["missing"]):
                    body.append(f"actioncliptrain{90000 + j:05d}  1")
                    m.problems.append(Problem("missing", p, len(body), body[-1]))
                for j in range(plant["malformed"]):
                    line = ["actioncliptrain00001", "actioncliptrain00001 maybe", "a b c"][j % 3]
                    body.append(line)
                    m.problems.append(Problem("malformed", p, len(body), line))
            _write_lines(sets_dir / f"{cls}_{s}.txt", body)
    m.extra.update(media_dir=str(clips_dir), clipsets_dir=str(sets_dir))


def _yt8m_id(rng: np.random.Generator) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size=11))


def quantize(x: np.ndarray) -> np.ndarray:
    """YT8M byte quantisation: [-2, 2] linearly onto 0..255."""
    return np.clip(np.round((np.asarray(x) + 2.0) * 255.0 / 4.0), 0, 255).astype(np.uint8)


def _gen_yt8m(
    m,
    root,
    classes,
    n,
    opts,
    rng,
    seed,
    plant,
    multilabel=0.34,
    paired_fraction=0.75,
    yt8m_levels=("video", "frame"),
    progress=None,
    **_,
):
    from tfrecord import TFRecordWriter

    media = root / "videos"
    names = list(classes)
    # vocabulary: real-looking rows, with our classes at indices 0..K-1 plus a filler class
    vocab_rows = []
    for i, name in enumerate([*names, "Vehicle"]):
        vocab_rows.append(
            [
                str(i),
                str(1000 - i),
                f"/m/0{i:04d}",
                name,
                f"https://en.wikipedia.org/wiki/{name.replace(' ', '_')}",
                *YT8M_VERTICALS.get(name, ("Arts & Entertainment", "", "")),
                f"Synthetic class {name}.",
            ]
        )
    vocab = root / "vocabulary.csv"
    with open(vocab, "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f)
        wr.writerow(
            [
                "Index",
                "TrainVideoCount",
                "KnowledgeGraphId",
                "Name",
                "WikiUrl",
                "Vertical1",
                "Vertical2",
                "Vertical3",
                "WikiDescription",
            ]
        )
        wr.writerows(vocab_rows)
        for j in range(plant["malformed"]):
            wr.writerow([f"not-an-index-{j}", "x"])
            m.problems.append(
                Problem("malformed", str(vocab), len(vocab_rows) + 2 + j, f"not-an-index-{j},x")
            )
    index = {name: i for i, name in enumerate(names)}
    records = []  # (split, id, label indices, genre, paired)
    for cls in names:
        for i in range(n):
            vid = _yt8m_id(rng)
            labels = [cls]
            if len(names) > 1 and rng.random() < multilabel:
                labels.append(names[(index[cls] + 1) % len(names)])
            split = "train" if i % 4 != 3 else "validate"
            paired = bool(rng.random() < paired_fraction) or i == 0
            records.append([split, vid, labels, classes[cls], paired])
    unknown = set(_pick(rng, len(records), plant["unknown_class"]))
    paired_idx = [k for k, r in enumerate(records) if r[4]]
    bad = {paired_idx[k] for k in _pick(rng, len(paired_idx), plant["unreadable"])}
    w = _ClipWriter(opts, seed, len(paired_idx), progress, "synth yt8m")
    writers: dict[tuple[str, str], Any] = {}
    for k, (split, vid, labels, genre, paired) in enumerate(records):
        label_ids = [index[c] for c in labels]
        if k in unknown:
            label_ids.append(99000 + k)
        path = None
        if paired:
            path = media / f"{vid}.mp4"
            w.write(path, genre, k in bad)
        vis_cue, aud_cue = cues_for(genre)
        seconds = max(1, int(round(opts["duration"])))
        rgb = rng.normal(0, 0.5, size=(seconds, YT8M_RGB_DIM)).astype(np.float32)
        rgb[:, vis_cue] += 1.0
        aud = rng.normal(0, 0.5, size=(seconds, YT8M_AUDIO_DIM)).astype(np.float32)
        aud[:, aud_cue] += 1.0
        for level in yt8m_levels:
            key = (level, split)
            if key not in writers:
                d = root / level
                d.mkdir(parents=True, exist_ok=True)
                writers[key] = TFRecordWriter(str(d / f"{split}0000.tfrecord"))
            if level == "video":
                writers[key].write(
                    {
                        "id": (vid.encode(), "byte"),
                        "labels": (label_ids, "int"),
                        "mean_rgb": (rgb.mean(0).tolist(), "float"),
                        "mean_audio": (aud.mean(0).tolist(), "float"),
                    }
                )
            else:
                writers[key].write(
                    {"id": (vid.encode(), "byte"), "labels": (label_ids, "int")},
                    {
                        "rgb": ([quantize(r).tobytes() for r in rgb], "byte"),
                        "audio": ([quantize(a).tobytes() for a in aud], "byte"),
                    },
                )
        m.clips.append(
            ClipRecord(
                path=str(path) if path else None,
                genre=genre,
                labels=labels,
                group=f"yt8m:{vid}",
                splits={1: "train" if split == "train" else "test"},
                video_id=vid,
                readable=k not in bad,
                has_audio=opts["audio"] and k not in bad,
            )
        )
        if k in unknown:
            m.problems.append(
                Problem("unknown_class", f"{split}0000.tfrecord", None, f"{vid}: label {99000 + k}")
            )
        if k in bad:
            m.problems.append(Problem("unreadable", str(path), None, "garbage bytes"))
        if not paired:
            m.problems.append(Problem("unpaired", f"{split}0000.tfrecord", None, vid))
    w.close()
    for wr_ in writers.values():
        wr_.close()
    m.extra.update(media_dir=str(media), vocabulary=str(vocab), levels=list(yt8m_levels))


# --------------------------------------------------------------------------
# bad-input corpus (issue 9)
# --------------------------------------------------------------------------


def bad_corpus(outdir: str | Path, seed: int = 0, genre: str = g.ACTION) -> dict[str, Any]:
    """Write the messy-input corpus and say what a reader should report for each file.

    Returns ``{"root", "dir", "good": [paths], "bad": {path: reason}, "odd":
    {path: note}, "split_file", "split_problems": [(line, kind, text)]}``.
    ``bad`` files cannot be used (a reader must report them); ``odd`` files
    are valid but unusual (a reader must cope, not fail). Files live in
    ``<outdir>/<genre>/`` so the folder importer can read the corpus.
    """
    root = Path(outdir).absolute()
    d = root / genre
    d.mkdir(parents=True, exist_ok=True)
    tiny = {"size": (64, 48), "fps": 10.0}
    good = [
        write_clip(d / f"good_{i}.mp4", genre, duration=1.0, seed=seed + i, **tiny)
        for i in range(2)
    ]
    bad: dict[str, str] = {}
    odd: dict[str, str] = {}

    full = write_clip(d / "full.mp4", genre, duration=1.0, seed=seed + 10, **tiny)
    data = full.read_bytes()
    trunc = d / "truncated.mp4"
    trunc.write_bytes(data[: len(data) // 3])
    full.unlink()
    bad[str(trunc)] = "truncated file: container cannot be parsed"

    zero = d / "zero_bytes.mp4"
    zero.write_bytes(b"")
    bad[str(zero)] = "zero-byte file"

    audio_only = write_clip(
        d / "audio_only.mp4", genre, duration=1.0, video=False, seed=seed + 11, **tiny
    )
    bad[str(audio_only)] = "no video stream"

    garbage = _write_garbage(d / "garbage.avi", np.random.default_rng(seed))
    bad[str(garbage)] = "not a video container"

    video_only = write_clip(
        d / "video_only.mp4", genre, duration=1.0, audio=False, seed=seed + 12, **tiny
    )
    odd[str(video_only)] = "no audio stream (audio features must be zeros, has_audio False)"
    short = write_clip(d / "half_second.mp4", genre, duration=0.5, seed=seed + 13, **tiny)
    odd[str(short)] = "0.5 s clip (shorter than one window)"
    big = write_clip(
        d / "uhd_4k.mp4", genre, duration=0.2, fps=5.0, size=(3840, 2160), seed=seed + 14
    )
    odd[str(big)] = "3840x2160 frames"
    vfr = write_clip(d / "vfr.mp4", genre, duration=1.0, vfr=True, seed=seed + 15, **tiny)
    odd[str(vfr)] = "variable frame rate"
    uni = write_clip(d / "clip ünïcödé 片.mp4", genre, duration=1.0, seed=seed + 16, **tiny)
    odd[str(uni)] = "non-ASCII characters in the name"
    spaced = write_clip(d / "clip with spaces.mp4", genre, duration=1.0, seed=seed + 17, **tiny)
    odd[str(spaced)] = "spaces in the name"
    avi = write_clip(
        d / "pcm_audio.avi", genre, duration=1.0, container="avi", seed=seed + 18, **tiny
    )
    odd[str(avi)] = "MPEG-4 Part 2 AVI with PCM audio"

    fake_dir = d / "x.mp4"
    fake_dir.mkdir(exist_ok=True)
    (fake_dir / "inside.txt").write_text("a directory named like a video\n")
    directories = {str(fake_dir): "a directory, not a video file"}

    # a split file (UCF101 trainlist style) with missing entries and junk lines
    split_file = root / "splits.txt"
    rels = [Path(p).relative_to(root).as_posix() for p in [*good, video_only]]
    lines: list[str] = [f"{r} 1" for r in rels]
    split_problems: list[tuple[int, str, str]] = []

    def add(line: str, kind: str) -> None:
        lines.append(line)
        split_problems.append((len(lines), kind, line))

    add(f"{genre}/deleted_long_ago.mp4 1", "missing")
    add("", "blank")
    add("   \t  ", "blank")
    add("# a comment line", "malformed")
    add(f"{genre}/good_0.mp4 1 extra tokens", "malformed")
    add(f"{genre}/good_1.mp4 notanumber", "malformed")
    add("../../etc/passwd 1", "outside_root")
    add("/etc/passwd 1", "outside_root")
    add("\x00\x01binary junk", "malformed")
    split_file.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))

    return {
        "root": str(root),
        "dir": str(d),
        "genre": genre,
        "good": [str(p) for p in good],
        "bad": bad,
        "odd": odd,
        "directories": directories,
        "split_file": str(split_file),
        "split_problems": split_problems,
    }


__all__ = [
    "AUDIO_BANDS",
    "DEFAULT_CLASSES",
    "GENRE_CUES",
    "LAYOUTS",
    "VISUAL_HUES",
    "ClipRecord",
    "Manifest",
    "Problem",
    "bad_corpus",
    "cues_for",
    "generate",
    "make_audio",
    "quantize",
    "write_clip",
]
