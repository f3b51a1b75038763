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
from pathlib import Path

from fiftyone_genre.sources.common import (
    VIDEO_EXTENSIONS,
    Entry,
    ImportReport,
    add_entries,
    get_dataset,
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


def parse_hollywood2(
    root: str | Path,
    autotrain: bool = False,
    report: ImportReport | None = None,
    clips_dir: str | Path | None = None,
    clipsets_dir: str | Path | None = None,
) -> tuple[list[Entry], ImportReport, Path]:
    """Collect every clip's positive classes across the ClipSets files."""
    root = require_dir(root, "Hollywood2 root")
    report = report or ImportReport(SOURCE, "", str(root))
    clips = require_dir(clips_dir or root / "AVIClips", "Hollywood2 AVIClips folder")
    sets_dir = require_dir(clipsets_dir or root / "ClipSets", "Hollywood2 ClipSets folder")
    wanted_sets = {"train", "test"} | ({"autotrain"} if autotrain else set())

    labels: dict[str, list[str]] = {}
    set_of: dict[str, str] = {}
    where: dict[str, tuple[Path, int]] = {}
    for path in sorted(sets_dir.glob("*.txt")):
        m = _CLASS_FILE_RE.match(path.name)
        if not m or m.group("cls") in _SET_FILES or m.group("set") not in wanted_sets:
            continue
        cls, clip_set = m.group("cls"), m.group("set")
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
            if name in set_of and set_of[name] != clip_set:
                report.problem(
                    path,
                    lineno,
                    f"{name} is in both {set_of[name]} and {clip_set}; keeping {set_of[name]}",
                )
                continue
            set_of[name] = clip_set
            where.setdefault(name, (path, lineno))
            labels.setdefault(name, [])
            if flag == "1" and cls not in labels[name]:
                labels[name].append(cls)

    entries: list[Entry] = []
    for name in sorted(labels):
        path, lineno = where[name]
        video = _find_clip(clips, name)
        if video is None or not video.exists():
            report.problem(path, lineno, f"video not found: {video or name}", skip="missing video")
            continue
        if video.is_dir():
            report.problem(path, lineno, f"is a directory, not a video: {video}", skip="not a file")
            continue
        if not labels[name]:
            report.problem(
                path, lineno, f"{name} is positive in no ClipSets file; skipped", skip="no label"
            )
            continue
        clip_set = set_of[name]
        tags = [AUTOTRAIN_TAG] if clip_set == "autotrain" else []
        split = "test" if clip_set == "test" else "train"
        entries.append(Entry(str(video), labels[name], split, f"{SOURCE}:{name}", tags=tags))
    multi = sum(len(e.labels) > 1 for e in entries)
    if multi:
        report.notes.append(f"{multi} clip(s) carry several classes (multi-label)")
    return entries, report, clips


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
    ds = get_dataset(dataset)
    report = ImportReport(SOURCE, ds.name, str(Path(root).absolute()))
    entries, report, clips = parse_hollywood2(root, autotrain, report, clips_dir, clipsets_dir)
    return add_entries(
        ds, entries, SOURCE, report, multi_label=True, reencode=reencode,
        reencode_dir=reencode_dir, root=clips, compute_metadata=compute_metadata,
        progress=progress,
    )  # fmt: skip
