"""The leakage check: no group, and no file with identical content, in two splits.

Training calls :func:`check_leakage` before it starts. Content hashes are
kept in a small on-disk cache keyed by path, size and mtime, so a re-check of
a large dataset reads only new or changed files.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fiftyone_genre import genres as g
from fiftyone_genre.report import Report
from fiftyone_genre.samples import field_values
from fiftyone_genre.utils import ProgressFn, shown, track


class LeakageError(ValueError):
    """A group or an identical file appears in more than one split."""


def default_hash_cache() -> Path:
    """Where content hashes are cached (override with FIFTYONE_GENRE_HASH_CACHE)."""
    env = os.environ.get("FIFTYONE_GENRE_HASH_CACHE")
    if env:
        return Path(env)
    import fiftyone as fo

    return Path(fo.config.default_dataset_dir).expanduser() / "genre_hash_cache.sqlite"


class HashCache:
    """sha256 of files, cached in sqlite by (path, size, mtime_ns): a changed file rehashes."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_hash_cache()
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, str]] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, sha256 TEXT)"
            )
        except (OSError, sqlite3.Error):
            self._db = None  # read-only home etc.: hash without a cache

    def digest(self, path: str, st: os.stat_result) -> str:
        if self._db is not None:
            row = self._db.execute(
                "SELECT sha256 FROM hashes WHERE path=? AND size=? AND mtime_ns=?",
                (path, st.st_size, st.st_mtime_ns),
            ).fetchone()
            if row:
                return row[0]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = h.hexdigest()
        self._pending.append((path, st.st_size, st.st_mtime_ns, digest))
        if len(self._pending) >= 500:
            self.flush()
        return digest

    def flush(self) -> None:
        """Write new hashes in one transaction (one fsync, not one per file)."""
        if self._db is not None and self._pending:
            try:
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)", self._pending)
            except sqlite3.Error:
                pass
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None


def content_hashes(
    paths, hash_cache: str | Path | None = None, progress: ProgressFn | None = None
) -> tuple[dict[str, list[str]], int, list[str]]:
    """sha256 -> paths, for the files whose size equals another file's.

    Identical content implies identical size, so files of a unique size are
    never read. Returns (by_hash, files hashed, missing paths).
    """
    missing: list[str] = []
    stats: dict[str, os.stat_result] = {}
    by_size: dict[int, list[str]] = defaultdict(list)
    for p in dict.fromkeys(paths):
        try:
            st = os.stat(p)
        except OSError:
            missing.append(p)
            continue
        if not os.path.isfile(p):
            continue
        stats[p] = st
        by_size[st.st_size].append(p)
    to_hash = [p for ps in by_size.values() if len(ps) > 1 for p in ps]
    by_hash: dict[str, list[str]] = defaultdict(list)
    hashed = 0
    cache = HashCache(hash_cache)
    try:
        for p in track(to_hash, desc="hash", progress=progress):
            try:
                by_hash[cache.digest(p, stats[p])].append(p)
                hashed += 1
            except OSError:
                missing.append(p)
    finally:
        cache.close()
    return dict(by_hash), hashed, missing


@dataclass
class LeakageReport(Report):
    """A clean check: what was looked at, and identical content carrying different labels."""

    samples: int = 0
    groups: int = 0
    files_hashed: int = 0
    missing_files: list[str] = field(default_factory=list)
    #: one line per set of identical files whose samples carry different genres
    conflicting_labels: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        s = (
            f"no leakage: {self.samples} split clips, {self.groups} groups, "
            f"{self.files_hashed} files hashed (same size as another file)"
        )
        if self.missing_files:
            s += f"; {len(self.missing_files)} files missing (not checked): " + ", ".join(
                shown(p) for p in self.missing_files[:5]
            )
        return s + _label_warning(self.conflicting_labels)


def _label_warning(conflicts: list[str]) -> str:
    if not conflicts:
        return ""
    more = f"\n  ... and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
    return (
        f"\nwarning: identical content carries different labels in {len(conflicts)} case(s) "
        "(a label is wrong, or the clip belongs to no single genre):\n  " + "\n  ".join(conflicts[:10]) + more
    )


@dataclass
class _LeakageInput:
    """What the check reads from the collection, per split sample and per labelled file."""

    by_group: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    split_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    labels_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    samples: int = 0


def _leakage_input(collection) -> _LeakageInput:
    ids = collection.values("id")
    n = len(ids)
    splits = field_values(collection, g.SPLIT_FIELD, n)
    groups = field_values(collection, g.GROUP_FIELD, n)
    paths = collection.values("filepath")
    originals = field_values(collection, g.ORIGINAL_PATH_FIELD, n)
    labels = field_values(collection, f"{g.GENRE_FIELD}.label", n)
    only = field_values(collection, g.FEATURES_ONLY_FIELD, n)
    out = _LeakageInput()
    for i in range(n):
        # features-only samples share one placeholder file: their group is their identity
        files = set() if only[i] else {paths[i], originals[i]} - {None, ""}
        if labels[i]:
            for p in files:
                out.labels_of[p].add(str(labels[i]))
        s = splits[i]
        if not s:
            continue
        out.samples += 1
        if groups[i]:
            out.by_group[str(groups[i])][s] += 1
        for p in files:
            out.split_of[p].add(s)
    return out


def _split_problems(data: _LeakageInput, by_hash: dict[str, list[str]]) -> list[str]:
    """Groups and files (same path or identical content) that sit in more than one split."""
    problems: list[str] = []
    for key, per in sorted(data.by_group.items()):
        if len(per) > 1:
            where = ", ".join(f"{s} ({c})" for s, c in sorted(per.items()))
            problems.append(f"group {key!r} is in {where}")
    split_of = data.split_of
    hashed = {p for ps in by_hash.values() for p in ps}
    for digest, ps in sorted(by_hash.items()):
        ps = [p for p in ps if p in split_of]
        used = set().union(*(split_of[p] for p in ps)) if ps else set()
        if len(ps) > 1 and len(used) > 1:
            where = ", ".join(f"{shown(p)} ({'/'.join(sorted(split_of[p]))})" for p in sorted(ps))
            problems.append(f"identical content sha256:{digest[:12]} in {where}")
        elif len(ps) == 1 and len(split_of[ps[0]]) > 1:
            problems.append(f"file {shown(ps[0])} is in {', '.join(sorted(split_of[ps[0]]))}")
    for p, ss in split_of.items():  # the same path in two splits needs no hashing
        if len(ss) > 1 and p not in hashed:
            problems.append(f"file {shown(p)} is in {', '.join(sorted(ss))}")
    return problems


def _label_conflicts(data: _LeakageInput, by_hash: dict[str, list[str]]) -> list[str]:
    """Identical content (or one path imported twice) under different genres."""
    conflicts: list[str] = []
    hashed = set()
    for digest, ps in sorted(by_hash.items()):
        ps = sorted(p for p in ps if p in data.labels_of)
        hashed.update(ps)
        labels = set().union(*(data.labels_of[p] for p in ps)) if ps else set()
        if len(labels) > 1:
            files = ", ".join(shown(p) for p in ps[:6]) + (f" and {len(ps) - 6} more" if len(ps) > 6 else "")
            conflicts.append(f"sha256:{digest[:12]} labelled {', '.join(sorted(labels))}: {files}")
    for p, labels in sorted(data.labels_of.items()):
        if len(labels) > 1 and p not in hashed:
            conflicts.append(f"{shown(p)} labelled {', '.join(sorted(labels))}")
    return conflicts


def check_leakage(collection, hash_cache: str | Path | None = None, progress: ProgressFn | None = None) -> LeakageReport:
    """Raise :class:`LeakageError` if a group or an identical file spans splits.

    Only files whose size equals another file's are hashed (identical content
    implies identical size), and hashes are cached by path+size+mtime, so a
    re-check of a large dataset is cheap. Both ``filepath`` and, when set,
    ``original_filepath`` are compared. Identical content carrying different
    genres (split or not) is no leakage but is reported: one label is wrong.
    """
    data = _leakage_input(collection)
    report = LeakageReport(samples=data.samples, groups=len(data.by_group))
    by_hash, report.files_hashed, missing = content_hashes(
        list(dict.fromkeys([*data.split_of, *data.labels_of])), hash_cache, progress
    )
    report.missing_files = [p for p in missing if p in data.split_of]
    report.conflicting_labels = _label_conflicts(data, by_hash)
    problems = _split_problems(data, by_hash)
    if problems:
        shown_problems = problems[:25]
        more = f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else ""
        raise LeakageError(
            f"leakage between splits ({len(problems)} problem(s)); re-run split:\n  "
            + "\n  ".join(shown_problems)
            + more
            + _label_warning(report.conflicting_labels)
        )
    return report
