"""Labelled samples -> training windows: rows read once, features from the packed store.

:func:`load_window_data` reads the dataset's genre and split fields, packs
the training set's cached features into one store
(:mod:`fiftyone_genre.modeling.packed`), records why a sample cannot be
used, and returns one :class:`WindowDataset` per split; class weights and a
balanced sampler handle class imbalance.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from fiftyone_genre import genres as g
from fiftyone_genre import samples
from fiftyone_genre.config import TrainConfig
from fiftyone_genre.features.cache import ClipFeatures, FeatureCache, cache_for
from fiftyone_genre.features.spaces import EXTRACTOR, feature_key, is_yt8m, refusal
from fiftyone_genre.modeling.packed import OK, PackedClip, PackedFeatures, PackRow
from fiftyone_genre.modeling.windows import (
    VideoItem,
    clip_steps,
    collate_windows,
    make_windows,
    run_genres,
    window_arrays,
)
from fiftyone_genre.utils import ProgressFn


def _feature_dims(features: ClipFeatures | PackedClip) -> tuple[int, int]:
    if isinstance(features, PackedClip):
        return features.store.visual_dim, features.store.audio_dim
    return int(features.visual.shape[1]), int(features.audio.shape[1])


class WindowDataset(Dataset):
    """Every window of a list of videos, zero-padded to ``window`` steps with a mask.

    Item ``i`` is ``(visual [W, Dv], audio [W, Da], mask [W], label, video index)``;
    :func:`collate_labeled` batches them. ``windows[i] = (video, start, end)``
    says where each one came from, so window scores can be put back together
    into per-video scores (:meth:`video_probabilities`). Items are read on
    demand, so a dataset over a pack holds only the window index in memory.
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
        self.dims = _feature_dims(videos[0].features) if videos else (0, 0)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int):
        v, start, end = self.windows[index]
        item = self.videos[v]
        visual, audio, mask = window_arrays(item.features, start, end, self.window, self.dims)
        return visual, audio, mask, item.label, v

    @property
    def labels(self) -> np.ndarray:
        """The label of every window (``[len(self)]``), for class weights and samplers."""
        return self.video_labels[self.owners] if self.windows else np.zeros(0, dtype=np.int64)

    @property
    def video_labels(self) -> np.ndarray:
        return np.asarray([item.label for item in self.videos], dtype=np.int64)

    @property
    def owners(self) -> np.ndarray:
        """The video index of every window."""
        return np.asarray([v for v, _, _ in self.windows], dtype=np.int64)

    @property
    def lengths(self) -> np.ndarray:
        """Real (unpadded) steps of every window."""
        return np.asarray([end - start for _, start, end in self.windows], dtype=np.int64)

    def video_probabilities(self, window_probs: np.ndarray, how: str = "mean") -> np.ndarray:
        """``[num_videos, C]`` video scores from ``[len(self), C]`` window scores, in video order.

        One pass over the windows (grouped sums), not one pass per video, so
        scoring a split stays linear in its size.
        """
        window_probs = np.asarray(window_probs, dtype=np.float64)
        if len(window_probs) != len(self):
            raise ValueError(f"expected {len(self)} window scores, got {len(window_probs)}")
        if how not in ("mean", "length_weighted"):
            raise ValueError(f"unknown aggregation {how!r}; use 'mean' or 'length_weighted'")
        weights = self.lengths.astype(np.float64) if how == "length_weighted" else np.ones(len(self))
        sums = np.zeros((len(self.videos), window_probs.shape[1]), dtype=np.float64)
        np.add.at(sums, self.owners, window_probs * weights[:, None])
        totals = np.bincount(self.owners, weights=weights, minlength=len(self.videos))
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / totals[:, None]


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


@dataclass
class LabelledRows:
    """The samples a run can use: parallel lists read from the collection in one query each."""

    ids: list[str]
    paths: list[str]
    labels: list[str]
    splits: list[str]
    groups: list[str | None]
    errors: list[list[str] | None]
    #: YouTube-8M record ids and the features-only marker (None where a sample has none)
    yt8m_ids: list[str | None] = field(default_factory=list)
    features_only: list[bool | None] = field(default_factory=list)

    def __iter__(self):
        return iter(zip(self.ids, self.paths, self.labels, self.splits, self.groups, self.errors))

    def keys(self, space: str) -> list[str | None]:
        """Each sample's feature key in ``space`` (None: it has no features there)."""
        ys = self.yt8m_ids or [None] * len(self)
        fo_ = self.features_only or [None] * len(self)
        return [feature_key(space, p, y, f) for p, y, f in zip(self.paths, ys, fo_)]

    def names(self) -> list[str]:
        """How reports name each sample: its file, or ``yt8m:<id>`` when it has none (features only)."""
        ys = self.yt8m_ids or [None] * len(self)
        fo_ = self.features_only or [None] * len(self)
        return [f"yt8m:{y}" if f and y else p for p, y, f in zip(self.paths, ys, fo_)]

    def refusals(self, space: str) -> list[str | None]:
        """Each sample's one-sentence refusal by a model of ``space`` (None: of its space)."""
        ys = self.yt8m_ids or [None] * len(self)
        fo_ = self.features_only or [None] * len(self)
        return [refusal(space, y, f) for y, f in zip(ys, fo_)]

    def __len__(self) -> int:
        return len(self.ids)


def labelled_rows(collection) -> LabelledRows:
    """Every sample with a genre label and a train/val/test split; one clear error if none."""
    if not collection.has_sample_field(g.GENRE_FIELD):
        raise ValueError(f"no '{g.GENRE_FIELD}' labels on this collection; run remap/relabel first")
    if not collection.has_sample_field(g.SPLIT_FIELD):
        raise ValueError(f"no '{g.SPLIT_FIELD}' field on this collection; run split first")
    from fiftyone import ViewField as F

    view = collection.exists(f"{g.GENRE_FIELD}.label").match(F(g.SPLIT_FIELD).is_in(list(g.SPLITS)))
    ids, paths, labels, splits = view.values(["id", "filepath", f"{g.GENRE_FIELD}.label", g.SPLIT_FIELD])
    if not ids:
        raise ValueError("no samples have both a genre label and a train/val/test split")
    n = len(ids)
    groups, errors, yt8m_ids, only = (
        samples.field_values(view, name, n)
        for name in (g.GROUP_FIELD, g.ERRORS_FIELD, g.YT8M_ID_FIELD, g.FEATURES_ONLY_FIELD)
    )
    return LabelledRows(ids, paths, labels, splits, groups, errors, yt8m_ids, only)


def _skip_reason(row: PackRow | None, dims: tuple[int, int] | None) -> str | None:
    """Why a clip's pack row cannot be used, or None when it can."""
    if row is None or row.status != OK:
        return "no cached features (run feature extraction, or the file changed since)"
    if row.num_steps == 0:
        return "cached features have no steps"
    if dims is not None and (row.visual_dim, row.audio_dim) != dims:
        return f"feature sizes {row.visual_dim}/{row.audio_dim} differ from {dims[0]}/{dims[1]}"
    return None


@dataclass
class _Sorted:
    """The outcome of checking every labelled row against the pack."""

    per_split: dict[str, list[VideoItem]]
    skipped: list[SkippedSample]
    recovered: list[str]
    dims: tuple[int, int] | None


def sort_rows(
    rows: LabelledRows,
    store: PackedFeatures,
    genres: list[str],
    keys: list[str | None] | None = None,
    refusals: list[str | None] | None = None,
) -> _Sorted:
    """Usable videos per split (as pack references), skipped samples with reasons, recovered ids.

    ``keys`` are the samples' pack keys (default: their file paths); a
    ``refusals`` entry is the sentence a sample of another feature space gets.
    """
    index = {genre: i for i, genre in enumerate(genres)}
    keys = keys if keys is not None else list(rows.paths)
    refusals = refusals if refusals is not None else [None] * len(rows)
    out = _Sorted({s: [] for s in g.SPLITS}, [], [], None)
    for (sid, _, label, split, group, errs), path, key, refused in zip(rows, rows.names(), keys, refusals):
        row = store.rows.get(key) if key is not None else None
        reason = refused or _skip_reason(row, out.dims)
        clip = store.clip(key) if reason is None else None
        if reason is None and clip is None:  # sizes differ from the pack's (so not stored)
            reason = f"feature sizes {row.visual_dim}/{row.audio_dim} differ from {store.visual_dim}/{store.audio_dim}"
        if reason is not None:
            out.skipped.append(SkippedSample(sid, path, reason))
            continue
        out.dims = out.dims or (row.visual_dim, row.audio_dim)
        out.per_split[split].append(VideoItem(sid, path, index[label], split, group, clip))
        if errs and any(e.startswith("train: ") for e in errs):
            out.recovered.append(sid)
    return out


def _store_for(collection, rows: LabelledRows, space: str, cache: FeatureCache | None, progress) -> PackedFeatures:
    """The pack a run in ``space`` reads: the import's (YouTube-8M) or one packed from the cache."""
    if is_yt8m(space):
        from fiftyone_genre.modeling.yt8m_store import check_store, require_store

        store = require_store(collection, space)
        check_store(store, [k for k in rows.keys(space) if k is not None], space, progress)
        return store
    cache = cache if cache is not None else cache_for(collection)
    keys = [k for k in rows.keys(space) if k is not None]
    return PackedFeatures.for_paths(cache, list(dict.fromkeys(keys)), progress=progress)


def load_window_data(
    collection,
    config: TrainConfig,
    cache: FeatureCache | None = None,
    record_errors: bool = True,
    progress: ProgressFn | None = None,
    space: str = EXTRACTOR,
) -> WindowData:
    """Every labelled, split sample's cached features as window datasets over the packed store.

    Samples need a ``genre`` label and a ``split`` in train/val/test. Training
    windows use ``config.stride``; val/test windows use ``config.eval_stride``
    (default: the window, no overlap) as prediction does. A sample whose
    features are missing, stale or empty is skipped, counted and, with
    ``record_errors``, recorded on the sample as ``"train: ..."`` so a bad file
    never stops a run (issue 9) and a later fixed run clears the message.

    Features are read from the pack (:mod:`fiftyone_genre.modeling.packed`), built
    from the per-clip cache the first time and after any entry changes, so
    memory does not grow with the number of clips and an epoch opens no
    per-clip file. In a YouTube-8M ``space`` the pack is the one the import
    wrote (rows keyed ``yt8m:<id>``); samples of another space are skipped
    with the sentence :func:`~fiftyone_genre.features.spaces.refusal` gives.
    """
    rows = labelled_rows(collection)
    store = _store_for(collection, rows, space, cache, progress)
    genres = run_genres(rows.labels)
    found = sort_rows(rows, store, genres, rows.keys(space), rows.refusals(space))
    if record_errors:
        _record_skips(collection, found.skipped, found.recovered)
    if found.dims is None:
        if is_yt8m(space) or any(rows.refusals(space)):
            raise ValueError(
                f"none of the {len(rows)} labelled samples can be used in the '{space}' feature space "
                f"(first: {found.skipped[0].reason})"
            )
        raise ValueError(
            f"none of the {len(rows)} labelled samples has cached features; run feature extraction first"
        )
    stride_eval = config.eval_stride or config.window
    datasets = {
        "train": WindowDataset(found.per_split["train"], config.window, config.stride),
        "val": WindowDataset(found.per_split["val"], config.window, stride_eval),
        "test": WindowDataset(found.per_split["test"], config.window, stride_eval),
    }
    return WindowData(genres, datasets, found.dims[0], found.dims[1], found.skipped)


def _record_skips(collection, skipped: list[SkippedSample], recovered: list[str]) -> None:
    """Write skip reasons onto samples; clear stale ``train:`` errors on ones now usable."""
    dataset = collection._dataset
    if skipped:
        reasons = {s.sample_id: s.reason for s in skipped}
        for sample in dataset.select(list(reasons)).iter_samples(autosave=True):
            samples.record_error(sample, "train", reasons[sample.id])
    if recovered:
        for sample in dataset.select(recovered).iter_samples(autosave=True):
            samples.clear_errors(sample, "train")


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
    std 1, so it is not blown up into pure noise. Accumulated clip by clip
    (float64 count/mean/M2, merged as in Chan et al.), so memory stays that
    of one clip however many videos there are.
    """
    acc = {name: _Moments() for name in ("visual", "audio")}
    for video in videos:
        visual, audio = clip_steps(video.features)
        acc["visual"].add(visual)
        acc["audio"].add(audio)
    out: dict[str, np.ndarray] = {}
    for name, moments in acc.items():
        mean, std = moments.mean, moments.std
        floor = eps * std.max() if std.size and std.max() > 0 else 0.0
        std = np.where(std > floor, std, 1.0)
        out[f"{name}_mean"] = mean.astype(np.float32)
        out[f"{name}_std"] = std.astype(np.float32)
    return out


class _Moments:
    """Running count, mean and sum of squared deviations per column (numerically stable)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = np.zeros(0)
        self.m2 = np.zeros(0)

    def add(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        rows = np.asarray(rows, dtype=np.float64)
        n_b, mean_b = len(rows), rows.mean(axis=0)
        m2_b = ((rows - mean_b) ** 2).sum(axis=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n) if self.n else self.m2
