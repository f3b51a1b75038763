"""Command-line flags for config keys, made from their declarations in :mod:`fiftyone_genre.config`.

A key declared with ``cli=("features", ...)`` becomes a flag of those
commands: its type, choices, help and default come from the declaration. A
flag that is given overrides the key in the experiment file
(:func:`config_overrides`); one that is left out keeps the file's value.
"""

from __future__ import annotations

import argparse
import typing
from typing import Any

from fiftyone_genre.config import ExperimentConfig
from fiftyone_genre.schema import Declared, base_type, declared, flag_name, sections


class _LazyNames:
    """``choices`` that import the module a key's ``names_from`` points at (torch) only when a
    value is checked or the help is shown, so building the parser stays fast. Pair it with
    ``metavar``: argparse otherwise lists the choices while adding the argument."""

    def __init__(self, d: Declared) -> None:
        self.spec = d.spec

    def __contains__(self, value: object) -> bool:
        return value in self.spec.names()

    def __iter__(self):
        return iter(self.spec.names())


def _default_text(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(_default_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flag_options(d: Declared) -> dict[str, Any]:
    """``add_argument`` keywords for one key: type, nargs, choices, metavar and help."""
    spec, hint = d.spec, base_type(d.hint)
    text = spec.help.replace("%", "%%")
    options: dict[str, Any] = {"default": None, "metavar": spec.metavar}
    if hint is bool:
        return {"action": "store_true", "default": None, "help": text}
    if typing.get_origin(hint) is tuple:
        inner = typing.get_args(hint)
        options.update(nargs=len(inner), type=inner[0])
    elif hint in (int, float):
        options["type"] = hint
    if spec.choices:
        options["choices"] = list(spec.choices)
    elif spec.names_from:
        options["choices"] = _LazyNames(d)
        options["metavar"] = spec.metavar or "NAME"
        text += ": %(choices)s"
    elif spec.presets:
        options["metavar"] = spec.metavar or "|".join([v for v, _ in spec.presets] + ["PATH"])
    else:  # argparse would name it after the dest, "FEATURES.FPS"
        options["metavar"] = spec.metavar or flag_name(d).lstrip("-").replace("-", "_").upper()
    if d.default is not None:
        text += f" (default: {_default_text(d.default)})"
    options["help"] = text
    return options


def add_config_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Add a flag for every config key that declares ``command`` in its ``cli``."""
    for section, cls in sections(ExperimentConfig):
        for d in declared(cls):
            if command in d.spec.cli:
                parser.add_argument(flag_name(d), dest=f"{section}.{d.name}", **_flag_options(d))


def config_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config flags that were given, as ``load_experiment`` section overrides."""
    overrides: dict[str, dict[str, Any]] = {}
    for dest, value in vars(args).items():
        section, dot, key = dest.partition(".")
        if dot and value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides
