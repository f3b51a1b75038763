"""Generated trees laid out like the public datasets, for the demo and the tests.

Real encoded videos (H.264/AAC in MP4, MPEG-4 Part 2/PCM in AVI, written by
:mod:`fiftyone_genre.demo.clips`) in the layouts of UCF101, HMDB51,
Hollywood2, YouTube-8M (shards and vocabulary) and a folder tree, so the
importers, the feature extractor and the model are exercised on the same kind
of files a user has. :func:`generate` writes a tree and returns its
:class:`Manifest` (what each file is, and the problems planted on purpose).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.demo.clips import cues_for, write_clip
from fiftyone_genre.report import plain
from fiftyone_genre.utils import ProgressFn, track

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


def yt8m_id(rng: np.random.Generator) -> str:
    """A random 11-character YouTube-style id."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size=11))


def quantize(x: np.ndarray) -> np.ndarray:
    """YT8M byte quantisation: [-2, 2] linearly onto 0..255."""
    return np.clip(np.round((np.asarray(x) + 2.0) * 255.0 / 4.0), 0, 255).astype(np.uint8)


#: Dimensions each cue lights in the YouTube-8M features: a genre shows in
#: many of the real PCA'd dimensions, not in one (one lit dimension among
#: 1,024 noisy ones is a needle no small model learns from a few records).
YT8M_CUE_WIDTH: tuple[int, int] = (16, 8)


def yt8m_features(genre: str, seconds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-second (rgb, audio) features with the genre's cues lit, as the TFRecords carry them."""
    vis_cue, aud_cue = cues_for(genre)
    wv, wa = YT8M_CUE_WIDTH
    rgb = rng.normal(0, 0.5, size=(seconds, YT8M_RGB_DIM)).astype(np.float32)
    rgb[:, vis_cue * wv : (vis_cue + 1) * wv] += 1.0
    aud = rng.normal(0, 0.5, size=(seconds, YT8M_AUDIO_DIM)).astype(np.float32)
    aud[:, aud_cue * wa : (aud_cue + 1) * wa] += 1.0
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
        from fiftyone_genre.sources.yt8m import dequantize

        context = {"id": (vid.encode(), "byte"), "labels": (label_ids, "int")}
        if level == "video":  # the mean of what the frame level stores, as in the real release
            mean_rgb, mean_audio = (dequantize(quantize(x)).mean(0).tolist() for x in (rgb, aud))
            context.update(mean_rgb=(mean_rgb, "float"), mean_audio=(mean_audio, "float"))
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
            # at least one record per class has a video unless none should
            paired = bool(tree.rng.random() < tree.layout.paired_fraction) or (i == 0 and tree.layout.paired_fraction > 0)
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
    "DEFAULT_CLASSES",
    "LAYOUTS",
    "ClipOptions",
    "ClipRecord",
    "LayoutOptions",
    "Manifest",
    "Problem",
    "Yt8mRecordFiles",
    "generate",
    "quantize",
    "ucf_file_class",
    "write_lines",
    "yt8m_features",
    "yt8m_id",
]
