"""FiftyOne plugin entry point: registers the operators and the panel, nothing else.

The work lives in the ``fiftyone_genre`` library; ``operators/`` holds the thin
App layer. FiftyOne loads this file as a package, so relative imports work.
"""

from .operators import all_operators


def register(p):
    for cls in all_operators():
        p.register(cls)
