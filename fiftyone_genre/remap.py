"""Source class names -> genres: mapping files, remap, and hand relabelling.

Action datasets label *actions*; we need *genres*. A mapping file (YAML, one
shipped per source under ``fiftyone_genre/mappings/``) says which class maps
to which genre, or to nothing. :func:`remap` writes the sample-level
``genre`` Classification from ``source_label`` (which it never touches), and
:func:`relabel` / :func:`undo_relabel` let a person fix single clips with an
audit trail (who, when, previous label) kept on the sample.

Decisions (documented in the README):

- **Conflicts** (a multi-label clip whose classes map to different genres):
  the genre listed first in the mapping's ``priority`` wins
  (default :data:`DEFAULT_PRIORITY`); the clip is tagged ``genre:conflict`` and
  its genre Classification carries ``candidates``. Classes that map to nothing
  never conflict with ones that do.
- **Unmapped** clips keep ``genre = None``, are tagged ``genre:unmapped`` and
  stay in the dataset (split skips them).
- **Relabels win**: a re-run of :func:`remap` skips samples tagged
  ``genre:relabeled`` unless ``overwrite_relabeled=True``; an overwrite is
  itself recorded in the history, so it can be undone too.
"""

from __future__ import annotations

import csv
import difflib
import getpass
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError
from fiftyone_genre.report import Report
from fiftyone_genre.utils import ProgressFn, track

logger = logging.getLogger(__name__)

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
#: Sources with a shipped mapping file ``mappings/<source>.yaml``.
SHIPPED_SOURCES: tuple[str, ...] = ("ucf101", "hmdb51", "hollywood2", "yt8m")
#: A folder tree whose folder names are genre names maps to itself.
FOLDER_SOURCE = "folder"
#: The one conflict rule: earlier genres win. Visual style (Animation) overrides
#: content; rare, genre-defining cues (Horror, Science Fiction, Romance) beat the
#: broad ones; Action, the catch-all of fights and chases, loses ties.
DEFAULT_PRIORITY: tuple[str, ...] = (
    g.ANIMATION,
    g.HORROR,
    g.SCIENCE_FICTION,
    g.ROMANCE,
    g.SPORTS,
    g.ACTION,
)
#: dataset.info key the YouTube-8M importer sets to the vocabulary.csv path.
YT8M_VOCABULARY_INFO_KEY = g.YT8M_VOCABULARY_INFO_KEY
#: Label attributes read as an entity's verticals (set by the YouTube-8M importer).
VERTICAL_ATTRS: tuple[str, ...] = g.YT8M_VERTICAL_ATTRS

_TOP_KEYS = ("source", "description", "genres", "map", "unmapped", "rules", "priority", "default")
_RULE_KEYS = ("genre", "name_regex", "vertical", "vertical1", "note")
_MISSING = object()


# ---------------------------------------------------------------------------
# mapping files
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One ordered YouTube-8M style rule: all given conditions must hold."""

    genre: str | None
    name_regex: re.Pattern | None = None
    vertical: str | None = None
    vertical1: str | None = None
    index: int = 0

    def matches(self, name: str, verticals: tuple[str, ...] | None) -> bool:
        if self.name_regex is not None and not self.name_regex.search(name):
            return False
        if self.vertical is not None or self.vertical1 is not None:
            if not verticals:
                return False
            if self.vertical is not None and self.vertical not in verticals:
                return False
            if self.vertical1 is not None and verticals[0] != self.vertical1:
                return False
        return True


@dataclass
class GenreMapping:
    """A parsed mapping: exact class names, ordered rules, default, priority."""

    name: str
    source: str | None = None
    #: class name -> genre, or None for an explicitly unmapped class
    classes: dict[str, str | None] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    default: str | None = None
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    #: every genre this mapping may produce (the six + any it declares)
    genres: tuple[str, ...] = g.GENRES
    #: folder trees: a class that already is a genre name maps to itself
    identity: bool = False

    def resolve(self, name: str, verticals: tuple[str, ...] | None = None) -> str | None:
        """The genre of one source class (None = unmapped), by the documented order."""
        if name in self.classes:
            return self.classes[name]
        if self.identity:
            return _genre_from_folder_name(name, self.genres)
        for rule in self.rules:
            if rule.matches(name, verticals):
                return rule.genre
        return self.default

    def choose(self, candidates: Iterable[str]) -> str:
        """The conflict rule: first in ``priority``; genres not listed come after, A-Z."""
        rank = {genre: i for i, genre in enumerate(self.priority)}
        return min(candidates, key=lambda x: (rank.get(x, len(rank)), x))

    @property
    def uses_verticals(self) -> bool:
        return any(r.vertical or r.vertical1 for r in self.rules)

    @property
    def mapped_genres(self) -> set[str]:
        out = {v for v in self.classes.values() if v}
        out.update(r.genre for r in self.rules if r.genre)
        if self.default:
            out.add(self.default)
        return out


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text).strip().casefold()


def _genre_from_folder_name(name: str, allowed: Iterable[str]) -> str | None:
    """``Animation``, ``animation`` and ``science_fiction`` all name a genre."""
    key = _norm(name)
    for genre in allowed:
        if _norm(genre) == key:
            return genre
    return None


def folder_mapping() -> GenreMapping:
    """The implicit mapping of a folder tree named by genre (no file needed)."""
    return GenreMapping(name="<folder names = genres>", source=FOLDER_SOURCE, identity=True)


def shipped_mapping_path(source: str) -> Path:
    return MAPPINGS_DIR / f"{source}.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate keys (the last would win silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            dup = key in seen
        except TypeError:  # unhashable key: let the normal constructor complain
            break
        if dup:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def parse_mapping_text(text: str, where: str = "<text>", **kw: Any) -> GenreMapping:
    """Parse mapping YAML text (safe loader, duplicate keys rejected)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from e
    return parse_mapping(data, where, **kw)


def load_mapping(
    path_or_source: str | Path | dict | GenreMapping,
    allow_new_genres: bool | None = None,
) -> GenreMapping:
    """Load and validate a mapping: a file path, a shipped source name, or a dict.

    ``"ucf101"``, ``"hmdb51"``, ``"hollywood2"``, ``"yt8m"`` name the shipped
    files and ``"folder"`` the identity mapping. Shipped files may only use the
    six genres; a user mapping may add genres by declaring them under
    ``genres:`` (or with ``allow_new_genres=True``), so a typo such as
    ``Sci-Fi`` fails loudly instead of creating a seventh class.
    """
    if isinstance(path_or_source, GenreMapping):
        return path_or_source
    if isinstance(path_or_source, dict):
        return parse_mapping(path_or_source, "<dict>", allow_new_genres=bool(allow_new_genres))
    text_src = str(path_or_source)
    path = Path(text_src).expanduser()
    if text_src == FOLDER_SOURCE and not path.exists():
        return folder_mapping()
    shipped = text_src in SHIPPED_SOURCES and not path.exists()
    if shipped:
        path = shipped_mapping_path(text_src)
        allow = False if allow_new_genres is None else allow_new_genres
    else:
        allow = bool(allow_new_genres)
        if not path.is_file():
            raise ConfigError(
                f"{path}: no such mapping file (shipped mappings: "
                f"{', '.join(SHIPPED_SOURCES)}; '{FOLDER_SOURCE}' = folder names are genres)"
            )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read mapping file ({e})") from e
    mapping = parse_mapping_text(text, str(path), allow_new_genres=allow)
    if shipped and mapping.source is None:
        mapping.source = text_src
    return mapping


def _check_genre(value: Any, where: str, allowed: tuple[str, ...], allow_new: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: expected a genre name (string) or null, got "
            f"{type(value).__name__} {value!r}"
        )
    genre = value.strip()
    if not genre:
        raise ConfigError(f"{where}: empty genre name (use null for unmapped)")
    if genre not in allowed and not allow_new:
        hint = difflib.get_close_matches(genre, allowed, n=1, cutoff=0.6)
        raise ConfigError(
            f"{where}: unknown genre {genre!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; valid genres: {', '.join(allowed)}. A user mapping adds genres by "
            "listing them under 'genres:'"
        )
    return genre


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise ConfigError(
            f"{where}: class name {key!r} is a {type(key).__name__}, not a string "
            "(quote it in the YAML)"
        )
    if not key.strip():
        raise ConfigError(f"{where}: empty class name")
    return key


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
    return [_check_key(v, f"{where}[{i}]") for i, v in enumerate(value)]


def parse_mapping(data: Any, where: str = "<dict>", allow_new_genres: bool = False) -> GenreMapping:
    """Validate parsed YAML into a :class:`GenreMapping`; errors name ``where`` and the key.

    Two shapes: the structured one (``map``/``unmapped``/``rules``/... keys,
    used by the shipped files) or a flat ``{ClassName: Genre | null}`` dict.
    """
    data = _structured(data, where)
    extra = _str_list(data.get("genres"), f"{where}: key 'genres'")
    allowed = tuple(dict.fromkeys([*g.GENRES, *(e.strip() for e in extra)]))

    def genre(value: Any, at: str) -> str | None:
        return _check_genre(value, at, allowed, allow_new_genres)

    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise ConfigError(f"{where}: key 'source': expected a string, got {source!r}")
    mapping = GenreMapping(
        name=where,
        source=source,
        classes=_parse_classes(data, where, genre),
        rules=_parse_rules(data.get("rules") or [], where, genre),
        default=genre(data.get("default"), f"{where}: key 'default'"),
        priority=_parse_priority(data.get("priority"), where, genre),
        genres=allowed,
    )
    if allow_new_genres:
        mapping.genres = tuple(dict.fromkeys([*allowed, *sorted(mapping.mapped_genres)]))
    return mapping


def _structured(data: Any, where: str) -> dict:
    """The structured shape of a mapping (a flat class -> genre dict becomes its ``map``)."""
    if data is None:
        raise ConfigError(f"{where}: empty mapping file")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of class names to genres, got {type(data).__name__}")
    # Structured when a section key holds a section; a flat map may still have a
    # class literally named "map" (its value is then a genre string).
    structured = (
        isinstance(data.get("map"), dict)
        or isinstance(data.get("unmapped"), list)
        or isinstance(data.get("rules"), list)
    )
    if not structured:
        return {"map": data}
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys are "
            f"{', '.join(_TOP_KEYS)}"
        )
    return data


def _parse_classes(data: dict, where: str, genre: Callable[[Any, str], str | None]) -> dict[str, str | None]:
    """``map`` (class -> genre) plus ``unmapped`` (classes that map to nothing)."""
    raw_map = data.get("map") or {}
    if not isinstance(raw_map, dict):
        raise ConfigError(f"{where}: key 'map': expected a mapping, got {type(raw_map).__name__}")
    classes: dict[str, str | None] = {}
    for key, value in raw_map.items():
        name = _check_key(key, f"{where}: key {key!r}")
        classes[name] = genre(value, f"{where}: key {name!r}")
    for name in _str_list(data.get("unmapped"), f"{where}: key 'unmapped'"):
        if name in classes:
            raise ConfigError(f"{where}: key {name!r} is both mapped and listed under 'unmapped'")
        classes[name] = None
    return classes


def _parse_rules(rules_raw: Any, where: str, genre: Callable[[Any, str], str | None]) -> list[Rule]:
    if not isinstance(rules_raw, list):
        raise ConfigError(f"{where}: key 'rules': expected a list, got {type(rules_raw).__name__}")
    return [_parse_rule(raw, i, f"{where}: rules[{i}]", genre) for i, raw in enumerate(rules_raw)]


def _parse_rule(raw: Any, index: int, at: str, genre: Callable[[Any, str], str | None]) -> Rule:
    """One ``rules:`` entry: a genre (or null) and at least one string condition."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{at}: expected a mapping, got {type(raw).__name__}")
    bad = [k for k in raw if k not in _RULE_KEYS]
    if bad:
        raise ConfigError(f"{at}: unknown key(s) {', '.join(map(repr, bad))}; valid: {', '.join(_RULE_KEYS)}")
    if "genre" not in raw:
        raise ConfigError(f"{at}: missing 'genre' (a genre name or null)")
    conds = {k: raw.get(k) for k in ("name_regex", "vertical", "vertical1") if raw.get(k) is not None}
    if not conds:
        raise ConfigError(f"{at}: needs at least one of name_regex, vertical, vertical1")
    for k, v in conds.items():
        if not isinstance(v, str):
            raise ConfigError(f"{at}.{k}: expected a string, got {v!r}")
    pattern = None
    if "name_regex" in conds:
        try:
            pattern = re.compile(conds["name_regex"])
        except re.error as e:
            raise ConfigError(f"{at}.name_regex: invalid regex: {e}") from e
    return Rule(
        genre=genre(raw["genre"], f"{at}.genre"),
        name_regex=pattern,
        vertical=conds.get("vertical"),
        vertical1=conds.get("vertical1"),
        index=index,
    )


def _parse_priority(value: Any, where: str, genre: Callable[[Any, str], str | None]) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_PRIORITY
    names = _str_list(value, f"{where}: key 'priority'")
    return tuple(genre(p, f"{where}: key 'priority'") for p in names)  # type: ignore[misc]


def load_vocabulary(path: str | Path) -> dict[str, tuple[str, ...]]:
    """YouTube-8M ``vocabulary.csv`` -> {entity Name: (Vertical1, Vertical2, Vertical3)}."""
    path = Path(path)
    out: dict[str, tuple[str, ...]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "Name" not in reader.fieldnames:
                raise ConfigError(f"{path}: not a YouTube-8M vocabulary.csv (no 'Name' column)")
            for row in reader:
                name = (row.get("Name") or "").strip()
                if name:
                    out[name] = tuple(
                        (row.get(f"Vertical{i}") or "").strip() for i in (1, 2, 3)
                    )
    except OSError as e:
        raise ConfigError(f"{path}: cannot read vocabulary ({e})") from e
    return out


# ---------------------------------------------------------------------------
# reading samples
# ---------------------------------------------------------------------------


def _label_attr(label: Any, name: str) -> Any:
    try:
        return label[name]
    except (KeyError, AttributeError, TypeError):
        return getattr(label, name, None)


def _source_entries(value: Any) -> list[tuple[str, tuple[str, ...] | None]]:
    """(class name, verticals or None) for each label in a source_label value."""
    if value is None:
        return []
    if isinstance(value, str):
        return [(value, None)]
    items = getattr(value, "classifications", None)
    labels = items if items is not None else [value]
    out = []
    for lab in labels:
        name = getattr(lab, "label", None)
        if not name:
            continue
        verts = tuple(str(v) for a in VERTICAL_ATTRS if (v := _label_attr(lab, a)))
        out.append((str(name), verts or None))
    return out


def _field_values(collection, path: str, n: int) -> list[Any]:
    """``collection.values(path)``, or Nones when the root field does not exist."""
    root = path.split(".")[0]
    if root not in collection.get_field_schema():
        return [None] * n
    return collection.values(path)


# ---------------------------------------------------------------------------
# remap
# ---------------------------------------------------------------------------


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


def _genre_label(value: Any) -> str | None:
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _username(user: str | None) -> str:
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


class _Row(NamedTuple):
    """One sample's fields as remap and relabel read them."""

    id: str
    source: str | None
    label: Any  # the source_label value
    current: Any  # the current genre Classification
    tags: list[str]
    history: list | None


def _read_rows(collection, with_source: bool = True) -> list[_Row]:
    """Every sample's fields in one pass per field (absent fields read as None)."""
    ids = collection.values("id")
    n = len(ids)
    columns = [
        _field_values(collection, g.SOURCE_FIELD, n) if with_source else [None] * n,
        _field_values(collection, g.SOURCE_LABEL_FIELD, n) if with_source else [None] * n,
        _field_values(collection, g.GENRE_FIELD, n),
        [list(t or []) for t in collection.values("tags")],
        _field_values(collection, g.GENRE_HISTORY_FIELD, n),
    ]
    return [_Row(*row) for row in zip(ids, *columns)]


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
    #: id(mapping) -> the mapping / the class names it was asked about
    used: dict[int, GenreMapping] = field(default_factory=dict)
    seen: dict[int, set[str]] = field(default_factory=dict)

    def saw(self, mapping: GenreMapping, entries: list[tuple[str, Any]]) -> None:
        self.used[id(mapping)] = mapping
        self.seen.setdefault(id(mapping), set()).update(name for name, _ in entries)


@dataclass
class _Writes:
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
    report = RemapReport(dry_run=dry_run)
    rows = _read_rows(collection)
    report.total = len(rows)
    user_mapping = load_mapping(mapping, allow_new_genres) if mapping is not None else None
    choose = _MappingChooser(user_mapping, report.warnings)
    vocab = _resolve_vocabulary(collection, vocabulary)
    tally, writes = _Tally(), _Writes()
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
        _write_genres(dataset, writes, with_history=any(h is not None for h in writes.history))
        dataset.info[g.REMAP_INFO_KEY] = {"mappings": dict(report.mappings), "time": _now()}
        dataset.save()
    return report


def _keep_relabeled(row: _Row, tally: _Tally, report: RemapReport) -> None:
    """A hand relabel survives: count its genre as it stands."""
    report.kept_relabeled += 1
    label = _genre_label(row.current)
    if label:
        tally.counts[label] += 1
    else:
        report.unmapped_clips += 1


def _resolve_entries(
    entries: list[tuple[str, tuple[str, ...] | None]],
    m: GenreMapping | None,
    vocab: dict[str, tuple[str, ...]] | None,
    tally: _Tally,
) -> list[tuple[str, str | None]]:
    """(class name, genre or None) per source label; verticals from the vocabulary when absent."""
    resolved: list[tuple[str, str | None]] = []
    for name, verts in entries:
        if verts is None and vocab is not None:
            verts = vocab.get(name)
        if m is not None and verts is None and m.uses_verticals:
            tally.no_verticals[name] += 1
        resolved.append((name, m.resolve(name, verts) if m is not None else None))
    return resolved


def _decide(
    resolved: list[tuple[str, str | None]], m: GenreMapping | None, tags: list[str], tally: _Tally, report: RemapReport
) -> tuple[Any, list[str]]:
    """The genre Classification (or None) and the new tags: unmapped, one genre, or a conflict."""
    import fiftyone as fo

    candidates = sorted({genre for _, genre in resolved if genre})
    new_tags = [t for t in tags if t not in (g.UNMAPPED_TAG, g.CONFLICT_TAG)]
    if not candidates:
        report.unmapped_clips += 1
        for name, _ in resolved or [("<no source label>", None)]:
            tally.unmapped_classes[name] += 1
        return None, [*new_tags, g.UNMAPPED_TAG]
    assert m is not None
    chosen = m.choose(candidates)
    tally.counts[chosen] += 1
    for name, genre in resolved:
        if genre is None:
            tally.ignored_classes[name] += 1
    if len(candidates) == 1:
        return fo.Classification(label=chosen), new_tags
    report.conflict_clips += 1
    tally.conflicts[f"{' | '.join(candidates)} -> {chosen}"] += 1
    return fo.Classification(label=chosen, candidates=candidates), [*new_tags, g.CONFLICT_TAG]


def _remap_row(
    row: _Row, m: GenreMapping | None, resolved: list, tally: _Tally, writes: _Writes, report: RemapReport
) -> None:
    """Decide one sample's genre; an overwritten hand relabel is recorded in its history."""
    genre_value, new_tags = _decide(resolved, m, row.tags, tally, report)
    old_label, new_label = _genre_label(row.current), _genre_label(genre_value)
    hist = list(row.history or [])
    if g.RELABELED_TAG in row.tags:  # overwrite_relabeled=True: keep it auditable
        new_tags.remove(g.RELABELED_TAG)
        hist.append(
            {
                "time": _now(),
                "user": "remap",
                "previous": old_label,
                "genre": new_label,
                "reason": "remap overwrite_relabeled",
                "removed_tags": [g.RELABELED_TAG],
            }
        )
    if old_label != new_label or new_tags != row.tags or _candidates(row.current) != _candidates(genre_value):
        report.changed += 1
    writes.add(row.id, genre_value, new_tags, hist or None)


def _summarise(report: RemapReport, tally: _Tally, warn_unused: bool) -> None:
    """Counts into the report; unused mapping keys (likely typos) and missing verticals as warnings."""
    report.counts = dict(tally.counts)
    report.unmapped_classes = dict(tally.unmapped_classes)
    report.ignored_classes = dict(tally.ignored_classes)
    report.conflicts = dict(tally.conflicts)
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


def _write_genres(dataset, writes: _Writes, with_history: bool = True) -> None:
    """Genre, tags (and history) of the selected samples, one ``set_values`` each."""
    _ensure_fields(dataset)
    view = dataset.select(writes.ids, ordered=True)
    view.set_values(g.GENRE_FIELD, writes.genres)
    view.set_values("tags", writes.tags)
    if with_history:
        view.set_values(g.GENRE_HISTORY_FIELD, writes.history)


def _candidates(value: Any) -> list[str] | None:
    return _label_attr(value, "candidates") if value is not None else None


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
    info_path = (collection._root_dataset.info or {}).get(YT8M_VOCABULARY_INFO_KEY)
    if info_path and Path(info_path).is_file():
        return load_vocabulary(info_path)
    return None


# ---------------------------------------------------------------------------
# relabel by hand
# ---------------------------------------------------------------------------


def known_genres(collection) -> list[str]:
    """The six genres plus any other genre already present in the collection."""
    present: list[str] = []
    if g.GENRE_FIELD in collection.get_field_schema():
        present = [x for x in collection.distinct(f"{g.GENRE_FIELD}.label") if x]
    return list(dict.fromkeys([*g.GENRES, *sorted(present)]))


def relabel(
    collection,
    genre: str,
    user: str | None = None,
    reason: str | None = None,
    allow_new_genre: bool = False,
) -> int:
    """Set the genre of every sample in ``collection``; returns how many.

    Each sample gets a ``genre_history`` entry {time, user, previous, genre,
    reason, removed_tags} and the ``genre:relabeled`` tag, so the change can be
    reviewed (``match_tags``) and reverted with :func:`undo_relabel`. The
    unmapped/conflict tags go: a person has decided. A genre outside the six
    and those already in the dataset needs ``allow_new_genre=True`` (typos).
    """
    import fiftyone as fo

    genre = _check_relabel_genre(collection, genre, allow_new_genre)
    rows = _read_rows(collection, with_source=False)
    if not rows:
        return 0
    who, when = _username(user), _now()
    writes = _Writes()
    for row in rows:
        removed = [t for t in (g.UNMAPPED_TAG, g.CONFLICT_TAG) if t in row.tags]
        kept = [t for t in row.tags if t not in removed]
        if g.RELABELED_TAG not in kept:
            kept.append(g.RELABELED_TAG)
        entry = {
            "time": when,
            "user": who,
            "previous": _genre_label(row.current),
            "previous_candidates": _candidates(row.current),
            "genre": genre,
            "reason": reason,
            "removed_tags": removed,
        }
        writes.add(row.id, fo.Classification(label=genre), kept, [*(row.history or []), entry])
    _write_genres(collection._root_dataset, writes)
    return len(rows)


def _check_relabel_genre(collection, genre: Any, allow_new_genre: bool) -> str:
    """A non-empty genre name already known, unless a new one is allowed (typos fail)."""
    if not isinstance(genre, str) or not genre.strip():
        raise ValueError(f"relabel: genre must be a non-empty string, got {genre!r}")
    genre = genre.strip()
    allowed = known_genres(collection._root_dataset)
    if genre not in allowed and not allow_new_genre:
        raise ValueError(
            f"relabel: unknown genre {genre!r}; known genres: {', '.join(allowed)} "
            "(pass allow_new_genre=True / --new-genre to add one)"
        )
    return genre


def undo_relabel(collection) -> int:
    """Revert the latest history entry of each sample in ``collection``; returns how many.

    The previous genre (or None) and the tags the relabel removed come back;
    ``genre:relabeled`` goes once a sample's history is empty.
    """
    import fiftyone as fo

    if g.GENRE_HISTORY_FIELD not in collection.get_field_schema():
        return 0
    view = collection.exists(g.GENRE_HISTORY_FIELD)
    writes = _Writes()
    for sid, hist, sample_tags in zip(view.values("id"), view.values(g.GENRE_HISTORY_FIELD), view.values("tags")):
        if not hist:
            continue
        hist = list(hist)
        last = hist.pop()
        prev = last.get("previous")
        cands = last.get("previous_candidates")
        kw = {"candidates": list(cands)} if cands else {}
        new_tags = [t for t in (sample_tags or []) if t != g.RELABELED_TAG]
        for t in last.get("removed_tags") or []:
            if t not in new_tags:
                new_tags.append(t)
        if hist and hist[-1].get("user") != "remap" and g.RELABELED_TAG not in new_tags:
            new_tags.append(g.RELABELED_TAG)
        writes.add(sid, fo.Classification(label=prev, **kw) if prev else None, new_tags, hist or None)
    if not writes.ids:
        return 0
    _write_genres(collection._root_dataset, writes)
    return len(writes.ids)
