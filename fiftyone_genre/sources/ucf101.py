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


def parse_ucf101(
    root: str | Path,
    fold: int = 1,
    report: ImportReport | None = None,
    media_dir: str | Path | None = None,
    splits_dir: str | Path | None = None,
    include_unlisted: bool = True,
) -> tuple[list[Entry], ImportReport]:
    """Read the official lists for ``fold`` into entries (no database access)."""
    if fold not in (1, 2, 3):
        raise ValueError(f"UCF101 fold must be 1, 2 or 3, got {fold}")
    root = require_dir(root, "UCF101 root")
    report = report or ImportReport(SOURCE, "", str(root))
    media, lists = _locate(root, media_dir, splits_dir)
    classes = parse_class_index(lists / "classInd.txt", report)
    known = set(classes.values())
    if not classes:
        report.problem(lists / "classInd.txt", None, "no classes could be read")

    entries: dict[str, Entry] = {}
    for split, name in (("train", f"trainlist0{fold}.txt"), ("test", f"testlist0{fold}.txt")):
        path = lists / name
        if not path.is_file():
            report.problem(path, None, f"split file missing; no {split} entries for fold {fold}")
            continue
        for lineno, text in read_lines(path, report):
            parts = text.split()
            if (
                not is_printable_entry(text)
                or len(parts) not in (1, 2)
                or (split == "train" and len(parts) != 2)
            ):
                want = "'<Class>/<video> <index>'" if split == "train" else "'<Class>/<video>'"
                report.problem(
                    path,
                    lineno,
                    f"malformed line (expected {want}): {text!r}",
                    skip="malformed line",
                )
                continue
            rel = parts[0]
            if len(parts) == 2 and not parts[1].lstrip("-").isdigit():
                report.problem(
                    path,
                    lineno,
                    f"malformed line (class index {parts[1]!r} is not a number)",
                    skip="malformed line",
                )
                continue
            video = safe_join(media, rel)
            if video is None:
                report.problem(
                    path,
                    lineno,
                    f"path escapes the dataset root, ignored: {rel!r}",
                    skip="outside root",
                )
                continue
            if "/" not in rel.replace("\\", "/"):
                report.problem(
                    path,
                    lineno,
                    f"malformed line (no class folder in {rel!r})",
                    skip="malformed line",
                )
                continue
            cls = rel.replace("\\", "/").split("/")[0]
            if cls not in known:
                report.problem(
                    path,
                    lineno,
                    f"unknown class {cls!r} (not in classInd.txt)",
                    skip="unknown class",
                )
                continue
            if len(parts) == 2:
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
            if not video.exists():
                report.problem(path, lineno, f"video not found: {video}", skip="missing video")
                continue
            if video.is_dir():
                report.problem(
                    path, lineno, f"is a directory, not a video: {video}", skip="not a file"
                )
                continue
            key = str(video)
            if key in entries:
                if entries[key].split != split:
                    report.problem(
                        path,
                        lineno,
                        f"{rel} is listed in both train and test; keeping {entries[key].split}",
                    )
                continue
            group = group_of(cls, video.name)
            if group is None:
                report.problem(
                    path,
                    lineno,
                    f"no _gXX_cYY_ group in file name {video.name!r}; the clip is its own group",
                )
                group = f"{SOURCE}:{cls}/{video.stem}"
            entries[key] = Entry(str(video), [cls], split, group)

    if include_unlisted:
        unlisted = 0
        for cls in sorted(known):
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
    return list(entries.values()), report


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
    ds = get_dataset(dataset)
    report = ImportReport(SOURCE, ds.name, str(Path(root).absolute()))
    entries, report = parse_ucf101(root, fold, report, media_dir, splits_dir)
    media, _ = _locate(Path(root), media_dir, splits_dir)
    return add_entries(
        ds, entries, SOURCE, report, reencode=reencode, reencode_dir=reencode_dir,
        root=media, compute_metadata=compute_metadata, progress=progress,
    )  # fmt: skip
