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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
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


# --------------------------------------------------------------------------- evaluate


@dataclass
class EvalReport:
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

    def to_json(self) -> dict[str, Any]:
        return {
            "eval_key": self.eval_key,
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
        """The confusion matrix as text (rows: true genre, columns: predicted)."""
        short = [x[:8] for x in self.labels]
        corner = "true\\pred"
        width = max(len(corner), *(len(x) for x in self.labels))
        head = f"{corner:<{width}} " + " ".join(f"{s:>8}" for s in short)
        rows = [head]
        for label, row in zip(self.labels, self.confusion):
            rows.append(f"{label:<{width}} " + " ".join(f"{int(v):8d}" for v in row))
        return "\n".join(rows)

    def __str__(self) -> str:
        lines = [
            f"evaluation '{self.eval_key}': {self.pred_field} vs {self.gt_field} on "
            f"{self.num_samples} samples ({self.num_skipped} without both fields skipped)",
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


def evaluate(
    collection,
    pred_field: str = g.PRED_FIELD,
    gt_field: str = g.GENRE_FIELD,
    eval_key: str = DEFAULT_EVAL_KEY,
    out_dir: str | Path | None = None,
    max_views: int = DEFAULT_MAX_VIEWS,
    progress: ProgressFn | None = None,
) -> EvalReport:
    """Evaluate ``pred_field`` against ``gt_field`` and save the largest confusions as views.

    Only samples that have both fields are evaluated (a clip whose prediction
    failed is not a wrong prediction). The evaluation is stored under
    ``eval_key`` (re-runs replace it), so the App's Model Evaluation panel
    shows it; a PNG of the confusion matrix goes to ``out_dir`` (default
    ``<fo.config.default_dataset_dir>/genre_eval/<dataset>/``).

    Macro-F1 averages over the genres that occur in the ground truth or the
    predictions: a genre absent from both says nothing about the model.
    """
    from sklearn.metrics import precision_recall_fscore_support

    dataset = collection._dataset
    for name in (pred_field, gt_field):
        if not collection.has_field(name):
            raise ValueError(f"dataset '{dataset.name}' has no field '{name}'")
    if not eval_key.isidentifier():
        raise ValueError(f"eval key {eval_key!r} must be a valid identifier (letters, digits, _)")
    view = collection.exists(pred_field).exists(gt_field)
    n = len(view)
    if n == 0:
        raise ValueError(
            f"no sample has both '{pred_field}' and '{gt_field}'; run `fiftyone-genre predict` first"
        )
    if progress:
        progress(0.05, "Evaluating")
    if dataset.has_evaluation(eval_key):
        dataset.delete_evaluation(eval_key)
    results = view.evaluate_classifications(
        pred_field, gt_field=gt_field, eval_key=eval_key, method="simple", progress=False
    )
    ytrue = [str(y) for y in results.ytrue]
    ypred = [str(y) for y in results.ypred]
    labels = _label_order(collection, pred_field, gt_field, set(ytrue) | set(ypred))
    index = {x: i for i, x in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(ytrue, ypred):
        confusion[index[t], index[p]] += 1

    prec, rec, f1, support = precision_recall_fscore_support(
        ytrue, ypred, labels=labels, zero_division=0
    )
    per_genre = {
        x: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, x in enumerate(labels)
    }
    present = [i for i, x in enumerate(labels) if confusion[i].sum() + confusion[:, i].sum() > 0]
    macro_f1 = float(np.mean([f1[i] for i in present])) if present else 0.0
    accuracy = float(np.trace(confusion) / max(confusion.sum(), 1))

    if progress:
        progress(0.6, "Saving confusion views")
    cells = []
    for i, t in enumerate(labels):
        for j, p in enumerate(labels):
            if i != j and confusion[i, j] > 0:
                cells.append({"true": t, "pred": p, "count": int(confusion[i, j])})
    cells.sort(key=lambda c: (-c["count"], labels.index(c["true"]), labels.index(c["pred"])))
    saved = _save_confusion_views(dataset, view, cells[:max_views], pred_field, gt_field, eval_key)
    for rank, c in enumerate(cells):
        c["view"] = confusion_view_name(c["true"], c["pred"], eval_key) if rank < max_views else None

    out = Path(out_dir) if out_dir else _default_out_dir(dataset)
    plot = save_confusion_png(
        labels, confusion, out / f"{eval_key}_confusion.png",
        f"{dataset.name}: {pred_field} vs {gt_field} (acc {accuracy:.2f})",
    )
    if progress:
        progress(1.0, "Evaluation done")
    return EvalReport(
        eval_key=eval_key,
        pred_field=pred_field,
        gt_field=gt_field,
        labels=labels,
        confusion=confusion,
        per_genre=per_genre,
        accuracy=accuracy,
        macro_f1=macro_f1,
        num_samples=n,
        num_skipped=len(collection) - n,
        saved_views=saved,
        cells=cells,
        plot_path=str(plot),
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
class MapsReport:
    """Brain runs written by :func:`compute_maps` (keys the App lists)."""

    num_samples: int
    visualization_key: str | None = None
    similarity_key: str | None = None
    mistakenness_field: str | None = None
    hardness_field: str | None = None
    num_neighbors: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

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
    import fiftyone.brain as fob

    dataset = collection._dataset
    if not collection.has_field(embedding_field):
        raise ValueError(
            f"dataset '{dataset.name}' has no field '{embedding_field}'; run `fiftyone-genre predict` first"
        )
    view = collection.exists(embedding_field)
    n = len(view)
    if n < 3:
        raise ValueError(f"a map needs at least 3 samples with '{embedding_field}', found {n}")
    report = MapsReport(num_samples=n)
    steps = sum(x is not None for x in (brain_key, similarity_key, mistakenness_field, hardness_field))
    done = 0

    def step(label: str) -> None:
        nonlocal done
        if progress:
            progress(done / max(steps, 1), label)
        done += 1

    if brain_key:
        step("UMAP map")
        k = max(2, min(num_neighbors, n - 1))
        _fresh_brain_key(dataset, brain_key)
        with warnings.catch_warnings():
            # umap-learn notes that a fixed seed disables its parallelism; reproducible maps are the point.
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")
            fob.compute_visualization(
                view, embeddings=embedding_field, method="umap", brain_key=brain_key,
                num_neighbors=k, seed=seed, verbose=False, progress=False,
            )
        report.visualization_key = brain_key
        report.num_neighbors = k
    if similarity_key:
        step("Similarity index")
        _fresh_brain_key(dataset, similarity_key)
        fob.compute_similarity(
            view, embeddings=embedding_field, brain_key=similarity_key, backend="sklearn", progress=False
        )
        report.similarity_key = similarity_key
    if pred_field and collection.has_field(pred_field):
        predicted = collection.exists(pred_field)
        if mistakenness_field and collection.has_field(gt_field):
            step("Mistakenness")
            labelled = predicted.exists(gt_field)
            if len(labelled):
                _fresh_brain_key(dataset, mistakenness_field)
                fob.compute_mistakenness(
                    labelled, pred_field, label_field=gt_field,
                    mistakenness_field=mistakenness_field, use_logits=True, progress=False,
                )
                report.mistakenness_field = mistakenness_field
        if hardness_field and len(predicted):
            step("Hardness")
            _fresh_brain_key(dataset, hardness_field)
            fob.compute_hardness(predicted, pred_field, hardness_field=hardness_field, progress=False)
            report.hardness_field = hardness_field
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
