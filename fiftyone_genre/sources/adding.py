"""Parse result -> samples: the one import body every source shares.

:func:`import_with` runs a source's ``parse_*`` function and hands its
:class:`~fiftyone_genre.sources.common.ParseResult` to :func:`add_entries`,
which works in named phases, each with progress:

1. index what the dataset already holds (keyed on the resolved path);
2. plan: which entries are new, which match an existing sample;
3. refresh importer-owned fields of matched samples that differ (bulk
   ``set_values``, nothing written when nothing changed), re-read metadata of
   matched files whose size changed, and report samples whose file vanished;
4. probe every new file once with PyAV (readability + ``fo.VideoMetadata``,
   threads) and add the samples, metadata and error flags included, in
   batches: the first through ``add_samples`` (it declares the schema), the
   rest as the same documents inserted directly.

So an import costs about a header probe plus a bare ``add_samples`` per new
file, and a re-import of an unchanged tree costs a few bulk reads and stats.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiftyone_genre import genres as g
from fiftyone_genre.database import dataset_writer
from fiftyone_genre.samples import record_error
from fiftyone_genre.sources.common import (
    Entry,
    ImportReport,
    ParseResult,
    default_reencode_dir,
    get_dataset,
    label_names,
    norm_path,
    reencode_to_mp4,
)
from fiftyone_genre.sources.features_only import (
    add_features_only,
    attach_videos,
    is_features_only,
)
from fiftyone_genre.sources.probe import iter_probes, probe_many
from fiftyone_genre.utils import ProgressFn, track

#: Samples per ``add_samples`` call: one progress step, small enough to show movement.
ADD_BATCH = 500


@dataclass
class ImportOptions:
    """How entries become samples (the options every importer takes)."""

    reencode: bool = False
    reencode_dir: str | Path | None = None
    compute_metadata: bool = True
    progress: ProgressFn | None = None
    workers: int | None = None  # probe threads; None = a default for this machine


class PathKeys:
    """Resolved-path keys with one ``realpath`` per folder (13,320 files, 101 folders).

    A file that is itself a symlink is resolved on its own. The cache lives
    for one import, so a link changed between imports is seen.
    """

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        path = norm_path(path)
        if os.path.islink(path):
            return os.path.realpath(path)
        folder, name = os.path.split(path)
        real = self._dirs.get(folder)
        if real is None:
            real = self._dirs[folder] = os.path.realpath(folder)
        return os.path.join(real, name)


@dataclass
class _Existing:
    """What the dataset holds: resolved path (or original path) -> sample id."""

    by_key: dict[str, str] = field(default_factory=dict)
    path_of: dict[str, str] = field(default_factory=dict)  # id -> path the import saw
    source_of: dict[str, str | None] = field(default_factory=dict)
    #: ``Entry.identity`` -> sample id (YouTube-8M records: ``yt8m:<id>``)
    by_identity: dict[str, str] = field(default_factory=dict)
    features_only: set[str] = field(default_factory=set)  # ids of samples without a video


@dataclass
class _New:
    """A sample to add: the media path, the source path when re-encoded, its entry."""

    media: str
    original: str | None
    entry: Entry


@dataclass
class _Plan:
    new: list[_New] = field(default_factory=list)
    updates: dict[str, Entry] = field(default_factory=dict)  # sample id -> entry
    features_only: list[Entry] = field(default_factory=list)  # new samples without a video
    attach: dict[str, str] = field(default_factory=dict)  # features-only sample id -> its video now


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


def make_label(labels: list[str], multi: bool, attrs: dict[str, dict[str, Any]] | None = None):
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
    if isinstance(value, dict):  # the raw document (_refresh_existing reads those)
        items = value.get("classifications") or [value]
        return any(c.get(key) != want for c in items for key, want in attrs.get(c.get("label"), {}).items())
    items = value.classifications if hasattr(value, "classifications") else [value]
    for c in items:
        for key, want in attrs.get(c.label, {}).items():
            if getattr(c, key, None) != want:
                return True
    return False


# --------------------------------------------------------------------------
# the shared import body
# --------------------------------------------------------------------------


def import_with(
    parse_fn: Callable[..., ParseResult],
    dataset,
    root: str | Path,
    reencode: bool = False,
    reencode_dir: str | Path | None = None,
    compute_metadata: bool = True,
    progress: ProgressFn | None = None,
    **parse_kwargs: Any,
) -> ImportReport:
    """Parse ``root`` with ``parse_fn`` and add what it found to ``dataset``.

    The one body behind every ``import_<source>``: the layout is read (and
    its errors raised) before the dataset is created or touched.
    """
    result = parse_fn(root, progress=progress, **parse_kwargs)
    ds = get_dataset(dataset)
    result.report.dataset = ds.name
    result.report.root = str(Path(root).expanduser().absolute())
    options = ImportOptions(reencode, reencode_dir, compute_metadata, progress)
    return add_entries(ds, result, options)


def add_entries(dataset, result: ParseResult, options: ImportOptions | None = None) -> ImportReport:
    """Add a parse result as samples (the common schema); files already present add nothing.

    Existing samples get their importer-owned fields (``source_split``,
    ``group``, ``source_label``) refreshed when they differ, e.g. after
    importing another fold; user fields (``genre``, ``split``, tags) are
    never touched. The whole read-plan-add holds the dataset's writer lease
    (:func:`fiftyone_genre.database.dataset_writer`): a second import into
    the same dataset waits, then finds every file already present.
    """
    with dataset_writer(dataset, "importing into"):
        return _add_entries(dataset, result, options or ImportOptions())


def _add_entries(dataset, result: ParseResult, options: ImportOptions) -> ImportReport:
    report, entries = result.report, result.entries
    multi = result.multi_label
    if entries:
        multi = ensure_label_kind(dataset, multi, report)
        declare_schema(dataset, with_original=options.reencode)
    keys = PathKeys()
    existing = _index_existing(dataset, keys)
    plan = _plan(dataset, result, existing, keys, multi, options)
    attach_videos(dataset, plan.attach, report, options.workers)
    if plan.updates:
        report.updated = _refresh_existing(dataset, plan.updates, multi)
        with_video = [sid for sid in plan.updates if sid not in existing.features_only]
        if options.compute_metadata and with_video:
            _refresh_changed_media(dataset, with_video, report, options)
    _report_vanished(result, existing, set(plan.updates), keys)
    if plan.new:
        _add_new(dataset, plan.new, multi, report, options)
    add_features_only(dataset, plan.features_only, report, ADD_BATCH, options.progress)
    report.imported = len(report.sample_ids)
    if result.info and entries:
        dataset.info.update(result.info)
        dataset.save()
    return report


def _index_existing(dataset, keys: PathKeys) -> _Existing:
    """Every sample's identity: resolved ``filepath`` and ``original_filepath``."""
    out = _Existing()
    if not len(dataset):
        return out
    has_source = dataset.has_field(g.SOURCE_FIELD)
    fields = ["id", "filepath"] + ([g.SOURCE_FIELD] if has_source else [])
    values = dataset.values(fields)
    sources = values[2] if has_source else [None] * len(values[0])
    for sid, fp, src in zip(values[0], values[1], sources):
        out.by_key[keys(fp)] = sid
        out.path_of[sid] = fp
        out.source_of[sid] = src
    if dataset.has_field(g.ORIGINAL_PATH_FIELD):
        for sid, fp in zip(*dataset.values(["id", g.ORIGINAL_PATH_FIELD])):
            if fp:
                out.by_key[keys(fp)] = sid
                out.path_of[sid] = fp
    _index_identities(dataset, out)
    return out


def _index_identities(dataset, out: _Existing) -> None:
    """YouTube-8M samples by record (``yt8m:<id>``), and which of all samples have no video.

    Features-only samples share one placeholder file, so the path cannot tell
    them apart; their path is dropped from the path index (it would match
    every one of them).
    """
    if dataset.has_field(g.YT8M_ID_FIELD):
        for sid, src, vid in zip(*dataset.values(["id", g.SOURCE_FIELD, g.YT8M_ID_FIELD])):
            if vid and src == "yt8m":
                out.by_identity[f"yt8m:{vid}"] = sid
    if dataset.has_field(g.FEATURES_ONLY_FIELD):
        for sid, only in zip(*dataset.values(["id", g.FEATURES_ONLY_FIELD])):
            if only:
                out.features_only.add(sid)
                out.path_of.pop(sid, None)
        out.by_key = {k: sid for k, sid in out.by_key.items() if sid not in out.features_only}


def _plan(dataset, result, existing: _Existing, keys: PathKeys, multi: bool, options) -> _Plan:
    """Split entries into new samples and updates of existing ones (counts into the report)."""
    report = result.report
    plan, seen = _Plan(), set()
    for entry in track(result.entries, desc=f"import {report.source}", progress=options.progress):
        if is_features_only(entry):
            _plan_features_only(entry, existing, plan, seen, report)
            continue
        fp = norm_path(entry.filepath)
        key = keys(fp)
        if key in seen:
            continue
        seen.add(key)
        report.by_split[entry.split or "none"] += 1
        report.by_label.update(entry.labels)
        sid = existing.by_key.get(key)
        media, original = fp, None
        if sid is None and options.reencode and Path(fp).suffix.lower() != ".mp4":
            media, original = _reencoded(dataset, fp, result, report, options)
            sid = existing.by_key.get(keys(media))
        if sid is None and entry.identity in existing.by_identity:
            sid = existing.by_identity[entry.identity]
            if sid in existing.features_only:  # the record had no video when it was imported
                plan.attach[sid] = media
        if sid is not None:
            report.existing += 1
            plan.updates[sid] = entry
            continue
        plan.new.append(_New(media, original, entry))
    return plan


def _plan_features_only(entry: Entry, existing: _Existing, plan: _Plan, seen: set, report: ImportReport) -> None:
    """A record without a video: matched on its identity (never on the shared placeholder path)."""
    if entry.identity in seen:
        return
    seen.add(entry.identity)
    report.by_split[entry.split or "none"] += 1
    report.by_label.update(entry.labels)
    sid = existing.by_identity.get(entry.identity)  # type: ignore[arg-type]
    if sid is None:
        plan.features_only.append(entry)
        return
    report.existing += 1
    plan.updates[sid] = entry  # labels, split and group refreshed; a sample with a video keeps it


def _reencoded(dataset, fp: str, result, report: ImportReport, options) -> tuple[str, str | None]:
    """(media path, original path): the MP4 copy, or the original when ffmpeg fails."""
    rdir = (
        Path(options.reencode_dir)
        if options.reencode_dir
        else default_reencode_dir() / dataset.name / report.source
    )
    rel = _rel_for(fp, result.media_root)
    try:
        media = norm_path(reencode_to_mp4(fp, rdir / Path(rel).with_suffix(".mp4")))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        report.problem(fp, None, f"re-encode failed, keeping the original: {e}")
        return fp, None
    report.reencoded += 1
    return media, fp


def _new_sample(media: str, original: str | None, entry: Entry, multi: bool, source: str):
    import fiftyone as fo

    fields = {
        g.SOURCE_FIELD: source,
        g.SOURCE_LABEL_FIELD: make_label(entry.labels, multi, entry.label_attrs),
        g.SOURCE_SPLIT_FIELD: entry.split,
        g.GROUP_FIELD: entry.group,
        **entry.fields,
    }
    if original is not None:
        fields[g.ORIGINAL_PATH_FIELD] = original
    return fo.Sample(filepath=media, tags=list(entry.tags), **fields)


def _rel_for(fp: str, root: str | Path | None) -> str:
    if root is not None:
        try:
            return Path(fp).relative_to(Path(root).absolute()).as_posix()
        except ValueError:
            pass
    return Path(fp).name


def _refresh_existing(dataset, updates: dict[str, Entry], multi: bool) -> int:
    """Write split, group and label of matched samples where they differ; count samples changed.

    One bulk read and at most three bulk writes: an unchanged tree writes nothing.
    """
    view = dataset.select(list(updates))
    ids, splits, groups = view.values(["id", g.SOURCE_SPLIT_FIELD, g.GROUP_FIELD])
    # raw label documents: building label objects was most of a 17,499-record re-import
    labels = view.values(g.SOURCE_LABEL_FIELD, _raw=True)
    new_split, new_group, new_label = {}, {}, {}
    for sid, split, group, label in zip(ids, splits, groups, labels):
        entry = updates[sid]
        if split != entry.split:
            new_split[sid] = entry.split
        if group != entry.group:
            new_group[sid] = entry.group
        if label_names(label) != list(entry.labels) or _label_attrs_differ(
            label, entry.label_attrs
        ):
            new_label[sid] = make_label(entry.labels, multi, entry.label_attrs)
    for name, values in (
        (g.SOURCE_SPLIT_FIELD, new_split),
        (g.GROUP_FIELD, new_group),
        (g.SOURCE_LABEL_FIELD, new_label),
    ):
        if values:
            dataset.set_values(name, values, key_field="id")
    return len(set(new_split) | set(new_group) | set(new_label))


def _refresh_changed_media(dataset, ids: list[str], report: ImportReport, options) -> None:
    """Re-read metadata of matched files whose size on disk no longer matches it."""
    view = dataset.select(ids)
    sids, paths, sizes = view.values(["id", "filepath", "metadata.size_bytes"])
    changed = {}
    for sid, path, size in zip(sids, paths, sizes):
        try:
            now = os.stat(path).st_size
        except OSError:
            continue
        if size is not None and now != size:
            changed[sid] = path
    if not changed:
        return
    probes = probe_many(list(changed.values()), options.workers, options.progress)
    values = {sid: p.metadata for sid, p in zip(changed, probes) if p.metadata is not None}
    if values:
        dataset.set_values("metadata", values, key_field="id")
    report.notes.append(f"{len(values)} file(s) changed since the last import: metadata re-read")


def _report_vanished(result: ParseResult, existing: _Existing, matched: set[str], keys) -> None:
    """Samples of this source under this root whose file is gone: reported, never deleted."""
    report = result.report
    root = keys(str(result.media_root or report.root)).rstrip(os.sep) + os.sep
    for sid, path in existing.path_of.items():
        if sid in matched or existing.source_of.get(sid) != report.source:
            continue
        if not keys(path).startswith(root) or os.path.exists(path):
            continue
        report.vanished += 1
        report.problem(path, None, "file has vanished since it was imported (sample kept)")


def _add_new(
    dataset, todo: list[_New], multi: bool, report: ImportReport, options: ImportOptions
) -> None:
    """Probe new files (metadata + readability) and add them in batches, with progress.

    The probe threads run ahead of the batch being built and written, so
    reading the files overlaps the (GIL-bound) sample building and the
    database writes instead of adding to them.
    """
    paths = [t.media for t in todo] if options.compute_metadata else []
    batches = [todo[i : i + ADD_BATCH] for i in range(0, len(todo), ADD_BATCH)]
    desc = "read video metadata + add samples" if paths else "add samples"
    with iter_probes(paths, options.workers) as probes:
        for batch in track(batches, desc=desc, progress=options.progress):
            samples = [
                _new_sample(t.media, t.original, t.entry, multi, report.source) for t in batch
            ]
            if paths:
                for sample in samples:
                    _apply_probe(sample, next(probes), report)
            report.sample_ids.extend(_write_samples(dataset, samples))


def _write_samples(dataset, samples: list) -> list[str]:
    """Add ``samples``; returns their ids.

    Values were built from typed entries here, so FiftyOne's per-field
    validation is redundant. A batch that brings a new field or media type
    (the first one, usually) goes through ``add_samples``, which declares
    them; later batches are written as the documents ``add_samples`` would
    write (:func:`_insert_documents`).
    """
    if _has_new_fields(dataset, samples) or any(s.media_type != dataset.media_type for s in samples):
        return dataset.add_samples(samples, expand_schema=True, validate=False, progress=False)
    return _insert_documents(dataset, samples)


def _insert_documents(dataset, samples: list) -> list[str]:
    """Insert the documents FiftyOne's ``add_samples`` writes for ``samples``, and nothing else.

    Once the schema is declared, ``add_samples`` converts each sample to its
    document (``to_mongo_dict``, None values dropped, the dataset id and
    both timestamps added) and inserts them; it then converts every inserted
    document back into a sample object bound to the dataset and saves its
    (empty) frames. That second half was half of a UCF101-sized import and
    nothing here uses the bound objects. ``tests/test_importers.py`` checks
    that both paths store the same documents. A refused write raises the
    ``ValueError`` ``add_samples`` raises, with the database's message.
    """
    from datetime import datetime, timezone

    from pymongo.errors import BulkWriteError

    now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as FiftyOne stores it
    stamp = {"_dataset_id": dataset._doc.id, "created_at": now, "last_modified_at": now}
    docs = [
        {**{k: v for k, v in sample.to_mongo_dict(include_id=False).items() if v is not None}, **stamp}
        for sample in samples
    ]
    try:
        dataset._sample_collection.insert_many(docs)  # adds each document's _id
    except BulkWriteError as e:
        raise ValueError(e.details["writeErrors"][0]["errmsg"]) from e
    return [str(d["_id"]) for d in docs]


def _has_new_fields(dataset, samples) -> bool:
    """Whether any sample has a top-level field the dataset's schema lacks (then FiftyOne adds it)."""
    known = set(dataset.get_field_schema())
    return any(name not in known for sample in samples for name in sample.field_names)


def _apply_probe(sample, probe, report: ImportReport) -> None:
    """Metadata on a usable file; the error flag and a reported problem on the others."""
    if probe.problem is None:
        sample.metadata = probe.metadata
        return
    record_error(sample, "import", f"unreadable video: {probe.problem}")
    report.flagged += 1
    report.problem(sample.filepath, None, f"unreadable video: {probe.problem} (imported, flagged)")
