"""The App layer: one module per stage, each exporting ``OPERATORS`` (classes).

Every operator here is a thin shell: a form, then one call into
``fiftyone_genre``. Every name must also be listed in ``fiftyone.yml``.
"""

from __future__ import annotations

import importlib

#: Modules under operators/ that export OPERATORS, in data-flow order.
MODULES = ("importing", "labels", "features", "training", "analysis", "panel", "timeline")


def all_operators() -> list[type]:
    ops: list[type] = []
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        ops.extend(module.OPERATORS)
    return ops
