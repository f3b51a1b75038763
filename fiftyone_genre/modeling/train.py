"""Training the CNN-LSTM on cached features: honest splits, resumable, single- or multi-process.

:func:`train` reads the dataset's ``genre`` + ``split`` fields and the
feature cache, refuses to run when a group straddles splits
(:func:`~fiftyone_genre.labels.leakage.check_leakage`), and trains on *every*
window of every training video. Each epoch it evaluates video-level macro-F1
on the validation split (early stopping and ``best.pt`` follow it) and writes
``last.pt`` with the optimizer, scheduler and early-stopping state, so
``resume=True`` after a kill continues to bit-identical weights: all
randomness is re-seeded from ``seed + epoch`` at the start of each epoch, so
no RNG object is pickled.

:func:`train` reads as its steps: :func:`_load_data` (leakage check, the
packed window datasets), :func:`_setup` (model, optimizer, loader),
:func:`_restore` (resume), then per epoch :func:`train_one_epoch`,
:func:`_validate` (val scores, scheduler, :class:`EarlyStopping`) and
:func:`_after_epoch` (checkpoints, history, curves), and finally
:func:`_final_report` (the test split scored with ``best.pt``).

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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from fiftyone_genre import genres as g
from fiftyone_genre.config import ExperimentConfig, to_dict
from fiftyone_genre.features.cache import cache_for
from fiftyone_genre.features.spaces import EXTRACTOR, space_of
from fiftyone_genre.modeling.dataset import (
    WindowData,
    class_weights,
    collate_labeled,
    feature_stats,
    load_window_data,
    train_sampler,
)
from fiftyone_genre.modeling.metrics import (
    evaluate_windows,
    fmt_metric,
    format_test_metrics,
    plot_curves,
)
from fiftyone_genre.modeling.model import (
    BEST_NAME,
    LAST_NAME,
    MODALITIES,
    build_model,
    claim_model_folder,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from fiftyone_genre.report import Report
from fiftyone_genre.storage import check_free, checkpoint_bytes, disk_error
from fiftyone_genre.utils import ProgressFn, resolve_device, shown, track, write_text_atomic

REPORT_JSON = "report.json"
REPORT_TXT = "report.txt"
CURVES_PNG = "curves.png"
HISTORY_JSON = "history.json"


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
        resolved = resolve_device(device)
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


@dataclass
class TrainReport(Report):
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

    def __str__(self) -> str:
        lines = [f"Training run ({self.modality}) -> {self.out_dir}"]
        for split, c in self.counts.items():
            lines.append(f"  {split:5s}: {c['videos']:5d} videos, {c['windows']:6d} windows")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} samples (reasons recorded in 'genre_errors'):")
            for s in self.skipped[:5]:
                lines.append(f"    {shown(s['filepath'])}: {s['reason']}")
            if len(self.skipped) > 5:
                lines.append(f"    ... and {len(self.skipped) - 5} more")
        resumed = f", resumed after epoch {self.resumed_from}" if self.resumed_from else ""
        stop = ", stopped early" if self.stopped_early else ""
        val = "n/a" if self.best_val_macro_f1 is None else f"{self.best_val_macro_f1:.3f}"
        lines.append(f"  epochs run: {self.epochs_run}{resumed}{stop}; best epoch {self.best_epoch} (val macro-F1 {val})")
        lines.append(format_test_metrics(self.test, self.genres))
        return "\n".join(lines)


def _check_leakage(collection) -> None:
    """Refuse to train when a group straddles splits (``split.check_leakage`` raises)."""
    from fiftyone_genre.labels.leakage import check_leakage

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


@dataclass
class EarlyStopping:
    """Best validation macro-F1 so far and the patience count; saved in ``last.pt`` as ``run_state``."""

    best_val_macro_f1: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False

    def update(self, val_f1: float | None, epoch: int, patience: int) -> bool:
        """Record one epoch's score; True when it is the best so far (``best.pt`` follows it).

        Without a validation score every epoch counts as best, so the last
        epoch's weights are the ones kept and tested.
        """
        best = self.best_val_macro_f1
        improved = val_f1 is None or best is None or val_f1 > best
        if improved:
            self.best_val_macro_f1, self.best_epoch, self.bad_epochs = val_f1, epoch, 0
        else:
            self.bad_epochs += 1
        if patience and val_f1 is not None and self.bad_epochs >= patience:
            self.stopped_early = True
        return improved

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class _Run:
    """Everything one training run holds between its steps."""

    config: ExperimentConfig
    out_dir: Path
    ctx: DistContext
    data: WindowData
    net: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    criterion: nn.Module
    sampler: Any
    loader: DataLoader
    progress: ProgressFn | None = None
    stopping: EarlyStopping = field(default_factory=EarlyStopping)
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    resumed_from: int | None = None
    writer: Any = None

    @property
    def tc(self):
        return self.config.train

    @property
    def genres(self) -> list[str]:
        return self.data.genres

    @property
    def eval_batch_size(self) -> int:
        return max(self.tc.batch_size, 64)

    def report_progress(self, fraction: float, label: str) -> None:
        """Whole-run progress (0..1 over the epochs left) on the main rank only."""
        if self.progress is not None and self.ctx.is_main:
            span = max(1, self.tc.epochs - self.start_epoch)
            self.progress(min(1.0, fraction / span), label)


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
        ValueError: no labelled samples with features, a resume mismatch, (``strict``) a
            skipped sample, a non-finite loss, or ``out_dir`` holding others' files.
        storage.LockHeld / storage.StorageError: another run trains into ``out_dir``; it is
            not writable, or its disk is (or gets) full.
    """
    config = _with_modality(config, modality)
    ctx = DistContext.from_env(config.train.device)
    run = lock = None
    try:
        lock = claim_model_folder(out_dir) if ctx.is_main else None  # the main rank owns the folder
        data = _load_data(collection, config, ctx, strict, progress)
        run = _setup(config, data, Path(out_dir), ctx, progress)
        _restore(run, resume)
        _check_space(run)
        _open_outputs(run)
        for epoch in range(run.start_epoch, run.tc.epochs):
            if run.stopping.stopped_early:
                break
            totals = train_one_epoch(run, epoch)
            record, improved = _validate(run, epoch, totals)
            _after_epoch(run, record, improved)
        report = _final_report(run) if ctx.is_main else None
        ctx.barrier()
        return report  # type: ignore[return-value]  (None on ranks > 0)
    except OSError as e:  # a full disk met while writing outputs: name the folder, not the file
        raise disk_error(e, out_dir, "model folder") or e from None
    finally:
        if run is not None and run.writer is not None:
            run.writer.close()
        if lock is not None:
            lock.release()
        ctx.close()


def _with_modality(config: ExperimentConfig, modality: str | None) -> ExperimentConfig:
    """A copy of ``config`` (the caller's object is never changed) with ``modality`` applied."""
    config = copy.deepcopy(config)
    if modality is not None:
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
        config.model.modality = modality
    return config


def _load_data(
    collection, config: ExperimentConfig, ctx: DistContext, strict: bool, progress: ProgressFn | None = None
) -> WindowData:
    """Leakage check, then the window datasets; the main rank builds the pack, the others wait for it.

    Packing (first run, or after re-extraction) reads every cache entry once;
    its progress is passed on as "before epoch 1" (fraction 0) with its own label.
    """
    _check_leakage(collection)
    space = space_of(config.features)
    cache = None
    if space == EXTRACTOR:  # the features actually used are the dataset's extraction settings
        cache = _extraction_cache(collection)
        config.features = copy.deepcopy(cache.config)
    if not ctx.is_main:
        ctx.barrier()  # rank 0 is (re)building the packed store
    packing = partial(_packing_progress, progress) if progress is not None and ctx.is_main else None
    data = load_window_data(
        collection, config.train, cache, record_errors=ctx.is_main, progress=packing, space=space
    )
    if ctx.is_main:
        ctx.barrier()
    if strict and data.skipped:
        listed = "\n".join(f"  {shown(s.filepath)}: {s.reason}" for s in data.skipped[:20])
        more = f"\n  ... and {len(data.skipped) - 20} more" if len(data.skipped) > 20 else ""
        raise ValueError(
            f"{len(data.skipped)} labelled sample(s) cannot be used (strict mode; "
            f"reasons recorded in '{g.ERRORS_FIELD}'):\n{listed}{more}"
        )
    if len(data.splits["train"]) == 0:
        raise ValueError("no training windows: no sample in the 'train' split has cached features")
    return data


def _extraction_cache(collection):
    """The dataset's extracted features; a dataset of YouTube-8M records is pointed at the yt8m config."""
    try:
        return cache_for(collection)
    except ValueError as e:
        if collection.has_field(g.FEATURES_ONLY_FIELD) and collection.match_tags(g.FEATURES_ONLY_TAG).count():
            raise ValueError(
                f"{e}; its features-only YouTube-8M records have no video to extract from: "
                "train them with `--config yt8m` (their stored YouTube-8M features)"
            ) from None
        raise


def _packing_progress(progress: ProgressFn, fraction: float, label: str) -> None:
    progress(0.0, label)


def _setup(config: ExperimentConfig, data: WindowData, out_dir: Path, ctx: DistContext, progress) -> _Run:
    """Model (seeded, with the training split's feature statistics), optimizer, loss and loader."""
    tc = config.train
    train_ds = data.splits["train"]
    torch.manual_seed(tc.seed)
    net = build_model(config.model, data.visual_dim, data.audio_dim, len(data.genres))
    net.set_feature_stats(**{k: torch.from_numpy(v) for k, v in feature_stats(train_ds.videos).items()})
    net.to(ctx.device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    weights = class_weights(train_ds.labels, len(data.genres)) if tc.balance == "class_weights" else None
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(ctx.device))
    sampler = train_sampler(train_ds, len(data.genres), tc.balance, tc.seed, ctx.world_size, ctx.rank)
    loader = DataLoader(
        train_ds, batch_size=tc.batch_size, sampler=sampler, collate_fn=collate_labeled, num_workers=tc.num_workers
    )
    model = net
    if ctx.distributed:
        model = nn.parallel.DistributedDataParallel(
            net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
        )
    return _Run(
        config, out_dir, ctx, data, net, model, optimizer, _make_scheduler(optimizer, tc.scheduler, tc.epochs),
        criterion, sampler, loader, progress,
    )


def _restore(run: _Run, resume: bool) -> None:
    """With ``resume``, load weights, optimizer, scheduler, early stopping and history from ``last.pt``."""
    last_path = run.out_dir / LAST_NAME
    if not resume:
        return
    if not last_path.is_file():
        if run.ctx.is_main:
            print(f"no {last_path} to resume from; starting a new run")
        return
    raw = read_checkpoint(last_path).raw
    _check_resumable(raw, run.config, run.genres, run.data, last_path)
    run.net.load_state_dict(raw["state_dict"])
    run.optimizer.load_state_dict(raw["optimizer"])
    if run.scheduler is not None and raw.get("scheduler"):
        run.scheduler.load_state_dict(raw["scheduler"])
    run.stopping = EarlyStopping(**raw["run_state"])
    run.history = list(raw.get("history") or [])
    run.start_epoch = run.resumed_from = int(raw["epoch"])


def _check_space(run: _Run) -> None:
    """Main rank: room for both checkpoints twice over (an atomic replace holds old and new at once)."""
    if not run.ctx.is_main:
        return
    params = sum(p.numel() for p in run.net.parameters())
    need = 2 * (checkpoint_bytes(params, False) + checkpoint_bytes(params, True))
    need -= sum(f.stat().st_size for f in (run.out_dir / BEST_NAME, run.out_dir / LAST_NAME) if f.is_file())
    check_free(run.out_dir, need, "model folder", f" for the checkpoints of {params:,} parameters")


def _open_outputs(run: _Run) -> None:
    """Main rank: the model directory, the experiment and class list as used, TensorBoard."""
    if not run.ctx.is_main:
        return
    run.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run.out_dir / "experiment.yaml", yaml.safe_dump(run.config.to_dict(), sort_keys=False))
    write_text_atomic(run.out_dir / "genres.json", json.dumps(run.genres, indent=2))
    from torch.utils.tensorboard import SummaryWriter

    run.writer = SummaryWriter(str(run.out_dir / "tb"), purge_step=run.start_epoch + 1)


def train_one_epoch(run: _Run, epoch: int) -> list[float]:
    """One pass over this rank's shard of the training windows; ``[loss sum, correct, windows]`` over all ranks."""
    _seed_epoch(run.tc.seed, epoch, run.ctx.rank)
    run.sampler.set_epoch(epoch)
    run.model.train()
    totals = [0.0, 0.0, 0.0]
    device = run.ctx.device
    desc = f"epoch {epoch + 1}/{run.tc.epochs}"
    within = partial(_epoch_progress, run, epoch)
    for batch in track(run.loader, desc=desc, progress=within):
        label = batch["label"].to(device)
        out = run.model(batch["visual"].to(device), batch["audio"].to(device), batch["mask"].to(device))
        loss = run.criterion(out.logits, label)
        if not torch.isfinite(loss.detach()):
            raise ValueError(
                f"training loss is {float(loss.detach())} at epoch {epoch + 1}: the features or the settings "
                "(learning rate) are broken; stopped before a useless model was saved"
            )
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if run.tc.grad_clip > 0:
            nn.utils.clip_grad_norm_(run.net.parameters(), run.tc.grad_clip)
        run.optimizer.step()
        totals[0] += float(loss.detach()) * len(label)
        totals[1] += float((out.logits.detach().argmax(1) == label).sum())
        totals[2] += len(label)
    return run.ctx.all_sum(totals)


def _epoch_progress(run: _Run, epoch: int, fraction: float, label: str) -> None:
    run.report_progress(epoch - run.start_epoch + fraction, label)


def _validate(run: _Run, epoch: int, totals: list[float]) -> tuple[dict[str, Any], bool]:
    """Score the val split, step the scheduler and early stopping; the epoch's history record.

    Every rank scores the (small) val split itself with the same weights, so
    stopping decisions agree without any communication.
    """
    loss_sum, correct, seen = totals
    val = evaluate_windows(
        run.net, run.data.splits["val"], run.genres, run.eval_batch_size, run.ctx.device,
        run.tc.aggregate, run.criterion, "val",
    )
    val_f1 = val["macro_f1"]
    if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        run.scheduler.step(val_f1 if val_f1 is not None else -loss_sum / seen)
    elif run.scheduler is not None:
        run.scheduler.step()
    record = {
        "epoch": epoch + 1,
        "lr": float(run.optimizer.param_groups[0]["lr"]),
        "train_loss": loss_sum / seen,
        "train_acc": correct / seen,
        "val_loss": val["loss"],
        "val_acc": val["window_accuracy"],
        "val_video_acc": val["accuracy"],
        "val_macro_f1": val_f1,
    }
    run.history.append(record)
    improved = run.stopping.update(val_f1, epoch + 1, run.tc.patience)
    return record, improved


def _after_epoch(run: _Run, record: dict[str, Any], improved: bool) -> None:
    """Main rank: ``best.pt`` (if improved) and ``last.pt``, TensorBoard, history, curves, one log line."""
    epoch = record["epoch"]
    if run.ctx.is_main:
        common = dict(
            experiment=run.config, genres=run.genres, visual_dim=run.data.visual_dim,
            audio_dim=run.data.audio_dim, epoch=epoch, metrics={k: v for k, v in record.items() if v is not None},
        )
        if improved:
            save_checkpoint(run.out_dir / BEST_NAME, run.net, **common)
        save_checkpoint(
            run.out_dir / LAST_NAME, run.net, **common, optimizer=run.optimizer.state_dict(),
            scheduler=run.scheduler.state_dict() if run.scheduler is not None else None,
            run_state=run.stopping.as_dict(), history=run.history,
        )
        _log_epoch(run.writer, record)
        write_text_atomic(run.out_dir / HISTORY_JSON, json.dumps(run.history, indent=2))
        plot_curves(run.history, run.out_dir / CURVES_PNG, run.config.model.modality)
        print(
            f"epoch {epoch}/{run.tc.epochs}: train loss {record['train_loss']:.4f} "
            f"acc {record['train_acc']:.3f} | val loss {fmt_metric(record['val_loss'])} "
            f"acc {fmt_metric(record['val_acc'])} macro-F1 {fmt_metric(record['val_macro_f1'])}" + (" *" if improved else ""),
            flush=True,
        )
    run.report_progress(epoch - run.start_epoch, f"epoch {epoch}/{run.tc.epochs} done")


def _final_report(run: _Run) -> TrainReport:
    """Main rank: score ``best.pt`` on the test split and write ``report.json`` / ``report.txt``."""
    best_model, _ = load_model(run.out_dir, run.ctx.device)
    test = evaluate_windows(
        best_model, run.data.splits["test"], run.genres, run.eval_batch_size, run.ctx.device,
        run.tc.aggregate, run.criterion, "test",
    )
    stopping = run.stopping
    report = TrainReport(
        out_dir=run.out_dir,
        modality=run.config.model.modality,
        genres=run.genres,
        epochs_run=len(run.history),
        best_epoch=stopping.best_epoch,
        best_val_macro_f1=stopping.best_val_macro_f1,
        stopped_early=stopping.stopped_early,
        resumed_from=run.resumed_from,
        counts={name: {"videos": len(ds.videos), "windows": len(ds)} for name, ds in run.data.splits.items()},
        skipped=[{"sample_id": s.sample_id, "filepath": s.filepath, "reason": s.reason} for s in run.data.skipped],
        test=test,
        features=to_dict(run.config.features),
    )
    write_text_atomic(run.out_dir / REPORT_JSON, report.to_json())
    write_text_atomic(run.out_dir / REPORT_TXT, str(report) + "\n")
    if run.writer is not None and test.get("macro_f1") is not None:
        run.writer.add_scalar("test/accuracy", test["accuracy"], stopping.best_epoch)
        run.writer.add_scalar("test/macro_f1", test["macro_f1"], stopping.best_epoch)
    if run.progress is not None:
        run.progress(1.0, "done")
    return report


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
