"""What every importer shares: entries, the report, the parse result, safe paths.

Each source module only *parses* its official layout into a
:class:`ParseResult` (:class:`Entry` objects + :class:`ImportProblem` records
in an :class:`ImportReport`); :func:`fiftyone_genre.sources.adding.import_with`
turns any parse result into samples. Keeping that in one place is what makes
every source produce the same schema and what makes re-imports idempotent
(samples are keyed on the *resolved* media path, and on ``original_filepath``
when re-encoded).

Failure policy (see docs/importing.md):

* a split-file line naming a video that is not on disk, a malformed line, an
  unknown class, or a path escaping the dataset root -> the entry is skipped
  and reported with file and line number;
* a video file that exists but cannot be read (garbage, truncated, zero bytes,
  no video stream, a still image renamed ``.mp4``) -> the sample *is*
  imported, so the user sees it in the App, and flagged with
  ``genre_errors = ["import: <reason>"]`` and the ``genre:error`` tag; later
  stages skip such samples.

Everything printed (problems, notes) goes through :func:`escape`: a file name
holding a newline must not be able to forge a log line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiftyone_genre import genres as g
from fiftyone_genre.report import Report
from fiftyone_genre.sources.probe import probe_problem  # noqa: F401 - re-exported
from fiftyone_genre.utils import atomic_path, not_a_file

#: File extensions treated as videos when walking a tree.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4",
        ".avi",
        ".mov",
        ".mkv",
        ".webm",
        ".m4v",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".3gp",
        ".ogv",
    }
)

#: The source name stored in ``source`` for each importer.
SOURCES: tuple[str, ...] = ("ucf101", "hmdb51", "hollywood2", "yt8m", "folder")


@dataclass
class ImportProblem:
    """One reported problem; ``line`` is 1-based, None when not line-based."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return escape(f"{where}: {self.reason}")


@dataclass
class Entry:
    """One video an importer found: becomes (or matches) one sample."""

    filepath: str
    labels: list[str]
    split: str | None
    group: str
    fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    #: class name -> extra attributes of its Classification (YouTube-8M verticals)
    label_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what identifies the entry across imports when its file does not (``yt8m:<id>``:
    #: features-only samples all share one placeholder file)
    identity: str | None = None


@dataclass
class ImportReport(Report):
    """What an import did; ``str(report)`` is the summary printed at the end."""

    source: str
    dataset: str
    root: str
    imported: int = 0  # new samples added
    existing: int = 0  # already in the dataset (re-import): nothing added
    updated: int = 0  # existing samples whose source fields changed (e.g. another fold)
    flagged: int = 0  # imported but unreadable (genre_errors set)
    reencoded: int = 0
    vanished: int = 0  # samples of this source under this root whose file is gone
    features_only: int = 0  # new samples without a video (YouTube-8M records: features only)
    skipped: Counter = field(default_factory=Counter)  # reason -> count of skipped entries
    problems: list[ImportProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    by_split: Counter = field(default_factory=Counter)
    by_label: Counter = field(default_factory=Counter)
    _sample_ids: list[str] = field(default_factory=list)  # ids of the new samples

    @property
    def sample_ids(self) -> list[str]:
        """Ids of the samples this import added."""
        return self._sample_ids

    def problem(
        self, file: str | Path, line: int | None, reason: str, skip: str | None = None
    ) -> None:
        """Record a problem; ``skip`` names the skip category when an entry is dropped."""
        self.problems.append(ImportProblem(str(file), line, reason))
        if skip:
            self.skipped[skip] += 1

    @property
    def ok(self) -> bool:
        """True when the import produced (or found) at least one sample."""
        return (self.imported + self.existing) > 0

    def extra(self) -> dict[str, Any]:
        """Problems as the one-line (escaped) strings the summary prints."""
        return {"problems": [str(p) for p in self.problems]}

    def __str__(self) -> str:
        lines = [
            escape(f"{self.source} import from {self.root} into dataset '{self.dataset}':"),
            f"  imported {self.imported} new sample(s), {self.existing} already present"
            + (f" ({self.updated} updated)" if self.updated else "")
            + (f", {self.reencoded} re-encoded to MP4" if self.reencoded else ""),
        ]
        if self.features_only:
            lines.append(
                f"  of the new: {self.imported - self.features_only} with a local video, "
                f"{self.features_only} features-only (no video; field {g.FEATURES_ONLY_FIELD}, "
                f"tag {g.FEATURES_ONLY_TAG})"
            )
        if self.flagged:
            lines.append(
                f"  {self.flagged} unreadable video(s) imported and flagged ({g.ERROR_TAG})"
            )
        if self.by_split:
            lines.append(
                "  official split: "
                + ", ".join(f"{k}={v}" for k, v in sorted(self.by_split.items(), key=str))
            )
        if self.skipped:
            lines.append(
                f"  skipped {sum(self.skipped.values())}: "
                + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items()))
            )
        if self.vanished:
            lines.append(
                f"  {self.vanished} sample(s) whose file has vanished (kept, listed below)"
            )
        lines += [f"  note: {escape(n)}" for n in self.notes]
        if self.problems:
            lines.append(f"  {len(self.problems)} problem(s):")
            shown = self.problems[:50]
            lines += [f"    {p}" for p in shown]
            if len(self.problems) > len(shown):
                lines.append(f"    ... and {len(self.problems) - len(shown)} more")
        return "\n".join(lines)


@dataclass
class ParseResult:
    """What every ``parse_*`` returns: the entries found and where the media live.

    ``media_root`` is the folder re-encoded copies mirror; ``info`` is written
    to ``dataset.info`` when the import adds or finds any sample (YouTube-8M
    records its vocabulary path there). Unpacks as ``entries, report`` for
    callers of the earlier tuple API.
    """

    entries: list[Entry]
    report: ImportReport
    media_root: Path | None = None
    multi_label: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.entries, self.report))


#: Control characters other than tab, and U+FFFD (what undecodable bytes became).
_JUNK = re.compile("[\x00-\x08\x0a-\x1f\ufffd]")

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with control and line-separator characters written as escapes.

    Printable text (including non-ASCII names) is unchanged; a newline in a
    file name becomes ``\\n`` so it cannot start a fake line in a log.
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c == " " else _ESCAPES.get(c) or repr(c)[1:-1] for c in text
    )


# --------------------------------------------------------------------------
# datasets, paths and text files
# --------------------------------------------------------------------------


def get_dataset(dataset):
    """A ``fo.Dataset`` from a dataset or a name (created persistent if missing).

    Two imports creating the same new dataset at once both get it: the one
    that loses the race loads what the other created.
    """
    import fiftyone as fo

    from fiftyone_genre.database import connect

    if isinstance(dataset, str):
        connect()
        if fo.dataset_exists(dataset):
            return fo.load_dataset(dataset)
        try:
            ds = fo.Dataset(dataset, persistent=True)
        except ValueError:
            if not fo.dataset_exists(dataset):
                raise
            return fo.load_dataset(dataset)  # created by a concurrent import meanwhile
        return ds
    if hasattr(dataset, "_dataset") and not isinstance(dataset, fo.Dataset):
        raise ValueError("import into a dataset, not a view")
    return dataset


def norm_path(path: str | Path) -> str:
    """The path as FiftyOne stores ``filepath`` (absolute, user-expanded, not resolved)."""
    return os.path.abspath(os.path.expanduser(str(path)))


def identity_path(path: str | Path) -> str:
    """The key an import matches samples on: the fully resolved path.

    Importing a symlink to an already imported root (or a symlinked file)
    must find the samples it already has, not add the same file twice.
    """
    return os.path.realpath(os.path.expanduser(str(path)))


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path; a clear error when it is missing or not a folder."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    if not p.is_dir():
        raise NotADirectoryError(f"{what} is not a folder: {p}")
    return p


def safe_join(root: str | Path, rel: str) -> Path | None:
    """``root/rel`` when it stays inside ``root``; None for absolute or ``..`` escapes.

    Split files are untrusted text: an entry like ``../../etc/passwd`` or
    ``/etc/passwd`` must never make an importer touch files outside the tree.
    """
    rel = rel.replace("\\", "/")
    if not rel or rel.startswith("/") or os.path.isabs(rel) or (len(rel) > 1 and rel[1] == ":"):
        return None
    if any(part == ".." for part in rel.split("/")):
        return None
    base = os.path.abspath(root)
    candidate = os.path.normpath(os.path.join(base, rel))
    if candidate != base and not candidate.startswith(base.rstrip(os.sep) + os.sep):
        return None
    # a symlink inside the tree may still point outside it (one lstat when it is not one)
    if os.path.islink(candidate):
        real, real_base = os.path.realpath(candidate), os.path.realpath(base)
        if real != real_base and not real.startswith(real_base.rstrip(os.sep) + os.sep):
            return None
    return Path(candidate)


def check_listed_video(
    report: ImportReport, path: str | Path, lineno: int | None, video: Path | None, name: str = ""
) -> bool:
    """Whether the video a list line names exists and is a file; otherwise the problem is reported.

    Every split-file format (UCF101, HMDB51, Hollywood2) names videos that may
    be missing or be folders; one check keeps the wording the same for all.
    """
    if video is None or not video.exists():
        report.problem(path, lineno, f"video not found: {video or name}", skip="missing video")
        return False
    if video.is_dir():
        report.problem(path, lineno, f"is a directory, not a video: {video}", skip="not a file")
        return False
    if (why := not_a_file(video.stat())) is not None:
        report.problem(path, lineno, f"{why}: {video}", skip="not a file")
        return False
    return True


def read_lines(path: str | Path, report: ImportReport) -> list[tuple[int, str]]:
    """Non-blank lines of a text file as (1-based line number, stripped text).

    CRLF and LF are both accepted; undecodable bytes are replaced (the line is
    then reported as malformed by the parser). An unreadable file is reported
    and yields no lines.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        report.problem(
            path, None, f"cannot read file ({e.strerror or e})", skip="unreadable list file"
        )
        return []
    text = raw.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s:
            out.append((i, s))
    return out


def is_printable_entry(text: str) -> bool:
    """False for lines with control characters or replacement chars (binary junk)."""
    return _JUNK.search(text) is None


# --------------------------------------------------------------------------
# re-encoding (the readability check lives in probe.py)
# --------------------------------------------------------------------------


def reencode_to_mp4(src: str | Path, dst: str | Path) -> Path:
    """H.264/AAC MP4 the App can play; reuses ``dst`` when newer than ``src``."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime and dst.stat().st_size > 0:
        return dst
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("re-encoding needs the ffmpeg binary on PATH (apt-get install ffmpeg)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst, suffix=".part.mp4") as tmp:
        cmd = [
            ffmpeg, "-nostdin", "-y", "-v", "error", "-i", str(src),
            "-map", "0:v:0", "-map", "0:a:0?",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
            "-c:a", "aac", "-movflags", "+faststart", "-f", "mp4", str(tmp),
        ]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if res.returncode != 0:
            raise RuntimeError(f"{src}: ffmpeg failed: {res.stderr.strip()[-300:]}")
    return dst


def default_reencode_dir() -> Path:
    import fiftyone as fo

    return Path(fo.config.default_dataset_dir) / "genre_reencoded"


def label_names(value) -> list[str]:
    """Class names of a stored ``source_label`` (either type, as objects or raw documents)."""
    if value is None:
        return []
    if isinstance(value, dict):
        items = value.get("classifications")
        return [c.get("label") for c in items] if items is not None else [value.get("label")]
    if hasattr(value, "classifications"):
        return [c.label for c in value.classifications]
    return [value.label]
