"""Error analysis: where the model and the labels disagree, one click away.

- :func:`evaluate` runs FiftyOne's classification evaluation (so the App's
  evaluation panel shows it), saves a confusion-matrix PNG, and saves one
  named view per large off-diagonal cell, e.g. ``horror-predicted-as-action``,
  holding exactly those samples.
- :func:`confusion_view` builds the same view for any (true, predicted) pair.
- :func:`compute_maps` runs the FiftyOne Brain on the clip embeddings: a UMAP
  map (lasso a cluster, relabel it), a similarity index, mistakenness of the
  ground truth (likely remap errors) and hardness of the predictions.
- :func:`disagreement_view`: samples whose picture and soundtrack disagree.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.report import Report
from fiftyone_genre.utils import ProgressFn

DEFAULT_EVAL_KEY = "genre_eval"
#: How many off-diagonal cells get a saved view by default.
DEFAULT_MAX_VIEWS = 5
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


# --------------------------------------------------------------------------- counts

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


# --------------------------------------------------------------------------- evaluate


@dataclass
class EvalReport(Report):
    """The outcome of :func:`evaluate`; ``to_json()`` is what ``--json`` prints."""

    eval_key: str
    pred_field: str
    gt_field: str
    labels: list[str]
    confusion: np.ndarray  # [true, pred] counts over ``labels``
    per_genre: dict[str, dict[str, float]]
    accuracy: float
    macro_f1: float
    num_samples: int
    num_skipped: int
    saved_views: list[str] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    plot_path: str | None = None
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON view: the matrix as ``confusion_matrix`` + ``labels``, cells as ``confusions``."""
        return {
            "eval_key": self.eval_key,
            "split": self.split,
            "pred_field": self.pred_field,
            "gt_field": self.gt_field,
            "num_samples": self.num_samples,
            "num_skipped": self.num_skipped,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_genre": self.per_genre,
            "labels": list(self.labels),
            "confusion_matrix": self.confusion.astype(int).tolist(),
            "saved_views": list(self.saved_views),
            "confusions": list(self.cells),
            "plot_path": self.plot_path,
        }

    def table(self) -> str:
        """The per-genre precision/recall/F1/support table."""
        width = max(len("genre"), *(len(x) for x in self.labels))
        rows = [f"{'genre':<{width}}  precision  recall     f1  support"]
        for label in self.labels:
            s = self.per_genre[label]
            rows.append(
                f"{label:<{width}}  {s['precision']:9.3f}  {s['recall']:6.3f}  {s['f1']:5.3f}  "
                f"{int(s['support']):7d}"
            )
        return "\n".join(rows)

    def confusion_text(self) -> str:
        """The confusion matrix as text (rows: true genre, columns: predicted), full genre names."""
        corner = "true\\pred"
        width = max(len(corner), *(len(x) for x in self.labels))
        cols = [max(len(x), 3) for x in self.labels]
        head = f"{corner:<{width}} " + " ".join(f"{x:>{w}}" for x, w in zip(self.labels, cols))
        rows = [head]
        for label, row in zip(self.labels, self.confusion):
            rows.append(f"{label:<{width}} " + " ".join(f"{int(v):>{w}d}" for v, w in zip(row, cols)))
        return "\n".join(rows)

    def scope_text(self) -> str:
        """``"test split"`` or ``"all samples"``: what the numbers are about."""
        return f"{self.split} split" if self.split else "all samples"

    def markdown(self) -> str:
        """The report for the App: rounded metrics and two tables with full genre names."""
        lines = [
            f"**{self.scope_text()}** · {self.num_samples} clips · eval key `{self.eval_key}`"
            + (f" · {self.num_skipped} without both fields skipped" if self.num_skipped else ""),
            "",
            f"**Accuracy {self.accuracy:.3f}** · **macro-F1 {self.macro_f1:.3f}**",
            "",
            "| genre | precision | recall | F1 | clips |",
            "|---|---:|---:|---:|---:|",
        ]
        for label in self.labels:
            s = self.per_genre[label]
            lines.append(f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {int(s['support'])} |")
        lines += ["", "Confusion matrix (rows: true genre, columns: predicted)", ""]
        lines.append("| true \\ predicted | " + " | ".join(self.labels) + " |")
        lines.append("|---|" + "---:|" * len(self.labels))
        for label, row in zip(self.labels, self.confusion):
            cells = [f"**{int(v)}**" if label == other else str(int(v)) for v, other in zip(row, self.labels)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [
            f"evaluation '{self.eval_key}': {self.pred_field} vs {self.gt_field} on "
            f"{self.num_samples} samples of {self.scope_text()} ({self.num_skipped} without both fields skipped)",
            f"accuracy {self.accuracy:.3f}   macro-F1 {self.macro_f1:.3f}",
            "",
            self.table(),
            "",
            self.confusion_text(),
        ]
        if self.saved_views:
            lines += ["", "saved views (largest confusions):"]
            lines += [f"  {c['view']}: {c['count']} sample(s)" for c in self.cells if c.get("view")]
        if self.plot_path:
            lines += ["", f"confusion matrix plot: {self.plot_path}"]
        return "\n".join(lines)


def _label_order(collection, pred_field: str, gt_field: str, present: set[str]) -> list[str]:
    """The model's genre list (from the run info) or GENRES, then any other label seen."""
    info = collection._dataset.info.get(g.RUN_INFO_KEY) or {}
    base = list(info.get("genres") or g.GENRES)
    return base + sorted(present - set(base))


def _default_out_dir(dataset) -> Path:
    import fiftyone as fo

    return Path(fo.config.default_dataset_dir) / "genre_eval" / slugify(dataset.name)


def save_confusion_png(labels: list[str], confusion: np.ndarray, path: Path, title: str) -> Path:
    """A readable confusion-matrix PNG (counts, row-normalised colour)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    totals = confusion.sum(axis=1, keepdims=True)
    norm = np.divide(confusion, np.maximum(totals, 1), dtype=np.float64)
    size = 1.1 + 0.75 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    try:
        im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(labels)), labels=labels, rotation=40, ha="right")
        ax.set_yticks(range(len(labels)), labels=labels)
        ax.set_xlabel("predicted genre")
        ax.set_ylabel("true genre")
        ax.set_title(title)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(
                    j, i, str(int(confusion[i, j])), ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=9,
                )
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true genre")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def eval_key_for(split: str | None) -> str:
    """The evaluation key of a split: ``genre_eval`` for everything, ``genre_eval_test`` for test.

    One key per scope keeps a whole-dataset evaluation from replacing the
    test-only one the demo made (and the App's Model Evaluation panel can
    compare them side by side).
    """
    return DEFAULT_EVAL_KEY if not split or split == "all" else f"{DEFAULT_EVAL_KEY}_{split}"


def default_eval_split(collection) -> str | None:
    """``"test"`` when the collection has test samples (training clips flatter a model), else None."""
    if not collection.has_field(g.SPLIT_FIELD):
        return None
    return "test" if collection.count_values(g.SPLIT_FIELD).get("test") else None


def _check_eval_inputs(collection, pred_field: str, gt_field: str, eval_key: str) -> None:
    """Raise one sentence naming the dataset and the problem before any work starts."""
    name = collection._dataset.name
    for field_name in (pred_field, gt_field):
        if not collection.has_field(field_name):
            raise ValueError(f"dataset '{name}' has no field '{field_name}'")
    if not eval_key.isidentifier():
        raise ValueError(f"eval key {eval_key!r} must be a valid identifier (letters, digits, _)")


def _scores(labels: list[str], ytrue: list[str], ypred: list[str]) -> tuple[np.ndarray, dict, float, float]:
    """Confusion matrix, per-genre precision/recall/F1/support, accuracy and macro-F1.

    Macro-F1 averages over the genres that occur in the ground truth or the
    predictions: a genre absent from both says nothing about the model.
    """
    from sklearn.metrics import precision_recall_fscore_support

    index = {x: i for i, x in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(ytrue, ypred):
        confusion[index[t], index[p]] += 1
    prec, rec, f1, support = precision_recall_fscore_support(ytrue, ypred, labels=labels, zero_division=0)
    per_genre = {
        x: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, x in enumerate(labels)
    }
    present = [i for i in range(len(labels)) if confusion[i].sum() + confusion[:, i].sum() > 0]
    macro_f1 = float(np.mean([f1[i] for i in present])) if present else 0.0
    accuracy = float(np.trace(confusion) / max(confusion.sum(), 1))
    return confusion, per_genre, accuracy, macro_f1


def _confusion_cells(labels: list[str], confusion: np.ndarray, eval_key: str, max_views: int) -> list[dict]:
    """Off-diagonal cells, largest first; the first ``max_views`` get a saved-view name."""
    cells = [
        {"true": t, "pred": p, "count": int(confusion[i, j])}
        for i, t in enumerate(labels)
        for j, p in enumerate(labels)
        if i != j and confusion[i, j] > 0
    ]
    cells.sort(key=lambda c: (-c["count"], labels.index(c["true"]), labels.index(c["pred"])))
    for rank, c in enumerate(cells):
        c["view"] = confusion_view_name(c["true"], c["pred"], eval_key) if rank < max_views else None
    return cells


def evaluate(
    collection,
    pred_field: str = g.PRED_FIELD,
    gt_field: str = g.GENRE_FIELD,
    eval_key: str | None = None,
    out_dir: str | Path | None = None,
    max_views: int = DEFAULT_MAX_VIEWS,
    progress: ProgressFn | None = None,
    split: str | None = None,
) -> EvalReport:
    """Evaluate ``pred_field`` against ``gt_field`` and save the largest confusions as views.

    Only samples that have both fields are evaluated (a clip whose prediction
    failed is not a wrong prediction). ``split`` ("train", "val", "test")
    restricts the evaluation to one split; the evaluation is stored under
    ``eval_key`` (default: :func:`eval_key_for` the split; re-runs replace
    it), so the App's Model Evaluation panel shows it; a PNG of the confusion
    matrix goes to ``out_dir`` (default
    ``<fo.config.default_dataset_dir>/genre_eval/<dataset>/``).
    """
    eval_key = eval_key or eval_key_for(split)
    _check_eval_inputs(collection, pred_field, gt_field, eval_key)
    dataset = collection._dataset
    scope = restrict_split(collection, split)
    view = scope.exists(pred_field).exists(gt_field)
    n = len(view)
    if n == 0:
        where = f" in split '{split}'" if split and split != "all" else ""
        raise ValueError(f"no sample{where} has both '{pred_field}' and '{gt_field}'; run `fiftyone-genre predict` first")
    if progress:
        progress(0.05, f"Evaluating {n} clips")
    if dataset.has_evaluation(eval_key):
        dataset.delete_evaluation(eval_key)
    results = view.evaluate_classifications(pred_field, gt_field=gt_field, eval_key=eval_key, method="simple", progress=False)
    ytrue, ypred = [str(y) for y in results.ytrue], [str(y) for y in results.ypred]
    labels = _label_order(collection, pred_field, gt_field, set(ytrue) | set(ypred))
    confusion, per_genre, accuracy, macro_f1 = _scores(labels, ytrue, ypred)
    if progress:
        progress(0.6, "Saving confusion views")
    cells = _confusion_cells(labels, confusion, eval_key, max_views)
    saved = _save_confusion_views(dataset, view, [c for c in cells if c["view"]], pred_field, gt_field, eval_key)
    if progress:
        progress(0.8, "Plotting the confusion matrix")
    out = Path(out_dir) if out_dir else _default_out_dir(dataset)
    title = f"{dataset.name}: {pred_field} vs {gt_field} (acc {accuracy:.2f})"
    plot = save_confusion_png(labels, confusion, out / f"{eval_key}_confusion.png", title)
    if progress:
        progress(1.0, "Evaluation done")
    return EvalReport(
        eval_key=eval_key, pred_field=pred_field, gt_field=gt_field, labels=labels, confusion=confusion,
        per_genre=per_genre, accuracy=accuracy, macro_f1=macro_f1, num_samples=n,
        num_skipped=len(scope) - n, saved_views=saved, cells=cells, plot_path=str(plot),
        split=split if split and split != "all" else None,
    )


def _save_confusion_views(dataset, view, cells, pred_field, gt_field, eval_key) -> list[str]:
    """Replace this eval key's confusion views with one per given cell."""
    tag = f"{VIEW_DESCRIPTION_PREFIX} ({eval_key})"
    wanted = {confusion_view_name(c["true"], c["pred"], eval_key): c for c in cells}
    for info in dataset.list_saved_views(info=True):
        if (info.get("description") or "").startswith(tag) and info["name"] not in wanted:
            dataset.delete_saved_view(info["name"])
    for name, c in wanted.items():
        dataset.save_view(
            name,
            confusion_view(view, c["true"], c["pred"], pred_field, gt_field),
            description=f"{tag}: {c['count']} '{c['true']}' sample(s) predicted as '{c['pred']}'",
            overwrite=True,
        )
    return list(wanted)


# --------------------------------------------------------------------------- brain


@dataclass
class MapsReport(Report):
    """Brain runs written by :func:`compute_maps` (keys the App lists)."""

    num_samples: int
    visualization_key: str | None = None
    similarity_key: str | None = None
    mistakenness_field: str | None = None
    hardness_field: str | None = None
    num_neighbors: int | None = None

    def __str__(self) -> str:
        parts = [f"maps over {self.num_samples} samples with embeddings:"]
        if self.visualization_key:
            parts.append(f"  UMAP map: brain key '{self.visualization_key}' (Embeddings panel)")
        if self.similarity_key:
            parts.append(f"  similarity index: brain key '{self.similarity_key}'")
        if self.mistakenness_field:
            parts.append(f"  label mistakenness: field '{self.mistakenness_field}' (sort descending)")
        if self.hardness_field:
            parts.append(f"  prediction hardness: field '{self.hardness_field}'")
        return "\n".join(parts)


def _fresh_brain_key(dataset, key: str) -> None:
    """Drop an earlier run under ``key`` so a re-run with other settings is accepted."""
    if dataset.has_brain_run(key):
        dataset.delete_brain_run(key)


def _umap_step(view, embedding_field: str, brain_key: str, num_neighbors: int, seed: int, report: MapsReport) -> None:
    import fiftyone.brain as fob

    k = max(2, min(num_neighbors, len(view) - 1))
    _fresh_brain_key(view._dataset, brain_key)
    with warnings.catch_warnings():
        # umap-learn notes that a fixed seed disables its parallelism; reproducible maps are the point.
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        fob.compute_visualization(
            view, embeddings=embedding_field, method="umap", brain_key=brain_key,
            num_neighbors=k, seed=seed, verbose=False, progress=False,
        )
    report.visualization_key, report.num_neighbors = brain_key, k


def _similarity_step(view, embedding_field: str, key: str, report: MapsReport) -> None:
    import fiftyone.brain as fob

    _fresh_brain_key(view._dataset, key)
    fob.compute_similarity(view, embeddings=embedding_field, brain_key=key, backend="sklearn", progress=False)
    report.similarity_key = key


def _mistakenness_step(labelled, pred_field: str, gt_field: str, out_field: str, report: MapsReport) -> None:
    import fiftyone.brain as fob

    if not len(labelled):
        return
    _fresh_brain_key(labelled._dataset, out_field)
    fob.compute_mistakenness(
        labelled, pred_field, label_field=gt_field, mistakenness_field=out_field, use_logits=True, progress=False,
    )
    report.mistakenness_field = out_field


def _hardness_step(predicted, pred_field: str, out_field: str, report: MapsReport) -> None:
    import fiftyone.brain as fob

    if not len(predicted):
        return
    _fresh_brain_key(predicted._dataset, out_field)
    fob.compute_hardness(predicted, pred_field, hardness_field=out_field, progress=False)
    report.hardness_field = out_field


def maps_brain_keys(brain_key=None, similarity_key=None, mistakenness_field=None, hardness_field=None) -> list[str]:
    """The brain keys a :func:`compute_maps` call with these settings (re)writes."""
    return [k for k in (brain_key, similarity_key, mistakenness_field, hardness_field) if k]


def compute_maps(
    collection,
    embedding_field: str = g.EMBEDDING_FIELD,
    brain_key: str = "genre_umap",
    similarity_key: str | None = "genre_sim",
    pred_field: str | None = g.PRED_FIELD,
    gt_field: str = g.GENRE_FIELD,
    mistakenness_field: str | None = "mistakenness",
    hardness_field: str | None = "hardness",
    num_neighbors: int = 15,
    seed: int = 51,
    progress: ProgressFn | None = None,
) -> MapsReport:
    """UMAP map + similarity index of the clip embeddings, mistakenness and hardness.

    Video datasets cannot be embedded by FiftyOne's image models, so the
    model's own clip embeddings (``genre_embedding``) feed the brain. UMAP
    needs fewer neighbours than points; on small datasets ``num_neighbors`` is
    lowered to ``n - 1``. Each run replaces its own earlier brain key.
    """
    if not collection.has_field(embedding_field):
        raise ValueError(
            f"dataset '{collection._dataset.name}' has no field '{embedding_field}'; run `fiftyone-genre predict` first"
        )
    view = collection.exists(embedding_field)
    n = len(view)
    if n < 3:
        raise ValueError(f"a map needs at least 3 samples with '{embedding_field}', found {n}")
    report = MapsReport(num_samples=n)
    steps: list[tuple[str, Any]] = []
    if brain_key:
        steps.append(("UMAP map", lambda: _umap_step(view, embedding_field, brain_key, num_neighbors, seed, report)))
    if similarity_key:
        steps.append(("Similarity index", lambda: _similarity_step(view, embedding_field, similarity_key, report)))
    if pred_field and collection.has_field(pred_field):
        predicted = collection.exists(pred_field)
        if mistakenness_field and collection.has_field(gt_field):
            labelled = predicted.exists(gt_field)
            steps.append(("Mistakenness", lambda: _mistakenness_step(labelled, pred_field, gt_field, mistakenness_field, report)))
        if hardness_field:
            steps.append(("Hardness", lambda: _hardness_step(predicted, pred_field, hardness_field, report)))
    for i, (label, run) in enumerate(steps):
        if progress:
            progress(i / max(len(steps), 1), f"{label} ({i + 1}/{len(steps)}, {n} clips)")
        run()
    if progress:
        progress(1.0, "Maps done")
    return report


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
