"""fiftyone-genre: audio-visual video genre classification for FiftyOne.

The library follows the data: sources -> genres -> media -> features ->
model -> train -> predict -> analysis. Import the stage you need, e.g.
``from fiftyone_genre import sources, remap, split, features, train, predict, analysis``.
"""

from fiftyone_genre.genres import GENRES

__version__ = "0.1.0"
__all__ = ["GENRES", "__version__"]
