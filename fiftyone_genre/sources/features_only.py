"""Features-only samples: YouTube-8M records without a video, as samples FiftyOne and its App accept.

A FiftyOne video sample needs a file to show. Each record without a local
video becomes a sample whose ``filepath`` is one shared placeholder clip
("features only / no video file", 1 s, H.264, shipped in ``assets/``), marked
with ``features_only = True`` and the ``features-only`` tag, so the App's grid
and modal open without a broken tile or an error, and mixed datasets (real
videos beside records) still work. The placeholder is copied next to the
YouTube-8M packs (``<store root>/yt8m/``), never pointed at inside the
installed package (that path changes on reinstall), and re-created by the
next import if it goes missing.

Identity is the record, not the file: every features-only sample shares the
placeholder path, so :mod:`fiftyone_genre.sources.adding` matches them on
``yt8m:<id>``, and split, the leakage check and feature extraction skip their
path. Their ``metadata`` is the placeholder's, read once and copied (a probe
per sample would take an hour at 17,499 records), so ``predict`` never probes
them either.

New features-only samples are written as the documents ``add_samples``
writes, built as plain dicts (the first batch goes through ``add_samples``
itself so FiftyOne declares the schema): building ``fo.Sample`` and
``fo.Classification`` objects for every record and label was most of an
import's time (``benchmarks/bench_yt8m.py`` measures it against its floor).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fiftyone_genre import genres as g
from fiftyone_genre.sources.common import Entry, ImportReport
from fiftyone_genre.sources.probe import probe_many, probe_video
from fiftyone_genre.utils import ProgressFn, atomic_path, track

PLACEHOLDER_ASSET = Path(__file__).resolve().parent / "assets" / "features_only.mp4"
#: The copy's name; a new placeholder design gets a new name, so old samples keep theirs.
PLACEHOLDER_NAME = "features_only_v1.mp4"


def placeholder_path(store_root: str | Path) -> Path:
    return Path(store_root).absolute() / "yt8m" / PLACEHOLDER_NAME


def ensure_placeholder(store_root: str | Path) -> Path:
    """The placeholder clip under ``store_root``, copied there (atomically) when missing or damaged."""
    dst = placeholder_path(store_root)
    size = PLACEHOLDER_ASSET.stat().st_size
    if dst.is_file() and dst.stat().st_size == size:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst, suffix=".part.mp4") as tmp:
        shutil.copyfile(PLACEHOLDER_ASSET, tmp)
    return dst


def is_features_only(entry: Entry) -> bool:
    return bool(entry.fields.get(g.FEATURES_ONLY_FIELD))


def placeholder_metadata(path: str | Path):
    """``fo.VideoMetadata`` of the placeholder, read once per import and copied into every sample."""
    probe = probe_video(str(path))
    if probe.metadata is None:
        raise RuntimeError(f"{path}: the features-only placeholder is unreadable ({probe.problem})")
    return probe.metadata


# --------------------------------------------------------------------------
# new samples
# --------------------------------------------------------------------------


def add_features_only(
    dataset, entries: list[Entry], report: ImportReport, batch: int, progress: ProgressFn | None = None
) -> None:
    """Add one sample per entry (all share the placeholder path); ids go into ``report.sample_ids``."""
    if not entries:
        return
    metadata = placeholder_metadata(entries[0].filepath)
    batches = [entries[i : i + batch] for i in range(0, len(entries), batch)]
    meta_doc = None
    for part in track(batches, desc="add features-only samples", progress=progress):
        if meta_doc is None and _needs_schema(dataset, part[0]):
            samples = [_sample(e, metadata, report.source) for e in part]
            report.sample_ids.extend(dataset.add_samples(samples, expand_schema=True, validate=False, progress=False))
            continue
        meta_doc = meta_doc or metadata.to_dict()
        report.sample_ids.extend(_insert(dataset, part, meta_doc, report.source))
    report.features_only = len(entries)


def _needs_schema(dataset, entry: Entry) -> bool:
    """Whether FiftyOne must declare a field first (a new dataset, or the first records in it)."""
    known = set(dataset.get_field_schema())
    wanted = {g.SOURCE_FIELD, g.SOURCE_LABEL_FIELD, g.SOURCE_SPLIT_FIELD, g.GROUP_FIELD, "metadata", *entry.fields}
    return not wanted <= known or dataset.media_type != "video"


def _labels(entry: Entry):
    import fiftyone as fo

    return fo.Classifications(
        classifications=[fo.Classification(label=x, **entry.label_attrs.get(x, {})) for x in entry.labels]
    )


def _sample(entry: Entry, metadata, source: str):
    import fiftyone as fo

    return fo.Sample(
        filepath=entry.filepath, tags=list(entry.tags), metadata=metadata, source=source,
        source_label=_labels(entry), source_split=entry.split, group=entry.group, **entry.fields,
    )  # fmt: skip


def _document(entry: Entry, meta_doc, source: str, stamp: dict[str, Any]) -> dict[str, Any]:
    """The document ``add_samples`` would store for ``_sample(entry)`` (None values are not stored)."""
    from bson import ObjectId
    from fiftyone.core.odm.sample import _generate_rand

    labels = [
        {"_id": ObjectId(), "_cls": "Classification", "tags": [], "label": x, **entry.label_attrs.get(x, {})}
        for x in entry.labels
    ]
    doc = {
        "filepath": entry.filepath, "tags": list(entry.tags), "metadata": meta_doc, "_media_type": "video",
        "_rand": _generate_rand(), g.SOURCE_FIELD: source,
        g.SOURCE_LABEL_FIELD: {"_cls": "Classifications", "classifications": labels},
        g.SOURCE_SPLIT_FIELD: entry.split, g.GROUP_FIELD: entry.group, **entry.fields, **stamp,
    }  # fmt: skip
    return {k: v for k, v in doc.items() if v is not None}


def _insert(dataset, entries: Iterable[Entry], meta_doc, source: str) -> list[str]:
    """Insert the documents; a refused write raises the ``ValueError`` ``add_samples`` raises."""
    from pymongo.errors import BulkWriteError

    now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as FiftyOne stores it
    stamp = {"_dataset_id": dataset._doc.id, "created_at": now, "last_modified_at": now}
    docs = [_document(e, meta_doc, source, stamp) for e in entries]
    try:
        dataset._sample_collection.insert_many(docs)
    except BulkWriteError as e:
        raise ValueError(e.details["writeErrors"][0]["errmsg"]) from e
    return [str(d["_id"]) for d in docs]


# --------------------------------------------------------------------------
# a record that now has a video
# --------------------------------------------------------------------------


def attach_videos(dataset, media: dict[str, str], report: ImportReport, workers: int | None = None) -> None:
    """Features-only samples whose record now has a local video: point them at it (no duplicate).

    ``media`` maps sample id -> video path. The sample keeps its id, labels,
    genre and split; it loses the marker and gets the file's metadata.
    """
    if not media:
        return
    found = dict(zip(media, probe_many(list(media.values()), workers)))
    for sid, probe in found.items():
        if probe.problem is not None:
            report.problem(media[sid], None, f"unreadable video ({probe.problem}): its record stays features-only")
    ids = [sid for sid, probe in found.items() if probe.problem is None]
    if not ids:
        return
    tags = dict(zip(*dataset.select(ids).values(["id", "tags"])))
    dataset.set_values("filepath", {i: os.path.abspath(media[i]) for i in ids}, key_field="id")
    dataset.set_values(g.FEATURES_ONLY_FIELD, dict.fromkeys(ids, False), key_field="id")
    dataset.set_values("tags", {i: [t for t in tags[i] if t != g.FEATURES_ONLY_TAG] for i in ids}, key_field="id")
    dataset.set_values("metadata", {i: found[i].metadata for i in ids}, key_field="id")
    report.notes.append(f"{len(ids)} features-only sample(s) now have their local video (same sample, video attached)")
