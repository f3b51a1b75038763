"""YouTube-8M: ``vocabulary.csv`` + video- or frame-level TFRecords, paired with local videos.

YouTube-8M ships features, not videos; as in the paper, records are paired
with videos a user downloaded and named ``<id>.<ext>`` in a media folder.
Records without a video are counted and reported (``skipped["unpaired ..."]``).
TFRecords are read here without TensorFlow: the framing (length, masked
CRC32C, payload, masked CRC32C) is checked record by record, payloads parsed
with the protobuf classes bundled in the ``tfrecord`` package.

Features kept on the sample (so later stages can use them):

* ``yt8m_mean_rgb`` (1024 floats) and ``yt8m_mean_audio`` (128 floats): vector
  fields; from video-level records, or the mean of the dequantized
  frame-level features;
* ``yt8m_frame_features``: path of an ``.npz`` with ``rgb`` [T, 1024] and
  ``audio`` [T, 128] uint8 (quantized as distributed; dequantize with
  :func:`dequantize`), written under ``features_dir`` for frame-level records.
  Per-second arrays stay out of MongoDB (300 x 1152 values per video).

Each ``source_label`` Classification carries its entity's verticals from
``vocabulary.csv`` as ``vertical1``..``vertical3`` (non-empty ones only), and
``dataset.info["yt8m_vocabulary"]`` records the vocabulary's path, so the
mapping's vertical rules apply in :func:`fiftyone_genre.labels.remap.remap` without
passing a vocabulary again.

Official split from the record file name: ``train*`` -> train, ``validate*``
-> test (the labelled held-out set), ``test*`` -> unused (no labels).
"""

from __future__ import annotations

import csv
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.sources.adding import import_with
from fiftyone_genre.sources.common import (
    VIDEO_EXTENSIONS,
    Entry,
    ImportReport,
    ParseResult,
    is_printable_entry,
    require_dir,
)
from fiftyone_genre.utils import ProgressFn, track

SOURCE = "yt8m"
MEAN_RGB_FIELD = "yt8m_mean_rgb"
MEAN_AUDIO_FIELD = "yt8m_mean_audio"
FRAME_FEATURES_FIELD = "yt8m_frame_features"
VIDEO_ID_FIELD = "yt8m_id"
UNPAIRED = "unpaired (no local video)"


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
    """YouTube-8M byte features -> floats in [min_q, max_q] (the starter code's formula)."""
    scalar = (max_q - min_q) / 255.0
    return np.asarray(q, dtype=np.float32) * scalar + min_q + scalar / 2.0


def parse_record(payload: bytes) -> dict[str, Any]:
    """One Example or SequenceExample -> {id, labels, mean_rgb?, mean_audio?, rgb?, audio?}."""
    from tfrecord import example_pb2

    seq = example_pb2.SequenceExample.FromString(payload)
    if seq.feature_lists.feature_list:
        ctx = seq.context.feature
        out: dict[str, Any] = {
            "id": ctx["id"].bytes_list.value[0].decode("utf-8", "replace"),
            "labels": list(ctx["labels"].int64_list.value) if "labels" in ctx else [],
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


def _find_media(media_dir: Path, vid: str) -> Path | None:
    if "/" in vid or "\\" in vid or vid in ("", ".", ".."):
        return None
    for ext in (".mp4", ".mkv", ".webm", ".avi", ".mov"):
        p = media_dir / f"{vid}{ext}"
        if p.is_file():
            return p
    for p in media_dir.glob(f"{vid}.*"):
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            return p
    return None


def _merge(records: dict[str, dict[str, Any]], rec: dict[str, Any], path: Path, n: int) -> None:
    """Fold one parsed record into ``records`` (an id may appear in several files)."""
    merged = records.setdefault(rec["id"], {"split": _split_of(path), "file": path, "record": n})
    for key, value in rec.items():
        if key == "labels":
            merged.setdefault("labels", [])
            merged["labels"] += [x for x in value if x not in merged["labels"]]
        else:
            merged[key] = value


def read_records(
    files: list[Path], report: ImportReport, progress: ProgressFn | None = None
) -> dict[str, dict[str, Any]]:
    """Every intact record of every file, merged by video id; bad records reported."""
    records: dict[str, dict[str, Any]] = {}
    for path in track(files, desc="read yt8m records", progress=progress):
        for n, payload in iter_tfrecord(path, report):
            try:
                rec = parse_record(payload)
            except Exception as e:  # noqa: BLE001 - protobuf DecodeError and missing keys
                report.problem(
                    path,
                    None,
                    f"record {n}: cannot parse ({type(e).__name__}: {e})",
                    skip="corrupt record",
                )
                continue
            _merge(records, rec, path, n)
    return records


def _label_names(vid: str, rec: dict[str, Any], vocab: dict[int, str], report) -> list[str]:
    names = []
    for idx in rec.get("labels", []):
        if idx in vocab:
            names.append(vocab[idx])
        else:
            report.problem(
                rec["file"],
                None,
                f"record {rec['record']} ({vid}): unknown label index {idx}; label dropped",
            )
    return names


def _feature_fields(vid: str, rec: dict[str, Any], fdir: Path) -> dict[str, Any]:
    """Sample fields from the record's features (frame-level arrays go to an ``.npz``)."""
    fields: dict[str, Any] = {VIDEO_ID_FIELD: vid}
    if "rgb" in rec or "audio" in rec:
        rgb = rec.get("rgb", np.zeros((0, 1024), np.uint8))
        aud = rec.get("audio", np.zeros((0, 128), np.uint8))
        fdir.mkdir(parents=True, exist_ok=True)
        out = fdir / f"{vid}.npz"
        np.savez_compressed(out, rgb=rgb, audio=aud)
        fields[FRAME_FEATURES_FIELD] = str(out)
        if len(rgb):
            fields[MEAN_RGB_FIELD] = dequantize(rgb).mean(0)
        if len(aud):
            fields[MEAN_AUDIO_FIELD] = dequantize(aud).mean(0)
    if "mean_rgb" in rec:
        fields[MEAN_RGB_FIELD] = rec["mean_rgb"]
    if "mean_audio" in rec:
        fields[MEAN_AUDIO_FIELD] = rec["mean_audio"]
    return fields


@dataclass
class _Vocabulary:
    names: dict[int, str]
    verticals: dict[str, dict[str, str]]


def _pair(
    records: dict[str, dict[str, Any]], vocab: _Vocabulary, media: Path, fdir: Path, report
) -> list[Entry]:
    """Entries for the records that have a local video; the others are counted and noted."""
    entries: list[Entry] = []
    unpaired: list[str] = []
    for vid, rec in records.items():
        names = _label_names(vid, rec, vocab.names, report)
        video = _find_media(media, vid)
        if video is None:
            unpaired.append(vid)
            report.skipped[UNPAIRED] += 1
            continue
        attrs = {name: vocab.verticals[name] for name in names if name in vocab.verticals}
        fields = _feature_fields(vid, rec, fdir)
        group = f"{SOURCE}:{vid}"
        entries.append(Entry(str(video), names, rec["split"], group, fields, label_attrs=attrs))
    if unpaired:
        shown = ", ".join(unpaired[:10]) + (" ..." if len(unpaired) > 10 else "")
        report.notes.append(
            f"{len(unpaired)} record(s) have no video named <id>.<ext> in {media}: {shown}"
        )
    return entries


def parse_yt8m(
    root: str | Path,
    media_dir: str | Path | None = None,
    features_dir: str | Path | None = None,
    vocabulary: str | Path | None = None,
    report: ImportReport | None = None,
    progress: ProgressFn | None = None,
) -> ParseResult:
    """Read vocabulary + every ``*.tfrecord`` under ``root`` and pair records with videos."""
    import fiftyone as fo

    root = require_dir(root, "YouTube-8M root")
    report = report or ImportReport(SOURCE, "", str(root))
    vocab_path = vocabulary_path(root, vocabulary)
    if not vocab_path.is_file():
        raise FileNotFoundError(f"YouTube-8M vocabulary not found: {vocab_path}")
    vocab = _Vocabulary(*read_vocabulary(vocab_path, report))
    if media_dir is None:
        media_dir = next((root / d for d in ("videos", "media") if (root / d).is_dir()), root)
    media = require_dir(media_dir, "YouTube-8M media folder")
    fdir = (
        Path(features_dir)
        if features_dir
        else Path(fo.config.default_dataset_dir) / "genre_yt8m_features"
    )
    files = sorted(p for p in root.rglob("*.tfrecord") if p.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no *.tfrecord files found")
    records = read_records(files, report, progress)
    entries = _pair(records, vocab, media, fdir, report)
    # remap's fallback for labels without vertical attributes
    info = {g.YT8M_VOCABULARY_INFO_KEY: str(vocab_path.absolute())}
    return ParseResult(entries, report, media_root=media, multi_label=True, info=info)


def import_yt8m(
    dataset,
    root: str | Path,
    media_dir: str | Path | None = None,
    features_dir: str | Path | None = None,
    vocabulary: str | Path | None = None,
    reencode: bool = False,
    reencode_dir: str | Path | None = None,
    compute_metadata: bool = True,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import YouTube-8M records paired with local videos ``<media_dir>/<id>.mp4``.

    >>> print(import_yt8m("yt", "/data/yt8m", media_dir="/data/yt8m_videos"))
    """
    return import_with(
        parse_yt8m, dataset, root, media_dir=media_dir, features_dir=features_dir,
        vocabulary=vocabulary, reencode=reencode, reencode_dir=reencode_dir,
        compute_metadata=compute_metadata, progress=progress,
    )  # fmt: skip
