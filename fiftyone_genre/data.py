"""Windows over cached per-step features: every window of every video, padded and masked.

A video of T steps gives windows ``[0, W), [S, S+W), ...`` and one last
window that ends at T, so no step is left out; a video shorter than one
window gives one padded window with a mask. Training and prediction share
these functions, so what the model saw in training is what it sees later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from fiftyone_genre import genres as g
from fiftyone_genre.cache import ClipFeatures, FeatureCache, cache_for
from fiftyone_genre.config import TrainConfig
from fiftyone_genre.utils import ProgressFn, track


def make_windows(num_steps: int, window: int, stride: int) -> list[tuple[int, int]]:
    """``(start, end)`` step ranges covering all ``num_steps`` steps.

    >>> make_windows(10, 4, 4)
    [(0, 4), (4, 8), (6, 10)]
    >>> make_windows(3, 40, 20)
    [(0, 3)]
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    if num_steps <= 0:
        return []
    if num_steps <= window:
        return [(0, num_steps)]
    starts = list(range(0, num_steps - window + 1, stride))
    if starts[-1] + window < num_steps:
        starts.append(num_steps - window)
    return [(s, s + window) for s in starts]


def pad_window(feats: ClipFeatures, start: int, end: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(visual [W, Dv], audio [W, Da], mask [W])`` for one window, zero-padded at the end."""
    n = end - start
    visual = np.zeros((window, feats.visual.shape[1]), dtype=np.float32)
    audio = np.zeros((window, feats.audio.shape[1]), dtype=np.float32)
    mask = np.zeros(window, dtype=bool)
    visual[:n] = feats.visual[start:end]
    audio[:n] = feats.audio[start:end]
    mask[:n] = True
    return visual, audio, mask


def collate_windows(items: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stack padded windows into a batch dict: visual, audio, mask."""
    visual = torch.from_numpy(np.stack([i[0] for i in items]))
    audio = torch.from_numpy(np.stack([i[1] for i in items]))
    mask = torch.from_numpy(np.stack([i[2] for i in items]))
    return {"visual": visual, "audio": audio, "mask": mask}


def aggregate_windows(probs: np.ndarray, lengths: np.ndarray | None = None, how: str = "mean") -> np.ndarray:
    """Video-level probabilities from its windows' ``[N, C]`` probabilities.

    ``how="mean"`` averages windows; ``"length_weighted"`` weights each window
    by its number of real steps (a short padded tail window counts less).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError("expected a non-empty [num_windows, num_classes] array")
    if how == "mean" or lengths is None:
        return probs.mean(axis=0)
    if how == "length_weighted":
        w = np.asarray(lengths, dtype=np.float64)
        return (probs * w[:, None]).sum(axis=0) / w.sum()
    raise ValueError(f"unknown aggregation {how!r}; use 'mean' or 'length_weighted'")


# ---------------------------------------------------------------------------
# Datasets of windows built from a FiftyOne collection + the feature cache
# ---------------------------------------------------------------------------


def run_genres(labels: Iterable[str]) -> list[str]:
    """The run's class list: genres present, paper order first, then extra user genres.

    Keeping the paper's six in their canonical order means class index 0 is
    always ``Action`` when present, whatever order the samples come in; a
    user mapping's extra genres follow, sorted, so the list is reproducible.
    """
    present = {label for label in labels if label}
    known = [genre for genre in g.GENRES if genre in present]
    extra = sorted(present - set(g.GENRES))
    return known + extra


@dataclass
class VideoItem:
    """One labelled video whose features were found in the cache."""

    sample_id: str
    filepath: str
    label: int
    split: str
    group: str | None
    features: ClipFeatures


class WindowDataset(Dataset):
    """Every window of a list of videos, zero-padded to ``window`` steps with a mask.

    Item ``i`` is ``(visual [W, Dv], audio [W, Da], mask [W], label, video index)``;
    :func:`collate_labeled` batches them. ``windows[i] = (video, start, end)``
    says where each one came from, so window scores can be put back together
    into per-video scores (:meth:`video_probabilities`).
    """

    def __init__(self, videos: list[VideoItem], window: int, stride: int):
        self.videos = videos
        self.window = window
        self.stride = stride
        self.windows: list[tuple[int, int, int]] = [
            (v, start, end)
            for v, item in enumerate(videos)
            for start, end in make_windows(item.features.num_steps, window, stride)
        ]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int):
        v, start, end = self.windows[index]
        item = self.videos[v]
        visual, audio, mask = pad_window(item.features, start, end, self.window)
        return visual, audio, mask, item.label, v

    @property
    def labels(self) -> np.ndarray:
        """The label of every window (``[len(self)]``), for class weights and samplers."""
        return np.asarray([self.videos[v].label for v, _, _ in self.windows], dtype=np.int64)

    @property
    def video_labels(self) -> np.ndarray:
        return np.asarray([item.label for item in self.videos], dtype=np.int64)

    @property
    def lengths(self) -> np.ndarray:
        """Real (unpadded) steps of every window."""
        return np.asarray([end - start for _, start, end in self.windows], dtype=np.int64)

    def video_probabilities(self, window_probs: np.ndarray, how: str = "mean") -> np.ndarray:
        """``[num_videos, C]`` video scores from ``[len(self), C]`` window scores, in video order."""
        window_probs = np.asarray(window_probs)
        if len(window_probs) != len(self):
            raise ValueError(f"expected {len(self)} window scores, got {len(window_probs)}")
        owners = np.asarray([v for v, _, _ in self.windows], dtype=np.int64)
        lengths = self.lengths
        out = np.zeros((len(self.videos), window_probs.shape[1]), dtype=np.float64)
        for v in range(len(self.videos)):
            rows = owners == v
            out[v] = aggregate_windows(window_probs[rows], lengths[rows], how)
        return out


def collate_labeled(items: list[tuple]) -> dict[str, torch.Tensor]:
    """:func:`collate_windows` plus ``label`` and ``video`` (index into the dataset's videos)."""
    batch = collate_windows([i[:3] for i in items])
    batch["label"] = torch.as_tensor([i[3] for i in items], dtype=torch.long)
    batch["video"] = torch.as_tensor([i[4] for i in items], dtype=torch.long)
    return batch


@dataclass
class SkippedSample:
    sample_id: str
    filepath: str
    reason: str


@dataclass
class WindowData:
    """The train/val/test window datasets of one run and what was left out."""

    genres: list[str]
    splits: dict[str, WindowDataset]
    visual_dim: int
    audio_dim: int
    skipped: list[SkippedSample] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [
            f"{name}: {len(ds.videos)} videos / {len(ds)} windows" for name, ds in self.splits.items()
        ]
        text = f"{len(self.genres)} genres ({', '.join(self.genres)}); " + "; ".join(parts)
        if self.skipped:
            text += f"; skipped {len(self.skipped)} samples without usable features"
        return text


def load_window_data(
    collection,
    config: TrainConfig,
    cache: FeatureCache | None = None,
    record_errors: bool = True,
    progress: ProgressFn | None = None,
) -> WindowData:
    """Read every labelled, split sample's cached features into window datasets.

    Samples need a ``genre`` label and a ``split`` in train/val/test. Training
    windows use ``config.stride``; val/test windows use ``config.eval_stride``
    (default: the window, no overlap) as prediction does. A sample whose
    features are missing, stale or empty is skipped, counted and, with
    ``record_errors``, recorded on the sample as ``"train: ..."`` so a bad file
    never stops a run (issue 9) and a later fixed run clears the message.
    """
    if not collection.has_sample_field(g.GENRE_FIELD):
        raise ValueError(f"no '{g.GENRE_FIELD}' labels on this collection; run remap/relabel first")
    if not collection.has_sample_field(g.SPLIT_FIELD):
        raise ValueError(f"no '{g.SPLIT_FIELD}' field on this collection; run split first")
    from fiftyone import ViewField as F

    cache = cache if cache is not None else cache_for(collection)
    view = collection.exists(f"{g.GENRE_FIELD}.label").match(F(g.SPLIT_FIELD).is_in(list(g.SPLITS)))
    fields = ["id", "filepath", f"{g.GENRE_FIELD}.label", g.SPLIT_FIELD]
    has_group = collection.has_sample_field(g.GROUP_FIELD)
    has_errors = collection.has_sample_field(g.ERRORS_FIELD)
    values = view.values(fields)
    groups = view.values(g.GROUP_FIELD) if has_group else [None] * len(values[0])
    errors = view.values(g.ERRORS_FIELD) if has_errors else [None] * len(values[0])
    ids, paths, labels, splits = values
    if not ids:
        raise ValueError("no samples have both a genre label and a train/val/test split")
    genres = run_genres(labels)
    index = {genre: i for i, genre in enumerate(genres)}

    per_split: dict[str, list[VideoItem]] = {s: [] for s in g.SPLITS}
    skipped: list[SkippedSample] = []
    dims: tuple[int, int] | None = None
    recovered: list[str] = []
    rows = list(zip(ids, paths, labels, splits, groups, errors))
    for sid, path, label, split, group, errs in track(rows, desc="loading features", progress=progress):
        feats = cache.get(path)
        reason = None
        if feats is None:
            reason = "no cached features (run feature extraction, or the file changed since)"
        elif feats.num_steps == 0:
            reason = "cached features have no steps"
        elif dims is not None and (feats.visual.shape[1], feats.audio.shape[1]) != dims:
            reason = f"feature sizes {feats.visual.shape[1]}/{feats.audio.shape[1]} differ from {dims[0]}/{dims[1]}"
        if reason is not None:
            skipped.append(SkippedSample(sid, path, reason))
            continue
        dims = dims or (int(feats.visual.shape[1]), int(feats.audio.shape[1]))
        per_split[split].append(VideoItem(sid, path, index[label], split, group, feats))
        if errs and any(e.startswith("train: ") for e in errs):
            recovered.append(sid)

    if record_errors:
        _record_skips(collection, skipped, recovered)
    if dims is None:
        raise ValueError(
            f"none of the {len(ids)} labelled samples has cached features; run feature extraction first"
        )
    stride_eval = config.eval_stride or config.window
    datasets = {
        "train": WindowDataset(per_split["train"], config.window, config.stride),
        "val": WindowDataset(per_split["val"], config.window, stride_eval),
        "test": WindowDataset(per_split["test"], config.window, stride_eval),
    }
    return WindowData(genres, datasets, dims[0], dims[1], skipped)


def _record_skips(collection, skipped: list[SkippedSample], recovered: list[str]) -> None:
    """Write skip reasons onto samples; clear stale ``train:`` errors on ones now usable."""
    dataset = collection._dataset
    if skipped:
        reasons = {s.sample_id: s.reason for s in skipped}
        for sample in dataset.select(list(reasons)).iter_samples(autosave=True):
            g.record_error(sample, "train", reasons[sample.id])
    if recovered:
        for sample in dataset.select(recovered).iter_samples(autosave=True):
            g.clear_errors(sample, "train")


# ---------------------------------------------------------------------------
# Class imbalance
# ---------------------------------------------------------------------------


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Loss weights ``N / (C * n_c)`` per class from the training windows' labels.

    A class with many (or long) videos otherwise dominates the loss; absent
    classes get weight 1 (they never occur as targets, so it does not matter).
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.as_tensor(weights, dtype=torch.float32)


class BalancedSampler(Sampler[int]):
    """Draw windows with replacement so every class is equally likely, per epoch.

    Deterministic from ``seed + epoch`` (call :meth:`set_epoch`), so a resumed
    run draws exactly what an uninterrupted one would. With ``num_replicas`` >
    1 each rank takes every ``num_replicas``-th draw, like ``DistributedSampler``.
    """

    def __init__(
        self,
        labels: np.ndarray,
        num_classes: int,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        labels = np.asarray(labels, dtype=np.int64)
        counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
        self.weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
        self.total = int(num_samples or len(labels))
        self.total = int(math.ceil(self.total / num_replicas)) * num_replicas
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(self.weights, self.total, replacement=True, generator=gen)
        return iter(draws[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.total // self.num_replicas


def train_sampler(
    dataset: WindowDataset,
    num_classes: int,
    balance: str = "class_weights",
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
) -> Sampler[int]:
    """The training sampler: balanced draws, or a seeded shuffle of every window.

    Both are deterministic per epoch (``set_epoch``) and shard across
    DistributedDataParallel ranks; a single process is simply ``num_replicas=1``,
    so one code path serves CPU runs, resume and ``torchrun``.
    """
    if balance == "sampler":
        return BalancedSampler(dataset.labels, num_classes, seed=seed, num_replicas=num_replicas, rank=rank)
    return DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)


def feature_stats(videos: list[VideoItem], eps: float = 1e-6) -> dict[str, np.ndarray]:
    """Per-dimension mean and std of the visual and audio features over all real steps.

    Fitted on the training videos only (no val/test information) and stored
    in the model (``GenreCRNN.set_feature_stats``). A dimension whose spread
    is negligible next to the largest one (constant, or float noise) keeps
    std 1, so it is not blown up into pure noise.
    """
    out: dict[str, np.ndarray] = {}
    for name in ("visual", "audio"):
        steps = np.concatenate([getattr(v.features, name) for v in videos]).astype(np.float64)
        mean = steps.mean(axis=0)
        std = steps.std(axis=0)
        floor = eps * std.max() if std.size and std.max() > 0 else 0.0
        std = np.where(std > floor, std, 1.0)
        out[f"{name}_mean"] = mean.astype(np.float32)
        out[f"{name}_std"] = std.astype(np.float32)
    return out
