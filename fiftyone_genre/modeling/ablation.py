"""The ablation: the same experiment trained fused, visual-only and audio-only, side by side."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fiftyone_genre.config import ExperimentConfig
from fiftyone_genre.modeling.metrics import fmt_metric
from fiftyone_genre.modeling.model import (
    MODALITIES,
    claim_model_folder,
)
from fiftyone_genre.modeling.train import train
from fiftyone_genre.report import Report
from fiftyone_genre.utils import ProgressFn, write_text_atomic

ABLATION_NAMES = ("ablation.json", "ablation.txt", *MODALITIES)


@dataclass
class AblationTable(Report):
    """Test accuracy and macro-F1 of fused / visual / audio models on one split."""

    rows: list[dict[str, Any]]
    out_dir: Path

    def __str__(self) -> str:
        lines = [f"{'modality':10s} {'accuracy':>9s} {'macro-F1':>9s} {'best epoch':>11s}"]
        for r in self.rows:
            lines.append(f"{r['modality']:10s} {fmt_metric(r['accuracy']):>9s} {fmt_metric(r['macro_f1']):>9s} {r['best_epoch']:>11d}")
        return "\n".join(lines)


def _ablation_progress(progress: ProgressFn | None, i: int, n: int, modality: str, f: float, label: str) -> None:
    """Model ``i`` of ``n``'s progress as a share of the whole ablation."""
    if progress is not None:
        progress((i + f) / n, f"{modality}: {label}")


def ablate(
    collection,
    config: ExperimentConfig,
    out_dir: str | Path,
    modalities: tuple[str, ...] = MODALITIES,
    resume: bool = False,
    progress: ProgressFn | None = None,
    strict: bool = False,
) -> AblationTable | None:
    """Train one model per modality on the same split; ``out_dir/<modality>/`` each.

    The split is the dataset's ``split`` field, so every model sees exactly the
    same train/val/test videos. Writes ``ablation.json`` / ``ablation.txt``.
    Returns None on ranks > 0 under torchrun.
    """
    out_dir = Path(out_dir)
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 owns the folder
    lock = claim_model_folder(out_dir, "running an ablation in", ABLATION_NAMES) if is_main else None
    try:
        return _ablate(collection, config, out_dir, modalities, resume, progress, strict)
    finally:
        if lock is not None:
            lock.release()


def _ablate(
    collection, config: ExperimentConfig, out_dir: Path, modalities: tuple[str, ...], resume: bool,
    progress: ProgressFn | None, strict: bool,
) -> AblationTable | None:
    """The runs themselves, each into its own locked ``out_dir/<modality>``."""
    rows = []
    for i, modality in enumerate(modalities):
        sub_progress = partial(_ablation_progress, progress, i, len(modalities), modality)
        report = train(
            collection, config, out_dir / modality, modality=modality, resume=resume, progress=sub_progress, strict=strict
        )
        if report is None:
            continue
        rows.append(
            {
                "modality": modality,
                "accuracy": report.test.get("accuracy"),
                "macro_f1": report.test.get("macro_f1"),
                "best_epoch": report.best_epoch,
                "best_val_macro_f1": report.best_val_macro_f1,
            }
        )
    if not rows:
        return None
    table = AblationTable(rows, out_dir)
    write_text_atomic(out_dir / "ablation.json", json.dumps(table.to_dict(), indent=2))
    write_text_atomic(out_dir / "ablation.txt", str(table) + "\n")
    return table
