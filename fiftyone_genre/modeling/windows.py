"""Windows over per-step features: every window of every video, padded and masked.

A video of T steps gives windows ``[0, W), [S, S+W), ...`` and one last
window that ends at T, so no step is left out; a video shorter than one
window gives one padded window with a mask. Training and prediction share
these functions, so what the model saw in training is what it sees later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from fiftyone_genre import genres as g
from fiftyone_genre.features.cache import ClipFeatures
from fiftyone_genre.modeling.packed import PackedClip


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
    """One labelled video whose features were found in the cache.

    ``features`` is the clip's steps in memory (:class:`ClipFeatures`) or,
    as :func:`load_window_data` gives them, a reference into the packed
    store (:class:`PackedClip`) that reads only the steps a window needs.
    """

    sample_id: str
    filepath: str
    label: int
    split: str
    group: str | None
    features: ClipFeatures | PackedClip


def clip_steps(features: ClipFeatures | PackedClip, start: int = 0, end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(visual, audio)`` steps ``[start, end)`` of a clip held in memory or in a pack."""
    if isinstance(features, PackedClip):
        return features.read(start, end)
    end = features.num_steps if end is None else end
    return features.visual[start:end], features.audio[start:end]


def window_arrays(
    features: ClipFeatures | PackedClip, start: int, end: int, window: int, dims: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pad_window` for either kind of clip: only the window's own steps are read."""
    visual_steps, audio_steps = clip_steps(features, start, end)
    n = end - start
    visual = np.zeros((window, dims[0]), dtype=np.float32)
    audio = np.zeros((window, dims[1]), dtype=np.float32)
    mask = np.zeros(window, dtype=bool)
    visual[:n] = visual_steps
    audio[:n] = audio_steps
    mask[:n] = True
    return visual, audio, mask
