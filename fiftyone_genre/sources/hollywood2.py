"""Hollywood2: ``AVIClips/<clip>.avi`` + ``ClipSets/<Class>_{train,test,autotrain}.txt``.

Each class file lists every clip of a set with flag ``1`` (has the class) or
``-1``; a clip may be positive in several files, so ``source_label`` is a
``fo.Classifications`` (multi-label). The automatic (noisy, script-mined)
train set is read only with ``autotrain=True``; its samples get
``source_split = "train"`` and the tag ``hollywood2:autotrain``. Each clip is
its own group (train and test clips come from different movies by design).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fiftyone_genre.sources.adding import import_with
from fiftyone_genre.sources.common import (
    VIDEO_EXTENSIONS,
    Entry,
    ImportReport,
    ParseResult,
    check_listed_video,
    is_printable_entry,
    read_lines,
    require_dir,
    safe_join,
)
from fiftyone_genre.utils import ProgressFn

SOURCE = "hollywood2"
AUTOTRAIN_TAG = "hollywood2:autotrain"
_CLASS_FILE_RE = re.compile(r"^(?P<cls>.+)_(?P<set>train|test|autotrain)\.txt$")
#: Set-listing files that name no class.
_SET_FILES = {"actions", "scenes"}


def _find_clip(clips_dir: Path, name: str) -> Path | None:
    p = safe_join(clips_dir, name)
    if p is None:
        return None
    if p.suffix.lower() in VIDEO_EXTENSIONS:
        return p
    for ext in (".avi", ".mp4", ".mkv", ".mov"):
        cand = p.with_name(p.name + ext)
        if cand.exists():
            return cand
    return p.with_name(p.name + ".avi")


@dataclass
class _ClipSets:
    """What the ClipSets files say about each clip name, gathered across files."""

    labels: dict[str, list[str]] = field(default_factory=dict)
    set_of: dict[str, str] = field(default_factory=dict)
    where: dict[str, tuple[Path, int]] = field(default_factory=dict)


def _read_class_file(
    path: Path, cls: str, clip_set: str, clips: Path, sets: _ClipSets, report: ImportReport
) -> None:
    """Fold one ``<Class>_<set>.txt`` into ``sets``; bad lines reported."""
    for lineno, text in read_lines(path, report):
        parts = text.split()
        if len(parts) != 2 or parts[1] not in ("1", "-1") or not is_printable_entry(text):
            report.problem(
                path,
                lineno,
                f"malformed line (expected '<clip> 1|-1'): {text!r}",
                skip="malformed line",
            )
            continue
        name, flag = parts
        if safe_join(clips, name) is None:
            report.problem(
                path,
                lineno,
                f"path escapes the dataset root, ignored: {name!r}",
                skip="outside root",
            )
            continue
        if name in sets.set_of and sets.set_of[name] != clip_set:
            report.problem(
                path,
                lineno,
                f"{name} is in both {sets.set_of[name]} and {clip_set}; keeping {sets.set_of[name]}",
            )
            continue
        sets.set_of[name] = clip_set
        sets.where.setdefault(name, (path, lineno))
        sets.labels.setdefault(name, [])
        if flag == "1" and cls not in sets.labels[name]:
            sets.labels[name].append(cls)


def _clip_entry(name: str, clips: Path, sets: _ClipSets, report: ImportReport) -> Entry | None:
    """The entry of one clip name; None when its video is missing or it has no class."""
    path, lineno = sets.where[name]
    video = _find_clip(clips, name)
    if not check_listed_video(report, path, lineno, video, name):
        return None
    if not sets.labels[name]:
        report.problem(
            path, lineno, f"{name} is positive in no ClipSets file; skipped", skip="no label"
        )
        return None
    clip_set = sets.set_of[name]
    tags = [AUTOTRAIN_TAG] if clip_set == "autotrain" else []
    split = "test" if clip_set == "test" else "train"
    return Entry(str(video), sets.labels[name], split, f"{SOURCE}:{name}", tags=tags)


def parse_hollywood2(
    root: str | Path,
    autotrain: bool = False,
    report: ImportReport | None = None,
    clips_dir: str | Path | None = None,
    clipsets_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> ParseResult:
    """Collect every clip's positive classes across the ClipSets files."""
    root = require_dir(root, "Hollywood2 root")
    report = report or ImportReport(SOURCE, "", str(root))
    clips = require_dir(clips_dir or root / "AVIClips", "Hollywood2 AVIClips folder")
    sets_dir = require_dir(clipsets_dir or root / "ClipSets", "Hollywood2 ClipSets folder")
    wanted_sets = {"train", "test"} | ({"autotrain"} if autotrain else set())
    sets = _ClipSets()
    for path in sorted(sets_dir.glob("*.txt")):
        m = _CLASS_FILE_RE.match(path.name)
        if not m or m.group("cls") in _SET_FILES or m.group("set") not in wanted_sets:
            continue
        _read_class_file(path, m.group("cls"), m.group("set"), clips, sets, report)
    entries = [e for name in sorted(sets.labels) if (e := _clip_entry(name, clips, sets, report))]
    multi = sum(len(e.labels) > 1 for e in entries)
    if multi:
        report.notes.append(f"{multi} clip(s) carry several classes (multi-label)")
    return ParseResult(entries, report, media_root=clips, multi_label=True)


def import_hollywood2(
    dataset,
    root: str | Path,
    autotrain: bool = False,
    clips_dir: str | Path | None = None,
    clipsets_dir: str | Path | None = None,
    reencode: bool = False,
    reencode_dir: str | Path | None = None,
    compute_metadata: bool = True,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import Hollywood2 (``root`` holds ``AVIClips/`` and ``ClipSets/``); multi-label.

    >>> print(import_hollywood2("h2", "/data/Hollywood2", autotrain=False))
    """
    return import_with(
        parse_hollywood2, dataset, root, autotrain=autotrain, clips_dir=clips_dir,
        clipsets_dir=clipsets_dir, reencode=reencode, reencode_dir=reencode_dir,
        compute_metadata=compute_metadata, progress=progress,
    )  # fmt: skip
