"""Scores of a model on windows of a split: accuracy, macro-F1, per-genre F1, confusion.

:func:`classification_metrics` is the one metrics function (training's
validation and test scores and :mod:`fiftyone_genre.analysis` both report
with it); :func:`evaluate_windows` runs a model over a split's windows and
aggregates them per video. torch is imported inside :func:`evaluate_windows`
only, so ``fiftyone-genre evaluate`` scores predictions without loading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fiftyone_genre.utils import track

if TYPE_CHECKING:
    import torch
    from torch import nn

    from fiftyone_genre.modeling.dataset import WindowDataset


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, genres: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-genre precision/recall/F1/support and the confusion matrix.

    Macro-F1 averages over the genres that occur in the truth or the
    predictions (sklearn's default), so a genre absent from a small split
    neither helps nor silently vanishes when it is predicted.
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    labels = list(range(len(genres)))
    if len(y_true) == 0:
        return {"num_videos": 0, "accuracy": None, "macro_f1": None, "per_genre": {}, "confusion": []}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "num_videos": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "per_genre": {
            genre: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, genre in enumerate(genres)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def evaluate_windows(
    model: nn.Module,
    dataset: WindowDataset,
    genres: list[str],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    aggregate: str = "mean",
    criterion: nn.Module | None = None,
    desc: str = "eval",
) -> dict[str, Any]:
    """Window loss/accuracy and video-level metrics (windows aggregated per video) of a model in memory.

    Used for the val split every epoch and the test split at the end. Unlike
    :func:`fiftyone_genre.analysis.evaluate`, which scores predictions already
    written on a dataset, this runs the model over a :class:`WindowDataset`.
    """
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from fiftyone_genre.modeling.dataset import collate_labeled

    model.eval()
    if len(dataset) == 0:
        return {**classification_metrics(np.array([]), np.array([]), genres), "loss": None, "window_accuracy": None}
    criterion = criterion or nn.CrossEntropyLoss()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_labeled)
    probs, loss_sum, correct = [], 0.0, 0
    with torch.no_grad():
        for batch in track(loader, desc=desc):
            out = model(batch["visual"].to(device), batch["audio"].to(device), batch["mask"].to(device))
            label = batch["label"].to(device)
            loss_sum += float(criterion(out.logits, label)) * len(label)
            correct += int((out.logits.argmax(1) == label).sum())
            probs.append(torch.softmax(out.logits.float(), dim=1).cpu().numpy())
    window_probs = np.concatenate(probs)
    video_probs = dataset.video_probabilities(window_probs, aggregate)
    metrics = classification_metrics(dataset.video_labels, video_probs.argmax(1), genres)
    metrics["loss"] = loss_sum / len(dataset)
    metrics["window_accuracy"] = correct / len(dataset)
    metrics["num_windows"] = len(dataset)
    return metrics


def fmt_metric(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def format_test_metrics(test: dict[str, Any], genres: list[str]) -> str:
    """The test section of ``report.txt``: totals, per-genre table, confusion matrix."""
    if not test.get("num_videos"):
        return "  test: no test videos"
    lines = [
        f"  test: {test['num_videos']} videos, accuracy {fmt_metric(test['accuracy'])}, "
        f"macro-F1 {fmt_metric(test['macro_f1'])} (window accuracy {fmt_metric(test.get('window_accuracy'))})",
        "",
        f"  {'genre':18s} {'precision':>9s} {'recall':>7s} {'f1':>6s} {'support':>8s}",
    ]
    for genre in genres:
        m = test["per_genre"][genre]
        lines.append(
            f"  {genre:18s} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} {m['support']:8d}"
        )
    short = [genre[:7] for genre in genres]
    lines += ["", "  confusion (rows = truth, columns = prediction):", "  " + " " * 18 + " ".join(f"{s:>7s}" for s in short)]
    for genre, row in zip(genres, test["confusion"]):
        lines.append(f"  {genre:18s}" + " ".join(f"{v:7d}" for v in row))
    return "\n".join(lines)


def plot_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Loss and accuracy per epoch for train and val (the paper's Fig. 6)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    epochs = [h["epoch"] for h in history]
    for ax, key, name in ((fig.add_subplot(1, 2, 1), "loss", "loss"), (fig.add_subplot(1, 2, 2), "acc", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        val = [h.get(f"val_{key}") for h in history]
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else v for v in val], "s-", label="val")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{title} {name}".strip())
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
