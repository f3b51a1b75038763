"""Write everything a trained model knows onto the samples.

For each video the model scores every window of its cached features (the
windows training used, so what the model sees here is what it saw then) and
writes, per sample:

- ``genre_pred`` (``fo.Classification``): the video-level genre. Window
  probabilities are aggregated as the experiment says (``train.aggregate``);
  ``confidence`` is the aggregated probability of the winning genre and
  ``logits`` are the *log* of the aggregated probabilities, so
  ``softmax(logits)`` gives back exactly the probabilities behind the label
  and confidence (FiftyOne's hardness/mistakenness read the logits that way).
- ``genre_timeline`` (``fo.TemporalDetections``): one detection per window
  with its genre and confidence, its support in frame numbers of the video
  (``[1, total_frame_count]``), so a long video shows where the genre changes.
- ``genre_embedding`` (vector): the mean of the windows' LSTM states, the
  representation the classifier reads, for maps and similarity search.
- with a fused model, ``genre_pred_visual`` / ``genre_pred_audio``: the same
  model with the other modality hidden, so picture/soundtrack disagreements
  are visible.

The ground-truth field is never written; a config whose field names collide
with it (or any importer field) is refused before anything runs. A re-run
replaces its own fields on the samples it covers and nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fiftyone_genre import genres as g
from fiftyone_genre.cache import ClipFeatures, FeatureCache, cache_for
from fiftyone_genre.config import FeaturesConfig, PredictConfig, to_dict
from fiftyone_genre.data import aggregate_windows, collate_windows, make_windows, pad_window
from fiftyone_genre.model import load_model, resolve_device
from fiftyone_genre.utils import ProgressFn, track

STAGE = "predict"

#: Fields predict must never write: the ground truth and what the importers own.
PROTECTED_FIELDS: frozenset[str] = frozenset(
    {
        g.GENRE_FIELD,
        g.SOURCE_LABEL_FIELD,
        g.SOURCE_FIELD,
        g.SOURCE_SPLIT_FIELD,
        g.GROUP_FIELD,
        g.SPLIT_FIELD,
        g.HAS_AUDIO_FIELD,
        g.ERRORS_FIELD,
        g.ORIGINAL_PATH_FIELD,
        "id",
        "_id",
        "filepath",
        "tags",
        "metadata",
        "created_at",
        "last_modified_at",
        "frames",
    }
)

#: Samples processed (features read, scored, written) per bulk write. Bounds
#: memory on big datasets and keeps finished chunks if a run is killed.
CHUNK_SIZE = 256


class PredictError(ValueError):
    """Nothing could be predicted, or strict mode met a failing sample."""


@dataclass
class PredictReport:
    """What a predict run did; ``str()`` is the summary the CLI prints."""

    model_path: str
    num_samples: int
    num_predicted: int
    failures: dict[str, str] = field(default_factory=dict)  # filepath -> reason
    fields: dict[str, str] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    modality: str = "fused"
    num_windows: int = 0
    #: Clips predicted without a timeline: their video metadata could not be read.
    no_timeline: list[str] = field(default_factory=list)

    @property
    def num_failed(self) -> int:
        return len(self.failures)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            "num_samples": self.num_samples,
            "num_predicted": self.num_predicted,
            "num_failed": self.num_failed,
            "failures": dict(self.failures),
            "fields": dict(self.fields),
            "label_counts": dict(self.label_counts),
            "modality": self.modality,
            "num_windows": self.num_windows,
            "no_timeline": list(self.no_timeline),
        }

    def __str__(self) -> str:
        lines = [
            f"predict: {self.num_predicted}/{self.num_samples} samples predicted "
            f"({self.num_windows} windows) with {self.model_path} [{self.modality}]",
            "fields: " + ", ".join(f"{k}={v}" for k, v in self.fields.items()),
        ]
        if self.label_counts:
            lines.append(
                "predicted genres: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.label_counts.items()))
            )
        if self.no_timeline:
            lines.append(
                f"{len(self.no_timeline)} clip(s) have no timeline (no readable video metadata), "
                f"e.g. {self.no_timeline[0]}"
            )
        if self.failures:
            lines.append(f"{self.num_failed} sample(s) failed (see field '{g.ERRORS_FIELD}'):")
            for path, reason in list(self.failures.items())[:20]:
                lines.append(f"  {path}: {reason}")
            if self.num_failed > 20:
                lines.append(f"  ... and {self.num_failed - 20} more")
        return "\n".join(lines)


def output_fields(config: PredictConfig) -> dict[str, str]:
    """The role -> field-name map a config writes."""
    return {
        "pred": config.pred_field,
        "timeline": config.timeline_field,
        "embedding": config.embedding_field,
        "visual": config.visual_field,
        "audio": config.audio_field,
    }


def validate_config(config: PredictConfig) -> None:
    """Refuse field names that would overwrite ground truth or each other.

    Checked before the model is even loaded, so a typo in a config can never
    cost a user their labels.
    """
    names = output_fields(config)
    for role, name in names.items():
        if not name or not isinstance(name, str):
            raise ValueError(f"predict config: {role} field name must be a non-empty string")
        if not name.isidentifier():
            raise ValueError(
                f"predict config: {role} field name {name!r} must be a plain identifier "
                "(letters, digits, underscores; no dots)"
            )
        if name in PROTECTED_FIELDS or name.startswith("_"):
            raise ValueError(
                f"predict config: refusing to write {role} predictions into '{name}': "
                "that field holds ground truth or importer data"
            )
    dupes = [n for n, c in Counter(names.values()).items() if c > 1]
    if dupes:
        raise ValueError(f"predict config: field name(s) used twice: {', '.join(dupes)}")


# --------------------------------------------------------------------------- timeline


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

    Frame ``i`` is shown at ``(i - 1) / fps``; a window owns the frames shown
    inside its time span. The last window always ends at ``total_frames`` and
    the first starts at 1, so the union covers the video.
    """
    eps = 1e-6
    first = 1 if start == 0 else int(math.ceil(bounds[start] * frame_rate - eps)) + 1
    last = total_frames if end == len(bounds) - 1 else int(math.ceil(bounds[end] * frame_rate - eps))
    first = min(max(first, 1), total_frames)
    last = min(max(last, first), total_frames)
    return [first, last]


def _video_geometry(metadata, feats: ClipFeatures) -> tuple[float, int, float] | None:
    """``(frame_rate, total_frame_count, duration)`` from the sample's metadata."""
    if metadata is None:
        return None
    fps = getattr(metadata, "frame_rate", None)
    total = getattr(metadata, "total_frame_count", None)
    duration = getattr(metadata, "duration", None)
    if not fps or not total or fps <= 0 or total <= 0:
        return None
    if not duration or duration <= 0:
        duration = total / fps
    return float(fps), int(total), float(duration)


# --------------------------------------------------------------------------- scoring


@dataclass
class _Clip:
    sample_id: str
    filepath: str
    feats: ClipFeatures
    windows: list[tuple[int, int]]
    geometry: tuple[float, int, float] | None


def _score_windows(
    model: torch.nn.Module,
    clips: list[_Clip],
    window: int,
    batch_size: int,
    device: torch.device,
    passes: tuple[str | None, ...],
) -> dict[str | None, tuple[np.ndarray, np.ndarray | None]]:
    """Window probabilities (and, for the full pass, LSTM states) of every clip's windows.

    All windows of a chunk are batched together regardless of which video
    they came from; results come back in (clip, window) order.
    """
    items = [pad_window(c.feats, s, e, window) for c in clips for (s, e) in c.windows]
    out: dict[str | None, tuple[list, list]] = {p: ([], []) for p in passes}
    with torch.inference_mode():
        for i in range(0, len(items), batch_size):
            batch = collate_windows(items[i : i + batch_size])
            visual = batch["visual"].to(device)
            audio = batch["audio"].to(device)
            mask = batch["mask"].to(device)
            for use in passes:
                res = model(visual, audio, mask, use=use)
                out[use][0].append(torch.softmax(res.logits.float(), dim=-1).cpu().numpy())
                if use is None:
                    out[use][1].append(res.embedding.float().cpu().numpy())
    return {
        use: (np.concatenate(probs), np.concatenate(embs) if embs else None)
        for use, (probs, embs) in out.items()
    }


def _classification(fo, probs: np.ndarray, labels: list[str]):
    """A ``fo.Classification`` whose logits are the log of ``probs``."""
    k = int(np.argmax(probs))
    logits = np.log(np.clip(probs, 1e-12, 1.0)).astype(np.float64)
    return fo.Classification(label=labels[k], confidence=float(probs[k]), logits=logits.tolist())


# --------------------------------------------------------------------------- entry point


def predict(
    collection,
    model_dir: str | Path,
    config: PredictConfig | None = None,
    progress: ProgressFn | None = None,
    strict: bool = False,
) -> PredictReport:
    """Score every sample of ``collection`` (dataset or view) and write the results.

    Args:
        collection: a FiftyOne dataset or view of video samples with cached
            features (``fiftyone-genre features``).
        model_dir: a model directory (``best.pt`` preferred) or a checkpoint file.
        config: field names, batch size and device; defaults write ``genre_pred``,
            ``genre_timeline``, ``genre_embedding``, ``genre_pred_visual``/``_audio``.
        progress: ``(fraction, label)`` callback (the App's progress bar).
        strict: raise on the first sample that cannot be predicted instead of
            recording the reason on it and continuing.

    Returns:
        a :class:`PredictReport`. Samples without usable features get
        ``genre_errors`` (``"predict: <reason>"``) and their old predictions
        cleared; a :class:`PredictError` is raised only if no sample at all
        could be predicted (or in strict mode).
    """
    import fiftyone as fo

    config = config or PredictConfig()
    validate_config(config)
    dataset = collection._dataset
    device = resolve_device(config.device)
    model, ckpt = load_model(model_dir, device)
    labels = list(ckpt.genres)
    exp = ckpt.experiment
    window = int(exp.train.window)
    # A stride above the window would leave steps unscored and the timeline
    # with holes; prediction always covers every step.
    stride = min(int(exp.train.eval_stride or window), window)
    fused = model.modality == "fused"
    passes: tuple[str | None, ...] = (None, "visual", "audio") if fused else (None,)

    cache, missing_reason = _model_cache(collection, exp.features)

    n = len(collection)
    if n == 0:
        raise PredictError("predict: the collection is empty")
    # The timeline needs frame counts; only samples without metadata are probed.
    if len(collection.exists("metadata", False)):
        collection.compute_metadata(progress=False)

    fields = output_fields(config)
    written = [fields["pred"], fields["timeline"], fields["embedding"]]
    if fused:
        written += [fields["visual"], fields["audio"]]

    report = PredictReport(
        model_path=str(ckpt.path),
        num_samples=n,
        num_predicted=0,
        fields={k: v for k, v in fields.items() if v in written},
        modality=model.modality,
    )
    failed_ids: list[str] = []
    ok_ids: list[str] = []
    label_counts: Counter[str] = Counter()

    ids, paths, metas = collection.values(["id", "filepath", "metadata"])

    def flush(clips: list[_Clip]) -> None:
        """Score a chunk of clips and bulk-write its fields (one ``set_values`` per field)."""
        scores = _score_windows(model, clips, window, config.batch_size, device, passes)
        values: dict[str, dict[str, Any]] = {name: {} for name in written}
        probs, embs = scores[None]
        offset = 0
        for clip in clips:
            k = len(clip.windows)
            lengths = np.array([e - s for s, e in clip.windows], dtype=np.float64)
            wprobs = probs[offset : offset + k]
            pred = _classification(fo, aggregate_windows(wprobs, lengths, exp.train.aggregate), labels)
            label_counts[pred.label] += 1
            values[fields["pred"]][clip.sample_id] = pred
            values[fields["embedding"]][clip.sample_id] = embs[offset : offset + k].mean(axis=0).astype(np.float32)
            if fused:
                for use in ("visual", "audio"):
                    mprobs = scores[use][0][offset : offset + k]
                    values[fields[use]][clip.sample_id] = _classification(
                        fo, aggregate_windows(mprobs, lengths, exp.train.aggregate), labels
                    )
            timeline = _timeline(fo, clip, wprobs, labels)
            if timeline is None:
                report.no_timeline.append(clip.filepath)
            values[fields["timeline"]][clip.sample_id] = timeline
            offset += k
            ok_ids.append(clip.sample_id)
        report.num_windows += offset
        for name, vals in values.items():
            dataset.set_values(name, vals, key_field="id")

    pending: list[_Clip] = []
    for i in track(range(n), total=n, desc="Predicting genres", progress=progress):
        reason = None
        feats = cache.get(paths[i])
        if feats is None:
            reason = missing_reason
        elif feats.num_steps == 0:
            reason = "cached features have no time steps (video too short?)"
        elif feats.visual.shape[1] != ckpt.visual_dim or feats.audio.shape[1] != ckpt.audio_dim:
            reason = (
                f"feature sizes {feats.visual.shape[1]}/{feats.audio.shape[1]} do not match the "
                f"model's {ckpt.visual_dim}/{ckpt.audio_dim} (features from another backbone?)"
            )
        if reason is not None:
            if strict:
                raise PredictError(f"predict: {paths[i]}: {reason}")
            report.failures[paths[i]] = reason
            failed_ids.append(ids[i])
        else:
            pending.append(
                _Clip(
                    sample_id=ids[i],
                    filepath=paths[i],
                    feats=feats,
                    windows=make_windows(feats.num_steps, window, stride),
                    geometry=_video_geometry(metas[i], feats),
                )
            )
        if len(pending) >= CHUNK_SIZE:
            flush(pending)
            pending = []
    if pending:
        flush(pending)

    _clear_fields(dataset, failed_ids, [f for f in written if dataset.has_field(f)])
    if not fused:
        # A fused run's per-modality fields would otherwise outlive it and
        # describe a model that is no longer the one on the samples.
        stale = [f for f in (fields["visual"], fields["audio"]) if dataset.has_field(f)]
        _clear_fields(dataset, collection.values("id"), stale)
    _update_errors(dataset, ok_ids, failed_ids, report.failures, paths, ids)

    report.num_predicted = len(ok_ids)
    report.label_counts = dict(label_counts)
    if report.num_predicted == 0:
        raise PredictError(
            f"predict: none of the {n} samples could be predicted; first failure: "
            + next(iter(f"{p}: {r}" for p, r in report.failures.items()))
        )

    dataset.info[g.RUN_INFO_KEY] = _json_safe(
        {
            "model_path": str(ckpt.path.resolve()),
            "model_dir": str(Path(model_dir).resolve()),
            "experiment": exp.to_dict(),
            "genres": labels,
            "features": to_dict(cache.config),
            "feature_cache": str(cache.dir),
            "modality": model.modality,
            "window": window,
            "stride": stride,
            "aggregate": exp.train.aggregate,
            "epoch": ckpt.epoch,
            "metrics": ckpt.metrics,
            "embedding_dim": int(model.classifier.in_features),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "fields": report.fields,
            "num_predicted": report.num_predicted,
            "num_failed": report.num_failed,
        }
    )
    dataset.save()
    if progress is not None:
        progress(1.0, f"Predicted {report.num_predicted}/{n}")
    return report


def _model_cache(collection, features: FeaturesConfig) -> tuple[FeatureCache, str]:
    """The cache holding the features *this model* reads, and what to say on a miss.

    Entries are keyed by the feature settings, not by the folder, so the
    dataset's recorded cache folder is used when it has one (the model's
    config may name a folder on the machine it was trained on).
    """
    from fiftyone_genre.cache import config_key
    from fiftyone_genre.config import from_dict

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


def _timeline(fo, clip: _Clip, wprobs: np.ndarray, labels: list[str]):
    """One ``TemporalDetection`` per window, support in the video's frame numbers."""
    if clip.geometry is None:
        return None
    fps, total, duration = clip.geometry
    bounds = step_bounds(clip.feats.timestamps, duration)
    dets = []
    for (s, e), p in zip(clip.windows, wprobs):
        k = int(np.argmax(p))
        dets.append(
            fo.TemporalDetection(
                label=labels[k],
                support=window_support(bounds, s, e, fps, total),
                confidence=float(p[k]),
            )
        )
    return fo.TemporalDetections(detections=dets)


def _clear_fields(dataset, sample_ids: list[str], names: list[str]) -> None:
    """Set ``names`` to None on ``sample_ids`` (stale predictions of failed samples)."""
    if not sample_ids or not names:
        return
    for name in names:
        dataset.set_values(name, dict.fromkeys(sample_ids), key_field="id")


def _update_errors(dataset, ok_ids, failed_ids, failures, paths, ids) -> None:
    """Record this run's failures on the samples; drop earlier predict errors of successes."""
    path_of = dict(zip(ids, paths))
    if failed_ids:
        failed_view = dataset.select(failed_ids)
        for sample in track(failed_view, total=len(failed_ids), desc="Recording failures"):
            g.record_error(sample, STAGE, failures[path_of[sample.id]])
            sample.save()
    if ok_ids and dataset.has_field(g.ERRORS_FIELD):
        from fiftyone import ViewField as F

        earlier = dataset.select(ok_ids).match(
            F(g.ERRORS_FIELD).exists()
            & (F(g.ERRORS_FIELD).filter(F().starts_with(f"{STAGE}: ")).length() > 0)
        )
        for sample in earlier:
            g.clear_errors(sample, STAGE)
            sample.save()


def _json_safe(value: Any) -> Any:
    """Plain JSON values only (``dataset.info`` is stored as BSON)."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
