"""The features stage over a dataset: cached videos skipped, the rest extracted and recorded.

:func:`extract_features` runs :class:`~fiftyone_genre.features.extractor.FeatureExtractor`
over a FiftyOne collection: cached videos are skipped, new entries are
written atomically (so a killed run resumes where it stopped), each video is
claimed while it is extracted (so two concurrent runs split the work),
``has_audio`` is set in one bulk write, per-sample failures land in
``genre_errors`` and ``dataset.info["genre_features"]`` records where the
features live. The cache folder is checked for writability before a model
is built or a video decoded, and for room as soon as the CNNs are built
(the first videos decode meanwhile, nothing is written yet); a full disk
stops the run with one sentence instead of failing every video that follows.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from fiftyone_genre import genres as g
from fiftyone_genre import samples
from fiftyone_genre.config import FeaturesConfig, check_config, to_dict
from fiftyone_genre.features.cache import FeatureCache, cache_dir_for
from fiftyone_genre.features.engine import resolve_engine
from fiftyone_genre.features.extractor import (
    ExtractResult,
    FeatureExtractionError,
    FeatureExtractor,
    VideoDecoding,
)
from fiftyone_genre.features.spaces import DESCRIPTIONS, is_yt8m
from fiftyone_genre.report import Report
from fiftyone_genre.storage import (
    StorageError,
    cache_entry_bytes,
    check_free,
    check_writable,
    disk_error,
)
from fiftyone_genre.utils import ProgressFn, shown, track

STAGE = "features"
#: Videos claimed at a time: a claim holds an open file, so a run never claims its whole list.
CLAIM_BATCH = 64


# --- over a FiftyOne collection ----------------------------------------------------
@dataclass
class FeatureReport(Report):
    """Video-level outcome of one extraction run."""

    total: int = 0
    extracted: int = 0
    cached: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # filepath -> reason
    steps: int = 0
    seconds: float = 0.0
    video_seconds: float = 0.0
    with_audio: int = 0
    cache_dir: str = ""
    shard: tuple[int, int] | None = None
    visual_dim: int = 0
    audio_dim: int = 0
    #: temp files of killed earlier runs removed from the cache folder
    stale_temp_files: int = 0
    #: features-only samples (YouTube-8M records without a video): nothing to extract from
    features_only: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0

    @property
    def videos_per_s(self) -> float:
        return self.extracted / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "extracted": self.extracted,
            "cached": self.cached,
            "failed": dict(self.failed),
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "steps_per_s": round(self.steps_per_s, 2),
            "videos_per_s": round(self.videos_per_s, 3),
            "video_seconds": round(self.video_seconds, 2),
            "with_audio": self.with_audio,
            "cache_dir": self.cache_dir,
            "shard": list(self.shard) if self.shard else None,
            "stale_temp_files": self.stale_temp_files,
            "features_only": self.features_only,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        shard = f" (shard {self.shard[0]}/{self.shard[1]})" if self.shard else ""
        lines = [
            f"features{shard}: {self.total} video(s): {self.extracted} extracted, "
            f"{self.cached} already cached, {len(self.failed)} failed",
            f"  {self.steps} steps in {self.seconds:.1f}s = {self.steps_per_s:.1f} steps/s, "
            f"{self.videos_per_s:.2f} videos/s ({self.video_seconds / max(self.seconds, 1e-9):.1f}x real time)",
            f"  visual dim {self.visual_dim}, audio dim {self.audio_dim}; cache: {self.cache_dir}",
        ]
        if self.stale_temp_files:
            lines.append(f"  removed {self.stale_temp_files} temp file(s) left by an interrupted earlier run")
        if self.features_only:
            lines.append(
                f"  skipped {self.features_only} features-only sample(s): YouTube-8M records without a video "
                "have nothing to extract from (their features were stored by the import; train them with "
                "--config yt8m)"
            )
        lines += [f"  {n}" for n in self.notes]
        for path, reason in list(self.failed.items())[:20]:
            lines.append(f"  FAILED {shown(path)}: {reason}")
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more (see the genre_errors field)")
        return "\n".join(lines)


def parse_shard(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"K/N"`` or ``(K, N)`` with ``1 <= K <= N`` -> ``(K, N)``."""
    if spec is None or spec == "":
        return None
    if isinstance(spec, str):
        try:
            k_s, n_s = spec.split("/")
            k, n = int(k_s), int(n_s)
        except ValueError:
            raise ValueError(f"shard must look like K/N (e.g. 2/4), got {spec!r}") from None
    else:
        k, n = (int(x) for x in spec)
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"shard K/N needs 1 <= K <= N, got {k}/{n}")
    return k, n


def shard_of(sample_id: str, n: int) -> int:
    """Stable 1-based shard of a sample: a hash of its id, not its position in a view.

    Position-based slicing would move samples between shards when the view
    changes between launches; a hash keeps every sample in the same shard.
    """
    return int(hashlib.sha1(sample_id.encode()).hexdigest()[:12], 16) % n + 1


def extract_features(
    collection,
    config: FeaturesConfig | None = None,
    device: str = "cpu",
    shard: str | tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
    strict: bool = False,
) -> FeatureReport:
    """Extract (or reuse cached) per-step features for every video in ``collection``.

    ``shard=(K, N)`` processes only the samples whose id hashes to slice K of
    N, so N processes/machines sharing the database and ``cache_dir`` split
    the work without overlap. Failures are recorded on the samples
    (``genre_errors``) and the run continues; it raises
    :class:`FeatureExtractionError` only when nothing could be processed, or
    at the end when ``strict`` and anything failed. Samples whose file was
    (re-)extracted get fresh ``metadata`` when the old one no longer fits
    the file (a file replaced after import).
    """
    from fiftyone_genre.utils import resolve_device

    # every value and the device are checked before a video is opened or a model built
    config = check_config(config or FeaturesConfig())
    if is_yt8m(config.space):
        return _nothing_to_extract(config.space)
    torch_device = resolve_device(device)
    shard_t = parse_shard(shard)
    # "auto" engine/precision are recorded as they ran: part of the cache key
    engine = resolve_engine(config.engine, config.precision, torch_device)
    config = replace(config, engine=engine.engine, precision=engine.precision)
    root = cache_dir_for(collection, config)
    config = replace(config, cache_dir=str(root))
    cache = FeatureCache(root, config)
    started = time.perf_counter()

    pairs, features_only = _shard_pairs(collection, shard_t)
    report = FeatureReport(total=len(pairs), cache_dir=str(root), shard=shard_t, features_only=features_only)
    report.stale_temp_files = cache.remove_stale_temp_files()
    run = _RunOutcome()
    todo = _lookup_cached(cache, pairs, report, run)
    if todo:
        try:
            _extract(collection, cache, todo, torch_device, report, run, progress)
        except StorageError as e:  # a full or unwritable cache: keep and record what was written
            _save_outcome(collection._dataset, run, report, root, config)
            n = report.extracted
            kept = f"; the {n} entr{'y' if n == 1 else 'ies'} written before {'is' if n == 1 else 'are'} kept" if n else ""
            raise StorageError(f"{e}{kept}", e.folder, e.free, e.needed) from None
    elif progress is not None:
        progress(1.0, f"features: all {report.cached} cached")
    report.with_audio = sum(run.has_audio.values())
    report.seconds = time.perf_counter() - started
    _save_outcome(collection._dataset, run, report, root, config)
    if report.total and not (report.extracted or report.cached):
        raise FeatureExtractionError(f"no video could be processed\n{report}")
    if strict and report.failed:
        raise FeatureExtractionError(f"{len(report.failed)} video(s) failed (strict mode)\n{report}")
    return report


@dataclass
class _RunOutcome:
    """Per-sample results of one run, written back to the dataset at the end in bulk."""

    has_audio: dict[str, bool] = field(default_factory=dict)
    ok_ids: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    #: sample id -> duration (s) of the features just extracted (metadata check)
    extracted: dict[str, float] = field(default_factory=dict)
    #: estimated bytes of the entries still to write (named when the disk fills up)
    bytes_left: int = 0


def _extract(
    collection, cache: FeatureCache, todo: list[tuple[str, str]], device, report: FeatureReport, run: _RunOutcome,
    progress: ProgressFn | None,
) -> None:
    """Check the cache folder, then extract ``todo`` under claims (the CNNs are built while the first videos decode)."""
    check_writable(cache.root, "feature cache")  # before a model is built or a video decoded
    engines = _Engines(collection, cache, todo, device, report, run)
    work = _claimed_work(engines, todo)
    for _ in track(work, total=len(todo), desc="features", progress=progress):
        pass


@dataclass
class _Engines:
    """One run's decoding and CNNs; the CNNs are built, and the room checked, once decoding has started."""

    collection: object
    cache: FeatureCache
    todo: list[tuple[str, str]]
    device: object
    report: FeatureReport
    run: _RunOutcome
    extractor: FeatureExtractor | None = None

    def __post_init__(self) -> None:
        self.decoding = VideoDecoding(self.cache.config, self.device)

    def cnns(self) -> FeatureExtractor:
        """The extractor, built on first use; the cache's free space is checked against the run's size then."""
        if self.extractor is None:
            extractor = FeatureExtractor(self.cache.config, device=self.device)
            self.report.visual_dim, self.report.audio_dim = extractor.visual_dim, extractor.audio_dim
            dims = (self.cache.config.fps, extractor.visual_dim, extractor.audio_dim)
            self.run.bytes_left = needed_bytes(self.collection, self.todo, *dims)
            check_free(self.cache.root, self.run.bytes_left, "feature cache", f" for {len(self.todo)} video(s)")
            self.extractor = extractor
        return self.extractor


def needed_bytes(collection, todo: list[tuple[str, str]], fps: float, visual_dim: int, audio_dim: int) -> int:
    """About what the cache entries of ``todo`` take on disk, from each sample's ``metadata.duration``.

    A sample without a duration counts as the mean of those with one.
    """
    durations = dict(zip(*collection.values(["id", "metadata.duration"])))
    known = [float(d) for d in (durations.get(sid) for sid, _ in todo) if d]
    mean = sum(known) / len(known) if known else 0.0
    total = 0
    for sid, _ in todo:
        steps = math.ceil(float(durations.get(sid) or mean) * fps) + 1
        total += cache_entry_bytes(steps, visual_dim, audio_dim)
    return total


def _claimed_work(engines: _Engines, todo: list[tuple[str, str]]) -> Iterator[None]:
    """Extract ``todo`` in claimed batches; yields once per video settled.

    A video another run is extracting is passed over; at the end this run
    waits for that run's entry, one video at a time (a killed run's claim is
    free at once), and extracts only what is still missing.
    """
    deferred: list[tuple[str, str]] = []
    for start in range(0, len(todo), CLAIM_BATCH):
        yield from _extract_batch(engines, todo[start : start + CLAIM_BATCH], deferred)
    for item in deferred:
        yield from _extract_batch(engines, [item], [], block=True)


def _extract_batch(
    engines: _Engines, batch: list[tuple[str, str]], deferred: list[tuple[str, str]], block: bool = False
) -> Iterator[None]:
    """Claim what nobody else holds (``block``: wait for it), skip what another run finished
    meanwhile, extract the rest; a video claimed elsewhere goes to ``deferred``."""
    cache, report, run = engines.cache, engines.report, engines.run
    claims, mine = {}, []
    try:
        for sid, path in batch:
            try:
                claim = cache.claim(path, block=block)
            except OSError as e:
                raise disk_error(e, cache.root, "feature cache", run.bytes_left) or e from None
            if claim is None:
                deferred.append((sid, path))
                continue
            if _found(cache, sid, path, report, run):  # another run wrote it while we were busy
                claim.release()
                yield
                continue
            claims[sid] = claim
            mine.append((sid, path))
        if mine:
            yield from _extract_claimed(engines, mine, claims)
    finally:
        for claim in claims.values():
            claim.release()


def _extract_claimed(engines: _Engines, mine: list[tuple[str, str]], claims: dict) -> Iterator[None]:
    """Decode ``mine`` while the CNNs are built (first batch only), then record each result and free its claim."""
    with engines.decoding.start(mine) as extraction:
        results = engines.cnns().run(mine, extraction)
        try:
            for r in results:
                _record_result(engines.cache, r, engines.report, engines.run)
                claims.pop(r.key).release()
                yield
        finally:
            results.close()


def _found(cache: FeatureCache, sid: str, path: str, report: FeatureReport, run: _RunOutcome) -> bool:
    """Whether the video's entry is in the cache (then it is counted as cached)."""
    hit = cache.lookup(path)
    if hit is None:
        return False
    report.cached += 1
    run.has_audio[sid] = hit
    run.ok_ids.append(sid)
    return True


def _shard_pairs(collection, shard_t: tuple[int, int] | None) -> tuple[list[tuple[str, str]], int]:
    """``(id, path)`` of this shard's videos, and how many features-only samples it skips."""
    ids, paths = collection.values(["id", "filepath"])
    only = samples.field_values(collection, g.FEATURES_ONLY_FIELD, len(ids))
    pairs = list(zip(ids, paths, only))
    if shard_t is not None:
        pairs = [row for row in pairs if shard_of(row[0], shard_t[1]) == shard_t[0]]
    return [(i, p) for i, p, o in pairs if not o], sum(1 for *_, o in pairs if o)


def _nothing_to_extract(space: str) -> FeatureReport:
    """A YouTube-8M feature space is filled by the import: this stage has nothing to do."""
    report = FeatureReport()
    report.notes.append(
        f"nothing to extract: {DESCRIPTIONS[space]} are stored by `fiftyone-genre import yt8m`, "
        "not computed here"
    )
    return report


def _lookup_cached(cache: FeatureCache, pairs, report: FeatureReport, run: _RunOutcome) -> list[tuple[str, str]]:
    """Count cache hits; returns the ``(id, path)`` pairs still to extract."""
    return [(sid, path) for sid, path in pairs if not _found(cache, sid, path, report, run)]


def _record_result(cache: FeatureCache, r: ExtractResult, report: FeatureReport, run: _RunOutcome) -> None:
    """Write one video's features to the cache, or record why it has none."""
    if r.error is not None:
        reason = r.error.removeprefix(f"{shown(r.path)}: ")  # the sample already names the file
        run.failed[r.key] = report.failed[r.path] = reason
        return
    try:
        written = cache.put(r.path, r.features)
    except OSError as e:
        problem = disk_error(e, cache.root, "feature cache", run.bytes_left)
        if problem is not None:  # the disk's fault, not the video's: stop, tag nothing
            raise problem from None
        run.failed[r.key] = report.failed[r.path] = f"cannot write cache entry: {e}"
        return
    try:
        run.bytes_left = max(0, run.bytes_left - written.stat().st_size)
    except OSError:
        pass
    report.extracted += 1
    report.steps += r.features.num_steps
    report.video_seconds += r.features.duration
    run.has_audio[r.key] = r.features.has_audio
    run.ok_ids.append(r.key)
    run.extracted[r.key] = r.features.duration


def _save_outcome(dataset, run: _RunOutcome, report: FeatureReport, root, config: FeaturesConfig) -> None:
    _write_back(dataset, run.has_audio, run.ok_ids, run.failed)
    _refresh_metadata(dataset, run.extracted)
    if report.extracted or report.cached:
        dataset.info[g.FEATURES_INFO_KEY] = {"cache_dir": str(root), "config": to_dict(config)}
        dataset.save()


#: Metadata whose duration is further than this from the decoded one is stale.
METADATA_TOLERANCE_S = 0.5


def _refresh_metadata(dataset, extracted: dict[str, float]) -> None:
    """Recompute ``metadata`` of extracted samples whose file no longer matches it.

    A file replaced after import is re-extracted (its cache identity
    changed), but FiftyOne keeps the old ``metadata``, and the prediction
    timeline is laid out from it. Stale means: missing, another file size, or
    a duration that disagrees with what was just decoded.
    """
    if not extracted:
        return
    view = dataset.select(list(extracted))
    stale: list[str] = []
    for sid, path, meta in zip(*view.values(["id", "filepath", "metadata"])):
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        duration = getattr(meta, "duration", None)
        if (
            meta is None
            or getattr(meta, "size_bytes", None) != size
            or duration is None
            or abs(float(duration) - extracted[sid]) > METADATA_TOLERANCE_S
        ):
            stale.append(sid)
    if stale:
        dataset.select(stale).compute_metadata(overwrite=True, warn_failures=False, progress=False)


def _write_back(dataset, has_audio: dict[str, bool], ok_ids: list[str], failed: dict[str, str]) -> None:
    """``has_audio`` in one bulk write; errors recorded / cleared per affected sample."""
    if has_audio:
        dataset.set_values(g.HAS_AUDIO_FIELD, has_audio, key_field="id")
    stale: list[str] = []
    if ok_ids and dataset.has_field(g.ERRORS_FIELD):
        view = dataset.select(ok_ids)
        for sid, errs in zip(*view.values(["id", g.ERRORS_FIELD])):
            if errs and any(e.startswith(f"{STAGE}: ") for e in errs):
                stale.append(sid)
    for sid in stale:
        sample = dataset[sid]
        samples.clear_errors(sample, STAGE)
        sample.save()
    for sid, reason in failed.items():
        sample = dataset[sid]
        samples.clear_errors(sample, STAGE)
        samples.record_error(sample, STAGE, reason)
        sample.save()
