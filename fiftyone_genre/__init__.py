"""fiftyone-genre: audio-visual video genre classification for FiftyOne.

The library follows the data: sources -> genres -> media -> features ->
model -> train -> predict -> analysis. Import the stage you need, e.g.
``from fiftyone_genre import sources, remap, split, features, train, predict, analysis``.

``GenreModel`` (a FiftyOne model for ``apply_model`` / ``compute_embeddings``)
and ``classify_files`` (genre of any video file, no dataset) load on first
use, so ``import fiftyone_genre`` stays light.
"""

from __future__ import annotations

from typing import Any

from fiftyone_genre.genres import GENRES

__version__ = "0.1.0"
__all__ = ["GENRES", "GenreModel", "classify_files", "__version__"]

_LAZY = {"GenreModel": "fiftyone_genre.fo_model", "classify_files": "fiftyone_genre.classify"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fiftyone_genre' has no attribute {name!r}")
