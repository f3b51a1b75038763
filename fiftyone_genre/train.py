"""Training the CNN-LSTM on cached features: honest splits, resumable, single- or multi-process.

:func:`train` reads the dataset's ``genre`` + ``split`` fields and the
feature cache, refuses to run when a group straddles splits
(``split.check_leakage``), and trains on *every* window of every training
video. Each epoch it evaluates video-level macro-F1 on the validation split
(early stopping and ``best.pt`` follow it) and writes ``last.pt`` with the
optimizer, scheduler and early-stopping state, so ``resume=True`` after a
kill continues to bit-identical weights: all randomness is re-seeded from
``seed + epoch`` at the start of each epoch, so no RNG object is pickled.

The same function runs under ``torchrun --nproc_per_node N`` (see
``training/train.py``): it joins the process group from the environment,
shards the training windows with a distributed sampler, and only rank 0
writes checkpoints, logs and reports.

Model directory (``out_dir``)::

    best.pt  last.pt  experiment.yaml  genres.json  report.json  report.txt
    curves.png  history.json  tb/
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from fiftyone_genre import data as D
from fiftyone_genre import genres as g
from fiftyone_genre import model as M
from fiftyone_genre.cache import cache_for
from fiftyone_genre.config import ExperimentConfig, to_dict
from fiftyone_genre.utils import ProgressFn, track

REPORT_JSON = "report.json"
REPORT_TXT = "report.txt"
CURVES_PNG = "curves.png"
HISTORY_JSON = "history.json"


# ---------------------------------------------------------------------------
# Process group (torchrun) handling
# ---------------------------------------------------------------------------


@dataclass
class DistContext:
    """Where this process sits in a (possibly one-process) training job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: str = "auto") -> DistContext:
        """Join the process group torchrun describes in the environment, if any.

        gloo on CPU, nccl on CUDA (one GPU per local rank). Outside torchrun
        (``WORLD_SIZE`` unset or 1) this is a plain single-process context.
        """
        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        resolved = M.resolve_device(device)
        if world <= 1:
            return cls(device=resolved)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if resolved.type == "cuda":
            resolved = torch.device("cuda", local_rank)
            torch.cuda.set_device(resolved)
        owns = False
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
            owns = True
        return cls(dist.get_rank(), dist.get_world_size(), resolved, owns)

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum plain numbers over ranks (identity in one process)."""
        if not self.distributed:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


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


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: D.WindowDataset,
    genres: list[str],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    aggregate: str = "mean",
    criterion: nn.Module | None = None,
    desc: str = "eval",
) -> dict[str, Any]:
    """Window loss/accuracy and video-level metrics (windows aggregated per video)."""
    model.eval()
    if len(dataset) == 0:
        return {**classification_metrics(np.array([]), np.array([]), genres), "loss": None, "window_accuracy": None}
    criterion = criterion or nn.CrossEntropyLoss()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=D.collate_labeled)
    probs, loss_sum, correct = [], 0.0, 0
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


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


@dataclass
class TrainReport:
    """What a training run did and how the best model scored on the test split."""

    out_dir: Path
    modality: str
    genres: list[str]
    epochs_run: int
    best_epoch: int
    best_val_macro_f1: float | None
    stopped_early: bool
    resumed_from: int | None
    counts: dict[str, dict[str, int]]
    skipped: list[dict[str, str]]
    test: dict[str, Any]
    features: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "modality": self.modality,
            "genres": self.genres,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_macro_f1": self.best_val_macro_f1,
            "stopped_early": self.stopped_early,
            "resumed_from": self.resumed_from,
            "counts": self.counts,
            "skipped": self.skipped,
            "test": self.test,
            "features": self.features,
        }

    def __str__(self) -> str:
        lines = [f"Training run ({self.modality}) -> {self.out_dir}"]
        for split, c in self.counts.items():
            lines.append(f"  {split:5s}: {c['videos']:5d} videos, {c['windows']:6d} windows")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} samples (reasons recorded in 'genre_errors'):")
            for s in self.skipped[:5]:
                lines.append(f"    {s['filepath']}: {s['reason']}")
            if len(self.skipped) > 5:
                lines.append(f"    ... and {len(self.skipped) - 5} more")
        resumed = f", resumed after epoch {self.resumed_from}" if self.resumed_from else ""
        stop = ", stopped early" if self.stopped_early else ""
        val = "n/a" if self.best_val_macro_f1 is None else f"{self.best_val_macro_f1:.3f}"
        lines.append(f"  epochs run: {self.epochs_run}{resumed}{stop}; best epoch {self.best_epoch} (val macro-F1 {val})")
        lines.append(format_test_metrics(self.test, self.genres))
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def format_test_metrics(test: dict[str, Any], genres: list[str]) -> str:
    """The test section of ``report.txt``: totals, per-genre table, confusion matrix."""
    if not test.get("num_videos"):
        return "  test: no test videos"
    lines = [
        f"  test: {test['num_videos']} videos, accuracy {_fmt(test['accuracy'])}, "
        f"macro-F1 {_fmt(test['macro_f1'])} (window accuracy {_fmt(test.get('window_accuracy'))})",
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


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def _check_leakage(collection) -> None:
    """Refuse to train when a group straddles splits (``split.check_leakage`` raises)."""
    from fiftyone_genre.split import check_leakage

    check_leakage(collection)


def _make_scheduler(optimizer: torch.optim.Optimizer, name: str, epochs: int):
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
    return None


def _seed_epoch(seed: int, epoch: int, rank: int = 0) -> None:
    """All training randomness (dropout, modality dropout) from ``seed``, epoch and rank."""
    torch.manual_seed(seed * 100_003 + epoch * 1_009 + rank)
    np.random.seed((seed * 100_003 + epoch * 1_009 + rank) % 2**32)


def train(
    collection,
    config: ExperimentConfig,
    out_dir: str | Path,
    modality: str | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    strict: bool = False,
) -> TrainReport:
    """Train a genre model on ``collection`` and write its model directory.

    Args:
        collection: dataset or view; samples need ``genre``, ``split`` and cached
            features (``features.extract_features``).
        config: the experiment; its ``model`` and ``train`` sections are used.
            The features actually used are those recorded in ``dataset.info``
            and are saved into the checkpoint for prediction.
        out_dir: model directory (created).
        modality: overrides ``config.model.modality`` (``fused``/``visual``/``audio``).
        resume: continue from ``out_dir/last.pt`` (same weights as an uninterrupted run).
        progress: ``(fraction, label)`` callback.
        strict: refuse to train when any labelled sample cannot be used (its
            reason is still recorded in ``genre_errors``); by default such
            samples are skipped and listed in the report.

    Raises:
        split.LeakageError: a group has samples in more than one split.
        ValueError: no labelled samples with features, a resume mismatch, or
            (``strict``) a skipped sample.
    """
    config = copy.deepcopy(config)
    if modality is not None:
        if modality not in M.MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(M.MODALITIES)}, got {modality!r}")
        config.model.modality = modality
    tc = config.train
    out_dir = Path(out_dir)
    ctx = DistContext.from_env(tc.device)
    writer = None
    try:
        _check_leakage(collection)
        cache = cache_for(collection)
        config.features = copy.deepcopy(cache.config)
        data = D.load_window_data(collection, tc, cache, record_errors=ctx.is_main)
        if strict and data.skipped:
            listed = "\n".join(f"  {s.filepath}: {s.reason}" for s in data.skipped[:20])
            more = f"\n  ... and {len(data.skipped) - 20} more" if len(data.skipped) > 20 else ""
            raise ValueError(
                f"{len(data.skipped)} labelled sample(s) cannot be used (strict mode; "
                f"reasons recorded in '{g.ERRORS_FIELD}'):\n{listed}{more}"
            )
        genres = data.genres
        train_ds, val_ds, test_ds = data.splits["train"], data.splits["val"], data.splits["test"]
        if len(train_ds) == 0:
            raise ValueError("no training windows: no sample in the 'train' split has cached features")

        torch.manual_seed(tc.seed)
        net = M.build_model(config.model, data.visual_dim, data.audio_dim, len(genres))
        net.set_feature_stats(**{k: torch.from_numpy(v) for k, v in D.feature_stats(train_ds.videos).items()})
        net.to(ctx.device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        scheduler = _make_scheduler(optimizer, tc.scheduler, tc.epochs)
        weights = D.class_weights(train_ds.labels, len(genres)) if tc.balance == "class_weights" else None
        criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(ctx.device))
        sampler = D.train_sampler(train_ds, len(genres), tc.balance, tc.seed, ctx.world_size, ctx.rank)
        loader = DataLoader(
            train_ds,
            batch_size=tc.batch_size,
            sampler=sampler,
            collate_fn=D.collate_labeled,
            num_workers=tc.num_workers,
        )

        state = {"best_val_macro_f1": None, "best_epoch": 0, "bad_epochs": 0, "stopped_early": False}
        history: list[dict[str, Any]] = []
        start_epoch = 0
        resumed_from = None
        last_path = out_dir / M.LAST_NAME
        if resume and last_path.is_file():
            raw = M.read_checkpoint(last_path).raw
            _check_resumable(raw, config, genres, data, last_path)
            net.load_state_dict(raw["state_dict"])
            optimizer.load_state_dict(raw["optimizer"])
            if scheduler is not None and raw.get("scheduler"):
                scheduler.load_state_dict(raw["scheduler"])
            state.update(raw["run_state"])
            history = list(raw.get("history") or [])
            start_epoch = resumed_from = int(raw["epoch"])
        elif resume and ctx.is_main:
            print(f"no {last_path} to resume from; starting a new run")

        model = net
        if ctx.distributed:
            model = nn.parallel.DistributedDataParallel(
                net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )

        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "experiment.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
            (out_dir / "genres.json").write_text(json.dumps(genres, indent=2))
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out_dir / "tb"), purge_step=start_epoch + 1)

        eval_bs = max(tc.batch_size, 64)
        epochs = tc.epochs
        epoch = start_epoch
        for epoch in range(start_epoch, epochs):
            if state["stopped_early"]:
                break
            _seed_epoch(tc.seed, epoch, ctx.rank)
            sampler.set_epoch(epoch)
            model.train()
            totals = [0.0, 0.0, 0.0]  # loss sum, correct, windows

            def epoch_progress(f: float, label: str, e: int = epoch) -> None:
                if progress is not None and ctx.is_main:
                    progress((e - start_epoch + f) / max(1, epochs - start_epoch), label)

            for batch in track(loader, desc=f"epoch {epoch + 1}/{epochs}", progress=epoch_progress):
                label = batch["label"].to(ctx.device)
                out = model(batch["visual"].to(ctx.device), batch["audio"].to(ctx.device), batch["mask"].to(ctx.device))
                loss = criterion(out.logits, label)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if tc.grad_clip > 0:
                    nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)
                optimizer.step()
                totals[0] += float(loss.detach()) * len(label)
                totals[1] += float((out.logits.detach().argmax(1) == label).sum())
                totals[2] += len(label)
            loss_sum, correct, seen = ctx.all_sum(totals)

            # Every rank scores the (small) val split itself with the same weights,
            # so stopping decisions agree without any communication.
            val = evaluate(net, val_ds, genres, eval_bs, ctx.device, tc.aggregate, criterion, "val")
            val_f1 = val["macro_f1"]
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_f1 if val_f1 is not None else -loss_sum / seen)
            elif scheduler is not None:
                scheduler.step()
            record = {
                "epoch": epoch + 1,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "train_loss": loss_sum / seen,
                "train_acc": correct / seen,
                "val_loss": val["loss"],
                "val_acc": val["window_accuracy"],
                "val_video_acc": val["accuracy"],
                "val_macro_f1": val_f1,
            }
            history.append(record)
            best = state["best_val_macro_f1"]
            improved = val_f1 is None or best is None or val_f1 > best
            if improved:
                state.update(best_val_macro_f1=val_f1, best_epoch=epoch + 1, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            if tc.patience and val_f1 is not None and state["bad_epochs"] >= tc.patience:
                state["stopped_early"] = True

            if ctx.is_main:
                common = dict(
                    experiment=config,
                    genres=genres,
                    visual_dim=data.visual_dim,
                    audio_dim=data.audio_dim,
                    epoch=epoch + 1,
                    metrics={k: v for k, v in record.items() if v is not None},
                )
                if improved:
                    M.save_checkpoint(out_dir / M.BEST_NAME, net, **common)
                M.save_checkpoint(
                    last_path,
                    net,
                    **common,
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict() if scheduler is not None else None,
                    run_state=dict(state),
                    history=history,
                )
                _log_epoch(writer, record)
                (out_dir / HISTORY_JSON).write_text(json.dumps(history, indent=2))
                plot_curves(history, out_dir / CURVES_PNG, config.model.modality)
                print(
                    f"epoch {epoch + 1}/{epochs}: train loss {record['train_loss']:.4f} "
                    f"acc {record['train_acc']:.3f} | val loss {_fmt(record['val_loss'])} "
                    f"acc {_fmt(record['val_acc'])} macro-F1 {_fmt(val_f1)}"
                    + (" *" if improved else ""),
                    flush=True,
                )
            if progress is not None and ctx.is_main:
                progress((epoch + 1 - start_epoch) / max(1, epochs - start_epoch), f"epoch {epoch + 1}/{epochs} done")

        report = None
        if ctx.is_main:
            best_model, _ = M.load_model(out_dir, ctx.device)
            test = evaluate(best_model, test_ds, genres, eval_bs, ctx.device, tc.aggregate, criterion, "test")
            report = TrainReport(
                out_dir=out_dir,
                modality=config.model.modality,
                genres=genres,
                epochs_run=len(history),
                best_epoch=state["best_epoch"],
                best_val_macro_f1=state["best_val_macro_f1"],
                stopped_early=state["stopped_early"],
                resumed_from=resumed_from,
                counts={
                    name: {"videos": len(ds.videos), "windows": len(ds)} for name, ds in data.splits.items()
                },
                skipped=[{"sample_id": s.sample_id, "filepath": s.filepath, "reason": s.reason} for s in data.skipped],
                test=test,
                features=to_dict(config.features),
            )
            (out_dir / REPORT_JSON).write_text(json.dumps(report.to_dict(), indent=2))
            (out_dir / REPORT_TXT).write_text(str(report) + "\n")
            if writer is not None and test.get("macro_f1") is not None:
                writer.add_scalar("test/accuracy", test["accuracy"], state["best_epoch"])
                writer.add_scalar("test/macro_f1", test["macro_f1"], state["best_epoch"])
            if progress is not None:
                progress(1.0, "done")
        ctx.barrier()
        return report  # type: ignore[return-value]  (None on ranks > 0)
    finally:
        if writer is not None:
            writer.close()
        ctx.close()


def _check_resumable(raw: dict[str, Any], config: ExperimentConfig, genres: list[str], data, path: Path) -> None:
    """A resume must continue the *same* run: same classes, feature sizes and model."""
    if list(raw["genres"]) != list(genres):
        raise ValueError(f"{path}: cannot resume, genres differ ({raw['genres']} vs {genres})")
    if (raw["visual_dim"], raw["audio_dim"]) != (data.visual_dim, data.audio_dim):
        raise ValueError(f"{path}: cannot resume, feature sizes differ")
    saved_model = raw["experiment"].get("model", {})
    if saved_model != to_dict(config.model):
        raise ValueError(f"{path}: cannot resume, the model section differs from the saved run")
    if "optimizer" not in raw or "run_state" not in raw:
        raise ValueError(f"{path}: not a resumable checkpoint (no optimizer state)")


def _log_epoch(writer, record: dict[str, Any]) -> None:
    if writer is None:
        return
    step = record["epoch"]
    for key, tag in (
        ("train_loss", "loss/train"),
        ("val_loss", "loss/val"),
        ("train_acc", "accuracy/train"),
        ("val_acc", "accuracy/val"),
        ("val_video_acc", "video_accuracy/val"),
        ("val_macro_f1", "macro_f1/val"),
        ("lr", "lr"),
    ):
        if record.get(key) is not None:
            writer.add_scalar(tag, record[key], step)
    writer.flush()


# ---------------------------------------------------------------------------
# Ablation
# ---------------------------------------------------------------------------


@dataclass
class AblationTable:
    """Test accuracy and macro-F1 of fused / visual / audio models on one split."""

    rows: list[dict[str, Any]]
    out_dir: Path

    def __str__(self) -> str:
        lines = [f"{'modality':10s} {'accuracy':>9s} {'macro-F1':>9s} {'best epoch':>11s}"]
        for r in self.rows:
            lines.append(f"{r['modality']:10s} {_fmt(r['accuracy']):>9s} {_fmt(r['macro_f1']):>9s} {r['best_epoch']:>11d}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "rows": self.rows}


def ablate(
    collection,
    config: ExperimentConfig,
    out_dir: str | Path,
    modalities: tuple[str, ...] = M.MODALITIES,
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
    rows = []
    for i, modality in enumerate(modalities):

        def sub_progress(f: float, label: str, i: int = i, m: str = modality) -> None:
            if progress is not None:
                progress((i + f) / len(modalities), f"{m}: {label}")

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
    (out_dir / "ablation.json").write_text(json.dumps(table.to_dict(), indent=2))
    (out_dir / "ablation.txt").write_text(str(table) + "\n")
    return table
