"""Field lookups, counts and saved views that the App panel and operators share.

- :func:`confusion_view` the samples of one (true, predicted) cell;
- :func:`disagreement_view` samples whose picture and soundtrack disagree;
- which fields hold predictions or ground truth, and label counts.
"""

from __future__ import annotations

import re
from collections import Counter

from fiftyone_genre import genres as g

DEFAULT_EVAL_KEY = "genre_eval"
#: Marks the saved views evaluate() made, so a re-run replaces them and only them.
VIEW_DESCRIPTION_PREFIX = "fiftyone-genre confusion cell"


def slugify(text: str) -> str:
    """``"Science Fiction"`` -> ``"science-fiction"`` (saved-view names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def confusion_view_name(true_genre: str, pred_genre: str, eval_key: str = DEFAULT_EVAL_KEY) -> str:
    """The saved-view name of a confusion cell; non-default eval keys are appended."""
    name = f"{slugify(true_genre)}-predicted-as-{slugify(pred_genre)}"
    if eval_key != DEFAULT_EVAL_KEY:
        name += f"-{slugify(eval_key)}"
    return name


def confusion_view(
    collection,
    true_genre: str,
    pred_genre: str,
    pred_field: str = g.PRED_FIELD,
    gt_field: str = g.GENRE_FIELD,
):
    """Samples labelled ``true_genre`` and predicted ``pred_genre``, most confident first.

    The most confident wrong predictions come first because they are the
    likeliest label errors (or the model's most systematic mistakes).
    """
    from fiftyone import ViewField as F

    return collection.match(
        (F(f"{gt_field}.label") == true_genre) & (F(f"{pred_field}.label") == pred_genre)
    ).sort_by(F(f"{pred_field}.confidence"), reverse=True)


#: Fields this project writes as predictions: never offered as ground truth.
PREDICTION_FIELDS: tuple[str, ...] = (g.PRED_FIELD, g.PRED_VISUAL_FIELD, g.PRED_AUDIO_FIELD)
#: Label fields that are inputs, never predictions to score.
LABEL_FIELDS: tuple[str, ...] = (g.GENRE_FIELD, g.SOURCE_LABEL_FIELD)


def classification_fields(collection) -> list[str]:
    """Sample-level ``fo.Classification`` fields of the collection, in schema order."""
    import fiftyone as fo

    return list(collection.get_field_schema(embedded_doc_type=fo.Classification))


def prediction_fields(collection) -> list[str]:
    """Classification fields that can be scored: everything but the ground-truth and source labels."""
    return [f for f in classification_fields(collection) if f not in LABEL_FIELDS]


def ground_truth_fields(collection) -> list[str]:
    """Classification fields that can serve as ground truth: not this project's predictions."""
    return [f for f in classification_fields(collection) if f not in PREDICTION_FIELDS]


def restrict_split(collection, split: str | None):
    """The samples of one split (``train``/``val``/``test``), or all of them for ``all``/None."""
    from fiftyone import ViewField as F

    if not split or split == "all" or not collection.has_field(g.SPLIT_FIELD):
        return collection
    return collection.match(F(g.SPLIT_FIELD) == split)


def ordered_labels(*label_sets) -> list[str]:
    """The canonical genres first (in class-index order), then any others alphabetically.

    A user mapping may add genres; they must still get a row and a column.
    Canonical genres are listed only when they occur, so a dataset with three
    genres gets a 3x3 matrix rather than six empty rows.
    """
    present: set[str] = set()
    for labels in label_sets:
        present.update(label for label in labels if label is not None)
    ordered = [genre for genre in g.GENRES if genre in present]
    return ordered + sorted(present - set(ordered))


def label_counts(collection, field_name: str) -> dict[str, int]:
    """``{label: count}`` of a ``fo.Classification`` field, empty when the field is absent."""
    if not collection.has_field(field_name):
        return {}
    counts = collection.count_values(f"{field_name}.label")
    return {label: int(n) for label, n in counts.items() if label is not None}


def pair_counts(collection, gt_field: str = g.GENRE_FIELD, pred_field: str = g.PRED_FIELD) -> Counter:
    """``(true, predicted) -> count`` over samples having both labels (one round-trip)."""
    if not (collection.has_field(gt_field) and collection.has_field(pred_field)):
        return Counter()
    both = collection.exists(gt_field).exists(pred_field)
    truth, pred = both.values([f"{gt_field}.label", f"{pred_field}.label"])
    return Counter((t, p) for t, p in zip(truth, pred) if t is not None and p is not None)


def confusion_counts(
    collection, true_field: str = g.GENRE_FIELD, pred_field: str = g.PRED_FIELD
) -> tuple[list[str], list[list[int]]]:
    """``(labels, matrix)`` with ``matrix[i][j]`` = samples of true ``labels[i]`` predicted ``labels[j]``."""
    pairs = pair_counts(collection, true_field, pred_field)
    labels = ordered_labels([t for t, _ in pairs], [p for _, p in pairs])
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (t, p), n in pairs.items():
        matrix[index[t]][index[p]] += n
    return labels, matrix


def accuracy(matrix) -> float | None:
    """Fraction on the diagonal, or None for an empty matrix."""
    total = sum(sum(row) for row in matrix)
    if not total:
        return None
    return sum(matrix[i][i] for i in range(len(matrix))) / total


def accuracy_by_split(
    collection, gt_field: str = g.GENRE_FIELD, pred_field: str = g.PRED_FIELD
) -> dict[str, tuple[float | None, int]]:
    """``{split: (accuracy or None, clips scored)}`` for train, val and test (one round-trip).

    The App panel shows these side by side: a headline accuracy over every
    clip mixes in the training clips the model has learned, which flatters it.
    """
    if not (collection.has_field(gt_field) and collection.has_field(pred_field) and collection.has_field(g.SPLIT_FIELD)):
        return {s: (None, 0) for s in g.SPLITS}
    both = collection.exists(gt_field).exists(pred_field)
    splits, truth, pred = both.values([g.SPLIT_FIELD, f"{gt_field}.label", f"{pred_field}.label"])
    scored: Counter = Counter()
    right: Counter = Counter()
    for s, t, p in zip(splits, truth, pred):
        if t is not None and p is not None:
            scored[s] += 1
            right[s] += t == p
    return {s: (right[s] / scored[s] if scored[s] else None, scored[s]) for s in g.SPLITS}


def disagreement_view(
    collection,
    visual_field: str = g.PRED_VISUAL_FIELD,
    audio_field: str = g.PRED_AUDIO_FIELD,
):
    """Samples whose visual-only and audio-only genres differ, surest disagreements first.

    Sorted by the *lower* of the two single-modality confidences, descending:
    at the top both the picture and the soundtrack are confident and still
    disagree (a horror score under a sports clip, a mislabeled source), while
    disagreements where one modality is merely unsure sink to the bottom.
    """
    from fiftyone import ViewField as F

    for name in (visual_field, audio_field):
        if not collection.has_field(name):
            raise ValueError(
                f"no field '{name}': per-modality predictions come from a fused model's predict run"
            )
    vc, ac = F(f"{visual_field}.confidence"), F(f"{audio_field}.confidence")
    return (
        collection.exists(visual_field)
        .exists(audio_field)
        .match(F(f"{visual_field}.label") != F(f"{audio_field}.label"))
        .sort_by((vc < ac).if_else(vc, ac), reverse=True)
    )
