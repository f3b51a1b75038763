"""One base for every stage's report: ``to_dict`` / ``to_json`` from the dataclass, ``str`` for people.

Each stage returns a small dataclass describing what it did (what was imported,
extracted, trained, ...). The CLI prints ``str(report)``, ``--json`` prints
``report.to_json()``, operators show both; one base keeps the three in step.
Subclasses override :meth:`extra` to add derived values (totals, ratios) to the
dict, and ``__str__`` for the human summary.
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any


def plain(value: Any) -> Any:
    """JSON-safe copy: nested reports and dataclasses become dicts, paths strings, tuples lists, numpy scalars numbers."""
    if isinstance(value, Report):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return plain({f.name: getattr(value, f.name) for f in fields(value)})
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return value


class Report:
    """Mixin for ``@dataclass`` reports. Fields whose name starts with ``_`` stay private."""

    def extra(self) -> dict[str, Any]:
        """Derived values added to :meth:`to_dict` (none by default)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        assert is_dataclass(self), f"{type(self).__name__} must be a dataclass"
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        return plain({**data, **self.extra()})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(plain(self.to_dict()), indent=indent, default=str)
