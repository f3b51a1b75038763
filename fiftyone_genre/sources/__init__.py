"""Importers: official dataset layouts -> one FiftyOne dataset with a common schema.

>>> from fiftyone_genre.sources import import_source
>>> print(import_source("ucf101", "genres", "/data/UCF101", fold=1))

Every importer returns an :class:`ImportReport` (``str()`` = the summary);
every source's ``parse_*`` returns a :class:`ParseResult` that
:func:`import_with` turns into samples (:mod:`fiftyone_genre.sources.adding`);
see :mod:`fiftyone_genre.sources.common` for the failure policy and
``docs/importing.md`` for users.
"""

from __future__ import annotations

from pathlib import Path

from fiftyone_genre.sources.adding import import_with
from fiftyone_genre.sources.common import SOURCES, ImportProblem, ImportReport, ParseResult
from fiftyone_genre.sources.folder import import_folder
from fiftyone_genre.sources.hmdb51 import import_hmdb51
from fiftyone_genre.sources.hollywood2 import import_hollywood2
from fiftyone_genre.sources.ucf101 import import_ucf101
from fiftyone_genre.sources.yt8m import import_yt8m

IMPORTERS = {
    "ucf101": import_ucf101,
    "hmdb51": import_hmdb51,
    "hollywood2": import_hollywood2,
    "yt8m": import_yt8m,
    "folder": import_folder,
}


def import_source(kind: str, dataset, path: str | Path, **kwargs) -> ImportReport:
    """Import ``path`` with the importer for ``kind`` (one of :data:`SOURCES`).

    Keyword arguments the chosen importer does not take (e.g. ``fold`` for a
    folder tree) raise a ``ValueError`` naming them, rather than being ignored.
    """
    import inspect

    if kind not in IMPORTERS:
        raise ValueError(f"unknown source {kind!r}; choose one of {', '.join(SOURCES)}")
    fn = IMPORTERS[kind]
    accepted = set(inspect.signature(fn).parameters)
    unknown = sorted(k for k, v in kwargs.items() if k not in accepted and v is not None)
    if unknown:
        raise ValueError(f"{kind} import does not take {', '.join(unknown)}")
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    return fn(dataset, path, **kwargs)


__all__ = [
    "IMPORTERS",
    "SOURCES",
    "ImportProblem",
    "ImportReport",
    "ParseResult",
    "import_folder",
    "import_hmdb51",
    "import_hollywood2",
    "import_source",
    "import_ucf101",
    "import_with",
    "import_yt8m",
]
