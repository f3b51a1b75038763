"""A clip's features -> window and video probabilities, shared by predict, classify and GenreModel.

:class:`ChunkScorer` scores chunks of clips with one model: every window of a
clip's features (the windows training used), aggregated per video as the
experiment says, plus the embedding and, for fused models, each modality
alone; on request also the genre timeline (:mod:`fiftyone_genre.inference.timeline`:
extra windows every slot, one genre per slot). The helpers map steps to
seconds and frame supports.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fiftyone_genre import genres as g
from fiftyone_genre.config import FeaturesConfig
from fiftyone_genre.features.cache import ClipFeatures, FeatureCache, cache_for
from fiftyone_genre.features.spaces import (
    feature_key,
    is_yt8m,
    missing_reason,
    refusal,
    space_of,
)
from fiftyone_genre.inference import timeline as tl
from fiftyone_genre.modeling.model import Checkpoint, load_model
from fiftyone_genre.modeling.windows import (
    aggregate_windows,
    collate_windows,
    make_windows,
    pad_window,
)
from fiftyone_genre.utils import resolve_device


def step_bounds(timestamps: np.ndarray, duration: float) -> np.ndarray:
    """``T + 1`` boundaries (seconds): step ``t`` owns ``[b[t], b[t+1])``.

    The first step owns the video from 0 and the last one up to the end, so
    the windows' time spans tile the whole video with no gap.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    t = len(ts)
    end = max(float(duration), float(ts[-1]) if t else 0.0)
    bounds = np.empty(t + 1, dtype=np.float64)
    bounds[0] = 0.0
    bounds[1:t] = ts[1:]
    bounds[t] = end
    return np.maximum.accumulate(bounds)  # VFR jitter can never make a span negative


def window_support(
    bounds: np.ndarray, start: int, end: int, frame_rate: float, total_frames: int
) -> list[int]:
    """Frame numbers ``[first, last]`` (1-based, inclusive) of steps ``[start, end)``.

    Frame ``i`` is shown at ``(i - 1) / fps``; a range owns the frames shown
    inside its time span. The last range always ends at ``total_frames`` and
    the first starts at 1, so the union covers the video, and ranges that meet
    (timeline slots) get supports that neither overlap nor leave a frame out.
    """
    eps = 1e-6
    first = 1 if start == 0 else int(math.ceil(bounds[start] * frame_rate - eps)) + 1
    last = total_frames if end == len(bounds) - 1 else int(math.ceil(bounds[end] * frame_rate - eps))
    first = min(max(first, 1), total_frames)
    last = min(max(last, first), total_frames)
    return [first, last]


def window_spans(feats: ClipFeatures, windows: list[tuple[int, int]]) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of each window: the time its steps own (see :func:`step_bounds`)."""
    bounds = step_bounds(feats.timestamps, feats.duration)
    return [(float(bounds[s]), float(bounds[e])) for s, e in windows]


def unpredictable_reason(
    feats: ClipFeatures | None,
    visual_dim: int,
    audio_dim: int,
    missing_reason: str = "no cached features for this file (run `fiftyone-genre features`)",
) -> str | None:
    """Why a model with these input sizes cannot score ``feats``, or None when it can.

    Pure, so every caller (predict, the FiftyOne model, classify) refuses the
    same clips with the same sentence.
    """
    if feats is None:
        return missing_reason
    if feats.num_steps == 0:
        return "cached features have no time steps (video too short?)"
    if feats.visual.shape[1] != visual_dim or feats.audio.shape[1] != audio_dim:
        return (
            f"feature sizes {feats.visual.shape[1]}/{feats.audio.shape[1]} do not match the "
            f"model's {visual_dim}/{audio_dim} (features from another backbone?)"
        )
    return None


@dataclass
class ScoredClip:
    """What the model says about one clip's features."""

    windows: list[tuple[int, int]]
    #: ``[num_windows, num_genres]``: each window's probabilities
    window_probs: np.ndarray
    #: ``[num_genres]``: the video-level probabilities (the experiment's aggregation)
    probs: np.ndarray
    #: ``[hidden_size]``: mean of the windows' LSTM states (``genre_embedding``)
    embedding: np.ndarray
    #: fused models, when asked: ``"visual"``/``"audio"`` -> probabilities with the other modality hidden
    modal_probs: dict[str, np.ndarray] = field(default_factory=dict)
    #: when asked: the timeline's ``(start, end)`` step slots (see :mod:`~fiftyone_genre.inference.timeline`)
    slots: list[tuple[int, int]] = field(default_factory=list)
    #: ``[num_slots, num_genres]``: each slot's probabilities
    slot_probs: np.ndarray | None = None


class ChunkScorer:
    """A trained model with its experiment's windowing: clips' features in, :class:`ScoredClip` s out.

    ``predict``, :class:`~fiftyone_genre.inference.fo_model.GenreModel` and ``classify``
    all score through this one object, so the three give the same numbers for
    the same features. All windows of a chunk are batched together whichever
    clip they came from.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        checkpoint: Checkpoint,
        device: torch.device,
        batch_size: int = 64,
        slot_s: float | None = None,
    ):
        self.model = model
        self.checkpoint = checkpoint
        self.device = device
        self.batch_size = max(1, int(batch_size))
        exp = checkpoint.experiment
        self.labels = list(checkpoint.genres)
        self.window = int(exp.train.window)
        # A stride above the window would leave steps unscored and the timeline
        # with holes; prediction always covers every step.
        self.stride = min(int(exp.train.eval_stride or self.window), self.window)
        self.aggregate = exp.train.aggregate
        #: timeline slot length (seconds) and in steps; None: the experiment's ``predict.timeline_slot_s``
        self.slot_s = float(slot_s if slot_s is not None else exp.predict.timeline_slot_s)
        self.slot_steps = tl.slot_steps(self.slot_s, exp.features.fps)

    @classmethod
    def load(
        cls, model_dir: str | Path, device: str = "auto", batch_size: int = 64, slot_s: float | None = None
    ) -> ChunkScorer:
        """The model of a model directory (or checkpoint file), on ``device``, in eval mode."""
        dev = resolve_device(device)
        model, ckpt = load_model(model_dir, dev)
        return cls(model, ckpt, dev, batch_size, slot_s)

    @property
    def experiment(self):
        return self.checkpoint.experiment

    @property
    def fused(self) -> bool:
        return self.model.modality == "fused"

    @property
    def space(self) -> str:
        """The feature space the model was trained on (``extractor`` for checkpoints that predate spaces)."""
        return space_of(self.experiment.features)

    def refusal(self, yt8m_id: str | None, features_only: bool | None) -> str | None:
        """The one sentence this model says to a sample of another feature space, or None."""
        return refusal(self.space, yt8m_id, features_only)

    @property
    def embedding_dim(self) -> int:
        return int(self.model.classifier.in_features)

    def unpredictable(self, feats: ClipFeatures | None, missing_reason: str | None = None) -> str | None:
        """:func:`unpredictable_reason` for this model's input sizes."""
        args = (feats, self.checkpoint.visual_dim, self.checkpoint.audio_dim)
        return unpredictable_reason(*args, missing_reason) if missing_reason else unpredictable_reason(*args)

    def score(self, clips: list[ClipFeatures], modalities: bool = False, timeline: bool = False) -> list[ScoredClip]:
        """Score every window of every clip.

        ``modalities`` adds the visual-/audio-only passes (on the video-level
        windows); ``timeline`` also scores a window every slot and fills
        ``slots``/``slot_probs``. The video-level label, confidence and
        embedding read the ``eval_stride`` windows either way, so they do not
        depend on the timeline.
        """
        if not clips:
            return []
        windows = [make_windows(f.num_steps, self.window, self.stride) for f in clips]
        items = [pad_window(f, s, e, self.window) for f, ws in zip(clips, windows) for s, e in ws]
        passes: tuple[str | None, ...] = (None, "visual", "audio") if modalities and self.fused else (None,)
        scored = self._split(windows, self._forward(items, passes))
        if timeline:
            self._add_timelines(clips, scored)
        return scored

    def _add_timelines(self, clips: list[ClipFeatures], scored: list[ScoredClip]) -> None:
        """Label each clip's slots from its timeline windows (scoring only those not scored already)."""
        wanted = [tl.timeline_windows(f.num_steps, self.window, self.slot_steps) for f in clips]
        known = [dict(zip(sc.windows, sc.window_probs)) for sc in scored]
        todo = [(i, w) for i, ws in enumerate(wanted) for w in ws if w not in known[i]]
        items = [pad_window(clips[i], s, e, self.window) for i, (s, e) in todo]
        if items:
            for (i, w), p in zip(todo, self._forward(items, (None,))[None][0]):
                known[i][w] = p
        for f, sc, ws, probs in zip(clips, scored, wanted, known):
            sc.slots = tl.slot_ranges(f.num_steps, self.slot_steps)
            sc.slot_probs = tl.slot_probs(sc.slots, ws, np.stack([probs[w] for w in ws]))

    def _forward(self, items: list, passes: tuple[str | None, ...]) -> dict[str | None, tuple[np.ndarray, np.ndarray | None]]:
        """Window probabilities (and, for the full pass, LSTM states) in item order."""
        out: dict[str | None, tuple[list, list]] = {p: ([], []) for p in passes}
        with torch.inference_mode():
            for i in range(0, len(items), self.batch_size):
                batch = collate_windows(items[i : i + self.batch_size])
                visual, audio, mask = (batch[k].to(self.device) for k in ("visual", "audio", "mask"))
                for use in passes:
                    res = self.model(visual, audio, mask, use=use)
                    out[use][0].append(torch.softmax(res.logits.float(), dim=-1).cpu().numpy())
                    if use is None:
                        out[use][1].append(res.embedding.float().cpu().numpy())
        return {
            use: (np.concatenate(probs), np.concatenate(embs) if embs else None)
            for use, (probs, embs) in out.items()
        }

    def _split(self, windows: list[list[tuple[int, int]]], raw: dict) -> list[ScoredClip]:
        """Cut the batched results back into clips and aggregate each clip's windows."""
        probs, embs = raw[None]
        scored, offset = [], 0
        for ws in windows:
            part = slice(offset, offset + len(ws))
            lengths = np.array([e - s for s, e in ws], dtype=np.float64)
            modal = {
                use: aggregate_windows(p[part], lengths, self.aggregate)
                for use, (p, _) in raw.items()
                if use is not None
            }
            scored.append(
                ScoredClip(
                    windows=ws,
                    window_probs=probs[part],
                    probs=aggregate_windows(probs[part], lengths, self.aggregate),
                    embedding=embs[part].mean(axis=0).astype(np.float32),
                    modal_probs=modal,
                )
            )
            offset += len(ws)
        return scored


def classification_logits(probs: np.ndarray) -> np.ndarray:
    """The logits written with a prediction: the log of its probabilities (softmax gives them back)."""
    return np.log(np.clip(probs, 1e-12, 1.0)).astype(np.float64)


def model_cache(collection, features: FeaturesConfig) -> tuple[FeatureCache, str]:
    """The cache holding the features *this model* reads, and what to say on a miss.

    Entries are keyed by the feature settings, not by the folder, so the
    dataset's recorded cache folder is used when it has one (the model's
    config may name a folder on the machine it was trained on).
    """
    from fiftyone_genre.config import from_dict
    from fiftyone_genre.features.cache import config_key

    info = collection._dataset.info.get(g.FEATURES_INFO_KEY) or {}
    if info.get("cache_dir"):
        features = dataclasses.replace(features, cache_dir=None)
    cache = cache_for(collection, features)
    reason = "no cached features for this file (run `fiftyone-genre features`)"
    if info.get("config"):
        try:
            extracted = from_dict(FeaturesConfig, info["config"], "dataset.info.genre_features")
        except ValueError:
            extracted = None
        if extracted is not None and config_key(extracted) != cache.key:
            reason = (
                f"no cached features for the model's feature settings (backbone "
                f"{features.backbone}, {features.fps} fps); this dataset's features were extracted "
                f"with backbone {extracted.backbone}, {extracted.fps} fps: run `fiftyone-genre features` "
                "with the model's experiment file"
            )
    return cache, reason


class SampleFeatures:
    """Where a model's features are for a collection's samples, in the model's feature space.

    The extractor space reads the per-clip cache (:func:`model_cache`); a
    YouTube-8M space reads the pack the import wrote (``yt8m:<id>`` rows).
    ``predict`` and the FiftyOne model read through this one object, so both
    refuse the same samples with the same sentence.
    """

    def __init__(self, collection, scorer: ChunkScorer):
        self.scorer = scorer
        self.space = scorer.space
        self.cache: FeatureCache | None = None
        self.store = None
        if is_yt8m(self.space):
            from fiftyone_genre.modeling.yt8m_store import require_store

            self.store = require_store(collection, self.space)
            self.missing = missing_reason(self.space)
        else:
            self.cache, self.missing = model_cache(collection, scorer.experiment.features)

    def read(self, filepath: str, yt8m_id: str | None, features_only: bool | None) -> tuple[ClipFeatures | None, str | None]:
        """``(features, None)`` for a sample the model can score, else ``(None, one-sentence reason)``."""
        refused = self.scorer.refusal(yt8m_id, features_only)
        if refused is not None:
            return None, refused
        key = feature_key(self.space, filepath, yt8m_id, features_only)
        if self.store is not None:
            from fiftyone_genre.modeling.yt8m_store import clip_features

            feats = clip_features(self.store, key, self.space)
        else:
            feats = self.cache.get(filepath)  # type: ignore[union-attr]
        reason = self.scorer.unpredictable(feats, self.missing)
        return (feats, None) if reason is None else (None, reason)

    def describe(self) -> dict[str, str | dict]:
        """What ``dataset.info["genre_run"]`` records about the features read."""
        from fiftyone_genre.config import to_dict

        if self.cache is not None:
            return {"features": to_dict(self.cache.config), "feature_cache": str(self.cache.dir)}
        return {"features": to_dict(self.scorer.experiment.features), "feature_cache": str(self.store.folder)}  # type: ignore[union-attr]
