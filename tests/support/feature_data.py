"""Synthetic feature datasets for the data/train tests: no videos, no CNN (was ``tests/_train_utils.py``).

Each sample points at a tiny dummy file; its "features" are put straight into
a FeatureCache, and ``dataset.info["genre_features"]`` is set as feature
extraction would, so training reads them exactly like real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.config import ExperimentConfig, FeaturesConfig, load_experiment, to_dict
from fiftyone_genre.features.cache import ClipFeatures, FeatureCache

VISUAL_DIM = 8
AUDIO_DIM = 4


def clip_features(label_index: int, steps: int, rng: np.random.Generator, noise: float = 0.5) -> ClipFeatures:
    """Per-step features whose mean depends on the class, so a model can learn them."""
    visual = rng.normal(0, noise, (steps, VISUAL_DIM)).astype(np.float32)
    audio = rng.normal(0, noise, (steps, AUDIO_DIM)).astype(np.float32)
    visual[:, label_index % VISUAL_DIM] += 2.0
    audio[:, label_index % AUDIO_DIM] += 1.0
    return ClipFeatures(
        visual=visual,
        audio=audio,
        timestamps=np.arange(steps, dtype=np.float64) / 4.0,
        has_audio=True,
        duration=steps / 4.0,
    )


def populate(
    dataset,
    root: Path,
    videos: list[tuple[str, str, str, int]],
    seed: int = 0,
    cached: set[int] | None = None,
) -> FeatureCache:
    """Add ``(genre, split, group, steps)`` samples with cached synthetic features.

    ``cached`` limits which sample indices get a cache entry (others are misses).
    """
    import fiftyone as fo

    rng = np.random.default_rng(seed)
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    fcfg = FeaturesConfig(backbone="mobilenet_v3_small", weights="none", image_size=64, cache_dir=str(root / "cache"))
    cache = FeatureCache(fcfg.cache_dir, fcfg)
    genre_index = {genre: i for i, genre in enumerate(g.GENRES)}
    samples = []
    for i, (genre, split, group, steps) in enumerate(videos):
        path = media / f"clip_{i:03d}.mp4"
        path.write_bytes(b"\0" * (16 + i))
        if cached is None or i in cached:
            cache.put(path, clip_features(genre_index.get(genre, 6), steps, rng))
        samples.append(
            fo.Sample(
                filepath=str(path),
                genre=fo.Classification(label=genre),
                split=split,
                group=group,
            )
        )
    dataset.add_samples(samples)
    dataset.info[g.FEATURES_INFO_KEY] = {"cache_dir": fcfg.cache_dir, "config": to_dict(fcfg)}
    dataset.save()
    return cache


def balanced_videos(genres=("Action", "Horror", "Sports"), per_split=(6, 2, 2), steps=(6, 14)) -> list:
    """A small leakage-free set: each video its own group, mixed lengths."""
    videos = []
    k = 0
    for genre in genres:
        for split, n in zip(g.SPLITS, per_split):
            for _ in range(n):
                videos.append((genre, split, f"synthetic:{genre}_{k}", steps[k % len(steps)]))
                k += 1
    return videos


def tiny_config(**train) -> ExperimentConfig:
    """cpu_fast's sections shrunk to test size: window 8, LSTM 16, 2 epochs."""
    return load_experiment(
        None,
        model={"hidden_size": 16, "visual_proj": 8, "audio_proj": 8, "dropout": 0.1, "modality_dropout": 0.2},
        train={"window": 8, "stride": 4, "batch_size": 8, "epochs": 2, "lr": 0.01, "device": "cpu",
               "patience": 0, **train},
    )
