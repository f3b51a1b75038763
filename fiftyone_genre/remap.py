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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError
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
        data = {"map": data}
    else:
        unknown = [k for k in data if k not in _TOP_KEYS]
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys are "
                f"{', '.join(_TOP_KEYS)}"
            )

    extra = _str_list(data.get("genres"), f"{where}: key 'genres'")
    allowed = tuple(dict.fromkeys([*g.GENRES, *(e.strip() for e in extra)]))
    allow_new = allow_new_genres

    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise ConfigError(f"{where}: key 'source': expected a string, got {source!r}")

    raw_map = data.get("map") or {}
    if not isinstance(raw_map, dict):
        raise ConfigError(f"{where}: key 'map': expected a mapping, got {type(raw_map).__name__}")
    classes: dict[str, str | None] = {}
    for key, value in raw_map.items():
        name = _check_key(key, f"{where}: key {key!r}")
        classes[name] = _check_genre(value, f"{where}: key {name!r}", allowed, allow_new)
    for name in _str_list(data.get("unmapped"), f"{where}: key 'unmapped'"):
        if name in classes:
            raise ConfigError(f"{where}: key {name!r} is both mapped and listed under 'unmapped'")
        classes[name] = None

    rules_raw = data.get("rules") or []
    if not isinstance(rules_raw, list):
        raise ConfigError(f"{where}: key 'rules': expected a list, got {type(rules_raw).__name__}")
    rules: list[Rule] = []
    for i, raw in enumerate(rules_raw):
        at = f"{where}: rules[{i}]"
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
        rules.append(
            Rule(
                genre=_check_genre(raw["genre"], f"{at}.genre", allowed, allow_new),
                name_regex=pattern,
                vertical=conds.get("vertical"),
                vertical1=conds.get("vertical1"),
                index=i,
            )
        )

    default = _check_genre(data.get("default"), f"{where}: key 'default'", allowed, allow_new)
    priority = DEFAULT_PRIORITY
    if data.get("priority") is not None:
        plist = _str_list(data["priority"], f"{where}: key 'priority'")
        priority = tuple(
            _check_genre(p, f"{where}: key 'priority'", allowed, allow_new) for p in plist  # type: ignore[misc]
        )
    mapping = GenreMapping(
        name=where,
        source=source,
        classes=classes,
        rules=rules,
        default=default,
        priority=priority,
        genres=allowed,
    )
    if allow_new:
        mapping.genres = tuple(dict.fromkeys([*allowed, *sorted(mapping.mapped_genres)]))
    return mapping


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
class RemapReport:
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

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

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
    import fiftyone as fo

    report = RemapReport(dry_run=dry_run)
    ids = collection.values("id")
    n = len(ids)
    report.total = n
    sources = _field_values(collection, g.SOURCE_FIELD, n)
    labels = _field_values(collection, g.SOURCE_LABEL_FIELD, n)
    current = _field_values(collection, g.GENRE_FIELD, n)
    tags = collection.values("tags")
    history = _field_values(collection, g.GENRE_HISTORY_FIELD, n)

    user_mapping = load_mapping(mapping, allow_new_genres) if mapping is not None else None
    per_source: dict[str | None, GenreMapping | None] = {}

    def mapping_for(src: str | None) -> GenreMapping | None:
        if user_mapping is not None:
            return user_mapping
        if src not in per_source:
            if src in SHIPPED_SOURCES or src == FOLDER_SOURCE:
                per_source[src] = load_mapping(src)
            else:
                per_source[src] = None
                report.warnings.append(
                    f"no default mapping for source {src!r}: its clips stay unmapped "
                    "(pass --mapping FILE)"
                )
        return per_source[src]

    vocab = _resolve_vocabulary(collection, vocabulary)
    seen_names: dict[int, set[str]] = {}
    used_mappings: dict[int, GenreMapping] = {}
    no_verticals: Counter = Counter()
    unmapped_classes: Counter = Counter()
    ignored_classes: Counter = Counter()
    conflicts: Counter = Counter()
    counts: Counter = Counter()

    write_ids: list[str] = []
    write_genres: list[Any] = []
    write_tags: list[list[str]] = []
    write_history: list[Any] = []

    for i in track(range(n), total=n, desc="remap", progress=progress):
        sample_tags = list(tags[i] or [])
        src = sources[i]
        m = mapping_for(src)
        if m is not None:
            used_mappings[id(m)] = m
            report.mappings[str(src) if user_mapping is None else "all sources"] = m.name
        entries = _source_entries(labels[i])
        if m is not None:
            seen_names.setdefault(id(m), set()).update(name for name, _ in entries)

        if g.RELABELED_TAG in sample_tags and not overwrite_relabeled:
            report.kept_relabeled += 1
            label = _genre_label(current[i])
            if label:
                counts[label] += 1
            else:
                report.unmapped_clips += 1
            continue

        resolved: list[tuple[str, str | None]] = []
        for name, verts in entries:
            if verts is None and vocab is not None:
                verts = vocab.get(name)
            if m is not None and verts is None and m.uses_verticals:
                no_verticals[name] += 1
            resolved.append((name, m.resolve(name, verts) if m is not None else None))
        candidates = sorted({genre for _, genre in resolved if genre})

        new_tags = [t for t in sample_tags if t not in (g.UNMAPPED_TAG, g.CONFLICT_TAG)]
        if not candidates:
            genre_value = None
            new_tags.append(g.UNMAPPED_TAG)
            report.unmapped_clips += 1
            for name, _ in resolved or [("<no source label>", None)]:
                unmapped_classes[name] += 1
        else:
            assert m is not None
            chosen = m.choose(candidates)
            counts[chosen] += 1
            for name, genre in resolved:
                if genre is None:
                    ignored_classes[name] += 1
            kwargs: dict[str, Any] = {}
            if len(candidates) > 1:
                new_tags.append(g.CONFLICT_TAG)
                report.conflict_clips += 1
                conflicts[f"{' | '.join(candidates)} -> {chosen}"] += 1
                kwargs["candidates"] = candidates
            genre_value = fo.Classification(label=chosen, **kwargs)

        old_label = _genre_label(current[i])
        new_label = _genre_label(genre_value)
        hist = list(history[i] or [])
        if g.RELABELED_TAG in sample_tags:  # overwrite_relabeled=True: keep it auditable
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
        if old_label != new_label or new_tags != sample_tags or _candidates(current[i]) != _candidates(genre_value):
            report.changed += 1
        write_ids.append(ids[i])
        write_genres.append(genre_value)
        write_tags.append(new_tags)
        write_history.append(hist or None)

    report.counts = dict(counts)
    report.unmapped_classes = dict(unmapped_classes)
    report.ignored_classes = dict(ignored_classes)
    report.conflicts = dict(conflicts)

    for key, m in used_mappings.items():
        seen = seen_names.get(key, set())
        unused = sorted(k for k in m.classes if k not in seen)
        if not unused:
            continue
        report.unused_keys[m.name] = unused
        if user_mapping is not None:  # shipped maps list every official class on purpose
            report.warnings.append(_typo_warning(m.name, unused, seen))
    if no_verticals:
        report.warnings.append(
            f"{sum(no_verticals.values())} labels carry no verticals, so vertical rules could not "
            "apply (store vertical1..3 on the labels or pass a vocabulary.csv)"
        )
    for w in report.warnings:
        logger.warning(w)

    if dry_run or not write_ids:
        return report

    dataset = collection._root_dataset
    _ensure_fields(dataset)
    view = dataset.select(write_ids, ordered=True)
    view.set_values(g.GENRE_FIELD, write_genres)
    view.set_values("tags", write_tags)
    if any(h is not None for h in write_history):
        view.set_values(g.GENRE_HISTORY_FIELD, write_history)
    dataset.info[g.REMAP_INFO_KEY] = {"mappings": dict(report.mappings), "time": _now()}
    dataset.save()
    return report


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

    if not isinstance(genre, str) or not genre.strip():
        raise ValueError(f"relabel: genre must be a non-empty string, got {genre!r}")
    genre = genre.strip()
    allowed = known_genres(collection._root_dataset)
    if genre not in allowed and not allow_new_genre:
        raise ValueError(
            f"relabel: unknown genre {genre!r}; known genres: {', '.join(allowed)} "
            "(pass allow_new_genre=True / --new-genre to add one)"
        )
    ids = collection.values("id")
    if not ids:
        return 0
    n = len(ids)
    current = _field_values(collection, g.GENRE_FIELD, n)
    tags = collection.values("tags")
    history = _field_values(collection, g.GENRE_HISTORY_FIELD, n)
    who, when = _username(user), _now()

    new_genres, new_tags, new_history = [], [], []
    for i in range(n):
        sample_tags = list(tags[i] or [])
        removed = [t for t in (g.UNMAPPED_TAG, g.CONFLICT_TAG) if t in sample_tags]
        kept = [t for t in sample_tags if t not in removed]
        if g.RELABELED_TAG not in kept:
            kept.append(g.RELABELED_TAG)
        entry = {
            "time": when,
            "user": who,
            "previous": _genre_label(current[i]),
            "previous_candidates": _candidates(current[i]),
            "genre": genre,
            "reason": reason,
            "removed_tags": removed,
        }
        new_history.append([*(history[i] or []), entry])
        new_genres.append(fo.Classification(label=genre))
        new_tags.append(kept)

    dataset = collection._root_dataset
    _ensure_fields(dataset)
    view = dataset.select(ids, ordered=True)
    view.set_values(g.GENRE_FIELD, new_genres)
    view.set_values("tags", new_tags)
    view.set_values(g.GENRE_HISTORY_FIELD, new_history)
    return n


def undo_relabel(collection) -> int:
    """Revert the latest history entry of each sample in ``collection``; returns how many.

    The previous genre (or None) and the tags the relabel removed come back;
    ``genre:relabeled`` goes once a sample's history is empty.
    """
    import fiftyone as fo

    if g.GENRE_HISTORY_FIELD not in collection.get_field_schema():
        return 0
    view = collection.exists(g.GENRE_HISTORY_FIELD)
    ids = view.values("id")
    history = view.values(g.GENRE_HISTORY_FIELD)
    tags = view.values("tags")
    out_ids, out_genres, out_tags, out_history = [], [], [], []
    for sid, hist, sample_tags in zip(ids, history, tags):
        if not hist:
            continue
        hist = list(hist)
        last = hist.pop()
        prev = last.get("previous")
        cands = last.get("previous_candidates")
        kw = {"candidates": list(cands)} if cands else {}
        out_genres.append(fo.Classification(label=prev, **kw) if prev else None)
        new_tags = [t for t in (sample_tags or []) if t != g.RELABELED_TAG]
        for t in last.get("removed_tags") or []:
            if t not in new_tags:
                new_tags.append(t)
        if hist and hist[-1].get("user") != "remap" and g.RELABELED_TAG not in new_tags:
            new_tags.append(g.RELABELED_TAG)
        out_ids.append(sid)
        out_tags.append(new_tags)
        out_history.append(hist or None)
    if not out_ids:
        return 0
    target = collection._root_dataset.select(out_ids, ordered=True)
    target.set_values(g.GENRE_FIELD, out_genres)
    target.set_values("tags", out_tags)
    target.set_values(g.GENRE_HISTORY_FIELD, out_history)
    return len(out_ids)
