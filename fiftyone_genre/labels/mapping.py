"""Mapping files: which source class (or YouTube-8M entity) maps to which genre.

A mapping file (YAML, one shipped per source under
``fiftyone_genre/labels/mappings/``) maps class names to a genre or to
nothing, with optional rules on YouTube-8M entity names and verticals and a
``priority`` that settles conflicts. Files are read with a safe loader that
also rejects duplicate keys; every error names the file and the key.
"""

from __future__ import annotations

import csv
import difflib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError

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


#: Label attributes read as an entity's verticals (set by the YouTube-8M importer).
VERTICAL_ATTRS: tuple[str, ...] = g.YT8M_VERTICAL_ATTRS
_TOP_KEYS = ("source", "description", "genres", "map", "unmapped", "veto", "rules", "priority", "default")
_RULE_KEYS = ("genre", "name_regex", "vertical", "vertical1", "veto", "note")
_MISSING = object()


@dataclass(frozen=True)
class Rule:
    """One ordered YouTube-8M style rule: all given conditions must hold."""

    genre: str | None
    name_regex: re.Pattern | None = None
    vertical: str | None = None
    vertical1: str | None = None
    index: int = 0
    #: an entity this rule decides vetoes its whole record (no genre at all)
    veto: bool = False

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
    #: classes whose presence leaves a multi-label clip without a genre, whatever
    #: its other labels say (YouTube-8M: video-game footage is not a film genre)
    veto: frozenset[str] = frozenset()

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

    def vetoes(self, name: str, verticals: tuple[str, ...] | None = None) -> bool:
        """Whether this class takes its clip's genre away: listed under ``veto``, or decided by a veto rule.

        A class listed under ``map`` or ``unmapped`` is decided by name and
        never by a rule, so listing it there exempts it from a veto rule.
        """
        if name in self.veto:
            return True
        if name in self.classes or self.identity:
            return False
        rule = next((r for r in self.rules if r.matches(name, verticals)), None)
        return rule is not None and rule.veto

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
        veto=frozenset(_str_list(data.get("veto"), f"{where}: key 'veto'")),
        default=genre(data.get("default"), f"{where}: key 'default'"),
        priority=_parse_priority(data.get("priority"), where, genre),
        genres=allowed,
    )
    clash = sorted(n for n in mapping.veto if mapping.classes.get(n))
    if clash:
        raise ConfigError(f"{where}: key {clash[0]!r} is both mapped to a genre and listed under 'veto'")
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
    veto = raw.get("veto", False)
    if not isinstance(veto, bool):
        raise ConfigError(f"{at}.veto: expected true or false, got {veto!r}")
    if veto and raw["genre"] is not None:
        raise ConfigError(f"{at}: a veto rule takes the clip's genre away, so its genre must be null")
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
        veto=veto,
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
