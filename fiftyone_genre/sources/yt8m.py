"""YouTube-8M: ``vocabulary.csv`` + video- or frame-level TFRecords, with or without local videos.

YouTube-8M ships features, not videos, and most of its videos are gone. Every
labelled record becomes a sample:

* a record with a local video named ``<id>.<ext>`` in the media folder is a
  video sample like any other (as in the paper);
* a record without one becomes a *features-only* sample
  (:mod:`fiftyone_genre.sources.features_only`: a shared placeholder clip,
  ``features_only = True``, tag ``features-only``), unless
  ``require_video=True``, which skips it as "unpaired" (the old behaviour).

Either way the record's features go once into the packed store training
and prediction read (:mod:`fiftyone_genre.modeling.yt8m_store`), keyed
``yt8m:<id>``: video-level records as one step (``mean_rgb`` 1,024 +
``mean_audio`` 128), frame-level records as one step per second (``rgb`` /
``audio`` uint8, dequantised with the starter code's formula). Nothing goes
into MongoDB and no file is written per record. Records are streamed, so a
frame-level shard is never held in memory whole.

TFRecords are read here without TensorFlow: the framing (length, masked
CRC32C, payload, masked CRC32C) is checked record by record, payloads parsed
with the protobuf classes bundled in the ``tfrecord`` package. Bad input gets
one line each, and nothing else is lost: a corrupt or truncated shard keeps
the records before the damage; label indices the vocabulary lacks are
dropped (the record is kept); a record without usable features is skipped
(kept when it has a local video); a shard mixing video- and frame-level
records is read whole, each record into its own feature space.

Each ``source_label`` Classification carries its entity's verticals from
``vocabulary.csv`` as ``vertical1``..``vertical3`` (non-empty ones only), and
``dataset.info["yt8m_vocabulary"]`` records the vocabulary's path, so the
mapping's vertical rules apply in :func:`fiftyone_genre.labels.remap.remap` without
passing a vocabulary again; ``dataset.info["yt8m_features"]`` records where
the packs are.

Official split from the record file name: ``train*`` -> train, ``validate*``
-> test (the labelled held-out set), ``test*`` -> unused (no labels).
"""

from __future__ import annotations

import csv
import os
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.features.spaces import YT8M_SPACES, yt8m_key
from fiftyone_genre.sources.adding import import_with
from fiftyone_genre.sources.common import (
    VIDEO_EXTENSIONS,
    Entry,
    ImportReport,
    ParseResult,
    is_printable_entry,
    require_dir,
)
from fiftyone_genre.sources.features_only import ensure_placeholder
from fiftyone_genre.utils import ProgressFn, track

SOURCE = "yt8m"
VIDEO_ID_FIELD = g.YT8M_ID_FIELD
UNPAIRED = "unpaired (no local video)"
NO_FEATURES = "no features"
#: Sizes of the official features (PCA'd Inception-v3 and VGGish).
RGB_DIM, AUDIO_DIM = 1024, 128


def _masked_crc(data: bytes) -> int:
    import crc32c

    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def iter_tfrecord(path: str | Path, report: ImportReport) -> Iterator[tuple[int, bytes]]:
    """(record number, payload) for each intact record; framing errors are reported.

    A corrupt length or a truncated tail ends the file (the framing after it
    cannot be trusted); a payload CRC mismatch skips only that record.
    """
    with open(path, "rb") as f:
        n = 0
        while True:
            header = f.read(12)
            if not header:
                return
            n += 1
            if len(header) < 12:
                report.problem(
                    path,
                    None,
                    f"record {n}: truncated header; rest of file ignored",
                    skip="corrupt record",
                )
                return
            length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
            if _masked_crc(length_bytes) != length_crc:
                report.problem(
                    path,
                    None,
                    f"record {n}: length CRC mismatch; rest of file ignored",
                    skip="corrupt record",
                )
                return
            (length,) = struct.unpack("<Q", length_bytes)
            payload = f.read(length)
            footer = f.read(4)
            if len(payload) < length or len(footer) < 4:
                report.problem(
                    path,
                    None,
                    f"record {n}: truncated payload; rest of file ignored",
                    skip="corrupt record",
                )
                return
            if _masked_crc(payload) != struct.unpack("<I", footer)[0]:
                report.problem(
                    path,
                    None,
                    f"record {n}: payload CRC mismatch; record skipped",
                    skip="corrupt record",
                )
                continue
            yield n, payload


def dequantize(q: np.ndarray, max_q: float = 2.0, min_q: float = -2.0) -> np.ndarray:
    """YouTube-8M byte features -> floats, as the starter code's ``utils.Dequantize`` does.

    ``x = q * range / 255 + range / 512 + min``: byte 0 is -1.9921875 and 255
    is 2.0078125, exactly the extremes of the published ``mean_rgb`` values.
    """
    scalar = (max_q - min_q) / 255.0
    bias = (max_q - min_q) / 512.0 + min_q
    return (np.asarray(q, dtype=np.float32) * np.float32(scalar) + np.float32(bias)).astype(np.float32)


def parse_record(payload: bytes) -> dict[str, Any]:
    """One Example or SequenceExample -> {id, labels, level, mean_rgb?, mean_audio?, rgb?, audio?}.

    Every video-level Example also parses as an empty SequenceExample (the
    two messages share field 1), so a record is frame-level only when it has
    feature lists.
    """
    from tfrecord import example_pb2

    seq = example_pb2.SequenceExample.FromString(payload)
    if seq.feature_lists.feature_list:
        ctx = seq.context.feature
        out: dict[str, Any] = {
            "id": ctx["id"].bytes_list.value[0].decode("utf-8", "replace"),
            "labels": list(ctx["labels"].int64_list.value) if "labels" in ctx else [],
            "level": "frame",
        }
        for key, dim in (("rgb", 1024), ("audio", 128)):
            if key in seq.feature_lists.feature_list:
                rows = [
                    np.frombuffer(f.bytes_list.value[0], dtype=np.uint8)
                    for f in seq.feature_lists.feature_list[key].feature
                ]
                out[key] = np.stack(rows) if rows else np.zeros((0, dim), np.uint8)
        return out
    ex = example_pb2.Example.FromString(payload).features.feature
    out = {
        "id": ex["id"].bytes_list.value[0].decode("utf-8", "replace"),
        "labels": list(ex["labels"].int64_list.value) if "labels" in ex else [],
        "level": "video",
    }
    for key in ("mean_rgb", "mean_audio"):
        if key in ex:
            out[key] = np.asarray(ex[key].float_list.value, dtype=np.float32)
    return out


def _vocab_row(
    row: dict[str, str], line: int, path: Path, report: ImportReport
) -> tuple[int, str, bool] | None:
    """(index, name, named by id) of one vocabulary row; None when the row is reported.

    56 rows of the official 2018 vocabulary have an empty Name: they are
    official entities, so they are named by their Knowledge Graph id.
    """
    idx, name = (row.get("Index") or "").strip(), (row.get("Name") or "").strip()
    kg_id = (row.get("KnowledgeGraphId") or "").strip()
    if idx.isdigit() and name:
        return int(idx), name, False
    if idx.isdigit() and kg_id and is_printable_entry(kg_id):
        return int(idx), kg_id, True
    report.problem(path, line, f"malformed row (Index {idx!r}, Name {name!r})")
    return None


def _verticals_of(row: dict[str, str]) -> dict[str, str]:
    return {
        attr: value
        for i, attr in enumerate(g.YT8M_VERTICAL_ATTRS, start=1)
        if (value := (row.get(f"Vertical{i}") or "").strip())
    }


def read_vocabulary(
    path: Path, report: ImportReport
) -> tuple[dict[int, str], dict[str, dict[str, str]]]:
    """``vocabulary.csv`` -> ({Index: Name}, {Name: {"vertical1": ..., ...}}).

    Bad rows are reported with their line number; rows with an empty Name
    (official) are named by their KnowledgeGraphId, with one summary note.
    Only non-empty ``Vertical1..3`` cells become attributes (names in
    :data:`fiftyone_genre.genres.YT8M_VERTICAL_ATTRS`).
    """
    vocab: dict[int, str] = {}
    verticals: dict[str, dict[str, str]] = {}
    unnamed = 0
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"Index", "Name"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path}: not a YouTube-8M vocabulary (needs 'Index' and 'Name' columns)"
            )
        for row in reader:
            parsed = _vocab_row(row, reader.line_num, path, report)
            if parsed is None:
                continue
            idx, name, by_id = parsed
            vocab[idx] = name
            unnamed += by_id
            if verts := _verticals_of(row):
                verticals[name] = verts
    if unnamed:
        report.notes.append(
            f"{unnamed} vocabulary row(s) have an empty Name (as published): "
            "named by their KnowledgeGraphId"
        )
    return vocab, verticals


def vocabulary_path(root: str | Path, vocabulary: str | Path | None = None) -> Path:
    """The vocabulary.csv an import reads: ``vocabulary`` if given, else ``<root>/vocabulary.csv``."""
    return (
        Path(vocabulary).expanduser() if vocabulary else Path(root).expanduser() / "vocabulary.csv"
    )


def _split_of(path: Path) -> str:
    name = path.name.lower()
    if name.startswith("train"):
        return "train"
    if name.startswith(("validate", "valid", "val")):
        return "test"
    return "unused"


#: Local video extensions tried in this order when a record id has several files.
_MEDIA_ORDER = (".mp4", ".mkv", ".webm", ".avi", ".mov")


def media_index(media_dir: Path) -> dict[str, Path]:
    """``{record id: video}`` for the videos named ``<id>.<ext>`` in ``media_dir`` (one listing)."""
    found: dict[str, Path] = {}
    rank = {ext: i for i, ext in enumerate(_MEDIA_ORDER)}
    with os.scandir(media_dir) as it:
        entries = sorted(
            (e for e in it if Path(e.name).suffix.lower() in VIDEO_EXTENSIONS),
            key=lambda e: (rank.get(Path(e.name).suffix.lower(), len(rank)), e.name),
        )
    for e in entries:
        stem = Path(e.name).stem
        if stem not in found and e.is_file():
            found[stem] = Path(media_dir) / e.name
    return found


def record_features(rec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | str:
    """``(visual [T, 1024], audio [T, 128])`` float32 of a parsed record, or why it has none."""
    if rec["level"] == "frame":
        rgb, audio = rec.get("rgb"), rec.get("audio")
        if rgb is None or audio is None:
            return f"no {'rgb' if rgb is None else 'audio'} feature list"
        steps = min(len(rgb), len(audio))
        if steps == 0:
            return "0 frames"
        if rgb.shape[1] != RGB_DIM or audio.shape[1] != AUDIO_DIM:
            return f"frames of {rgb.shape[1]}/{audio.shape[1]} bytes, not {RGB_DIM}/{AUDIO_DIM}"
        return dequantize(rgb[:steps]), dequantize(audio[:steps])
    for key, dim in (("mean_rgb", RGB_DIM), ("mean_audio", AUDIO_DIM)):
        if key not in rec:
            return f"no {key}"
        if rec[key].shape != (dim,):
            return f"{key} has {rec[key].size} values, not {dim}"
    return rec["mean_rgb"][None, :], rec["mean_audio"][None, :]


@dataclass
class _Record:
    """What an import keeps of one record id (its features are already in the store)."""

    split: str
    file: Path
    number: int
    labels: list[int] = field(default_factory=list)
    levels: set[str] = field(default_factory=set)  # levels whose features were stored


@dataclass
class _FileTally:
    """One shard's bad input, reported in one line per kind when the shard is read."""

    levels: Counter = field(default_factory=Counter)
    unknown: dict[int, int] = field(default_factory=dict)  # label index -> records carrying it
    unknown_records: int = 0
    no_features: list[tuple[int, str, str]] = field(default_factory=list)  # (record, id, reason)


class _Reader:
    """Streams records into the store; keeps a small :class:`_Record` per id."""

    def __init__(self, vocab: dict[int, str], media: dict[str, Path], store, require_video: bool, report):
        self.vocab, self.media, self.store = vocab, media, store
        self.require_video, self.report = require_video, report
        self.records: dict[str, _Record] = {}
        self.no_features: list[tuple[Path, _FileTally]] = []

    def read(self, path: Path) -> None:
        tally = _FileTally()
        for n, payload in iter_tfrecord(path, self.report):
            try:
                rec = parse_record(payload)
            except Exception as e:  # noqa: BLE001 - protobuf DecodeError and missing keys
                self.report.problem(path, None, f"record {n}: cannot parse ({type(e).__name__}: {e})", skip="corrupt record")
                continue
            self._add(path, n, rec, tally)
        self._report_file(path, tally)

    def _add(self, path: Path, n: int, rec: dict[str, Any], tally: _FileTally) -> None:
        vid = rec["id"]
        kept = self.records.setdefault(vid, _Record(_split_of(path), path, n))
        unknown = [i for i in rec["labels"] if i not in self.vocab]
        if unknown:
            tally.unknown_records += 1
            for i in unknown:
                tally.unknown[i] = tally.unknown.get(i, 0) + 1
        kept.labels += [i for i in rec["labels"] if i in self.vocab and i not in kept.labels]
        feats = record_features(rec)
        if isinstance(feats, str):
            tally.no_features.append((n, vid, feats))
            return
        tally.levels[rec["level"]] += 1
        if self.require_video and vid not in self.media:
            return  # skipped as unpaired: its features are not needed
        self.store.add(YT8M_SPACES[rec["level"]], yt8m_key(vid), *feats)
        kept.levels.add(rec["level"])

    def _report_file(self, path: Path, tally: _FileTally) -> None:
        if len(tally.levels) > 1:
            self.report.problem(
                path, None, f"mixes {tally.levels['video']} video-level and {tally.levels['frame']} frame-level "
                "records; all read, each into its own feature space",
            )  # fmt: skip
        if tally.unknown:
            shown = ", ".join(str(i) for i in sorted(tally.unknown)[:10]) + (" ..." if len(tally.unknown) > 10 else "")
            self.report.problem(
                path, None, f"{tally.unknown_records} record(s) carry label indices the vocabulary lacks "
                f"({shown}); those labels dropped, the records kept",
            )  # fmt: skip
        if tally.no_features:
            self.no_features.append((path, tally))

    def report_missing_features(self) -> None:
        """One line per shard with records lacking features (known only once every shard is read)."""
        for path, tally in self.no_features:
            ids = [vid for _, vid, _ in tally.no_features]
            dropped = sum(  # with require_video, records without a video count as unpaired instead
                1 for vid in ids
                if not self.records[vid].levels and vid not in self.media and not self.require_video
            )
            n, vid, reason = tally.no_features[0]
            kept = len(ids) - dropped
            self.report.problem(
                path, None, f"{len(ids)} record(s) without usable features (e.g. record {n}, id {vid!r}: "
                f"{reason}); {dropped} skipped" + (f", {kept} kept (a local video, or features in another shard)" if kept else ""),
            )  # fmt: skip
            self.report.skipped[NO_FEATURES] += dropped


@dataclass
class _Vocabulary:
    names: dict[int, str]
    verticals: dict[str, dict[str, str]]


def _entries(reader: _Reader, vocab: _Vocabulary, placeholder: Path | None, report: ImportReport) -> list[Entry]:
    """One entry per record: its video, or the placeholder (features only), or skipped and counted."""
    entries: list[Entry] = []
    unpaired: list[str] = []
    for vid, rec in reader.records.items():
        video = reader.media.get(vid)
        names = [vocab.names[i] for i in rec.labels]
        attrs = {name: vocab.verticals[name] for name in names if name in vocab.verticals}
        common = dict(group=f"{SOURCE}:{vid}", label_attrs=attrs, identity=yt8m_key(vid))
        if video is not None:
            fields = {VIDEO_ID_FIELD: vid, g.FEATURES_ONLY_FIELD: False}
            entries.append(Entry(str(video), names, rec.split, fields=fields, **common))
        elif reader.require_video:
            unpaired.append(vid)
            report.skipped[UNPAIRED] += 1
        elif rec.levels and placeholder is not None:
            fields = {VIDEO_ID_FIELD: vid, g.FEATURES_ONLY_FIELD: True}
            entries.append(Entry(str(placeholder), names, rec.split, fields=fields, tags=[g.FEATURES_ONLY_TAG], **common))
    if unpaired:
        shown = ", ".join(unpaired[:10]) + (" ..." if len(unpaired) > 10 else "")
        report.notes.append(f"{len(unpaired)} record(s) have no video named <id>.<ext> (--require-video): {shown}")
    return entries


def _media_folder(root: Path, media_dir: str | Path | None) -> Path:
    if media_dir is None:
        media_dir = next((root / d for d in ("videos", "media") if (root / d).is_dir()), root)
    return require_dir(media_dir, "YouTube-8M media folder")


def parse_yt8m(
    root: str | Path,
    media_dir: str | Path | None = None,
    features_dir: str | Path | None = None,
    vocabulary: str | Path | None = None,
    require_video: bool = False,
    report: ImportReport | None = None,
    progress: ProgressFn | None = None,
) -> ParseResult:
    """Read the vocabulary and every ``*.tfrecord`` under ``root``; store the features; one entry per record.

    ``features_dir`` is the store root (default: the feature cache folder);
    the features of records already stored there are not written again.
    """
    from fiftyone_genre.features.cache import default_cache_dir
    from fiftyone_genre.modeling.yt8m_store import StoreWriter

    root = require_dir(root, "YouTube-8M root")
    report = report or ImportReport(SOURCE, "", str(root))
    vocab_path = vocabulary_path(root, vocabulary)
    if not vocab_path.is_file():
        raise FileNotFoundError(f"YouTube-8M vocabulary not found: {vocab_path}")
    vocab = _Vocabulary(*read_vocabulary(vocab_path, report))
    media = _media_folder(root, media_dir)
    files = sorted(p for p in root.rglob("*.tfrecord") if p.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no *.tfrecord files found")
    store_root = Path(features_dir).expanduser().absolute() if features_dir else default_cache_dir()
    with StoreWriter(store_root) as store:
        reader = _Reader(vocab.names, media_index(media), store, require_video, report)
        for path in track(files, desc="read yt8m records", progress=progress):
            reader.read(path)
    reader.report_missing_features()
    if store.added:
        report.notes.append(
            "features stored: " + ", ".join(f"{n} record(s) in {space}" for space, n in store.added.items())
            + f" ({store_root})"
        )
    placeholder = ensure_placeholder(store_root) if not require_video else None
    entries = _entries(reader, vocab, placeholder, report)
    info = {  # remap's fallback for labels without vertical attributes; where train/predict find the features
        g.YT8M_VOCABULARY_INFO_KEY: str(vocab_path.absolute()),
        g.YT8M_FEATURES_INFO_KEY: str(store_root),
    }
    return ParseResult(entries, report, media_root=media, multi_label=True, info=info)


def import_yt8m(
    dataset,
    root: str | Path,
    media_dir: str | Path | None = None,
    features_dir: str | Path | None = None,
    vocabulary: str | Path | None = None,
    require_video: bool = False,
    reencode: bool = False,
    reencode_dir: str | Path | None = None,
    compute_metadata: bool = True,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import every YouTube-8M record: with its local video ``<media_dir>/<id>.<ext>``, else features-only.

    ``require_video=True`` keeps only records with a local video (the others
    are counted as unpaired). ``features_dir``: where the feature packs go.

    >>> print(import_yt8m("yt", "/data/yt8m"))                        # features only
    >>> print(import_yt8m("yt", "/data/yt8m", media_dir="/data/yt8m_videos", require_video=True))
    """
    return import_with(
        parse_yt8m, dataset, root, media_dir=media_dir, features_dir=features_dir,
        vocabulary=vocabulary, require_video=require_video, reencode=reencode, reencode_dir=reencode_dir,
        compute_metadata=compute_metadata, progress=progress,
    )  # fmt: skip
