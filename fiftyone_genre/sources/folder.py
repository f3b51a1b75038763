"""Folder tree: ``<root>/<label>/<video>`` (e.g. public-domain animation clips).

The top-level folder name is the label; deeper folders are walked. There is
no official split (``source_split`` is None). Each file is its own group.
Hidden files and non-video files are ignored; a directory whose name looks
like a video (``x.mp4/``) and videos lying directly in ``root`` are reported.
"""

from __future__ import annotations

from pathlib import Path

from fiftyone_genre.sources.adding import import_with
from fiftyone_genre.sources.common import (
    VIDEO_EXTENSIONS,
    Entry,
    ImportReport,
    ParseResult,
    require_dir,
)
from fiftyone_genre.utils import ProgressFn, not_a_file, track

SOURCE = "folder"


def parse_folder(
    root: str | Path, report: ImportReport | None = None, progress: ProgressFn | None = None
) -> ParseResult:
    """Walk ``<root>/<label>/...`` into entries (no database access)."""
    root = require_dir(root, "folder root").absolute()
    report = report or ImportReport(SOURCE, "", str(root))
    entries: list[Entry] = []
    ignored = 0
    for top in track(sorted(root.iterdir()), desc="walk label folders", progress=progress):
        if top.name.startswith("."):
            continue
        if not top.is_dir():
            if top.suffix.lower() in VIDEO_EXTENSIONS:
                report.problem(
                    top,
                    None,
                    "video is not inside a <label>/ folder; skipped",
                    skip="no label folder",
                )
            continue
        label = top.name
        for path in sorted(top.rglob("*")):
            rel = path.relative_to(root)
            if any(part.startswith(".") for part in rel.parts):
                continue
            if path.suffix.lower() not in VIDEO_EXTENSIONS:
                ignored += path.is_file()
                continue
            if path.is_dir():
                report.problem(
                    path, None, "a directory named like a video; skipped", skip="not a file"
                )
                continue
            if not path.is_file():
                report.problem(path, None, f"{_why_not_a_file(path)}; skipped", skip="not a file")
                continue
            group = f"{SOURCE}:{root.name}/{rel.with_suffix('').as_posix()}"
            entries.append(Entry(str(path), [label], None, group))
    if ignored:
        report.notes.append(f"{ignored} non-video file(s) ignored")
    return ParseResult(entries, report, media_root=root)


def _why_not_a_file(path: Path) -> str:
    """A FIFO, a device, a broken or looping link: said as such (none of them is opened)."""
    try:
        return not_a_file(path.stat()) or "not a regular file"
    except FileNotFoundError:
        return "a broken link"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"


def import_folder(
    dataset,
    root: str | Path,
    reencode: bool = False,
    reencode_dir: str | Path | None = None,
    compute_metadata: bool = True,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import ``<root>/<label>/<video>``; the folder name becomes ``source_label``.

    >>> print(import_folder("anim", "/data/public_domain_cartoons"))
    """
    return import_with(
        parse_folder, dataset, root, reencode=reencode, reencode_dir=reencode_dir,
        compute_metadata=compute_metadata, progress=progress,
    )  # fmt: skip
