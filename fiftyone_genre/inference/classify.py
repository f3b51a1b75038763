"""The genre of any video file: decode, extract, score. No dataset, no database.

    >>> report = classify_files(["trailer.mp4"], "runs/cpu_fast")
    >>> print(report)                      # genre, confidence, genre segments
    >>> report.files[0].genre, report.files[0].timeline[0], report.files[0].segments

Files are decoded with PyAV and run through the experiment's CNNs exactly as
``fiftyone-genre features`` does (batched across files, decoding in the
background), then scored by the :class:`~fiftyone_genre.inference.scoring.ChunkScorer`
``predict`` uses, so a file gets the genre and the timeline (one entry per
<= 2.5 s slot, :mod:`~fiftyone_genre.inference.timeline`) ``predict`` would
give it; ``segments`` joins neighbouring slots of the same genre. Nothing
here imports FiftyOne's database layer: no MongoDB is started. With
``cache_dir`` the features are read from / written to a feature cache, so
asking again costs only the scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre.features.cache import ClipFeatures, FeatureCache
from fiftyone_genre.features.spaces import file_refusal
from fiftyone_genre.inference.scoring import ChunkScorer, ScoredClip, step_bounds
from fiftyone_genre.inference.timeline import GenreSpan, merge_runs, spans
from fiftyone_genre.report import Report
from fiftyone_genre.utils import ProgressFn, track

#: Files scored per forward chunk (bounds memory for long file lists).
FILES_PER_CHUNK = 256


@dataclass
class FileGenre:
    """One file's result, or the one-line reason it has none."""

    path: str
    genre: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    #: one entry per slot (<= ``timeline_slot_s`` seconds), as predict's ``genre_timeline``
    timeline: list[GenreSpan] = field(default_factory=list)
    #: the timeline with neighbouring slots of the same genre joined
    segments: list[GenreSpan] = field(default_factory=list)
    has_audio: bool | None = None
    duration: float | None = None
    error: str | None = None

    def __str__(self) -> str:
        if self.error is not None:
            return self.error
        audio = "with audio" if self.has_audio else "no audio"
        lines = [f"{self.path}: {self.genre} {self.confidence:.2f} ({self.duration:.1f} s, {audio})"]
        for w in self.segments:
            lines.append(f"  {w.start:7.1f} - {w.end:7.1f} s  {w.genre} {w.confidence:.2f}")
        return "\n".join(lines)


@dataclass
class ClassifyReport(Report):
    """Every file's genre (or error); ``str()`` is what ``fiftyone-genre classify`` prints."""

    model_path: str
    modality: str
    files: list[FileGenre] = field(default_factory=list)

    @property
    def failed(self) -> list[FileGenre]:
        return [f for f in self.files if f.error is not None]

    def extra(self) -> dict[str, Any]:
        # the base converts top-level dataclasses only; files are a list of them
        return {"files": [asdict(f) for f in self.files], "num_files": len(self.files), "num_failed": len(self.failed)}

    def __str__(self) -> str:
        lines = [str(f) for f in self.files if f.error is None]
        if self.failed:
            lines.append(f"{len(self.failed)} of {len(self.files)} file(s) could not be classified:")
            lines += [f"  {f.error}" for f in self.failed]
        return "\n".join(lines)


def classify_files(
    paths: Sequence[str | Path],
    model_dir: str | Path,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    slot_s: float | None = None,
) -> ClassifyReport:
    """Genre, confidence, timeline and genre segments of each video file.

    Args:
        paths: video files (any container/codec PyAV reads).
        model_dir: a trained model directory or checkpoint file.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` for the CNNs and the LSTM.
        cache_dir: a feature cache folder to reuse and fill (none by default).
        batch_size: windows per forward pass.
        progress: ``(fraction, label)`` callback.
        slot_s: timeline slot length in seconds; None: the model's experiment
            (``predict.timeline_slot_s``, 2.5 s by default).

    Returns:
        a :class:`ClassifyReport`; a file that cannot be decoded gets its
        one-line reason (the same sentence feature extraction records) and
        the others are still classified.
    """
    scorer = ChunkScorer.load(model_dir, device, batch_size, slot_s)
    paths = [str(p) for p in paths]
    report = ClassifyReport(model_path=str(scorer.checkpoint.path), modality=scorer.model.modality)
    refused = file_refusal(scorer.space)
    if refused is not None:  # YouTube-8M features cannot be computed from a file
        report.files = [FileGenre(path=p, error=f"{p}: {refused}") for p in paths]
        return report
    feats = _features(paths, scorer, cache_dir, progress)
    for start in range(0, len(paths), FILES_PER_CHUNK):
        chunk = paths[start : start + FILES_PER_CHUNK]
        good = [p for p in chunk if isinstance(feats[p], ClipFeatures)]
        scored = dict(zip(good, scorer.score([feats[p] for p in good], timeline=True)))
        for p in chunk:
            result = feats[p]
            if isinstance(result, str):
                report.files.append(FileGenre(path=p, error=result))
            else:
                report.files.append(file_genre(p, result, scored[p], scorer.labels))
    return report


def file_genre(path: str, feats: ClipFeatures, scored: ScoredClip, labels: list[str]) -> FileGenre:
    """A :class:`FileGenre` from one clip's features and scores (scored with ``timeline=True``)."""
    k = int(np.argmax(scored.probs))
    timeline = []
    if scored.slot_probs is not None:
        timeline = spans(step_bounds(feats.timestamps, feats.duration), scored.slots, scored.slot_probs, labels)
    return FileGenre(
        path=path,
        genre=labels[k],
        confidence=float(scored.probs[k]),
        probabilities={label: float(v) for label, v in zip(labels, scored.probs)},
        timeline=timeline,
        segments=merge_runs(timeline),
        has_audio=feats.has_audio,
        duration=float(feats.duration),
    )


def _features(
    paths: list[str], scorer: ChunkScorer, cache_dir: str | Path | None, progress: ProgressFn | None
) -> dict[str, ClipFeatures | str]:
    """``{path: features or one-line error}``: cache hits first, the rest decoded and extracted."""
    config = scorer.experiment.features
    cache = FeatureCache(cache_dir, config) if cache_dir else None
    out: dict[str, ClipFeatures | str] = {}
    todo: list[tuple[str, str]] = []
    for p in dict.fromkeys(paths):
        hit = cache.get(p) if cache is not None else None
        if hit is not None:
            out[p] = hit
        else:
            todo.append((p, p))
    if todo:
        for p, result in _extract(todo, scorer, cache, progress):
            out[p] = result
    for p, result in out.items():
        if isinstance(result, ClipFeatures):
            reason = scorer.unpredictable(result)
            if reason is not None:
                out[p] = f"{p}: {reason}"
    return out


def _extract(todo: list[tuple[str, str]], scorer: ChunkScorer, cache: FeatureCache | None, progress: ProgressFn | None):
    """Yield ``(path, features or error)`` as the extractor finishes each file."""
    from fiftyone_genre.features.extractor import FeatureExtractor

    try:
        extractor = FeatureExtractor(scorer.experiment.features, device=scorer.device)
    except (RuntimeError, OSError) as e:
        raise ValueError(f"{scorer.checkpoint.path}: cannot build this model's feature extractor ({e})") from e
    for r in track(extractor.run(todo), total=len(todo), desc="Classifying", progress=progress):
        if r.error is not None:
            yield r.path, r.error if r.error.startswith(r.path) else f"{r.path}: {r.error}"
            continue
        if cache is not None:
            try:
                cache.put(r.path, r.features)
            except OSError:
                pass  # a read-only cache still gives the genre
        yield r.path, r.features
