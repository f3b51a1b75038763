"""A trained genre model as a FiftyOne model: ``apply_model``, ``compute_embeddings`` and the zoo.

    >>> model = GenreModel.from_dir("runs/cpu_fast", device="cpu")
    >>> dataset.apply_model(model, label_field="genre_fo", store_logits=True)
    >>> dataset.to_clips("genre_timeline").apply_model(model, label_field="clip_genre")
    >>> vectors = dataset.compute_embeddings(model)

The model reads ``sample.filepath`` (FiftyOne's ``SamplesMixin``) and scores
the file's cached per-step features with the same :class:`ChunkScorer`
``predict`` uses, so labels, logits and embeddings are the ones ``predict``
writes. A file without cached features is decoded and run through the
experiment's CNNs once (PyAV, as ``fiftyone-genre features`` does) and the
result is cached for the next run. On a clips view the clip's frame support
selects the steps that are scored: the video's features are computed (or
read) once and every clip of it reuses them. The clips of ``genre_timeline``
are its <= 2.5 s slots; a clip is scored from its own steps only, while the
timeline labels a slot from the windows around it (up to 10 s of context),
so the two can differ where the genre changes.

FiftyOne opens each video with its ffmpeg reader before calling a video model,
so ``apply_model`` and ``compute_embeddings`` need the ``ffmpeg`` binary;
``fiftyone-genre classify`` does not.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiftyone.core.labels as fol
import fiftyone.core.models as fom
import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.features.cache import ClipFeatures, FeatureCache
from fiftyone_genre.features.spaces import EXTRACTOR, file_refusal
from fiftyone_genre.inference.scoring import (
    ChunkScorer,
    SampleFeatures,
    ScoredClip,
    classification_logits,
    model_cache,
)

#: Rounding slack, in frames, when a step time is turned into a frame number
#: (a step exactly on a frame's start must not land on the next frame). Not the
#: seconds tolerance of decoding (:data:`fiftyone_genre.features.sampling.TIME_EPS`).
FRAME_EPS = 1e-6


@dataclass
class GenreModelConfig:
    """How a :class:`GenreModel` runs; ``load_zoo_model(name, **kwargs)`` fills it."""

    #: model directory (``best.pt`` / ``last.pt``) or checkpoint file
    model_path: str
    #: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``
    device: str = "auto"
    #: windows per forward pass
    batch_size: int = 64
    #: feature cache folder; None: the dataset's recorded folder (``dataset.info``),
    #: else the experiment's, else FiftyOne's default
    cache_dir: str | None = None
    #: predictions below this confidence become None (``apply_model(confidence_thresh=)`` sets it)
    confidence_thresh: float | None = None
    #: decode and extract files without cached features (else they fail)
    extract_missing: bool = True
    #: torch threads on CPU while FiftyOne drives the model (``with model:``, as
    #: apply_model does). FiftyOne starts an ffmpeg process for each video right
    #: before calling the model, and intra-op threads would wait at every
    #: operator for the core that process holds; one thread does not wait
    #: (``benchmarks/bench_model.py`` measures both). None keeps torch's setting.
    cpu_threads: int | None = 1


class GenreModel(fom.Model, fom.SamplesMixin, fom.LogitsMixin, fom.EmbeddingsMixin):
    """The CNN-LSTM genre classifier for FiftyOne video collections.

    ``predict`` returns a ``fo.Classification`` (logits when ``store_logits``);
    ``embed`` returns the clip embedding ``predict`` writes to ``genre_embedding``.
    """

    def __init__(self, config: GenreModelConfig):
        fom.SamplesMixin.__init__(self)
        fom.LogitsMixin.__init__(self)
        self.config = config
        self.scorer = ChunkScorer.load(config.model_path, config.device, config.batch_size)
        self._caches: dict[str | None, tuple[FeatureCache, str | None]] = {}
        self._readers: dict[str, SampleFeatures] = {}
        self._extractor = None
        self._embeddings: np.ndarray | None = None
        self._saved_threads: list[int] = []

    @classmethod
    def from_dir(cls, path: str | Path, device: str = "auto", **kwargs: Any) -> GenreModel:
        """Load a trained model directory; ``kwargs`` are :class:`GenreModelConfig` fields."""
        return cls(GenreModelConfig(model_path=str(path), device=device, **kwargs))

    # --- what FiftyOne asks of a model -------------------------------------
    def __enter__(self) -> GenreModel:
        """FiftyOne enters the model around its loop: limit CPU threads for the duration."""
        import torch

        threads = self.config.cpu_threads
        if threads and self.scorer.device.type == "cpu":
            self._saved_threads.append(torch.get_num_threads())
            torch.set_num_threads(int(threads))
        return self

    def __exit__(self, *args) -> None:
        import torch

        if self._saved_threads:
            torch.set_num_threads(self._saved_threads.pop())

    @property
    def media_type(self) -> str:
        return "video"

    @property
    def has_logits(self) -> bool:
        return True

    @property
    def has_embeddings(self) -> bool:
        return True

    @property
    def ragged_batches(self) -> bool:
        return False

    @property
    def transforms(self):
        return None

    @property
    def preprocess(self) -> bool:
        return True

    @preprocess.setter
    def preprocess(self, value: bool) -> None:
        pass  # features are read or extracted here; there is no separate preprocessing

    @property
    def classes(self) -> list[str]:
        return list(self.scorer.labels)

    # --- prediction ----------------------------------------------------------
    def predict(self, arg, sample=None):
        """One video: ``arg`` is FiftyOne's video reader (or a file path)."""
        return self.predict_all([arg], samples=None if sample is None else [sample])[0]

    def predict_all(self, args, samples=None) -> list:
        """Several videos, their windows scored in shared batches."""
        scored = self._score(args, samples)
        self._embeddings = np.stack([s.embedding for s in scored])
        return [self._label(s) for s in scored]

    def embed(self, arg) -> np.ndarray:
        return self.embed_all([arg])[0]

    def embed_all(self, args) -> np.ndarray:
        return np.stack([s.embedding for s in self._score(args, None)])

    def get_embeddings(self) -> np.ndarray:
        if self._embeddings is None:
            raise ValueError("no predictions yet: call predict() first")
        return self._embeddings

    def _label(self, scored: ScoredClip):
        k = int(np.argmax(scored.probs))
        confidence = float(scored.probs[k])
        thresh = self.config.confidence_thresh
        if thresh is not None and confidence < thresh:
            return None
        logits = classification_logits(scored.probs) if self.store_logits else None
        return fol.Classification(label=self.scorer.labels[k], confidence=confidence, logits=logits)

    def _score(self, args, samples) -> list[ScoredClip]:
        samples = list(samples) if samples is not None else [None] * len(args)
        return self.scorer.score([self._clip_features(a, s) for a, s in zip(args, samples)])

    # --- features ------------------------------------------------------------
    def _clip_features(self, arg, sample) -> ClipFeatures:
        """The steps of ``arg``'s video this call scores (a clip's support selects them)."""
        path = sample.filepath if sample is not None else str(getattr(arg, "inpath", arg))
        dataset = getattr(sample, "_dataset", None) if sample is not None else None
        if sample is not None and (self.scorer.space != EXTRACTOR or _field(sample, g.FEATURES_ONLY_FIELD)):
            return self._stored_features(sample, dataset)
        feats = self.features(path, dataset)
        support, rate = _support(arg, sample)
        if support is None:
            return feats
        if not rate:
            raise ValueError(f"{path}: no frame rate known, cannot locate clip frames {support[0]}-{support[1]}")
        return support_steps(feats, support[0], support[1], rate)

    def _stored_features(self, sample, dataset) -> ClipFeatures:
        """A sample read through :class:`SampleFeatures` (YouTube-8M spaces, features-only samples)."""
        if dataset is None:
            raise ValueError(f"{sample.filepath}: stored YouTube-8M features are read through the sample's dataset")
        key = dataset.name
        if key not in self._readers:
            self._readers[key] = SampleFeatures(dataset, self.scorer)
        yt8m_id = _field(sample, g.YT8M_ID_FIELD)
        feats, reason = self._readers[key].read(sample.filepath, yt8m_id, _field(sample, g.FEATURES_ONLY_FIELD))
        if reason is not None:
            raise ValueError(f"{f'yt8m:{yt8m_id}' if yt8m_id else sample.filepath}: {reason}")
        return feats

    def features(self, path: str, dataset=None) -> ClipFeatures:
        """Cached features of ``path`` (extracted and cached on a miss); ValueError names the file."""
        refused = file_refusal(self.scorer.space)
        if refused is not None:
            raise ValueError(f"{path}: {refused}")
        cache, missing = self._cache(dataset)
        feats = cache.get(path)
        if feats is None and self.config.extract_missing:
            feats = self._extract(path, cache)
        reason = self.scorer.unpredictable(feats, missing)
        if reason is not None:
            raise ValueError(f"{path}: {reason}")
        return feats

    def _cache(self, dataset) -> tuple[FeatureCache, str | None]:
        """The cache this model's features live in for ``dataset`` (memoised per dataset)."""
        key = getattr(dataset, "name", None)
        if key not in self._caches:
            features = self.scorer.experiment.features
            if self.config.cache_dir:
                config = dataclasses.replace(features, cache_dir=self.config.cache_dir)
                self._caches[key] = (FeatureCache(self.config.cache_dir, config), None)
            elif dataset is not None:
                self._caches[key] = model_cache(dataset, features)
            else:
                self._caches[key] = (FeatureCache(features.cache_dir, features), None)
        return self._caches[key]

    def _extract(self, path: str, cache: FeatureCache) -> ClipFeatures:
        """Decode ``path`` and run the experiment's CNNs; cache the result when the folder is writable."""
        from fiftyone_genre.features.extractor import FeatureExtractor

        if self._extractor is None:
            try:
                self._extractor = FeatureExtractor(self.scorer.experiment.features, device=self.scorer.device)
            except (ValueError, RuntimeError, OSError) as e:
                raise ValueError(f"{path}: no cached features, and the model's feature extractor cannot be built ({e})") from e
        feats = self._extractor.extract(path)  # MediaError names the file and the problem
        try:
            cache.put(path, feats)
        except OSError:
            pass  # a read-only cache still gives predictions, just not faster next time
        return feats


def _field(sample, name: str):
    """An optional sample field (None when the dataset has no such field)."""
    return sample[name] if name in getattr(sample, "field_names", ()) else None


def _support(arg, sample) -> tuple[tuple[int, int] | None, float | None]:
    """``([first, last] frames, frame rate)`` when only part of the video is asked for, else ``(None, rate)``."""
    rate = getattr(arg, "frame_rate", None)
    metadata = getattr(sample, "metadata", None) if sample is not None else None
    rate = rate or getattr(metadata, "frame_rate", None)
    frames = getattr(arg, "frames", None)
    if frames is not None:
        import eta.core.frameutils as etaf

        first, last = etaf.parse_frame_ranges(frames).limits
        total = getattr(arg, "total_frame_count", 0) or 0
        if first <= 1 and last >= total:
            return None, rate
        return (int(first), int(last)), rate
    if sample is not None and "support" in getattr(sample, "field_names", ()):
        return tuple(sample.support), rate
    return None, rate


def step_frame(timestamp: float, frame_rate: float) -> int:
    """The 1-based number of the first frame shown at or after ``timestamp``.

    The inverse of :func:`fiftyone_genre.inference.scoring.window_support`: the
    support of a step range (a timeline slot, a window) starts at the frame of
    its first step, so the clip made from it selects exactly those steps again.
    """
    return int(math.ceil(timestamp * frame_rate - FRAME_EPS)) + 1


def support_steps(feats: ClipFeatures, first: int, last: int, frame_rate: float) -> ClipFeatures:
    """The steps whose frames lie in ``[first, last]`` (a clip's support); at least the nearest one."""
    frames = np.array([step_frame(t, frame_rate) for t in feats.timestamps])
    keep = np.nonzero((frames >= first) & (frames <= last))[0]
    if len(keep) == 0:  # a clip shorter than one step: the step closest to its start
        keep = np.array([int(np.argmin(np.abs(frames - first)))])
    a, b = int(keep[0]), int(keep[-1]) + 1
    return ClipFeatures(
        visual=feats.visual[a:b],
        audio=feats.audio[a:b],
        timestamps=feats.timestamps[a:b],
        has_audio=feats.has_audio,
        duration=(last - first + 1) / frame_rate,
    )
