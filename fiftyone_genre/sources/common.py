"""What every importer shares: the sample schema, safe paths, idempotent adds, the report.

Each source module only *parses* its official layout into :class:`Entry`
objects and :class:`ImportProblem` records; :func:`add_entries` turns entries
into samples. Keeping that in one place is what makes every source produce the
same schema and what makes re-imports idempotent (samples are keyed on their
media path, and on ``original_filepath`` when re-encoded).

Failure policy (documented in the README):

* a split-file line naming a video that is not on disk, a malformed line, an
  unknown class, or a path escaping the dataset root -> the entry is skipped
  and reported with file and line number;
* a video file that exists but cannot be read (garbage, truncated, zero bytes,
  no video stream) -> the sample *is* imported, so the user sees it in the
  App, and flagged with ``genre_errors = ["import: <reason>"]`` and the
  ``genre:error`` tag; later stages skip such samples.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiftyone_genre import genres as g
from fiftyone_genre.utils import ProgressFn, atomic_path, track

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
        return f"{where}: {self.reason}"


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


@dataclass
class ImportReport:
    """What an import did; ``str(report)`` is the summary printed at the end."""

    source: str
    dataset: str
    root: str
    imported: int = 0  # new samples added
    existing: int = 0  # already in the dataset (re-import): nothing added
    updated: int = 0  # existing samples whose source fields changed (e.g. another fold)
    flagged: int = 0  # imported but unreadable (genre_errors set)
    reencoded: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count of skipped entries
    problems: list[ImportProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    by_split: Counter = field(default_factory=Counter)
    by_label: Counter = field(default_factory=Counter)
    sample_ids: list[str] = field(default_factory=list)  # ids of the new samples

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dataset": self.dataset,
            "root": self.root,
            "imported": self.imported,
            "existing": self.existing,
            "updated": self.updated,
            "flagged": self.flagged,
            "reencoded": self.reencoded,
            "skipped": dict(self.skipped),
            "problems": [str(p) for p in self.problems],
            "notes": list(self.notes),
            "by_split": dict(self.by_split),
            "by_label": dict(self.by_label),
        }

    def __str__(self) -> str:
        lines = [
            f"{self.source} import from {self.root} into dataset '{self.dataset}':",
            f"  imported {self.imported} new sample(s), {self.existing} already present"
            + (f" ({self.updated} updated)" if self.updated else "")
            + (f", {self.reencoded} re-encoded to MP4" if self.reencoded else ""),
        ]
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
        lines += [f"  note: {n}" for n in self.notes]
        if self.problems:
            lines.append(f"  {len(self.problems)} problem(s):")
            shown = self.problems[:50]
            lines += [f"    {p}" for p in shown]
            if len(self.problems) > len(shown):
                lines.append(f"    ... and {len(self.problems) - len(shown)} more")
        return "\n".join(lines)


# --------------------------------------------------------------------------
# datasets, paths and text files
# --------------------------------------------------------------------------


def get_dataset(dataset):
    """A ``fo.Dataset`` from a dataset or a name (created persistent if missing)."""
    import fiftyone as fo

    if isinstance(dataset, str):
        if fo.dataset_exists(dataset):
            return fo.load_dataset(dataset)
        ds = fo.Dataset(dataset)
        ds.persistent = True
        return ds
    if hasattr(dataset, "_dataset") and not isinstance(dataset, fo.Dataset):
        raise ValueError("import into a dataset, not a view")
    return dataset


def norm_path(path: str | Path) -> str:
    """The path as FiftyOne stores ``filepath`` (absolute, user-expanded, not resolved)."""
    return os.path.abspath(os.path.expanduser(str(path)))


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
    base = Path(root).absolute()
    candidate = Path(os.path.normpath(base / rel))
    try:
        candidate.relative_to(base)
    except ValueError:
        return None
    try:  # a symlink inside the tree may still point outside it
        candidate.resolve().relative_to(base.resolve())
    except ValueError:
        if candidate.is_symlink():
            return None
    return candidate


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
    return not any((ord(c) < 32 and c not in "\t") or c == "\ufffd" for c in text)


# --------------------------------------------------------------------------
# media checks and re-encoding
# --------------------------------------------------------------------------


def probe_problem(path: str | Path) -> str | None:
    """Why a video cannot be used (None when it opens and has a video stream)."""
    import av

    p = Path(path)
    try:
        if p.is_dir():
            return "is a directory, not a video file"
        if p.stat().st_size == 0:
            return "zero-byte file"
    except OSError as e:
        return f"cannot stat file ({e.strerror or e})"
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                return "no video stream (audio-only file)"
            stream = container.streams.video[0]
            # decode one frame: catches truncated files whose header parses
            for _frame in container.decode(stream):
                break
            else:
                return "no decodable video frames"
    except Exception as e:  # noqa: BLE001 - PyAV raises many FFmpeg error types
        detail = getattr(e, "strerror", None) or str(e)
        return f"cannot be decoded ({detail})"
    return None


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


# --------------------------------------------------------------------------
# labels and the sample schema
# --------------------------------------------------------------------------


def _label_is_multi(dataset) -> bool | None:
    """True/False when ``source_label`` exists as Classifications/Classification."""
    import fiftyone as fo

    fld = dataset.get_field(g.SOURCE_LABEL_FIELD)
    if fld is None:
        return None
    return getattr(fld, "document_type", None) is fo.Classifications


def ensure_label_kind(dataset, multi: bool, report: ImportReport) -> bool:
    """Decide whether ``source_label`` holds Classification or Classifications.

    A field has one type per dataset: the first import decides. When a
    multi-label source (Hollywood2, YouTube-8M) joins a dataset whose labels
    are single ``Classification``, the existing labels are promoted losslessly
    to one-element ``Classifications``; single-label sources joining a
    multi-label dataset write one-element ``Classifications``.
    """
    import fiftyone as fo

    current = _label_is_multi(dataset)
    if current is None:
        return multi
    if current or not multi:
        return current
    ids = dataset.values("id")
    values = dataset.values(g.SOURCE_LABEL_FIELD)
    dataset.delete_sample_field(g.SOURCE_LABEL_FIELD)
    promoted = [fo.Classifications(classifications=[v]) if v is not None else None for v in values]
    dataset.set_values(g.SOURCE_LABEL_FIELD, dict(zip(ids, promoted)), key_field="id")
    report.notes.append(
        f"'{g.SOURCE_LABEL_FIELD}' promoted from Classification to Classifications "
        f"on {len(ids)} existing sample(s) so multi-label {report.source} labels fit"
    )
    return True


def declare_schema(dataset, with_original: bool = False) -> None:
    """Declare the string fields up front: a field whose values are all None
    (e.g. ``source_split`` of a folder tree) would otherwise never exist."""
    import fiftyone as fo

    names = [g.SOURCE_FIELD, g.SOURCE_SPLIT_FIELD, g.GROUP_FIELD]
    if with_original:
        names.append(g.ORIGINAL_PATH_FIELD)
    for name in names:
        if not dataset.has_field(name):
            dataset.add_sample_field(name, fo.StringField)


def make_label(
    labels: list[str], multi: bool, attrs: dict[str, dict[str, Any]] | None = None
):
    """``source_label`` value; ``attrs`` maps a class name to its Classification's attributes."""
    import fiftyone as fo

    attrs = attrs or {}

    def one(x: str):
        return fo.Classification(label=x, **attrs.get(x, {}))

    if multi:
        return fo.Classifications(classifications=[one(x) for x in labels])
    return one(labels[0]) if labels else None


def _label_attrs_differ(value, attrs: dict[str, dict[str, Any]]) -> bool:
    """True when a stored label lacks (or has other values for) the entry's attributes."""
    if not attrs or value is None:
        return False
    items = value.classifications if hasattr(value, "classifications") else [value]
    for c in items:
        for key, want in attrs.get(c.label, {}).items():
            if getattr(c, key, None) != want:
                return True
    return False


def label_names(value) -> list[str]:
    """Class names of a stored ``source_label`` (either type)."""
    if value is None:
        return []
    if hasattr(value, "classifications"):
        return [c.label for c in value.classifications]
    return [value.label]


def add_entries(
    dataset,
    entries: Iterable[Entry],
    source: str,
    report: ImportReport,
    multi_label: bool = False,
    reencode: bool = False,
    reencode_dir: str | Path | None = None,
    root: str | Path | None = None,
    compute_metadata: bool = True,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Add entries as samples (the common schema); existing filepaths add nothing.

    Re-import keys on ``filepath`` and ``original_filepath``. Existing samples
    get their importer-owned fields (``source_split``, ``group``,
    ``source_label``) refreshed when they differ, e.g. after importing another
    fold; user fields (``genre``, ``split``, tags) are never touched.
    """
    import fiftyone as fo

    entries = list(entries)
    multi = ensure_label_kind(dataset, multi_label, report) if entries else multi_label
    if entries:
        declare_schema(dataset, with_original=reencode)

    existing: dict[str, str] = {}
    if len(dataset):
        for sid, fp in zip(*dataset.values(["id", "filepath"])):
            existing[fp] = sid
        if dataset.has_field(g.ORIGINAL_PATH_FIELD):
            for sid, fp in zip(*dataset.values(["id", g.ORIGINAL_PATH_FIELD])):
                if fp:
                    existing[fp] = sid

    new_samples: list[Any] = []
    seen: set[str] = set()
    updates: dict[str, Entry] = {}
    rdir = Path(reencode_dir) if reencode_dir else default_reencode_dir() / dataset.name / source
    for entry in track(entries, desc=f"import {source}", progress=progress):
        fp = norm_path(entry.filepath)
        if fp in seen:
            continue
        seen.add(fp)
        report.by_split[entry.split or "none"] += 1
        for lab in entry.labels:
            report.by_label[lab] += 1
        if fp in existing:
            report.existing += 1
            updates[existing[fp]] = entry
            continue
        fields = {
            g.SOURCE_FIELD: source,
            g.SOURCE_LABEL_FIELD: make_label(entry.labels, multi, entry.label_attrs),
            g.SOURCE_SPLIT_FIELD: entry.split,
            g.GROUP_FIELD: entry.group,
            **entry.fields,
        }
        media = fp
        if reencode and Path(fp).suffix.lower() != ".mp4":
            rel = _rel_for(fp, root)
            try:
                media = norm_path(reencode_to_mp4(fp, rdir / Path(rel).with_suffix(".mp4")))
                fields[g.ORIGINAL_PATH_FIELD] = fp
                report.reencoded += 1
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                report.problem(fp, None, f"re-encode failed, keeping the original: {e}")
            if media in existing:
                report.existing += 1
                updates[existing[media]] = entry
                continue
        sample = fo.Sample(filepath=media, tags=list(entry.tags), **fields)
        new_samples.append(sample)

    if updates:
        report.updated = _refresh_existing(dataset, updates, multi)
    if new_samples:
        report.sample_ids = list(dataset.add_samples(new_samples, progress=False))
        report.imported = len(report.sample_ids)
        view = dataset.select(report.sample_ids)
        if compute_metadata:
            # a worker pool costs more than it saves on small imports
            workers = 1 if len(new_samples) < 64 else None
            view.compute_metadata(
                num_workers=workers, skip_failures=True, warn_failures=False, progress=False
            )
            _flag_unreadable(view, report)
    return report


def _rel_for(fp: str, root: str | Path | None) -> str:
    if root is not None:
        try:
            return Path(fp).relative_to(Path(root).absolute()).as_posix()
        except ValueError:
            pass
    return Path(fp).name


def _refresh_existing(dataset, updates: dict[str, Entry], multi: bool) -> int:
    changed = 0
    view = dataset.select(list(updates))
    for sample in view.iter_samples(autosave=True, batch_size=200):
        entry = updates[sample.id]
        dirty = False
        if sample[g.SOURCE_SPLIT_FIELD] != entry.split:
            sample[g.SOURCE_SPLIT_FIELD] = entry.split
            dirty = True
        if sample[g.GROUP_FIELD] != entry.group:
            sample[g.GROUP_FIELD] = entry.group
            dirty = True
        current = sample[g.SOURCE_LABEL_FIELD]
        if label_names(current) != list(entry.labels) or _label_attrs_differ(
            current, entry.label_attrs
        ):
            sample[g.SOURCE_LABEL_FIELD] = make_label(entry.labels, multi, entry.label_attrs)
            dirty = True
        changed += dirty
    return changed


def _flag_unreadable(view, report: ImportReport) -> None:
    """Record ``genre_errors`` on new samples whose metadata could not be computed.

    ffprobe already opened every file; only its failures are probed again
    (with PyAV) to name the reason. Without metadata nothing is checked here
    and feature extraction reports unreadable files instead.
    """
    for sample in view.exists("metadata", False).iter_samples(autosave=True, batch_size=100):
        reason = probe_problem(sample.filepath)
        if reason is None:
            continue
        g.record_error(sample, "import", f"unreadable video: {reason}")
        report.flagged += 1
        report.problem(sample.filepath, None, f"unreadable video: {reason} (imported, flagged)")
