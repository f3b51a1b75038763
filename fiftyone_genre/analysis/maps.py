"""Embedding maps and brain runs on the clip embeddings.

:func:`compute_maps` runs the FiftyOne Brain: a UMAP map (lasso a cluster,
relabel it), a similarity index, mistakenness of the ground truth (likely
remap errors) and hardness of the predictions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from fiftyone_genre import genres as g
from fiftyone_genre.report import Report
from fiftyone_genre.utils import ProgressFn


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
