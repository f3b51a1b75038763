"""Paper stage 1: fine-tune the visual backbone as a frame-level genre classifier.

The checkpoint it writes (``best.pt``) is what ``features.mode: softmax``
reads through :func:`fiftyone_genre.features.backbones.read_frame_classifier`. The
steps are separate functions so each can be read and tested alone:
sample frames of a split into a disk-backed store, train one epoch, measure
validation accuracy, save the epoch's checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fiftyone_genre.features.backbones import (
    FRAME_CLASSIFIER_KIND,
    FrameClassifier,
    VisualEncoder,
    build_body,
    image_size_for,
    spec_for,
)
from fiftyone_genre.report import Report
from fiftyone_genre.storage import FolderLock, check_writable
from fiftyone_genre.utils import ProgressFn, atomic_path, track


@dataclass
class FinetuneReport(Report):
    """What stage 1 produced: the checkpoint to use as ``softmax_checkpoint``."""

    checkpoint: str
    epochs: int
    train_frames: int
    val_frames: int
    history: list[dict[str, float]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"frame classifier: {self.checkpoint}",
            f"  {self.epochs} epoch(s) on {self.train_frames} train frames, {self.val_frames} val frames",
        ]
        for h in self.history:
            lines.append("  " + ", ".join(f"{k}={v:.4g}" for k, v in h.items()))
        if self.skipped:
            lines.append(f"  {len(self.skipped)} video(s) skipped:")
            lines += [f"    {p}: {r}" for p, r in self.skipped.items()]
        return "\n".join(lines)


@dataclass
class FrameSet:
    """Sampled frames of one split: a uint8 memmap (RAM stays bounded) and their labels."""

    frames: np.ndarray  # [n, 3, S, S] uint8
    labels: torch.Tensor  # [n] long
    skipped: dict[str, str]


def sample_frames(path: str, fps: float, size: int, max_frames: int, threads: int) -> torch.Tensor:
    """Up to ``max_frames`` evenly spaced sampled frames of one video (no audio decoded)."""
    from fiftyone_genre.features.decode import ClipStream

    stream = ClipStream(path, fps=fps, image_size=size, with_audio=False, decode_threads=threads)
    expected = max(1, int((stream.info.declared_duration or 0) * fps) + 1)
    stride = max(1, expected // max_frames)
    kept: list[torch.Tensor] = []
    for chunk in stream:
        for i in range(chunk.num_frames):
            if (chunk.frame_start + i) % stride == 0 and len(kept) < max_frames:
                kept.append(chunk.frames[i])
    return torch.stack(kept)


def frames_of_split(collection, split: str, fc, classes: list[str], out: Path, max_frames: int,
                    progress: ProgressFn | None = None) -> FrameSet:
    """Sampled frames of one split in ``out/frames_<split>.npy``; undecodable videos are skipped."""
    from fiftyone import ViewField as F

    from fiftyone_genre import genres as g
    from fiftyone_genre.features.decode import MediaError
    from fiftyone_genre.features.extractor import decode_plan_for

    size = image_size_for(fc.backbone, fc.image_size)
    view = collection.match(F(g.SPLIT_FIELD) == split).exists(g.GENRE_FIELD)
    if collection.has_field(g.FEATURES_ONLY_FIELD):  # no video to take frames from
        view = view.match(F(g.FEATURES_ONLY_FIELD) != True)  # noqa: E712 - a database expression
    paths, labels = view.values(["filepath", f"{g.GENRE_FIELD}.label"])
    items = [(p, lab) for p, lab in zip(paths, labels) if lab in classes]
    store = np.lib.format.open_memmap(
        out / f"frames_{split}.npy", mode="w+", dtype=np.uint8,
        shape=(max(1, len(items) * max_frames), 3, size, size),
    )
    ys: list[int] = []
    bad: dict[str, str] = {}
    threads = decode_plan_for(fc, None).decode_threads
    for path, label in track(items, desc=f"decode {split} frames", progress=progress):
        try:
            x = sample_frames(path, fc.fps, size, max_frames, threads)
        except MediaError as e:
            bad[path] = str(e)
            continue
        store[len(ys) : len(ys) + len(x)] = x.numpy()
        ys.extend([classes.index(label)] * len(x))
    store.flush()
    return FrameSet(store[: len(ys)], torch.tensor(ys, dtype=torch.long), bad)


@dataclass
class Trainer:
    """The model, its input normalisation and optimiser: what every epoch step needs."""

    model: FrameClassifier
    encoder: VisualEncoder  # normalisation only
    optim: torch.optim.Optimizer
    device: torch.device
    batch_size: int
    gen: torch.Generator


def make_trainer(fc, tc, num_classes: int, device: torch.device) -> Trainer:
    """Backbone (configured weights) + a new genre head, AdamW, seeded by ``train.seed``."""
    spec = spec_for(fc.backbone)
    size = image_size_for(fc.backbone, fc.image_size)
    torch.manual_seed(tc.seed)
    body = build_body(fc.backbone, fc.weights, fc.init_seed)
    model = FrameClassifier(body, spec.feature_dim, num_classes).to(device)
    encoder = VisualEncoder(nn.Identity(), spec.feature_dim, size).to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=tc.finetune_lr, weight_decay=tc.weight_decay)
    gen = torch.Generator().manual_seed(tc.seed)
    return Trainer(model, encoder, optim, device, max(2, tc.batch_size), gen)


def train_epoch(t: Trainer, data: FrameSet) -> dict[str, float]:
    """One shuffled pass with random horizontal flips; returns loss and accuracy."""
    t.model.train()
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(data.frames), generator=t.gen)
    total, correct, loss_sum = 0, 0, 0.0
    for start in range(0, len(order), t.batch_size):
        idx = torch.from_numpy(np.sort(order[start : start + t.batch_size].numpy()))
        if len(idx) < 2:  # BatchNorm needs two frames
            continue
        x = torch.from_numpy(data.frames[idx.numpy()]).to(t.device)
        flip = torch.rand(len(idx), generator=t.gen) < 0.5
        x[flip] = x[flip].flip(-1)
        logits = t.model(t.encoder.preprocess(x))
        loss = loss_fn(logits, data.labels[idx].to(t.device))
        t.optim.zero_grad(set_to_none=True)
        loss.backward()
        t.optim.step()
        loss_sum += float(loss.detach()) * len(idx)
        total += len(idx)
        correct += int((logits.argmax(1).cpu() == data.labels[idx]).sum())
    return {"train_loss": loss_sum / max(1, total), "train_acc": correct / max(1, total)}


def accuracy(t: Trainer, data: FrameSet) -> float:
    """Frame accuracy in eval mode."""
    t.model.eval()
    hits = 0
    with torch.inference_mode():
        for start in range(0, len(data.frames), t.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(data.frames[start : start + t.batch_size]))
            logits = t.model(t.encoder.preprocess(batch.to(t.device)))
            hits += int((logits.argmax(1).cpu() == data.labels[start : start + t.batch_size]).sum())
    return hits / max(1, len(data.frames))


def save_epoch(model: nn.Module, meta: dict[str, Any], row: dict[str, float], epoch: int, out: Path, best: bool) -> None:
    """``epoch_NNN.pt`` and ``last.pt`` (and ``best.pt`` when ``best``), each written atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {**meta, "state_dict": state, "epoch": epoch, "metrics": row}
    names = [f"epoch_{epoch:03d}.pt", "last.pt", *(["best.pt"] if best else [])]
    for name in names:
        with atomic_path(out / name) as tmp:
            torch.save(ckpt, tmp)


def _checkpoint_meta(fc, classes: list[str]) -> dict[str, Any]:
    from fiftyone_genre.config import to_dict

    return {
        "kind": FRAME_CLASSIFIER_KIND,
        "backbone": fc.backbone,
        "image_size": image_size_for(fc.backbone, fc.image_size),
        "genres": classes,
        "feature_dim": spec_for(fc.backbone).feature_dim,
        "features_config": to_dict(fc),
    }


def finetune_frame_classifier(
    collection,
    config,
    out_dir: str | os.PathLike,
    progress: ProgressFn | None = None,
    device: str | None = None,
    max_frames_per_video: int = 16,
) -> FinetuneReport:
    """Paper stage 1: fine-tune the visual backbone as a frame-level genre classifier.

    Only samples whose ``split`` is ``train`` are trained on (``val`` frames,
    if any, pick the best epoch), so no test clip leaks into the softmax
    features. Every epoch writes ``epoch_NNN.pt`` and ``last.pt``; the best
    validation accuracy (or the last epoch without a val split) is ``best.pt``,
    the file to pass as ``features.softmax_checkpoint``.

    ``config`` is an :class:`~fiftyone_genre.config.ExperimentConfig` (its
    ``features`` section picks backbone/weights/size/fps, ``train`` the
    epochs, learning rate, batch size, seed, device) or a bare
    :class:`~fiftyone_genre.config.FeaturesConfig` (train defaults).
    """
    from fiftyone_genre import genres as g
    from fiftyone_genre.config import ExperimentConfig, FeaturesConfig
    from fiftyone_genre.utils import resolve_device

    if isinstance(config, FeaturesConfig):
        config = ExperimentConfig(features=config)
    fc, tc = config.features, config.train
    out = check_writable(Path(out_dir), "model folder")
    with FolderLock(out, "fine-tuning into"):  # one run per folder: epoch files would mix
        classes = list(g.GENRES)
        train = frames_of_split(collection, "train", fc, classes, out, max_frames_per_video, progress)
        if len(train.frames) == 0:
            raise ValueError("no decodable training frames: the collection needs samples with split 'train' and a genre label")
        val = frames_of_split(collection, "val", fc, classes, out, max_frames_per_video)
        trainer = make_trainer(fc, tc, len(classes), torch.device(resolve_device(device or tc.device)))
        meta = _checkpoint_meta(fc, classes)
        history: list[dict[str, float]] = []
        best_acc = -1.0
        for epoch in range(1, tc.finetune_epochs + 1):
            row = {"epoch": float(epoch), **train_epoch(trainer, train)}
            if len(val.frames):
                row["val_acc"] = accuracy(trainer, val)
            acc = row.get("val_acc", row["train_acc"])
            history.append(row)
            save_epoch(trainer.model, meta, row, epoch, out, best=acc >= best_acc)
            best_acc = max(best_acc, acc)
            if progress is not None:
                progress(epoch / tc.finetune_epochs, f"fine-tune epoch {epoch}/{tc.finetune_epochs}")
        for split in ("train", "val"):  # the frame stores were scratch space
            (out / f"frames_{split}.npy").unlink(missing_ok=True)
        return FinetuneReport(
            checkpoint=str(out / "best.pt"), epochs=tc.finetune_epochs, train_frames=len(train.frames),
            val_frames=len(val.frames), history=history, skipped={**train.skipped, **val.skipped},
        )
