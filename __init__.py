"""FiftyOne plugin entry point: registers the operators and the panel, nothing else.

The work lives in the ``fiftyone_genre`` library; ``operators/`` holds the thin
App layer. FiftyOne loads this file as a package, so relative imports work.
"""

import importlib.util
import os
import sys

# Installed with `fiftyone plugins download` (no `pip install`), the library
# sits next to this file but is not importable yet: make it so.
if importlib.util.find_spec("fiftyone_genre") is None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from .operators import all_operators  # noqa: E402


def register(p):
    for cls in all_operators():
        p.register(cls)
