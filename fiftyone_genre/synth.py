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
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.mediawriter import AudioTrack, VideoTrack, cfr_times, frames_of, write_media
from fiftyone_genre.report import plain
from fiftyone_genre.utils import ProgressFn, track

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
        picture = _picture(visual_cue, size, duration, fps, vfr, vcodec, pix_fmt, _rng(seed, genre))
    sound = None
    if audio:  # its own random stream: the same sound with or without a picture
        samples = make_audio(audio_cue, duration, sample_rate, _rng(seed, genre, "audio"))
        sound = AudioTrack.from_array(samples, sample_rate, codec=audio_codec or default_acodec)
    return write_media(path, picture, sound, format=fmt)


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
_HMDB_TAG_SPLIT = {1: "train", 2: "test", 0: "unused"}
#: Hollywood2 clip-name prefix per clip set.
_HOLLYWOOD2_PREFIX = {"train": "actioncliptrain", "test": "actioncliptest", "autotrain": "actioncliptrain_auto"}

#: Vertical1..3 written to the synthetic YT8M vocabulary.csv (as in the real one);
#: other classes get ("Arts & Entertainment", "", ""). Football relies on the
#: shipped mapping's ``vertical: Sports`` rule, so remap needs the verticals.
YT8M_VERTICALS: dict[str, tuple[str, str, str]] = {
    "Football": ("Sports", "", ""),
    "Vehicle": ("Autos & Vehicles", "", ""),
}
YT8M_VOCABULARY_HEADER = (
    "Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
    "Vertical1", "Vertical2", "Vertical3", "WikiDescription",
)  # fmt: skip

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
    readable: bool = True  # False when the file holds no decodable video
    has_audio: bool = True
    autotrain: bool = False  # Hollywood2 automatic (noisy) train set

    @property
    def split(self) -> str | None:
        """The official split of fold 1 (the only fold most layouts have)."""
        return self.splits.get(1)


@dataclass
class Problem:
    """Something in the tree a reader should report, and where (e.g. an unpaired YT8M record)."""

    kind: str  # "unpaired" here; test fault planting adds "missing", "malformed", ...
    file: str  # the split/label file (or the media file for "unreadable")
    line: int | None  # 1-based line in `file`, None when not line-based
    detail: str  # the offending text or path


@dataclass
class Manifest:
    """Everything :func:`generate` wrote; tests compare importer output against it.

    Not a stage :class:`~fiftyone_genre.report.Report` (its ``extra`` field holds
    layout details), but serialised the same way.
    """

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
        return plain(self)

    def save(self, path: str | Path | None = None) -> Path:
        path = Path(path) if path else Path(self.root) / "manifest.json"
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    def __str__(self) -> str:
        paired = sum(c.path is not None for c in self.clips)
        kinds = Counter(p.kind for p in self.problems)
        listed = ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())) or "none"
        return (
            f"{self.layout} tree at {self.root}: {len(self.clips)} clips ({paired} with media), "
            f"{len(self.classes)} classes; problems: {listed}"
        )


@dataclass(frozen=True)
class ClipOptions:
    """How every clip of a generated tree is encoded (the :func:`write_clip` arguments)."""

    duration: float = 2.0
    fps: float = 25.0
    size: tuple[int, int] = (128, 96)
    audio: bool = True
    container: str = "mp4"

    @property
    def ext(self) -> str:
        return f".{self.container}"


@dataclass(frozen=True)
class LayoutOptions:
    """How a tree is laid out beyond its clips (group sizes, label noise, list files)."""

    clips_per_class: int = 4
    seed: int = 0
    crlf: bool = True  # UCF101 lists end lines with CRLF, as shipped
    clips_per_group: int = 2
    multilabel: float = 0.34  # Hollywood2 / YT8M: share of clips with a second label
    autotrain: bool = False  # Hollywood2: also write the automatic train set
    paired_fraction: float = 0.75  # YT8M: share of records with a local video
    yt8m_levels: tuple[str, ...] = ("video", "frame")


class _ClipWriter:
    """Writes a tree's clips with a progress bar and records each in the manifest."""

    def __init__(self, tree: _Tree, total: int, desc: str):
        self.tree = tree
        self.count = 0
        self._bar = iter(track(range(total), total=total, desc=desc, progress=tree.progress))

    def write(self, path: Path, genre: str) -> None:
        self.count += 1
        next(self._bar, None)
        seed = self.tree.layout.seed * 100003 + self.count
        write_clip(path, genre, seed=seed, **asdict(self.tree.clip))

    def add(self, path: Path, genre: str, **record: Any) -> None:
        """Write one clip and record it in the manifest."""
        self.write(path, genre)
        self.tree.manifest.clips.append(
            ClipRecord(path=str(path), genre=genre, has_audio=self.tree.clip.audio, **record)
        )

    def close(self) -> None:
        for _ in self._bar:
            pass


@dataclass
class _Tree:
    """One tree being written: where, which classes, how, and the manifest to fill."""

    manifest: Manifest
    root: Path
    classes: dict[str, str]
    clip: ClipOptions
    layout: LayoutOptions
    rng: np.random.Generator
    progress: ProgressFn | None = None

    @property
    def n(self) -> int:
        return self.layout.clips_per_class

    def writer(self, total: int) -> _ClipWriter:
        return _ClipWriter(self, total, f"synth {self.manifest.layout}")


def write_lines(path: Path, lines: list[str], crlf: bool = False) -> None:
    """A list file as the datasets ship them: UTF-8, every line ended (CRLF for UCF101)."""
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
    progress: ProgressFn | None = None,
    **layout_options: Any,
) -> Manifest:
    """Write a tree of synthetic clips in ``layout`` and return its :class:`Manifest`.

    ``classes``: source class names, or a dict class -> genre whose cues the
    class's clips carry (default: :data:`DEFAULT_CLASSES`). ``container``
    defaults to "avi" for UCF101/HMDB51/Hollywood2 (as shipped) and "mp4"
    otherwise. Further keywords are :class:`LayoutOptions` fields (``crlf``,
    ``clips_per_group``, ``multilabel``, ``autotrain``, ``paired_fraction``,
    ``yt8m_levels``).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if clips_per_class < 1:
        raise ValueError(f"clips_per_class must be >= 1, got {clips_per_class}")
    unknown = sorted(set(layout_options) - {f.name for f in fields(LayoutOptions)})
    if unknown:
        raise TypeError(f"generate() got unexpected keyword argument(s): {', '.join(unknown)}")
    if container is None:
        container = "avi" if layout in ("ucf101", "hmdb51", "hollywood2") else "mp4"
    root = Path(outdir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    class_map = _resolve_classes(layout, classes)
    opts = LayoutOptions(clips_per_class=clips_per_class, seed=seed, **layout_options)
    opts = replace(opts, clips_per_group=max(1, opts.clips_per_group))
    tree = _Tree(
        manifest=Manifest(root=str(root), layout=layout, classes=class_map),
        root=root,
        classes=class_map,
        clip=ClipOptions(duration=duration, fps=fps, size=tuple(size), audio=audio, container=container),
        layout=opts,
        rng=np.random.default_rng(seed),
        progress=progress,
    )
    _LAYOUT_WRITERS[layout](tree)
    return tree.manifest


def _write_folder(tree: _Tree) -> None:
    """``<root>/<class>/<class>_000.mp4``: the folder importer's layout."""
    w = tree.writer(len(tree.classes) * tree.n)
    for label, genre in tree.classes.items():
        for i in range(tree.n):
            path = tree.root / label / f"{label.replace(' ', '_').lower()}_{i:03d}{tree.clip.ext}"
            rel = path.relative_to(tree.root).with_suffix("").as_posix()
            w.add(path, genre, labels=[label], group=f"folder:{tree.root.name}/{rel}")
    w.close()
    tree.manifest.extra["media_dir"] = str(tree.root)


def ucf_file_class(cls: str) -> str:
    """The class as spelled in file names (the HandstandPushups quirk)."""
    return "HandStandPushups" if cls == "HandstandPushups" else cls


def _ucf_group_and_clip(i: int, per_group: int) -> tuple[int, int]:
    """The i-th clip of a class: (group g01-g25, clip number within the group)."""
    gnum = _UCF_GROUP_ORDER[(i // per_group) % len(_UCF_GROUP_ORDER)]
    cnum = i % per_group + 1 + per_group * (i // (per_group * len(_UCF_GROUP_ORDER)))
    return gnum, cnum


def _write_ucf101(tree: _Tree) -> None:
    """``UCF-101/<class>/v_<class>_gNN_cNN.avi`` + ``ucfTrainTestlist/`` (3 folds)."""
    media, lists = tree.root / "UCF-101", tree.root / "ucfTrainTestlist"
    names = sorted(tree.classes)
    index = {c: i + 1 for i, c in enumerate(names)}
    crlf = tree.layout.crlf
    write_lines(lists / "classInd.txt", [f"{index[c]} {c}" for c in names], crlf)
    w = tree.writer(len(names) * tree.n)
    entries: list[tuple[str, int, dict[int, str]]] = []  # rel path, class index, splits
    for cls in names:
        for i in range(tree.n):
            gnum, cnum = _ucf_group_and_clip(i, tree.layout.clips_per_group)
            fname = f"v_{ucf_file_class(cls)}_g{gnum:02d}_c{cnum:02d}{tree.clip.ext}"
            splits = {f: ("test" if gnum in UCF101_TEST_GROUPS[f] else "train") for f in (1, 2, 3)}
            entries.append((f"{cls}/{fname}", index[cls], splits))
            w.add(media / cls / fname, tree.classes[cls], labels=[cls], group=f"ucf101:{cls}_g{gnum:02d}",
                  splits=splits)  # fmt: skip
    w.close()
    for fold in (1, 2, 3):
        train = [f"{rel} {ci}" for rel, ci, s in entries if s[fold] == "train"]
        test = [rel for rel, _, s in entries if s[fold] == "test"]
        write_lines(lists / f"trainlist0{fold}.txt", train, crlf)
        write_lines(lists / f"testlist0{fold}.txt", test, crlf)
    tree.manifest.extra.update(media_dir=str(media), lists_dir=str(lists))


def _write_hmdb51(tree: _Tree) -> None:
    """``<action>/<movie>_<action>_..._N.avi`` + ``testTrainMulti_7030_splits/`` (3 folds)."""
    splits_dir = tree.root / "testTrainMulti_7030_splits"
    names = sorted(tree.classes)
    per_group = tree.layout.clips_per_group
    w = tree.writer(len(names) * tree.n)
    lines: dict[tuple[str, int], list[str]] = {}
    for ci, action in enumerate(names):
        for i in range(tree.n):
            gi = i // per_group
            movie = f"Synth_Movie{ci:02d}{gi:02d}"
            fname = f"{movie}_{action}_u_nm_np1_fr_med_{i % per_group}{tree.clip.ext}"
            splits = {}
            for fold in (1, 2, 3):
                tag = _HMDB_TAG_CYCLE[(gi + ci + fold - 1) % len(_HMDB_TAG_CYCLE)]
                splits[fold] = _HMDB_TAG_SPLIT[tag]
                # the official files end their lines with a space
                lines.setdefault((action, fold), []).append(f"{fname} {tag} ")
            w.add(tree.root / action / fname, tree.classes[action], labels=[action], group=f"hmdb51:{movie}",
                  splits=splits)  # fmt: skip
    w.close()
    for (action, fold), body in lines.items():
        write_lines(splits_dir / f"{action}_test_split{fold}.txt", body)
    tree.manifest.extra.update(media_dir=str(tree.root), splits_dir=str(splits_dir))


def _hollywood2_plan(tree: _Tree, sets: list[str]) -> list[tuple[str, str, list[str]]]:
    """(set, clip name, labels): clips_per_class per class and set (half for test), some multi-label."""
    names = sorted(tree.classes)
    plan: list[tuple[str, str, list[str]]] = []
    for s in sets:
        per = tree.n if s != "test" else max(1, tree.n // 2)
        num = 0
        for ci, cls in enumerate(names):
            for _i in range(per):
                num += 1
                labels = [cls]
                if len(names) > 1 and tree.rng.random() < tree.layout.multilabel:
                    labels.append(names[(ci + 1 + int(tree.rng.integers(0, len(names) - 1))) % len(names)])
                plan.append((s, f"{_HOLLYWOOD2_PREFIX[s]}{num:05d}", labels))
    return plan


def _write_hollywood2(tree: _Tree) -> None:
    """``AVIClips/<clip>.avi`` + ``ClipSets/<class>_<set>.txt`` (1 / -1 per clip)."""
    clips_dir, sets_dir = tree.root / "AVIClips", tree.root / "ClipSets"
    sets = ["train", "test"] + (["autotrain"] if tree.layout.autotrain else [])
    plan = _hollywood2_plan(tree, sets)
    w = tree.writer(len(plan))
    for s, clip, labels in plan:
        w.add(
            clips_dir / f"{clip}{tree.clip.ext}", tree.classes[labels[0]], labels=labels,
            group=f"hollywood2:{clip}", splits={1: "train" if s != "test" else "test"}, autotrain=s == "autotrain",
        )  # fmt: skip
    w.close()
    for s in sets:
        in_set = [(clip, labels) for ss, clip, labels in plan if ss == s]
        write_lines(sets_dir / f"actions_{s}.txt", [f"{c}  1" for c, _ in in_set])
        for cls in sorted(tree.classes):
            write_lines(sets_dir / f"{cls}_{s}.txt", [f"{c}  {1 if cls in labels else -1}" for c, labels in in_set])
    tree.manifest.extra.update(media_dir=str(clips_dir), clipsets_dir=str(sets_dir))


# --------------------------------------------------------------------------
# YouTube-8M: vocabulary.csv + TFRecords (+ local videos for some records)
# --------------------------------------------------------------------------


def yt8m_id(rng: np.random.Generator) -> str:
    """A random 11-character YouTube-style id."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size=11))


def quantize(x: np.ndarray) -> np.ndarray:
    """YT8M byte quantisation: [-2, 2] linearly onto 0..255."""
    return np.clip(np.round((np.asarray(x) + 2.0) * 255.0 / 4.0), 0, 255).astype(np.uint8)


def yt8m_features(genre: str, seconds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-second (rgb, audio) features with the genre's cues lit, as the TFRecords carry them."""
    vis_cue, aud_cue = cues_for(genre)
    rgb = rng.normal(0, 0.5, size=(seconds, YT8M_RGB_DIM)).astype(np.float32)
    rgb[:, vis_cue] += 1.0
    aud = rng.normal(0, 0.5, size=(seconds, YT8M_AUDIO_DIM)).astype(np.float32)
    aud[:, aud_cue] += 1.0
    return rgb, aud


class Yt8mRecordFiles:
    """``<root>/<level>/<split>0000.tfrecord`` writers, opened on first use."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._open: dict[tuple[str, str], Any] = {}

    def _writer(self, level: str, split: str):
        from tfrecord import TFRecordWriter

        if (level, split) not in self._open:
            d = self.root / level
            d.mkdir(parents=True, exist_ok=True)
            self._open[(level, split)] = TFRecordWriter(str(d / f"{split}0000.tfrecord"))
        return self._open[(level, split)]

    def write(self, level: str, split: str, vid: str, label_ids: list[int], rgb: np.ndarray, aud: np.ndarray) -> None:
        """One record: video level keeps the means, frame level the quantised seconds."""
        context = {"id": (vid.encode(), "byte"), "labels": (label_ids, "int")}
        if level == "video":
            context.update(mean_rgb=(rgb.mean(0).tolist(), "float"), mean_audio=(aud.mean(0).tolist(), "float"))
            self._writer(level, split).write(context)
        else:
            frames = {
                "rgb": ([quantize(r).tobytes() for r in rgb], "byte"),
                "audio": ([quantize(a).tobytes() for a in aud], "byte"),
            }
            self._writer(level, split).write(context, frames)

    def close(self) -> None:
        for writer in self._open.values():
            writer.close()


def _write_vocabulary(path: Path, names: list[str]) -> Path:
    """Real-looking rows: our classes at indices 0..K-1 plus a filler class."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(YT8M_VOCABULARY_HEADER)
        for i, name in enumerate([*names, "Vehicle"]):
            wiki = f"https://en.wikipedia.org/wiki/{name.replace(' ', '_')}"
            verticals = YT8M_VERTICALS.get(name, ("Arts & Entertainment", "", ""))
            out.writerow([str(i), str(1000 - i), f"/m/0{i:04d}", name, wiki, *verticals, f"Synthetic class {name}."])
    return path


@dataclass
class _Yt8mRecord:
    split: str  # "train" | "validate"
    vid: str
    labels: list[str]
    genre: str
    paired: bool  # a local video exists


def _yt8m_plan(tree: _Tree) -> list[_Yt8mRecord]:
    names = list(tree.classes)
    index = {name: i for i, name in enumerate(names)}
    records = []
    for cls in names:
        for i in range(tree.n):
            vid = yt8m_id(tree.rng)
            labels = [cls]
            if len(names) > 1 and tree.rng.random() < tree.layout.multilabel:
                labels.append(names[(index[cls] + 1) % len(names)])
            split = "train" if i % 4 != 3 else "validate"
            paired = bool(tree.rng.random() < tree.layout.paired_fraction) or i == 0
            records.append(_Yt8mRecord(split, vid, labels, tree.classes[cls], paired))
    return records


def _write_yt8m(tree: _Tree) -> None:
    """``vocabulary.csv``, ``<level>/<split>0000.tfrecord`` and ``videos/<id>.mp4`` for paired records."""
    media = tree.root / "videos"
    names = list(tree.classes)
    vocab = _write_vocabulary(tree.root / "vocabulary.csv", names)
    records = _yt8m_plan(tree)
    w = tree.writer(sum(r.paired for r in records))
    files = Yt8mRecordFiles(tree.root)
    seconds = max(1, int(round(tree.clip.duration)))
    for r in records:
        path = media / f"{r.vid}.mp4" if r.paired else None
        if path is not None:
            w.write(path, r.genre)
        rgb, aud = yt8m_features(r.genre, seconds, tree.rng)
        for level in tree.layout.yt8m_levels:
            files.write(level, r.split, r.vid, [names.index(c) for c in r.labels], rgb, aud)
        tree.manifest.clips.append(
            ClipRecord(path=str(path) if path else None, genre=r.genre, labels=r.labels, group=f"yt8m:{r.vid}",
                       splits={1: "train" if r.split == "train" else "test"}, video_id=r.vid,
                       has_audio=tree.clip.audio)  # fmt: skip
        )
        if path is None:
            tree.manifest.problems.append(Problem("unpaired", f"{r.split}0000.tfrecord", None, r.vid))
    w.close()
    files.close()
    tree.manifest.extra.update(media_dir=str(media), vocabulary=str(vocab), levels=list(tree.layout.yt8m_levels))


_LAYOUT_WRITERS = {
    "folder": _write_folder,
    "ucf101": _write_ucf101,
    "hmdb51": _write_hmdb51,
    "hollywood2": _write_hollywood2,
    "yt8m": _write_yt8m,
}


__all__ = [
    "AUDIO_BANDS",
    "DEFAULT_CLASSES",
    "GENRE_CUES",
    "LAYOUTS",
    "VISUAL_HUES",
    "ClipOptions",
    "ClipRecord",
    "LayoutOptions",
    "Manifest",
    "Problem",
    "Yt8mRecordFiles",
    "cues_for",
    "generate",
    "make_audio",
    "quantize",
    "ucf_file_class",
    "write_clip",
    "write_lines",
    "yt8m_features",
    "yt8m_id",
]
