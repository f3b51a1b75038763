"""Extraction's concurrency: the jobs of one run, the threads they run on, and the messages they pass.

One protocol. The calling thread (:meth:`Extraction.results`) is the only one
that books results and submits work; everything else runs as a job on a
standard :mod:`concurrent.futures` executor and hands back exactly one
result, or its exception, through its future:

* a **decode job** (:meth:`Decoder.read`) reads the next steps of a
  decoder's videos and returns them as typed messages (:class:`Chunk`,
  :class:`VideoEnd`, :class:`VideoFailed`);
* a **CNN job** runs one batch of exactly ``batch_size`` steps (fewer only at
  the end of a run) through the visual or audio CNN.

The caller blocks in ``concurrent.futures.wait`` on the futures it submitted
and, as each one completes, books it and decides what runs next: nothing
polls or sleeps, and no job reads another object's state. Memory is bounded
by the caller: at most two CNN batches per lane in flight, and a decoder gets
its next job only while fewer than two batches of decoded steps wait. A job
that fails stops the run with its error in the calling thread; closing the
run cancels what has not started, waits for what has (at most one job per
thread) and closes the videos the decoders hold open, so no thread outlives
it.

Where the jobs run is a plan chosen from the device
(``features.extractor.decode_plan_for`` / ``cnn_lanes_for``): CNN jobs always
run on the **lanes** (``lanes`` threads with ``lane threads`` torch threads
each); decode jobs run on the same lanes (``decode_workers=0``: on a CPU every
core then runs exactly one thread, either decoding or a batch) or on their
own worker threads (in front of a GPU). Decoding starts when the run is
created and reads ahead, bounded, until the caller attaches the CNNs, so the
first videos decode while the CNNs are still being built.

:class:`SerialWorker` is the smaller executor decoding itself uses: a video's
frame resizing and audio analysis, in order, beside its demuxer.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

#: Steps the decoders may read ahead before the CNNs are attached (~70 MB of 299 px frames).
READ_AHEAD_STEPS = 256
#: CNN batches in flight per lane: a lane that finishes finds the next one waiting.
BATCHES_PER_LANE = 2
KINDS = ("visual", "audio")


class FeatureExtractionError(ValueError):
    """Nothing could be extracted (or strict mode met a failure); names the reasons."""


# --- what decoding hands over -----------------------------------------------------
class Steps(Protocol):
    """Decoded steps of one video (``features.decode.StepChunk``): frames and mel windows by step index."""

    frames: torch.Tensor
    frame_start: int
    timestamps: np.ndarray
    mels: torch.Tensor
    mel_start: int
    num_frames: int
    num_mels: int


@dataclass(frozen=True)
class Chunk:
    """The next decoded steps of ``video``."""

    video: int
    steps: Steps


@dataclass(frozen=True)
class VideoEnd:
    """``video`` was read to its end: what the decoder found."""

    video: int
    num_steps: int
    has_audio: bool
    duration: float


@dataclass(frozen=True)
class VideoFailed:
    """``video`` cannot be decoded; ``reason`` names the file and the problem."""

    video: int
    reason: str


DecodeMessage = Chunk | VideoEnd | VideoFailed


@dataclass(frozen=True)
class Decoded:
    """What one decode job returns: messages in order, and whether the decoder has no video left."""

    messages: list[DecodeMessage]
    ended: bool


class VideoSource(Protocol):
    """How a run decodes (``features.extractor.VideoDecoding``)."""

    def mel_windows(self) -> object: ...

    def video_messages(self, video: int, path: str, mel: object) -> Iterator[DecodeMessage]: ...


class Cnns(Protocol):
    """The two CNNs a run feeds (``features.extractor.FeatureExtractor``)."""

    batch_size: int
    visual: Callable
    audio: Callable

    def infer_batch(self, net: Callable, parts: list[torch.Tensor]) -> np.ndarray: ...


# --- executors ------------------------------------------------------------------
def lane_pool(lanes: int, threads: int | None) -> ThreadPoolExecutor:
    """The CNN lanes: ``lanes`` threads running torch with ``threads`` intra-op threads each.

    ``None``: the caller's torch threads (one lane, e.g. the CUDA arrangement).
    """
    threads = threads or torch.get_num_threads()
    return ThreadPoolExecutor(max(1, lanes), thread_name_prefix="cnn-lane", initializer=torch.set_num_threads,
                              initargs=(threads,))


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch ops on the calling thread use ``threads`` intra-op threads meanwhile (``None``: unchanged).

    For work done beside a running extraction, such as building the CNNs
    while the first videos decode on a lane: with torch's default team (one
    thread per core) one of its threads is preempted by the decoder and the
    others wait for it at every operator's barrier (the build took 0.6-1.1 s
    instead of 0.25 s on 2 cores).
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SerialWorker:
    """Jobs run in submission order on one background thread (or inline); every failure reaches the caller.

    A one-thread executor runs the jobs and a semaphore bounds how many wait,
    so a slow worker holds the producer back instead of letting frames pile
    up. A job's exception is raised in the submitting thread at its next
    :meth:`submit` or at :meth:`join`, and later jobs are skipped. A submit
    waits only for a free slot, and every job that ends (done, failed or
    skipped) frees one, so it never waits on a worker that is gone.
    """

    def __init__(self, name: str, threaded: bool = True, max_jobs: int = 8):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name) if threaded else None
        self._slots = threading.BoundedSemaphore(max_jobs)
        self._jobs: deque[Future] = deque()
        self._failed = threading.Event()
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], object]) -> None:
        self._check()
        if self._pool is None:
            job()
            return
        self._slots.acquire()
        try:
            future = self._pool.submit(self._run, job)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._jobs.append(future)

    def _run(self, job: Callable[[], object]) -> None:  # on the worker thread
        if self._failed.is_set():
            return
        try:
            job()
        except BaseException:
            self._failed.set()
            raise

    def _check(self) -> None:
        while self._jobs and self._jobs[0].done():
            error = self._jobs.popleft().exception()
            self._error = self._error or error
        if self._error is not None:
            raise self._error

    def join(self) -> None:
        """Wait for every submitted job and the thread; raise the first failure."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._check()


# --- one run --------------------------------------------------------------------
class Decoder:
    """One decoding thread's worth of work: videos from a list shared with the other decoders.

    The run never gives a decoder a new job before its last one finished, so
    the generator below, and the video it holds open, belong to whichever
    thread runs the current job.
    """

    def __init__(self, name: str, videos: queue.SimpleQueue, source: VideoSource):
        self.name = name
        self._videos, self._source = videos, source
        self._messages: Iterator[DecodeMessage] | None = None

    def read(self, steps: int, stop: threading.Event | None = None) -> Decoded:
        """Messages until they hold ``steps`` steps (or ``stop`` is set after the first), or no video is left."""
        if self._messages is None:
            self._messages = self._all()
        out, n = [], 0
        for message in self._messages:
            out.append(message)
            if isinstance(message, Chunk):
                n += max(message.steps.num_frames, message.steps.num_mels)
            if n >= steps or (stop is not None and stop.is_set()):
                return Decoded(out, ended=False)
        return Decoded(out, ended=True)

    def _all(self) -> Iterator[DecodeMessage]:
        mel = self._source.mel_windows()  # once per decoder: a failure here fails the decoder
        while True:
            try:
                video, path = self._videos.get_nowait()
            except queue.Empty:
                return
            yield from self._source.video_messages(video, path, mel)

    def close(self) -> None:
        """Close the video being read (only while no job of this decoder runs)."""
        if self._messages is not None:
            self._messages.close()


@dataclass
class VideoRecord:
    """One video's results as the run collects them; complete once nothing of it is pending."""

    key: str
    path: str
    visual: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (first step, features)
    audio: list[tuple[int, np.ndarray]] = field(default_factory=list)
    timestamps: list[np.ndarray] = field(default_factory=list)
    pending: int = 0  # decoded steps not yet through their CNN
    end: VideoEnd | None = None
    error: str | None = None

    @property
    def complete(self) -> bool:
        return not self.pending and (self.end is not None or self.error is not None)


@dataclass(frozen=True)
class CnnJob:
    """A batch on a lane: which steps of which videos it holds, as ``(video, first step, count)``."""

    kind: str
    spans: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class DecodeJob:
    decoder: Decoder


class StepBuffer:
    """Decoded steps of one kind waiting for a CNN, taken in batches of exactly ``batch_size``."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.parts: deque[tuple[int, int, torch.Tensor]] = deque()  # (video, first step, steps)
        self.steps = 0

    def add(self, video: int, start: int, steps: torch.Tensor) -> None:
        self.parts.append((video, start, steps))
        self.steps += steps.shape[0]

    def ready(self, final: bool) -> bool:
        """A full batch waits (or, once decoding is over, whatever is left)."""
        return self.steps >= self.batch_size or (final and self.steps > 0)

    def take(self) -> list[tuple[int, int, torch.Tensor]]:
        """Exactly ``batch_size`` steps from the front (fewer only at the end).

        A chunk straddling the boundary is split, so every batch has the shape
        a compiled CNN was built for instead of being padded up to it.
        """
        batch, n = [], 0
        while self.parts and n < self.batch_size:
            video, start, t = self.parts.popleft()
            room = self.batch_size - n
            if t.shape[0] > room:
                self.parts.appendleft((video, start + room, t[room:]))
                t = t[:room]
            batch.append((video, start, t))
            n += t.shape[0]
        self.steps -= n
        return batch


class Extraction:
    """One run: videos decoded by decoders, batched across videos through the CNNs, collected per video.

    Creating it starts decoding; :meth:`results` attaches the CNNs and yields
    each video's :class:`VideoRecord` as it completes. Use it as a context
    manager (or call :meth:`close`): closing stops every thread of the run.
    """

    def __init__(self, items: list[tuple[str, str]], source: VideoSource, lanes: tuple[int, int | None],
                 decode_workers: int, batch_size: int):
        self.batch_size = batch_size
        self._capacity = BATCHES_PER_LANE * max(1, lanes[0])
        self._lanes = lane_pool(*lanes)
        workers = min(decode_workers, len(items))
        self._decode_pool = ThreadPoolExecutor(workers, thread_name_prefix="decode-worker") if workers else self._lanes
        videos: queue.SimpleQueue = queue.SimpleQueue()
        for i, (_, path) in enumerate(items):
            videos.put((i, str(path)))
        self._decoders = [Decoder(f"decode-{i}", videos, source) for i in range(max(1, workers))]
        # Steps per decode job: on the lanes a batch's worth, so decoding keeps
        # pace with the batches queued beside it; a worker thread of its own
        # hands over each chunk as it comes.
        self._read_steps = 1 if workers else batch_size
        self._ended: set[Decoder] = set()
        self._records = {i: VideoRecord(key, str(path)) for i, (key, path) in enumerate(items)}
        self._buffers = {kind: StepBuffer(batch_size) for kind in KINDS}
        self._jobs: dict[Future, CnnJob | DecodeJob] = {}
        self._attached = threading.Event()
        ahead = max(1, READ_AHEAD_STEPS // len(self._decoders))
        for decoder in self._decoders:  # read ahead while the caller builds the CNNs
            self._submit(self._decode_pool, DecodeJob(decoder), decoder.read, ahead, self._attached)

    def __enter__(self) -> Extraction:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def results(self, cnns: Cnns) -> Iterator[VideoRecord]:
        """Each video's record once all its steps went through both CNNs (completion order).

        Raises the first failing CNN batch's exception, or
        :class:`FeatureExtractionError` when a decoder fails outside a video's
        own error handling (a video's own problem is its ``error``).
        """
        self._attached.set()
        nets = {"visual": cnns.visual, "audio": cnns.audio}
        while self._jobs:
            done, _ = wait(self._jobs, return_when=FIRST_COMPLETED)
            touched = [video for future in done for video in self._book(future, self._jobs.pop(future))]
            self._schedule(cnns, nets)
            yield from self._complete(touched)
        for video in list(self._records):  # a bug's safety net: a video nothing reported on
            yield self._records.pop(video)

    def close(self) -> None:
        """Cancel jobs not started, wait for running ones, close the decoders' videos."""
        self._attached.set()
        self._lanes.shutdown(wait=True, cancel_futures=True)
        self._decode_pool.shutdown(wait=True, cancel_futures=True)
        for decoder in self._decoders:
            decoder.close()

    # --- booking (the calling thread only) ------------------------------------
    def _book(self, future: Future, job: CnnJob | DecodeJob) -> list[int]:
        """Record one finished job; returns the videos it touched."""
        if isinstance(job, CnnJob):
            return self._record_batch(job, future.result())  # a lane's failure stops the run here
        try:
            decoded = future.result()
        except Exception as e:
            raise FeatureExtractionError(f"decode thread {job.decoder.name} failed: {type(e).__name__}: {e}") from e
        if decoded.ended:
            self._ended.add(job.decoder)
        return [video for message in decoded.messages for video in self._take(message)]

    def _take(self, message: DecodeMessage) -> list[int]:
        record = self._records[message.video]
        if isinstance(message, VideoEnd):
            record.end = message
        elif isinstance(message, VideoFailed):
            record.error = message.reason
        else:
            steps = message.steps
            if steps.num_frames:
                self._buffers["visual"].add(message.video, steps.frame_start, steps.frames)
                record.timestamps.append(steps.timestamps)
            if steps.num_mels:
                self._buffers["audio"].add(message.video, steps.mel_start, steps.mels)
            record.pending += steps.num_frames + steps.num_mels
            return []
        return [message.video]

    def _record_batch(self, job: CnnJob, features: np.ndarray) -> list[int]:
        offset = 0
        for video, start, n in job.spans:
            record = self._records[video]
            if record.error is None:
                getattr(record, job.kind).append((start, features[offset : offset + n]))
            offset += n
            record.pending -= n
        return [video for video, _, _ in job.spans]

    def _complete(self, touched: Iterable[int]) -> Iterator[VideoRecord]:
        for video in dict.fromkeys(touched):
            record = self._records.get(video)
            if record is not None and record.complete:
                yield self._records.pop(video)

    # --- what runs next ----------------------------------------------------------
    def _schedule(self, cnns: Cnns, nets: dict[str, Callable]) -> None:
        """Decode jobs first (in a shared lane queue they go ahead of the batches), then every batch that fits."""
        busy = {job.decoder for job in self._jobs.values() if isinstance(job, DecodeJob)}
        waiting = max(buf.steps for buf in self._buffers.values())
        for decoder in self._decoders:
            if decoder not in self._ended and decoder not in busy and waiting < 2 * self.batch_size:
                self._submit(self._decode_pool, DecodeJob(decoder), decoder.read, self._read_steps)
        final = len(self._ended) == len(self._decoders)
        running = sum(isinstance(job, CnnJob) for job in self._jobs.values())
        for kind, buf in self._buffers.items():
            while running < self._capacity and buf.ready(final):
                batch = buf.take()
                spans = tuple((video, start, t.shape[0]) for video, start, t in batch)
                self._submit(self._lanes, CnnJob(kind, spans), cnns.infer_batch, nets[kind], [t for _, _, t in batch])
                running += 1

    def _submit(self, pool: Executor, job: CnnJob | DecodeJob, fn: Callable, *args) -> None:
        self._jobs[pool.submit(fn, *args)] = job


def infer_in_batches(cnns: Cnns, lanes: tuple[int, int | None], inputs: dict[str, torch.Tensor]) -> dict[str, list[np.ndarray]]:
    """Pre-decoded steps through the CNNs in ``batch_size`` batches on the lanes, as a run batches them.

    The benchmark's "same engine on pre-decoded frames" baseline; outputs per kind, in order.
    """
    nets = {"visual": cnns.visual, "audio": cnns.audio}
    out: dict[str, list] = {kind: [] for kind in inputs}
    in_flight: deque[tuple[str, Future]] = deque()
    with lane_pool(*lanes) as pool:
        try:
            for kind, x in inputs.items():
                for i in range(0, x.shape[0], cnns.batch_size):
                    if len(in_flight) >= BATCHES_PER_LANE * max(1, lanes[0]):
                        k, oldest = in_flight.popleft()
                        out[k].append(oldest.result())
                    in_flight.append((kind, pool.submit(cnns.infer_batch, nets[kind], [x[i : i + cnns.batch_size]])))
            for k, future in in_flight:
                out[k].append(future.result())
        finally:
            for _, future in in_flight:
                future.cancel()
    return out
