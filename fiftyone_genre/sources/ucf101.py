"""UCF101: ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` + ``ucfTrainTestlist/``.

The class of a clip is its folder (``testlistNN.txt`` carries no index, and
the ``HandstandPushups`` folder holds ``v_HandStandPushups_*`` files); the
index in ``trainlistNN.txt`` is checked against ``classInd.txt`` and a
mismatch or unknown index is reported. The group is the ``gXX`` source video,
so the 4-7 clips cut from one long video never straddle splits.
"""

from __future__ import annotations

import re
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
from fiftyone_genre.utils import ProgressFn, track

SOURCE = "ucf101"
_GROUP_RE = re.compile(r"_g(\d+)_c(\d+)$", re.IGNORECASE)


def _locate(root: Path, media_dir, splits_dir) -> tuple[Path, Path]:
    if media_dir is not None:
        media = require_dir(media_dir, "UCF101 media folder")
    elif (root / "UCF-101").is_dir():
        media = root / "UCF-101"
    else:
        media = root
    if splits_dir is not None:
        lists = require_dir(splits_dir, "UCF101 split folder")
    else:
        candidates = [root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist", root]
        lists = next((c for c in candidates if (c / "classInd.txt").is_file()), None)
        if lists is None:
            raise FileNotFoundError(
                f"{root}: no ucfTrainTestlist/classInd.txt found (looked in "
                + ", ".join(str(c) for c in candidates)
                + "); pass splits_dir="
            )
    return media, lists


def parse_class_index(path: Path, report: ImportReport) -> dict[int, str]:
    """``classInd.txt`` -> {1-based index: class name}; bad lines reported."""
    classes: dict[int, str] = {}
    for lineno, text in read_lines(path, report):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or not is_printable_entry(text):
            report.problem(
                path, lineno, f"malformed line (expected '<index> <ClassName>'): {text!r}"
            )
            continue
        classes[int(parts[0])] = parts[1]
    return classes


def group_of(class_name: str, filename: str) -> str | None:
    """``ucf101:<Class>_gXX`` from a ``v_<Class>_gXX_cYY`` name (None if absent)."""
    m = _GROUP_RE.search(Path(filename).stem)
    if not m:
        return None
    return f"{SOURCE}:{class_name}_g{int(m.group(1)):02d}"


def _split_line(path: Path, lineno: int, text: str, split: str, report: ImportReport) -> str | None:
    """The ``<Class>/<video>`` part of a well-formed list line (None when reported)."""
    parts = text.split()
    if (
        not is_printable_entry(text)
        or len(parts) not in (1, 2)
        or (split == "train" and len(parts) != 2)
    ):
        want = "'<Class>/<video> <index>'" if split == "train" else "'<Class>/<video>'"
        report.problem(
            path, lineno, f"malformed line (expected {want}): {text!r}", skip="malformed line"
        )
        return None
    if len(parts) == 2 and not parts[1].lstrip("-").isdigit():
        report.problem(
            path,
            lineno,
            f"malformed line (class index {parts[1]!r} is not a number)",
            skip="malformed line",
        )
        return None
    return parts[0]


def _check_index(
    path: Path, lineno: int, text: str, cls: str, classes: dict[int, str], report: ImportReport
) -> None:
    """Report a train-list class index that disagrees with classInd.txt (the folder wins)."""
    parts = text.split()
    if len(parts) != 2:
        return
    idx = int(parts[1])
    if idx not in classes:
        report.problem(
            path,
            lineno,
            f"unknown class index {idx} (classInd.txt has 1-{max(classes)}); using folder class {cls!r}",
        )
    elif classes[idx] != cls:
        report.problem(
            path,
            lineno,
            f"class index {idx} is {classes[idx]!r} but the folder is {cls!r}; using the folder",
        )


def _listed_video(
    media: Path,
    rel: str,
    classes: dict[int, str],
    known: set[str],
    where: tuple[Path, int, str],
    report: ImportReport,
) -> tuple[Path, str] | None:
    """(video, class) for a listed clip that is safe, known and on disk; None when reported."""
    path, lineno, text = where
    video = safe_join(media, rel)
    if video is None:
        report.problem(
            path, lineno, f"path escapes the dataset root, ignored: {rel!r}", skip="outside root"
        )
        return None
    if "/" not in rel.replace("\\", "/"):
        report.problem(
            path, lineno, f"malformed line (no class folder in {rel!r})", skip="malformed line"
        )
        return None
    cls = rel.replace("\\", "/").split("/")[0]
    if cls not in known:
        report.problem(
            path, lineno, f"unknown class {cls!r} (not in classInd.txt)", skip="unknown class"
        )
        return None
    _check_index(path, lineno, text, cls, classes, report)
    if not check_listed_video(report, path, lineno, video):
        return None
    return video, cls


def _entry_for(video: Path, cls: str, split: str, where: tuple[Path, int], report) -> Entry:
    group = group_of(cls, video.name)
    if group is None:
        report.problem(
            *where, f"no _gXX_cYY_ group in file name {video.name!r}; the clip is its own group"
        )
        group = f"{SOURCE}:{cls}/{video.stem}"
    return Entry(str(video), [cls], split, group)


def _read_list(
    path: Path,
    split: str,
    media: Path,
    classes: dict[int, str],
    entries: dict[str, Entry],
    report: ImportReport,
) -> None:
    """Add the entries of one train/test list to ``entries`` (keyed on the video path)."""
    known = set(classes.values())
    for lineno, text in read_lines(path, report):
        rel = _split_line(path, lineno, text, split, report)
        if rel is None:
            continue
        found = _listed_video(media, rel, classes, known, (path, lineno, text), report)
        if found is None:
            continue
        video, cls = found
        key = str(video)
        if key in entries:
            if entries[key].split != split:
                report.problem(
                    path,
                    lineno,
                    f"{rel} is listed in both train and test; keeping {entries[key].split}",
                )
            continue
        entries[key] = _entry_for(video, cls, split, (path, lineno), report)


def _add_unlisted(
    media: Path, known: set[str], entries: dict[str, Entry], fold: int, report, progress=None
) -> None:
    """Videos in a class folder but in no list of this fold: imported as ``unused``."""
    unlisted = 0
    for cls in track(sorted(known), desc="scan ucf101 class folders", progress=progress):
        folder = media / cls
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS and str(f) not in entries:
                group = group_of(cls, f.name) or f"{SOURCE}:{cls}/{f.stem}"
                entries[str(f)] = Entry(str(f), [cls], "unused", group)
                unlisted += 1
    if unlisted:
        report.notes.append(
            f"{unlisted} video(s) on disk are in no fold-{fold} list: imported as 'unused'"
        )


def parse_ucf101(
    root: str | Path,
    fold: int = 1,
    report: ImportReport | None = None,
    media_dir: str | Path | None = None,
    splits_dir: str | Path | None = None,
    include_unlisted: bool = True,
    progress: ProgressFn | None = None,
) -> ParseResult:
    """Read the official lists for ``fold`` into entries (no database access)."""
    if fold not in (1, 2, 3):
        raise ValueError(f"UCF101 fold must be 1, 2 or 3, got {fold}")
    root = require_dir(root, "UCF101 root")
    report = report or ImportReport(SOURCE, "", str(root))
    media, lists = _locate(root, media_dir, splits_dir)
    classes = parse_class_index(lists / "classInd.txt", report)
    if not classes:
        report.problem(lists / "classInd.txt", None, "no classes could be read")
    entries: dict[str, Entry] = {}
    for split, name in (("train", f"trainlist0{fold}.txt"), ("test", f"testlist0{fold}.txt")):
        path = lists / name
        if not path.is_file():
            report.problem(path, None, f"split file missing; no {split} entries for fold {fold}")
            continue
        _read_list(path, split, media, classes, entries, report)
    if include_unlisted:
        _add_unlisted(media, set(classes.values()), entries, fold, report, progress)
    return ParseResult(list(entries.values()), report, media_root=media)


def import_ucf101(
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
    """Import a UCF101 tree (``root`` holds ``UCF-101/`` and ``ucfTrainTestlist/``).

    >>> report = import_ucf101("ucf", "/data/UCF101", fold=1)
    >>> print(report)
    """
    return import_with(
        parse_ucf101, dataset, root, fold=fold, media_dir=media_dir, splits_dir=splits_dir,
        reencode=reencode, reencode_dir=reencode_dir, compute_metadata=compute_metadata,
        progress=progress,
    )  # fmt: skip
