"""HMDB51: ``<action>/<clip>.avi`` + ``<action>_test_split{1,2,3}.txt`` (tags 0/1/2).

Tag 1 = train, 2 = test, 0 = not used in that split; every clip is imported
and unused ones get ``source_split = "unused"``. The group is the source video
(the clip name before ``_<action>_``), because HMDB51 cuts several clips from
one movie scene.
"""

from __future__ import annotations

import re
from pathlib import Path

from fiftyone_genre.sources.adding import import_with
from fiftyone_genre.sources.common import (
    Entry,
    ImportReport,
    ParseResult,
    check_listed_video,
    is_printable_entry,
    read_lines,
    require_dir,
    safe_join,
)
from fiftyone_genre.utils import ProgressFn, track

SOURCE = "hmdb51"
TAGS = {"0": "unused", "1": "train", "2": "test"}
_SPLIT_RE = re.compile(r"^(?P<action>.+)_test_split(?P<fold>[123])\.txt$")


def _find_splits_dir(root: Path, fold: int) -> Path:
    pattern = f"*_test_split{fold}.txt"
    if any(root.glob(pattern)):
        return root
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if any(child.glob(pattern)):
            return child
        for grand in sorted(p for p in child.iterdir() if p.is_dir()):
            if any(grand.glob(pattern)):
                return grand
    raise FileNotFoundError(
        f"{root}: no '*_test_split{fold}.txt' files found (looked two levels deep); pass splits_dir="
    )


def _find_media_dir(root: Path, actions: list[str]) -> Path:
    for candidate in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if any((candidate / a).is_dir() for a in actions):
            return candidate
    return root


def group_of(action: str, filename: str) -> str:
    """``hmdb51:<source video>``: the clip name before ``_<action>_``."""
    stem = Path(filename).stem
    i = stem.rfind(f"_{action}_")
    base = stem[:i] if i > 0 else re.sub(r"_\d+$", "", stem)
    return f"{SOURCE}:{base}"


def _line_entry(
    path: Path, lineno: int, text: str, folder: Path, action: str, report: ImportReport
) -> Entry | None:
    """The entry of one ``<clip>.avi <tag>`` line; None when the line is reported."""
    parts = text.split()
    if len(parts) != 2 or not is_printable_entry(text):
        report.problem(
            path,
            lineno,
            f"malformed line (expected '<clip>.avi <0|1|2>'): {text!r}",
            skip="malformed line",
        )
        return None
    name, tag = parts
    if tag not in TAGS:
        report.problem(
            path,
            lineno,
            f"malformed line (tag {tag!r} is not 0, 1 or 2): {text!r}",
            skip="malformed line",
        )
        return None
    video = safe_join(folder, name)
    if video is None:
        report.problem(
            path, lineno, f"path escapes the dataset root, ignored: {name!r}", skip="outside root"
        )
        return None
    if not check_listed_video(report, path, lineno, video):
        return None
    return Entry(str(video), [action], TAGS[tag], group_of(action, name))


def _read_split_file(
    path: Path, action: str, media: Path, entries: dict[str, Entry], report: ImportReport
) -> None:
    """Add one action's split file to ``entries`` (keyed on the video path)."""
    folder = safe_join(media, action)
    if folder is None or not folder.is_dir():
        report.problem(
            path,
            None,
            f"unknown class {action!r}: no video folder {media / action}",
            skip="unknown class",
        )
        return
    for lineno, text in read_lines(path, report):
        entry = _line_entry(path, lineno, text, folder, action, report)
        if entry is None:
            continue
        if entry.filepath in entries:
            name = text.split()[0]
            report.problem(path, lineno, f"{name} listed twice; keeping the first line")
            continue
        entries[entry.filepath] = entry


def parse_hmdb51(
    root: str | Path,
    fold: int = 1,
    report: ImportReport | None = None,
    media_dir: str | Path | None = None,
    splits_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> ParseResult:
    """Read every ``<action>_test_split<fold>.txt`` into entries (no database access)."""
    if fold not in (1, 2, 3):
        raise ValueError(f"HMDB51 fold must be 1, 2 or 3, got {fold}")
    root = require_dir(root, "HMDB51 root")
    report = report or ImportReport(SOURCE, "", str(root))
    sdir = (
        require_dir(splits_dir, "HMDB51 split folder")
        if splits_dir
        else _find_splits_dir(root, fold)
    )
    files = sorted(sdir.glob(f"*_test_split{fold}.txt"))
    actions = [_SPLIT_RE.match(f.name).group("action") for f in files]
    media = (
        require_dir(media_dir, "HMDB51 media folder")
        if media_dir
        else _find_media_dir(root, actions)
    )
    entries: dict[str, Entry] = {}
    pairs = list(zip(files, actions))
    for path, action in track(pairs, desc="read hmdb51 split files", progress=progress):
        _read_split_file(path, action, media, entries, report)
    return ParseResult(list(entries.values()), report, media_root=media)


def import_hmdb51(
    dataset,
    root: str | Path,
    fold: int = 1,
    media_dir: str | Path | None = None,
    splits_dir: str | Path | None = None,
    reencode: bool = False,
    reencode_dir: str | Path | None = None,
    compute_metadata: bool = True,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import an HMDB51 tree (action folders + the ``testTrainMulti_7030_splits`` files).

    >>> print(import_hmdb51("hmdb", "/data/hmdb51", fold=2, reencode=True))
    """
    return import_with(
        parse_hmdb51, dataset, root, fold=fold, media_dir=media_dir, splits_dir=splits_dir,
        reencode=reencode, reencode_dir=reencode_dir, compute_metadata=compute_metadata,
        progress=progress,
    )  # fmt: skip
