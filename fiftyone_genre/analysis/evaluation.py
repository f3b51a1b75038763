"""Evaluation per split: FiftyOne's classification evaluation, a confusion PNG, a view per cell.

:func:`evaluate` runs FiftyOne's classification evaluation (so the App's
evaluation panel shows it), saves a confusion-matrix PNG, and saves one named
view per large off-diagonal cell, e.g. ``horror-predicted-as-action``,
holding exactly those samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.analysis.views import (
    DEFAULT_EVAL_KEY,
    VIEW_DESCRIPTION_PREFIX,
    confusion_view,
    confusion_view_name,
    restrict_split,
    slugify,
)
from fiftyone_genre.report import Report
from fiftyone_genre.utils import ProgressFn

#: How many off-diagonal cells get a saved view by default.
DEFAULT_MAX_VIEWS = 5


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

    Scored by training's own :func:`~fiftyone_genre.modeling.metrics.classification_metrics`
    (genres as indices into ``labels``), so a model's test report and its
    evaluation on the dataset compute the same numbers the same way.
    """
    from fiftyone_genre.modeling.metrics import classification_metrics

    index = {x: i for i, x in enumerate(labels)}
    m = classification_metrics([index[t] for t in ytrue], [index[p] for p in ypred], labels)
    return np.asarray(m["confusion"], dtype=np.int64), m["per_genre"], m["accuracy"], m["macro_f1"]


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
