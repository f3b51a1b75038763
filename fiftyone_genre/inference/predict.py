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
- ``genre_timeline`` (``fo.TemporalDetections``): one detection per slot of
  at most ``timeline_slot_s`` (2.5 s) with its genre and confidence, labelled
  from the overlapping windows covering it (:mod:`fiftyone_genre.inference.timeline`).
  Supports are frame numbers of the video (``[1, total_frame_count]``); slots
  tile the video without overlapping, so the App's modal shows one timeline
  badge at a time, the genre at the playhead.
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

import datetime
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre import samples
from fiftyone_genre.app_config import show_genre_fields
from fiftyone_genre.config import PredictConfig
from fiftyone_genre.features.cache import ClipFeatures
from fiftyone_genre.inference.scoring import (
    ChunkScorer,
    SampleFeatures,
    ScoredClip,
    classification_logits,
    step_bounds,
    window_support,
)
from fiftyone_genre.report import Report
from fiftyone_genre.utils import ProgressFn, shown, track

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
SAMPLES_PER_WRITE = 256


class PredictError(ValueError):
    """Nothing could be predicted, or strict mode met a failing sample."""


@dataclass
class PredictReport(Report):
    """What a predict run did; ``str()`` is the summary the CLI prints."""

    model_path: str
    num_samples: int
    num_predicted: int
    failures: dict[str, str] = field(default_factory=dict)  # filepath (features-only: yt8m:<id>) -> reason
    fields: dict[str, str] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    modality: str = "fused"
    num_windows: int = 0
    #: timeline entries written, and the slot length (seconds) they cover at most
    num_slots: int = 0
    slot_s: float = 0.0
    #: Clips predicted without a timeline: their video metadata could not be read.
    no_timeline: list[str] = field(default_factory=list)
    #: Features-only samples predicted (YouTube-8M records): no video to lay a timeline on.
    features_only: int = 0

    @property
    def num_failed(self) -> int:
        return len(self.failures)

    def extra(self) -> dict[str, Any]:
        return {"num_failed": self.num_failed}

    def __str__(self) -> str:
        lines = [
            f"predict: {self.num_predicted}/{self.num_samples} samples predicted "
            f"({self.num_windows} windows) with {self.model_path} [{self.modality}]",
            f"timeline: {self.num_slots} entries of <= {self.slot_s:g} s",
            "fields: " + ", ".join(f"{k}={v}" for k, v in self.fields.items()),
        ]
        if self.label_counts:
            lines.append(
                "predicted genres: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.label_counts.items()))
            )
        if self.features_only:
            lines.append(f"{self.features_only} features-only sample(s) predicted without a timeline (no video)")
        if self.no_timeline:
            lines.append(
                f"{len(self.no_timeline)} clip(s) have no timeline (no readable video metadata), "
                f"e.g. {shown(self.no_timeline[0])}"
            )
        if self.failures:
            lines.append(f"{self.num_failed} sample(s) failed (see field '{g.ERRORS_FIELD}'):")
            for path, reason in list(self.failures.items())[:20]:
                lines.append(f"  {shown(path)}: {reason}")
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


def video_geometry(metadata, feats: ClipFeatures) -> tuple[float, int, float] | None:
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


def _classification(fo, probs: np.ndarray, labels: list[str]):
    """A ``fo.Classification`` whose logits are the log of ``probs``."""
    k = int(np.argmax(probs))
    return fo.Classification(label=labels[k], confidence=float(probs[k]), logits=classification_logits(probs).tolist())


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
    config = config or PredictConfig()
    validate_config(config)
    scorer = ChunkScorer.load(model_dir, config.device, config.batch_size, config.timeline_slot_s)
    features = SampleFeatures(collection, scorer)
    n = len(collection)
    if n == 0:
        raise PredictError("predict: the collection is empty")
    # The timeline needs frame counts; only samples without metadata are probed.
    if len(collection.exists("metadata", False)):
        collection.compute_metadata(progress=False)

    fields = output_fields(config)
    written = [fields["pred"], fields["timeline"], fields["embedding"]]
    if scorer.fused:
        written += [fields["visual"], fields["audio"]]
    report = PredictReport(
        model_path=str(scorer.checkpoint.path),
        num_samples=n,
        num_predicted=0,
        fields={k: v for k, v in fields.items() if v in written},
        modality=scorer.model.modality,
        slot_s=scorer.slot_s,
    )
    ok_ids, failed = _predict_samples(collection, scorer, features, report, progress, strict)
    _clean_up(collection, scorer, fields, report, ok_ids, failed)
    report.num_predicted = len(ok_ids)
    if report.num_predicted == 0:
        raise PredictError(
            f"predict: none of the {n} samples could be predicted; first failure: "
            + next(iter(f"{p}: {r}" for p, r in report.failures.items()))
        )
    _record_run(collection._dataset, model_dir, scorer, features, report)
    if progress is not None:
        progress(1.0, f"Predicted {report.num_predicted}/{n}")
    return report


@dataclass
class _Clip:
    sample_id: str
    filepath: str
    feats: ClipFeatures
    geometry: tuple[float, int, float] | None
    features_only: bool = False


def _predict_samples(
    collection,
    scorer: ChunkScorer,
    features: SampleFeatures,
    report: PredictReport,
    progress: ProgressFn | None,
    strict: bool,
) -> tuple[list[str], dict[str, str]]:
    """Read, check and score the samples chunk by chunk; returns the ids written and ``{id: reason}`` failed."""
    dataset = collection._dataset
    ids, paths, metas = collection.values(["id", "filepath", "metadata"])
    yt8m_ids, only = (samples.field_values(collection, f, len(ids)) for f in (g.YT8M_ID_FIELD, g.FEATURES_ONLY_FIELD))
    ok_ids: list[str] = []
    failed: dict[str, str] = {}
    pending: list[_Clip] = []
    for i in track(range(len(ids)), total=len(ids), desc="Predicting genres", progress=progress):
        feats, reason = features.read(paths[i], yt8m_ids[i], only[i])
        if reason is not None:
            name = f"yt8m:{yt8m_ids[i]}" if only[i] else paths[i]  # they all share one placeholder file
            if strict:
                raise PredictError(f"predict: {name}: {reason}")
            report.failures[name] = reason
            failed[ids[i]] = reason
        else:
            geometry = None if only[i] else video_geometry(metas[i], feats)
            pending.append(_Clip(ids[i], paths[i], feats, geometry, bool(only[i])))
        if len(pending) >= SAMPLES_PER_WRITE:
            ok_ids += _write_chunk(dataset, scorer, pending, report)
            pending = []
    if pending:
        ok_ids += _write_chunk(dataset, scorer, pending, report)
    return ok_ids, failed


def _write_chunk(dataset, scorer: ChunkScorer, clips: list[_Clip], report: PredictReport) -> list[str]:
    """Score a chunk of clips and bulk-write its fields (one ``set_values`` per field)."""
    import fiftyone as fo

    fields = report.fields
    values: dict[str, dict[str, Any]] = {name: {} for name in fields.values()}
    for clip, scored in zip(clips, scorer.score([c.feats for c in clips], modalities=True, timeline=True)):
        pred = _classification(fo, scored.probs, scorer.labels)
        report.label_counts[pred.label] = report.label_counts.get(pred.label, 0) + 1
        values[fields["pred"]][clip.sample_id] = pred
        values[fields["embedding"]][clip.sample_id] = scored.embedding
        for use, probs in scored.modal_probs.items():
            values[fields[use]][clip.sample_id] = _classification(fo, probs, scorer.labels)
        timeline = _timeline(fo, clip, scored, scorer.labels)
        if clip.features_only:
            report.features_only += 1
        elif timeline is None:
            report.no_timeline.append(clip.filepath)
        else:
            report.num_slots += len(timeline.detections)
        values[fields["timeline"]][clip.sample_id] = timeline
        report.num_windows += len(scored.windows)
    for name, vals in values.items():
        if not dataset.has_field(name) and all(v is None for v in vals.values()):
            continue  # no timeline at all (features-only samples): FiftyOne cannot type an all-None field
        dataset.set_values(name, vals, key_field="id")
    return [c.sample_id for c in clips]


def _clean_up(
    collection, scorer: ChunkScorer, fields: dict[str, str], report: PredictReport, ok_ids: list[str], failed: dict[str, str]
) -> None:
    """Clear stale predictions of failed samples (and a fused run's extra fields), then the errors."""
    dataset = collection._dataset
    written = list(report.fields.values())
    _clear_fields(dataset, list(failed), [f for f in written if dataset.has_field(f)])
    if not scorer.fused:
        # A fused run's per-modality fields would otherwise outlive it and
        # describe a model that is no longer the one on the samples.
        stale = [f for f in (fields["visual"], fields["audio"]) if dataset.has_field(f)]
        _clear_fields(dataset, collection.values("id"), stale)
    _update_errors(dataset, ok_ids, failed)


def _record_run(dataset, model_dir: str | Path, scorer: ChunkScorer, features: SampleFeatures, report: PredictReport) -> None:
    """``dataset.info["genre_run"]``: what made the predictions now on the samples; the App's default fields."""
    ckpt, exp = scorer.checkpoint, scorer.experiment
    dataset.info[g.RUN_INFO_KEY] = _json_safe(
        {
            "model_path": str(ckpt.path.resolve()),
            "model_dir": str(Path(model_dir).resolve()),
            "experiment": exp.to_dict(),
            "genres": scorer.labels,
            **features.describe(),
            "modality": scorer.model.modality,
            "window": scorer.window,
            "stride": scorer.stride,
            "aggregate": scorer.aggregate,
            "timeline_slot_s": scorer.slot_s,
            "epoch": ckpt.epoch,
            "metrics": ckpt.metrics,
            "embedding_dim": scorer.embedding_dim,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "fields": report.fields,
            "num_predicted": report.num_predicted,
            "num_failed": report.num_failed,
        }
    )
    dataset.save()
    show_genre_fields(dataset)  # tiles show genre and genre_pred by name, the rest one click away


def _timeline(fo, clip: _Clip, scored: ScoredClip, labels: list[str]):
    """One ``TemporalDetection`` per slot, support in the video's frame numbers (slots never overlap)."""
    if clip.geometry is None or scored.slot_probs is None:
        return None
    fps, total, duration = clip.geometry
    bounds = step_bounds(clip.feats.timestamps, duration)
    dets = []
    for (s, e), p in zip(scored.slots, scored.slot_probs):
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


def _update_errors(dataset, ok_ids: list[str], failed: dict[str, str]) -> None:
    """Record this run's failures (``{sample id: reason}``); drop earlier predict errors of successes."""
    if failed:
        failed_view = dataset.select(list(failed))
        for sample in track(failed_view, total=len(failed), desc="Recording failures"):
            samples.record_error(sample, STAGE, failed[sample.id])
            sample.save()
    if ok_ids and dataset.has_field(g.ERRORS_FIELD):
        from fiftyone import ViewField as F

        earlier = dataset.select(ok_ids).match(
            F(g.ERRORS_FIELD).exists()
            & (F(g.ERRORS_FIELD).filter(F().starts_with(f"{STAGE}: ")).length() > 0)
        )
        for sample in earlier:
            samples.clear_errors(sample, STAGE)
            sample.save()


def _json_safe(value: Any) -> Any:
    """Plain JSON values only (``dataset.info`` is stored as BSON)."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
