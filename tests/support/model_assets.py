"""Shared test data for predict/analysis tests (was ``tests/genre_testdata.py``): tiny real videos, planted features, a trained model.

The videos are real (PyAV-written MP4s, so ``compute_metadata`` and frame
counts are genuine); their cached features are synthetic with a learnable
signal: genre ``k`` lights visual dims ``2k, 2k+1`` and audio dim ``k``. A
tiny fused ``GenreCRNN`` is trained on the correctly-labelled clips, then the
dataset gets planted problems the analysis must surface:

- 3 clips with Action features labelled Horror  -> ``horror-predicted-as-action``
- 2 clips with Horror features labelled Romance -> ``romance-predicted-as-horror``
- 2 clips whose picture says Sports and soundtrack says Animation (disagreement)

Everything expensive is built once per test session (``functools.cache``).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.config import (
    ExperimentConfig,
    FeaturesConfig,
    ModelConfig,
    TrainConfig,
    to_dict,
)
from fiftyone_genre.demo.mediawriter import VideoTrack, cfr_times, write_media
from fiftyone_genre.features.cache import ClipFeatures, FeatureCache

GENRES = list(g.GENRES)
VDIM, ADIM = 16, 8
FEATURE_FPS = 4.0
VIDEO_FPS = 10
DURATIONS = (1.0, 2.0, 3.0)


@dataclass(frozen=True)
class ClipSpec:
    name: str
    visual_genre: str  # what the picture's features say
    audio_genre: str  # what the soundtrack's features say
    label: str  # the ground truth we store (may be planted wrong)
    duration: float
    kind: str = "clean"  # clean | mislabeled | disagree


def clip_specs() -> list[ClipSpec]:
    specs = []
    for k, genre in enumerate(GENRES):
        for j in range(3):
            specs.append(ClipSpec(f"clean_{k}_{j}", genre, genre, genre, DURATIONS[(k + j) % 3]))
    for j in range(3):
        specs.append(ClipSpec(f"h_as_a_{j}", g.ACTION, g.ACTION, g.HORROR, DURATIONS[j], "mislabeled"))
    for j in range(2):
        specs.append(ClipSpec(f"r_as_h_{j}", g.HORROR, g.HORROR, g.ROMANCE, DURATIONS[j + 1], "mislabeled"))
    for j in range(2):
        specs.append(ClipSpec(f"disagree_{j}", g.SPORTS, g.ANIMATION, g.SPORTS, DURATIONS[j + 1], "disagree"))
    return specs


def write_video(path: Path, duration: float, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A tiny real MP4 (mpeg4, constant frame rate) that ffprobe can measure."""
    rng = np.random.default_rng(seed)
    w, h = size

    def frame(i: int) -> np.ndarray:
        img = np.full((h, w, 3), rng.integers(0, 255, 3), dtype=np.uint8)
        img[:, (i * 3) % w] = 255
        return img

    times = cfr_times(duration, VIDEO_FPS)
    video = VideoTrack((frame(i) for i in range(len(times))), times, size, VIDEO_FPS, codec="mpeg4", options={})
    return write_media(path, video)


def make_features(spec: ClipSpec, seed: int) -> ClipFeatures:
    rng = np.random.default_rng(seed)
    t = int(round(spec.duration * FEATURE_FPS))
    visual = rng.normal(0, 0.3, (t, VDIM)).astype(np.float32)
    audio = rng.normal(0, 0.3, (t, ADIM)).astype(np.float32)
    kv, ka = GENRES.index(spec.visual_genre), GENRES.index(spec.audio_genre)
    visual[:, 2 * kv : 2 * kv + 2] += 1.5
    audio[:, ka] += 1.5
    return ClipFeatures(
        visual=visual,
        audio=audio,
        timestamps=np.arange(t, dtype=np.float64) / FEATURE_FPS,
        has_audio=True,
        duration=spec.duration,
    )


def features_config(cache_dir: Path) -> FeaturesConfig:
    return FeaturesConfig(fps=FEATURE_FPS, backbone="synthetic-test", weights="none", cache_dir=str(cache_dir))


def experiment(cache_dir: Path) -> ExperimentConfig:
    return ExperimentConfig(
        features=features_config(cache_dir),
        model=ModelConfig(visual_proj=16, audio_proj=8, hidden_size=24, dropout=0.0, modality_dropout=0.3),
        train=TrainConfig(window=6, stride=3, batch_size=64, aggregate="length_weighted"),
    )


@dataclass
class Assets:
    root: Path
    videos: dict[str, Path]
    metadata: dict[str, dict]
    specs: list[ClipSpec]
    cache_dir: Path
    model_dir: Path
    audio_model_dir: Path


def _train(exp: ExperimentConfig, feats: list[ClipFeatures], labels: list[int], modality: str, steps: int = 150):
    import torch

    from fiftyone_genre.modeling.model import build_model
    from fiftyone_genre.modeling.windows import collate_windows, make_windows, pad_window

    torch.manual_seed(0)
    exp.model.modality = modality
    model = build_model(exp.model, VDIM, ADIM, len(GENRES))
    items, ys = [], []
    for f, y in zip(feats, labels):
        for s, e in make_windows(f.num_steps, exp.train.window, exp.train.stride):
            items.append(pad_window(f, s, e, exp.train.window))
            ys.append(y)
    batch = collate_windows(items)
    target = torch.tensor(ys)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        out = model(batch["visual"], batch["audio"], batch["mask"])
        loss = torch.nn.functional.cross_entropy(out.logits, target)
        loss.backward()
        opt.step()
    model.eval()
    return model, float(loss.detach())


@functools.cache
def assets() -> Assets:
    """Videos, cached features and two trained models (fused, audio-only), built once."""
    import fiftyone as fo

    from fiftyone_genre.modeling.model import save_checkpoint

    root = Path(tempfile.mkdtemp(prefix="genre-predict-test-"))
    atexit.register(shutil.rmtree, root, True)
    cache_dir = root / "cache"
    exp = experiment(cache_dir)
    cache = FeatureCache(cache_dir, exp.features)
    specs = clip_specs()
    videos, metadata, feats = {}, {}, {}
    for i, spec in enumerate(specs):
        path = write_video(root / f"{spec.name}.mp4", spec.duration, seed=i)
        videos[spec.name] = path
        metadata[spec.name] = fo.VideoMetadata.build_for(str(path)).to_dict()
        feats[spec.name] = make_features(spec, seed=100 + i)
        cache.put(path, feats[spec.name])
    clean = [s for s in specs if s.kind == "clean"]
    train_feats = [feats[s.name] for s in clean]
    train_labels = [GENRES.index(s.label) for s in clean]
    model_dir = root / "model"
    audio_dir = root / "model_audio"
    for modality, out in (("fused", model_dir), ("audio", audio_dir)):
        e = experiment(cache_dir)
        model, loss = _train(e, train_feats, train_labels, modality)
        save_checkpoint(out / "best.pt", model, e, GENRES, VDIM, ADIM, epoch=1, metrics={"train_loss": loss})
    return Assets(root, videos, metadata, specs, cache_dir, model_dir, audio_dir)


def build_dataset(name: str, with_metadata: bool = True, extra_uncached: int = 0):
    """A fresh dataset over the shared clips; ``extra_uncached`` adds clips with no features."""
    import fiftyone as fo

    a = assets()
    dataset = fo.Dataset(name)
    samples = []
    for spec in a.specs:
        s = fo.Sample(
            filepath=str(a.videos[spec.name]),
            genre=fo.Classification(label=spec.label),
            source_label=fo.Classification(label=f"src_{spec.name}"),
            clip_name=spec.name,
            clip_kind=spec.kind,
        )
        if with_metadata:
            s["metadata"] = fo.VideoMetadata.from_dict(a.metadata[spec.name])
        samples.append(s)
    for j in range(extra_uncached):
        path = a.root / f"uncached_{name}_{j}.mp4"
        if not path.exists():
            write_video(path, 1.0, seed=999 + j)
        samples.append(
            fo.Sample(filepath=str(path), genre=fo.Classification(label=g.ACTION), clip_name=f"uncached_{j}", clip_kind="uncached")
        )
    dataset.add_samples(samples, progress=False)
    dataset.info[g.FEATURES_INFO_KEY] = {
        "cache_dir": str(a.cache_dir),
        "config": to_dict(features_config(a.cache_dir)),
    }
    dataset.save()
    return dataset
