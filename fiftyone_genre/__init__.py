"""fiftyone-genre: audio-visual video genre classification for FiftyOne.

The package is laid out as the data flows, one subpackage per stage:
``sources`` (importers) -> ``labels`` (remap, relabel, split, leakage) ->
``features`` (decode, CNNs, cache) -> ``modeling`` (windows, CNN-LSTM,
training) -> ``inference`` (predict, classify, FiftyOne model, zoo) ->
``analysis`` (evaluation, maps, views); ``demo`` generates the demo media.

The stage modules a script uses most are importable from here, e.g.
``from fiftyone_genre import sources, remap, split, features, train, predict, analysis``;
``GenreModel`` (a FiftyOne model for ``apply_model`` / ``compute_embeddings``)
and ``classify_files`` (genre of any video file, no dataset) too. All of them
load on first use, so ``import fiftyone_genre`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from fiftyone_genre.genres import GENRES

__version__ = "0.1.0"

#: Public name -> "module" (a stage module) or "module:attribute".
_SDK = {
    "sources": "fiftyone_genre.sources",
    "remap": "fiftyone_genre.labels.remap",
    "split": "fiftyone_genre.labels.split",
    "features": "fiftyone_genre.features",
    "train": "fiftyone_genre.modeling.train",
    "predict": "fiftyone_genre.inference.predict",
    "analysis": "fiftyone_genre.analysis",
    "GenreModel": "fiftyone_genre.inference.fo_model:GenreModel",
    "classify_files": "fiftyone_genre.inference.classify:classify_files",
}

__all__ = ["GENRES", "__version__", *_SDK]


def __getattr__(name: str) -> Any:
    if name not in _SDK:
        raise AttributeError(f"module 'fiftyone_genre' has no attribute {name!r}")
    module, _, attr = _SDK[name].partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attr) if attr else loaded
