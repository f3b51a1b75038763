"""Stage 6, analysis: how good the predictions are, and where to look.

``evaluation`` scores predictions per split and saves a view per confusion
cell, ``maps`` computes the embedding map, similarity, mistakenness and
hardness brain runs, and ``views`` holds the field lookups and views the App
panel and operators share.
"""

from fiftyone_genre.analysis.evaluation import (
    DEFAULT_MAX_VIEWS,
    EvalReport,
    default_eval_split,
    eval_key_for,
    evaluate,
    save_confusion_png,
)
from fiftyone_genre.analysis.maps import MapsReport, compute_maps, maps_brain_keys
from fiftyone_genre.analysis.views import (
    DEFAULT_EVAL_KEY,
    LABEL_FIELDS,
    PREDICTION_FIELDS,
    VIEW_DESCRIPTION_PREFIX,
    accuracy,
    accuracy_by_split,
    classification_fields,
    confusion_counts,
    confusion_view,
    confusion_view_name,
    disagreement_view,
    ground_truth_fields,
    label_counts,
    ordered_labels,
    pair_counts,
    prediction_fields,
    restrict_split,
    slugify,
)

__all__ = [
    "DEFAULT_EVAL_KEY",
    "DEFAULT_MAX_VIEWS",
    "LABEL_FIELDS",
    "PREDICTION_FIELDS",
    "VIEW_DESCRIPTION_PREFIX",
    "EvalReport",
    "MapsReport",
    "accuracy",
    "accuracy_by_split",
    "classification_fields",
    "compute_maps",
    "confusion_counts",
    "confusion_view",
    "confusion_view_name",
    "default_eval_split",
    "disagreement_view",
    "eval_key_for",
    "evaluate",
    "ground_truth_fields",
    "label_counts",
    "maps_brain_keys",
    "ordered_labels",
    "pair_counts",
    "prediction_fields",
    "restrict_split",
    "save_confusion_png",
    "slugify",
]
