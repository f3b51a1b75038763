"""Source class names -> genres on a dataset, as the mapping files say.

Action datasets label *actions*; we need *genres*. :func:`remap` writes the
sample-level ``genre`` Classification from ``source_label`` (which it never
touches), with the mapping chosen per sample's source
(:mod:`fiftyone_genre.labels.mapping`).

Decisions:

- **Conflicts** (a multi-label clip whose classes map to different genres):
  the genre listed first in the mapping's ``priority`` wins; the clip is
  tagged ``genre:conflict`` and its genre Classification carries
  ``candidates``. Classes that map to nothing never conflict with ones that do.
- **Unmapped** clips keep ``genre = None``, are tagged ``genre:unmapped`` and
  stay in the dataset (split skips them).
- **Relabels win**: a re-run of :func:`remap` skips samples tagged
  ``genre:relabeled`` unless ``overwrite_relabeled=True``; an overwrite is
  itself recorded in the history, so it can be undone too.
"""

from __future__ import annotations

import contextlib
import difflib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from fiftyone_genre import genres as g
from fiftyone_genre.app_config import show_genre_fields
from fiftyone_genre.database import dataset_writer
from fiftyone_genre.labels.mapping import (
    FOLDER_SOURCE,
    SHIPPED_SOURCES,
    VERTICAL_ATTRS,
    GenreMapping,
    load_mapping,
    load_vocabulary,
    logger,
)
from fiftyone_genre.report import Report
from fiftyone_genre.samples import field_values
from fiftyone_genre.utils import ProgressFn, track


def label_attr(label: Any, name: str) -> Any:
    try:
        return label[name]
    except (KeyError, AttributeError, TypeError):
        return getattr(label, name, None)


def _source_entries(value: Any) -> list[tuple[str, tuple[str, ...] | None]]:
    """(class name, verticals or None) for each label in a source_label value (a label or its raw document)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [(value, None)]
    items = value.get("classifications") if isinstance(value, dict) else getattr(value, "classifications", None)
    labels = items if items is not None else [value]
    out = []
    for lab in labels:
        name = lab.get("label") if isinstance(lab, dict) else getattr(lab, "label", None)
        if not name:
            continue
        verts = tuple(str(v) for a in VERTICAL_ATTRS if (v := label_attr(lab, a)))
        out.append((str(name), verts or None))
    return out




@dataclass
class RemapReport(Report):
    """What remap did (or, in a dry run, would do)."""

    dry_run: bool
    total: int = 0
    #: genre -> clips
    counts: dict[str, int] = field(default_factory=dict)
    unmapped_clips: int = 0
    #: source class -> clips left without a genre that carry it
    unmapped_classes: dict[str, int] = field(default_factory=dict)
    #: source class -> clips where it mapped to nothing but another label decided
    ignored_classes: dict[str, int] = field(default_factory=dict)
    conflict_clips: int = 0
    #: "Action | Romance -> Romance" -> clips
    conflicts: dict[str, int] = field(default_factory=dict)
    #: clips left without a genre by a veto class (counted in unmapped_clips too)
    vetoed_clips: int = 0
    #: veto class -> clips it took the genre from
    vetoed_by: dict[str, int] = field(default_factory=dict)
    kept_relabeled: int = 0
    changed: int = 0
    #: mapping keys that match no class in the collection (likely typos)
    unused_keys: dict[str, list[str]] = field(default_factory=dict)
    mappings: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = "remap (dry run: nothing written)" if self.dry_run else "remap"
        lines = [f"{head}: {self.total} clips"]
        for src, name in sorted(self.mappings.items()):
            lines.append(f"  mapping for {src}: {name}")
        width = max([len(k) for k in self.counts] + [10])
        for genre, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {genre:<{width}} {n:>7}")
        lines.append(f"  {'(unmapped)':<{width}} {self.unmapped_clips:>7}")
        if self.unmapped_classes:
            lines.append("unmapped source classes (clips):")
            for name, n in sorted(self.unmapped_classes.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"  {name}: {n}")
        if self.ignored_classes:
            shown = ", ".join(f"{k} ({v})" for k, v in sorted(self.ignored_classes.items()))
            lines.append(f"classes mapping to nothing on clips another label decided: {shown}")
        if self.vetoed_clips:
            top = ", ".join(f"{k} ({v})" for k, v in sorted(self.vetoed_by.items(), key=lambda kv: (-kv[1], kv[0]))[:10])
            lines.append(f"vetoed: {self.vetoed_clips} clips left unmapped by a veto class: {top}")
        if self.conflict_clips:
            lines.append(f"conflicts: {self.conflict_clips} clips (tagged {g.CONFLICT_TAG})")
            for rule, n in sorted(self.conflicts.items(), key=lambda kv: -kv[1]):
                lines.append(f"  {rule}: {n}")
        if self.kept_relabeled:
            lines.append(
                f"kept {self.kept_relabeled} hand-relabeled clips (overwrite_relabeled=False)"
            )
        if not self.dry_run:
            lines.append(f"changed: {self.changed} clips")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)


def genre_label(value: Any) -> str | None:
    return getattr(value, "label", None) if value is not None else None


def _ensure_fields(dataset) -> None:
    import fiftyone as fo

    schema = dataset.get_field_schema()
    if g.GENRE_FIELD not in schema:
        dataset.add_sample_field(
            g.GENRE_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Classification
        )
    if g.GENRE_HISTORY_FIELD not in schema:
        dataset.add_sample_field(g.GENRE_HISTORY_FIELD, fo.ListField, subfield=fo.DictField)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Row(NamedTuple):
    """One sample's fields as remap and relabel read them."""

    id: str
    source: str | None
    label: Any  # the source_label value
    current: Any  # the current genre Classification
    tags: list[str]
    history: list | None


def read_rows(collection, with_source: bool = True) -> list[_Row]:
    """Every sample's fields in one pass per field (absent fields read as None)."""
    ids = collection.values("id")
    n = len(ids)
    columns = [
        field_values(collection, g.SOURCE_FIELD, n) if with_source else [None] * n,
        # raw documents: building label objects was most of a remap (17,499 YouTube-8M records)
        _raw_values(collection, g.SOURCE_LABEL_FIELD, n) if with_source else [None] * n,
        field_values(collection, g.GENRE_FIELD, n),
        [list(t or []) for t in collection.values("tags")],
        field_values(collection, g.GENRE_HISTORY_FIELD, n),
    ]
    return [_Row(*row) for row in zip(ids, *columns)]


def _raw_values(collection, path: str, n: int) -> list[Any]:
    """A field's stored documents (dicts), or Nones when the field does not exist."""
    if path not in collection.get_field_schema():
        return [None] * n
    return collection.values(path, _raw=True)


class _MappingChooser:
    """The mapping for a sample: the user's for all, else the shipped one of its source (loaded once)."""

    def __init__(self, user_mapping: GenreMapping | None, warnings: list[str]):
        self.user_mapping = user_mapping
        self.warnings = warnings
        self._per_source: dict[str | None, GenreMapping | None] = {}

    def key(self, source: str | None) -> str:
        """How :attr:`RemapReport.mappings` names the samples a mapping served."""
        return str(source) if self.user_mapping is None else "all sources"

    def __call__(self, source: str | None) -> GenreMapping | None:
        if self.user_mapping is not None:
            return self.user_mapping
        if source not in self._per_source:
            shipped = source in SHIPPED_SOURCES or source == FOLDER_SOURCE
            self._per_source[source] = load_mapping(source) if shipped else None
            if not shipped:
                self.warnings.append(
                    f"no default mapping for source {source!r}: its clips stay unmapped (pass --mapping FILE)"
                )
        return self._per_source[source]


@dataclass
class _Tally:
    """What remap counted across samples, before it becomes the report."""

    counts: Counter = field(default_factory=Counter)
    unmapped_classes: Counter = field(default_factory=Counter)
    ignored_classes: Counter = field(default_factory=Counter)
    conflicts: Counter = field(default_factory=Counter)
    no_verticals: Counter = field(default_factory=Counter)
    vetoed_by: Counter = field(default_factory=Counter)
    #: id(mapping) -> the mapping / the class names it was asked about
    used: dict[int, GenreMapping] = field(default_factory=dict)
    seen: dict[int, set[str]] = field(default_factory=dict)

    def saw(self, mapping: GenreMapping, entries: list[tuple[str, Any]]) -> None:
        self.used[id(mapping)] = mapping
        self.seen.setdefault(id(mapping), set()).update(name for name, _ in entries)


@dataclass
class GenreWrites:
    """Per-sample values to write back in one ``set_values`` per field."""

    ids: list[str] = field(default_factory=list)
    genres: list[Any] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)

    def add(self, sid: str, genre: Any, tags: list[str], history: list | None) -> None:
        self.ids.append(sid)
        self.genres.append(genre)
        self.tags.append(tags)
        self.history.append(history)


def remap(
    collection,
    mapping: str | Path | dict | GenreMapping | None = None,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    overwrite_relabeled: bool = False,
    allow_new_genres: bool | None = None,
    vocabulary: str | Path | dict | None = None,
) -> RemapReport:
    """Write the ``genre`` Classification from ``source_label`` through a mapping.

    ``mapping=None`` picks the shipped default per sample by its ``source``
    (a ``folder`` source maps genre-named folders to themselves); a given
    mapping applies to every sample. ``dry_run`` computes the same report and
    writes nothing. Hand relabels survive unless ``overwrite_relabeled``.
    ``vocabulary`` (a YouTube-8M vocabulary.csv or {Name: verticals}) feeds the
    vertical rules when the labels do not carry ``vertical1..3`` themselves.
    """
    with dataset_writer(collection, "remapping") if not dry_run else contextlib.nullcontext():
        return _remap(collection, mapping, dry_run, progress, overwrite_relabeled, allow_new_genres, vocabulary)


def _remap(
    collection, mapping, dry_run: bool, progress: ProgressFn | None, overwrite_relabeled: bool,
    allow_new_genres: bool | None, vocabulary,
) -> RemapReport:
    """:func:`remap`'s work, under the dataset's writer lease unless ``dry_run``."""
    report = RemapReport(dry_run=dry_run)
    rows = read_rows(collection)
    report.total = len(rows)
    user_mapping = load_mapping(mapping, allow_new_genres) if mapping is not None else None
    choose = _MappingChooser(user_mapping, report.warnings)
    vocab = _resolve_vocabulary(collection, vocabulary)
    tally, writes = _Tally(), GenreWrites()
    for row in track(rows, total=len(rows), desc="remap", progress=progress):
        m = choose(row.source)
        entries = _source_entries(row.label)
        if m is not None:
            tally.saw(m, entries)
            report.mappings[choose.key(row.source)] = m.name
        if g.RELABELED_TAG in row.tags and not overwrite_relabeled:
            _keep_relabeled(row, tally, report)
            continue
        _remap_row(row, m, _resolve_entries(entries, m, vocab, tally), tally, writes, report)
    _summarise(report, tally, warn_unused=user_mapping is not None)
    if not dry_run and writes.ids:
        dataset = collection._root_dataset
        write_genres(dataset, writes, with_history=any(h is not None for h in writes.history))
        dataset.info[g.REMAP_INFO_KEY] = {"mappings": dict(report.mappings), "time": now_iso()}
        dataset.save()
        show_genre_fields(dataset)  # the App shows the new ground truth by name, first
    return report


def _keep_relabeled(row: _Row, tally: _Tally, report: RemapReport) -> None:
    """A hand relabel survives: count its genre as it stands."""
    report.kept_relabeled += 1
    label = genre_label(row.current)
    if label:
        tally.counts[label] += 1
    else:
        report.unmapped_clips += 1


class Resolved(NamedTuple):
    """One source label as the mapping decided it."""

    name: str
    genre: str | None
    veto: bool = False


def _resolve_entries(
    entries: list[tuple[str, tuple[str, ...] | None]],
    m: GenreMapping | None,
    vocab: dict[str, tuple[str, ...]] | None,
    tally: _Tally,
) -> list[Resolved]:
    """Each source label's genre (or None) and veto; verticals from the vocabulary when absent."""
    resolved: list[Resolved] = []
    for name, verts in entries:
        if verts is None and vocab is not None:
            verts = vocab.get(name)
        if m is not None and verts is None and m.uses_verticals:
            tally.no_verticals[name] += 1
        if m is None:
            resolved.append(Resolved(name, None))
        else:
            resolved.append(Resolved(name, m.resolve(name, verts), m.vetoes(name, verts)))
    return resolved


def decide(resolved: list[Resolved], m: GenreMapping | None) -> tuple[str | None, list[str], list[str]]:
    """``(genre or None, candidate genres, veto classes)`` of one clip's resolved labels.

    A veto class leaves the clip without a genre; otherwise the candidates'
    first in the mapping's ``priority`` wins. Pure, so counts over many
    records (benchmarks, mapping reviews) match what remap writes.
    """
    vetoed = sorted({r.name for r in resolved if r.veto})
    candidates = sorted({r.genre for r in resolved if r.genre})
    if vetoed or not candidates or m is None:
        return None, candidates, vetoed
    return m.choose(candidates), candidates, vetoed


def _decide(
    resolved: list[Resolved], m: GenreMapping | None, tags: list[str], tally: _Tally, report: RemapReport
) -> tuple[Any, list[str]]:
    """The genre Classification (or None) and the new tags: unmapped, one genre, or a conflict."""
    import fiftyone as fo

    chosen, candidates, vetoed = decide(resolved, m)
    new_tags = [t for t in tags if t not in (g.UNMAPPED_TAG, g.CONFLICT_TAG)]
    if chosen is None:
        report.unmapped_clips += 1
        if vetoed:
            report.vetoed_clips += 1
            tally.vetoed_by.update(vetoed)
        for name, *_ in resolved or [Resolved("<no source label>", None)]:
            tally.unmapped_classes[name] += 1
        return None, [*new_tags, g.UNMAPPED_TAG]
    assert m is not None
    tally.counts[chosen] += 1
    for name, genre, _ in resolved:
        if genre is None:
            tally.ignored_classes[name] += 1
    if len(candidates) == 1:
        return fo.Classification(label=chosen), new_tags
    report.conflict_clips += 1
    tally.conflicts[f"{' | '.join(candidates)} -> {chosen}"] += 1
    return fo.Classification(label=chosen, candidates=candidates), [*new_tags, g.CONFLICT_TAG]


def _remap_row(
    row: _Row, m: GenreMapping | None, resolved: list, tally: _Tally, writes: GenreWrites, report: RemapReport
) -> None:
    """Decide one sample's genre; an overwritten hand relabel is recorded in its history."""
    genre_value, new_tags = _decide(resolved, m, row.tags, tally, report)
    old_label, new_label = genre_label(row.current), genre_label(genre_value)
    hist = list(row.history or [])
    if g.RELABELED_TAG in row.tags:  # overwrite_relabeled=True: keep it auditable
        new_tags.remove(g.RELABELED_TAG)
        hist.append(
            {
                "time": now_iso(),
                "user": "remap",
                "previous": old_label,
                "genre": new_label,
                "reason": "remap overwrite_relabeled",
                "removed_tags": [g.RELABELED_TAG],
            }
        )
    if old_label != new_label or new_tags != row.tags or candidates(row.current) != candidates(genre_value):
        report.changed += 1
    writes.add(row.id, genre_value, new_tags, hist or None)


def _summarise(report: RemapReport, tally: _Tally, warn_unused: bool) -> None:
    """Counts into the report; unused mapping keys (likely typos) and missing verticals as warnings."""
    report.counts = dict(tally.counts)
    report.unmapped_classes = dict(tally.unmapped_classes)
    report.ignored_classes = dict(tally.ignored_classes)
    report.conflicts = dict(tally.conflicts)
    report.vetoed_by = dict(tally.vetoed_by)
    for key, m in tally.used.items():
        seen = tally.seen.get(key, set())
        unused = sorted(k for k in m.classes if k not in seen)
        if not unused:
            continue
        report.unused_keys[m.name] = unused
        if warn_unused:  # shipped maps list every official class on purpose
            report.warnings.append(_typo_warning(m.name, unused, seen))
    if tally.no_verticals:
        report.warnings.append(
            f"{sum(tally.no_verticals.values())} labels carry no verticals, so vertical rules could not "
            "apply (store vertical1..3 on the labels or pass a vocabulary.csv)"
        )
    for w in report.warnings:
        logger.warning(w)


def write_genres(dataset, writes: GenreWrites, with_history: bool = True) -> None:
    """Genre, tags (and history) of the selected samples, one ``set_values`` each, keyed by id.

    (An ordered ``select`` of every id costs a search per sample in the
    database: twice the time of these writes at 17,499 samples.)
    """
    _ensure_fields(dataset)
    for name, values in ((g.GENRE_FIELD, writes.genres), ("tags", writes.tags), (g.GENRE_HISTORY_FIELD, writes.history)):
        if name != g.GENRE_HISTORY_FIELD or with_history:
            dataset.set_values(name, dict(zip(writes.ids, values)), key_field="id")


def candidates(value: Any) -> list[str] | None:
    return label_attr(value, "candidates") if value is not None else None


def _typo_warning(name: str, unused: list[str], seen: set[str]) -> str:
    parts = []
    lowered = {s.casefold(): s for s in seen}
    for key in unused[:50]:
        hint = lowered.get(key.casefold()) or next(
            iter(difflib.get_close_matches(key, list(seen), n=1, cutoff=0.75)), None
        )
        parts.append(f"{key!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
    more = f" and {len(unused) - 50} more" if len(unused) > 50 else ""
    return f"{name}: {len(unused)} mapping key(s) match no class in the dataset: {', '.join(parts)}{more}"


def _resolve_vocabulary(collection, vocabulary) -> dict[str, tuple[str, ...]] | None:
    if isinstance(vocabulary, dict):
        return {str(k): tuple(v) for k, v in vocabulary.items()}
    if vocabulary is not None:
        return load_vocabulary(vocabulary)
    info_path = (collection._root_dataset.info or {}).get(g.YT8M_VOCABULARY_INFO_KEY)
    if info_path and Path(info_path).is_file():
        return load_vocabulary(info_path)
    return None
