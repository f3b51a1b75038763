"""How a config setting is declared once and checked, listed and documented from that declaration.

Each key of a config section (:mod:`fiftyone_genre.config`) is a dataclass
field made by :func:`setting`: its default, a one-line help and a
:class:`Setting` saying which values it allows (a choice list, a numeric
:class:`Range`, a device spelling) and where it appears (a flag of which CLI
commands, a field of the App form). Everything else reads those declarations:

* :func:`from_dict` checks a YAML/JSON mapping (type, choices, range) and names
  the file and the key; :func:`check_config` checks an object built in code;
* :mod:`fiftyone_genre.cli.flags` adds the command-line flags;
* ``operators/settings.py`` adds the App form fields;
* :func:`settings_markdown` writes the settings table of ``docs/reference.md``.

The sections stay plain dataclasses with field metadata rather than pydantic
models: ``dataclasses.replace``/``asdict``, equality and keyword construction
keep working everywhere (checkpoints, ``dataset.info``), error messages are
ours word for word, an object built in code is checked only when a stage
starts (:func:`check_config`), and the CLI does not pay pydantic's import.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the file and key."""


@dataclass(frozen=True)
class Range:
    """Allowed numeric values of one key: ``lo <= v <= hi`` (``lo < v`` when ``open_lo``)."""

    lo: float
    hi: float
    open_lo: bool = False

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value > self.lo if self.open_lo else value >= self.lo
        return above and value <= self.hi

    def __str__(self) -> str:
        lo = "(" if self.open_lo else "["
        return f"{lo}{_num(self.lo)}, {_num(self.hi)}]"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Setting:
    """Everything said about one config key besides its type and default.

    ``names_from`` (``"module:ATTR"``) lists the accepted names for the CLI and
    the App form without importing that module (torch) when a config loads;
    the stage that uses the value refuses other names. ``presets`` are named
    values, each with a label for the form, of a key that also takes a file
    path (``path="file"``). ``cli`` names the commands with a flag for the key
    (``flag`` overrides its name, ``--<key>``); ``form`` is its label in the
    App form (None: not on the form).
    """

    help: str
    choices: tuple[str, ...] = ()
    range: Range | None = None
    #: spelled auto, cpu, cuda, cuda:N or mps (whether it exists is checked when a stage starts)
    device: bool = False
    names_from: str | None = None
    presets: tuple[tuple[str, str], ...] = ()
    #: "file" (must exist) or "folder" (created when missing): the form expands ``~``
    path: str | None = None
    #: a features key whose value changes the numbers: part of the feature cache key
    in_cache_key: bool = False
    cli: tuple[str, ...] = ()
    flag: str | None = None
    metavar: str | tuple[str, ...] | None = None
    form: str | None = None

    def names(self) -> tuple[str, ...]:
        """The closed list of values: ``choices``, or the list ``names_from`` points at (imported now)."""
        if self.names_from is None:
            return self.choices
        module, _, attr = self.names_from.partition(":")
        return tuple(getattr(importlib.import_module(module), attr))


#: The key under which :func:`setting` stores a field's :class:`Setting`.
SETTING = "setting"


def setting(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field with ``default`` and its :class:`Setting` (``spec``: that class's fields)."""
    return field(default=default, metadata={SETTING: Setting(help, **spec)})


@dataclass(frozen=True)
class Declared:
    """One declared key of a section, as the CLI, the form and the docs read it."""

    name: str
    hint: Any
    default: Any
    spec: Setting


@functools.cache
def declared(cls: type) -> tuple[Declared, ...]:
    """The keys of section ``cls`` declared with :func:`setting`, in declaration order."""
    hints = typing.get_type_hints(cls)
    return tuple(
        Declared(f.name, hints[f.name], f.default, f.metadata[SETTING])
        for f in dataclasses.fields(cls)
        if SETTING in f.metadata
    )


def spec_of(cls: type, name: str) -> Setting | None:
    f = cls.__dataclass_fields__.get(name)
    return f.metadata.get(SETTING) if f is not None else None


def sections(root: type) -> list[tuple[str, type]]:
    """``(section name, section class)`` of an experiment class whose fields are sections."""
    hints = typing.get_type_hints(root)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(root) if is_dataclass_type(hints[f.name])]


def base_type(hint: Any) -> Any:
    """``X`` for ``X | None``; the hint itself otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner[0]
    return hint


def is_dataclass_type(obj: Any) -> bool:
    return isinstance(obj, type) and dataclasses.is_dataclass(obj)


_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _check_allowed(cls: type, name: str, value: Any, where: str) -> None:
    """The range and device spelling of one key (choices are checked with the type)."""
    spec = spec_of(cls, name)
    if spec is None:
        return
    if spec.range is not None and value is not None and value not in spec.range:
        raise ConfigError(f"{where}: must be in {spec.range}, got {value!r}")
    if spec.device and not _DEVICE_RE.match(str(value).lower()):
        raise ConfigError(f"{where}: must be auto, cpu, cuda, cuda:N or mps; got {value!r}")


def check_config(obj: Any, source: str | None = None) -> Any:
    """Range-check every key of a stage config (built in code, not from a file); returns it."""
    cls = type(obj)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass_type(type(value)):
            check_config(value, source)
        else:
            _check_allowed(cls, f.name, value, f"{source or cls.__name__}: key '{f.name}'")
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-safe dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(obj))


def _check_scalar(hint: Any, value: Any, where: str) -> Any:
    """``value`` as a float, int, bool or str (``hint``), or one sentence naming ``where``."""
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if value is None:
            raise ConfigError(f"{where}: expected a string, got null")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _check_value(cls: type, name: str, hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _check_value(cls, name, base_type(hint), value, where)
    if is_dataclass_type(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple) or (args and len(value) != len(args)):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_check_value(cls, name, a, v, where) for a, v in zip(args, value))
    value = _check_scalar(hint, value, where)
    spec = spec_of(cls, name)
    if hint is str and spec is not None and spec.choices and value not in spec.choices:
        raise ConfigError(f"{where}: must be one of {', '.join(spec.choices)}; got {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], source: str = "<dict>") -> Any:
    """Build dataclass ``cls`` from ``data``, naming ``source`` and the key on error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(map(str, unknown))}; "
            f"valid keys are {', '.join(sorted(names))}"
        )
    kwargs = {}
    for k, v in data.items():
        where = f"{source}: key '{k}'"
        kwargs[k] = _check_value(cls, k, hints[k], v, where)
        if not is_dataclass_type(hints[k]):
            _check_allowed(cls, k, kwargs[k], where)
    return cls(**kwargs)


# --- the settings table of docs/reference.md --------------------------------------------
def _type_text(d: Declared) -> str:
    hint = base_type(d.hint)
    if typing.get_origin(hint) is tuple:
        text = f"{len(typing.get_args(hint))} numbers"
    elif d.spec.path and hint is str and not d.spec.presets:
        text = f"{d.spec.path} path"
    else:
        text = {float: "number", int: "integer", bool: "true/false", str: "string"}.get(hint, str(hint))
    return text + (" or null" if hint is not d.hint else "")


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return str(value)


def _allowed_text(d: Declared) -> str:
    spec = d.spec
    if spec.range is not None:
        return str(spec.range)
    if spec.choices:
        return ", ".join(f"`{c}`" for c in spec.choices)
    if spec.names_from:
        module, _, attr = spec.names_from.partition(":")
        return f"a name in `{module.removeprefix('fiftyone_genre.')}.{attr}`"
    if spec.presets:
        return ", ".join(f"`{v}`" for v, _ in spec.presets) + f" or a {spec.path} path"
    if spec.device:
        return "`auto`, `cpu`, `cuda`, `cuda:N`, `mps`"
    return "any"


def _where_text(d: Declared) -> str:
    spec = d.spec
    parts = []
    if spec.cli:
        parts.append(f"`{flag_name(d)}` ({', '.join(spec.cli)})")
    if spec.form:
        parts.append(f"App: {spec.form}")
    if spec.in_cache_key:
        parts.append("feature cache key")
    return "; ".join(parts) or "-"


def flag_name(d: Declared) -> str:
    """The command-line flag of a declared key: ``flag``, else ``--<key with dashes>``."""
    return d.spec.flag or "--" + d.name.replace("_", "-")


def settings_markdown(root: type) -> str:
    """One table per section of ``root``: key, type, default, allowed values, flag and help."""
    lines: list[str] = []
    for section, cls in sections(root):
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        lines += [f"#### `{section}`: {summary}", ""]
        lines += ["| key | type | default | allowed | also in | meaning |", "|---|---|---|---|---|---|"]
        for d in declared(cls):
            cells = [f"`{d.name}`", _type_text(d), f"`{_value_text(d.default)}`", _allowed_text(d),
                     _where_text(d), d.spec.help]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
