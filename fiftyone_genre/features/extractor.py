"""Decoding and the CNNs together: videos in, per-step feature arrays out (no FiftyOne needed).

:class:`FeatureExtractor` streams each video's
:class:`~fiftyone_genre.features.decode.StepChunk` s and batches frames and
mel windows *across videos* through the visual and audio CNNs under
``torch.inference_mode``. On a CPU the batches run on one-thread lanes and
decoding runs as jobs on the same lanes, so every core runs exactly one
thread; a bounded queue keeps memory flat.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import numpy as np
import torch

from fiftyone_genre.config import FeaturesConfig, check_config
from fiftyone_genre.features.audio import MelWindows
from fiftyone_genre.features.backbones import build_audio_cnn, build_visual_backbone, image_size_for
from fiftyone_genre.features.cache import ClipFeatures
from fiftyone_genre.features.decode import ClipStream, MediaError
from fiftyone_genre.features.engine import resolve_engine
from fiftyone_genre.utils import shown


class FeatureExtractionError(ValueError):
    """Nothing could be extracted (or strict mode met a failure); names the reasons."""


@dataclass
class ExtractResult:
    """One video's outcome: features, or the reason it failed."""

    key: str
    path: str
    features: ClipFeatures | None = None
    error: str | None = None


@dataclass
class _Video:
    key: str
    path: str
    visual: list[np.ndarray] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    timestamps: list[np.ndarray] = field(default_factory=list)
    pending: int = 0  # chunks queued for the CNN but not yet computed
    done: dict | None = None  # decoder summary once the whole video was read
    error: str | None = None


#: How decoding runs when ``FeaturesConfig.num_workers`` / ``decode_threads``
#: are None. On CPU the CNN batches run on one-thread lanes
#: (:func:`cnn_lanes_for`) and decoding runs as jobs on the same lanes (one
#: decoder thread, no helper): every core runs one thread, and decoding takes
#: its share without stalling a multi-threaded CNN at every operator's barrier.
#: On 2 cores, InceptionV3 at 299 px, three 20 s clips: end-to-end reaches
#: 0.85-0.9 of the same lanes on pre-decoded frames (benchmark row 2). In
#: front of a GPU decoding is the bottleneck: a worker with 2 decoder threads
#: overlaps it with inference.
CPU_NUM_WORKERS = 0
CPU_DECODE_THREADS = 1
NUM_WORKERS = 1
DECODE_THREADS = 2


class DecodePlan(NamedTuple):
    """How videos are decoded for the CNNs.

    ``num_workers`` background decode threads (0: the calling thread decodes
    in turn with the CNNs), ``decode_threads`` inside PyAV per video, and
    whether a per-video helper thread resizes frames and analyses audio.
    """

    num_workers: int
    decode_threads: int
    helper_thread: bool = True


def decode_plan_for(config: FeaturesConfig, device: str | torch.device | None) -> DecodePlan:
    """The configured decoding, with unset values picked by where the CNNs run.

    ``device=None`` means no CNN runs while decoding (e.g. sampling frames for
    fine-tuning).
    """
    on_cpu = device is not None and torch.device(device).type == "cpu"
    workers = config.num_workers if config.num_workers is not None else (CPU_NUM_WORKERS if on_cpu else NUM_WORKERS)
    threads = config.decode_threads if config.decode_threads is not None else (CPU_DECODE_THREADS if on_cpu else DECODE_THREADS)
    workers = max(0, int(workers))
    # Decoding in turn with CPU CNNs (or for a GPU) may use the idle cores; a
    # background decoder beside CPU CNNs keeps to one thread of work, and so
    # does decoding that runs as jobs on the CNN lanes (every core already
    # has exactly one thread).
    on_lanes = on_cpu and workers == 0 and cnn_lanes_for(config, device)[0] > 1
    return DecodePlan(workers, max(0, int(threads)), helper_thread=not (on_cpu and workers > 0) and not on_lanes)


#: Most CNN lanes picked automatically: each lane holds one batch of activations.
MAX_AUTO_LANES = 8


def cnn_lanes_for(config: FeaturesConfig, device: str | torch.device) -> tuple[int, int | None]:
    """``(lanes, torch threads per lane)``: how many CNN batches run at once.

    On a CPU, one multi-threaded CNN call at a time leaves cores idle while
    the calling thread decodes, and a decoder running beside it preempts one
    of its threads while the others wait at every operator's barrier. Lanes
    of one thread each (as many as torch has threads) keep every core busy
    with whole batches while decoding shares the cores. On CUDA one lane
    (the calling thread) feeds the GPU. ``None`` threads: the caller's own.
    """
    threads = torch.get_num_threads()
    if config.cnn_lanes is not None:
        lanes = int(config.cnn_lanes)
    elif torch.device(device).type == "cpu":
        lanes = min(threads, MAX_AUTO_LANES)
    else:
        lanes = 1
    return (lanes, max(1, threads // lanes)) if lanes > 1 else (1, None)


class _Lanes:
    """CNN batches on ``lanes`` threads (``threads`` torch threads each), a bounded number in flight.

    Up to two batches per lane are queued, so a lane that finishes a short
    (audio) batch finds the next one waiting instead of idling until the
    oldest long batch is done. Results come back to the calling thread in
    submission order; a batch's exception is raised there when its result is
    taken. One lane has no thread: :meth:`submit` runs the batch right away
    on the caller (the CUDA arrangement), so callers need no second path.
    """

    def __init__(self, lanes: int, threads: int | None):
        self.max_jobs = 2 * lanes
        self.pool = None
        if lanes > 1:
            self.pool = ThreadPoolExecutor(lanes, thread_name_prefix="cnn-lane", initializer=torch.set_num_threads, initargs=(threads,))
        self.jobs: deque[tuple[Future, object]] = deque()

    def submit(self, job: Callable[[], np.ndarray], tag: object) -> list[tuple[object, np.ndarray]]:
        """Queue ``job``; returns the ``(tag, result)`` of batches done meanwhile (all of it inline)."""
        if self.pool is None:
            return [(tag, job())]
        done = []
        while len(self.jobs) >= self.max_jobs:
            done.append(self._pop())
        self.jobs.append((self.pool.submit(job), tag))
        return done

    def ready(self, wait: bool = False) -> list[tuple[object, np.ndarray]]:
        """Finished batches in order (all of them with ``wait``)."""
        done = []
        while self.jobs and (wait or self.jobs[0][0].done()):
            done.append(self._pop())
        return done

    def _pop(self) -> tuple[object, np.ndarray]:
        future, tag = self.jobs.popleft()
        return tag, future.result()

    def __len__(self) -> int:
        return len(self.jobs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class FeatureExtractor:
    """Visual + audio CNNs with decode workers in front of them.

    >>> ex = FeatureExtractor(FeaturesConfig(backbone="mobilenet_v3_small", weights="none"))
    >>> for r in ex.run([("id1", "/videos/a.mp4")]): print(r.key, r.features.visual.shape)
    """

    def __init__(self, config: FeaturesConfig, device: str | torch.device = "cpu"):
        self.config = check_config(config)
        self.device = torch.device(device)
        self.image_size = image_size_for(config.backbone, config.image_size)
        self.batch_size = max(1, config.batch_size)
        #: layout/precision/compilation of both CNNs (``fiftyone_genre.features.engine``)
        self.engine = resolve_engine(config.engine, config.precision, self.device)
        #: (lanes, torch threads per lane) of the CNN calls (:func:`cnn_lanes_for`)
        self.cnn_lanes = cnn_lanes_for(config, self.device)
        lane_threads = self.cnn_lanes[1]
        self.visual = self.engine.wrap(build_visual_backbone(
            config.backbone,
            weights=config.weights,
            mode=config.mode,
            image_size=self.image_size,
            init_seed=config.init_seed,
            softmax_checkpoint=config.softmax_checkpoint,
            device=self.device,
            channels_last=self.engine.channels_last,
        ), self.batch_size, lane_threads)
        self.audio = self.engine.wrap(build_audio_cnn(
            config.audio_backbone,
            weights=config.audio_weights,
            n_mels=config.n_mels,
            init_seed=config.init_seed,
            device=self.device,
        ), self.batch_size, lane_threads)
        self.visual_dim = self.visual.dim
        self.audio_dim = self.audio.dim
        self.decode_plan = decode_plan_for(config, self.device)

    # --- decoding side -----------------------------------------------------
    def open(self, path: str, mel: MelWindows | None = None) -> ClipStream:
        c = self.config
        return ClipStream(
            path,
            fps=c.fps,
            image_size=self.image_size,
            sample_rate=c.audio_sample_rate,
            n_mels=c.n_mels,
            audio_window_s=c.audio_window_s,
            # small chunks: the CNN starts after 2 s of video, not after a whole
            # batch was decoded; the main loop still batches up to batch_size
            chunk_size=min(self.batch_size, 8),
            decode_threads=self.decode_plan.decode_threads,
            helper_thread=self.decode_plan.helper_thread,
            mel=mel,
        )

    def _decode_items(self, tasks: queue.Queue, stop: threading.Event) -> Iterator[tuple[str, int, object]]:
        """Decode queued videos into ("chunk" | "done" | "error", video, payload) messages."""
        mel = MelWindows(self.config.audio_sample_rate, self.config.n_mels, self.config.audio_window_s)
        while not stop.is_set():
            try:
                vid, path = tasks.get_nowait()
            except queue.Empty:
                return
            yield from self._decode_one(vid, path, mel, stop)

    def _decode_one(self, vid: int, path: str, mel: MelWindows, stop: threading.Event) -> Iterator[tuple[str, int, object]]:
        """One video's messages; a problem with this file becomes its "error" message."""
        try:
            stream = self.open(path, mel=mel)
            try:
                for chunk in stream:
                    if stop.is_set():
                        return
                    yield ("chunk", vid, chunk)
            finally:
                stream.close()
            done = {"steps": stream.num_steps, "has_audio": stream.has_audio, "duration": stream.duration}
        except MediaError as e:
            yield ("error", vid, str(e))
            return
        except Exception as e:  # noqa: BLE001 - one odd file must not stop the run
            yield ("error", vid, f"{shown(path)}: {type(e).__name__}: {e}")
            return
        yield ("done", vid, done)

    def _worker(self, tasks: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
        """A background decode thread: every exception goes to the consumer, never to stderr.

        A failure outside a video's own handling (start-up, a broken queue, an
        interrupt) used to end the thread silently while the consumer waited
        for its "worker_done" forever.
        """
        try:
            for message in self._decode_items(tasks, stop):
                out.put(message)
        except BaseException as e:  # noqa: BLE001 - forwarded and re-raised by the consumer
            out.put(("fatal", threading.current_thread().name, e))
        finally:
            out.put(("worker_done", None, None))

    # --- inference side ----------------------------------------------------
    @torch.inference_mode()
    def _infer(self, net, parts: list[torch.Tensor]) -> np.ndarray:
        x = torch.cat(parts) if len(parts) > 1 else parts[0]
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        return net(x).float().cpu().numpy()

    def run(self, items: Iterable[tuple[str, str]]) -> Iterator[ExtractResult]:
        """Extract ``(key, path)`` items; yields results in completion order.

        Raises :class:`FeatureExtractionError` when a decode thread fails
        outside a video's own error handling: the run stops with that error.
        """
        items = list(items)
        if not items:
            return
        feed = _DecodeFeed(self, items)
        batches = _Batches(self, items)
        # no background decoder next to the lanes: decoding runs as jobs on them
        source = _DecodeOnLanes(feed, batches.lanes) if batches.lanes.pool is not None and feed.inline is not None else feed
        try:
            while feed.running or batches.busy():
                msg, vid, payload = source.receive()
                ready = batches.take(msg, vid, payload)
                # Run the CNNs on a full batch, or on whatever is there when the
                # decoders have nothing new (never let the CNN idle waiting).
                ready += batches.flush(idle=msg == "idle" or not feed.running)
                ready += batches.collect(wait=not feed.running)
                for r in dict.fromkeys(ready):
                    result = batches.finished(r)
                    if result is not None:
                        yield result
            yield from batches.leftovers()
        finally:
            batches.close()
            feed.close()

    def infer(self, frames: torch.Tensor, mels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Both CNNs over already decoded steps, batched and laned exactly as :meth:`run` does.

        The benchmark's "same engine on pre-decoded frames" baseline.
        """
        lanes = _Lanes(*self.cnn_lanes)
        out: dict[str, list] = {"visual": [], "audio": []}
        try:
            for kind, net, x in (("visual", self.visual, frames), ("audio", self.audio, mels)):
                for i in range(0, x.shape[0], self.batch_size):
                    job = partial(self._infer, net, [x[i : i + self.batch_size]])
                    for k, feats in lanes.submit(job, kind):
                        out[k].append(feats)
            for k, feats in lanes.ready(wait=True):
                out[k].append(feats)
        finally:
            lanes.close()
        return tuple(np.concatenate(v) if v else np.zeros((0, 0), np.float32) for v in out.values())

    def _assemble(self, v: _Video) -> ClipFeatures:
        info = v.done or {}
        steps = int(info["steps"])
        visual = np.concatenate([f for _, f in sorted(v.visual, key=lambda p: p[0])])[:steps]
        if visual.shape[0] != steps:
            raise ValueError(f"got {visual.shape[0]} visual steps, expected {steps}")
        audio = np.zeros((steps, self.audio_dim), dtype=np.float32)
        if info["has_audio"] and v.audio:
            a = np.concatenate([f for _, f in sorted(v.audio, key=lambda p: p[0])])[:steps]
            audio[: a.shape[0]] = a
        feats = ClipFeatures(
            visual=visual.astype(np.float32, copy=False),
            audio=audio,
            timestamps=np.concatenate(v.timestamps)[:steps],
            has_audio=bool(info["has_audio"]),
            duration=float(info["duration"]),
        )
        feats.validate()
        return feats

    def extract(self, path: str) -> ClipFeatures:
        """One video, synchronously (raises :class:`MediaError` on a bad file)."""
        (result,) = list(self.run([(str(path), str(path))]))
        if result.error:
            raise MediaError(result.error)
        return result.features


_IDLE = ("idle", None, None)
_WAIT = ("wait", None, None)  # nothing decoded yet, but a lane finished a batch


class _DecodeFeed:
    """The decoding side of one run: background workers (or the calling thread) -> messages.

    Messages are ``(kind, video, payload)``; a worker's "fatal" message is
    raised here as :class:`FeatureExtractionError`, so a dead decoder stops
    the run instead of leaving it waiting.
    """

    def __init__(self, extractor: FeatureExtractor, items: list[tuple[str, str]]):
        self.tasks: queue.Queue = queue.Queue()
        for i, (_, path) in enumerate(items):
            self.tasks.put((i, str(path)))
        n = min(extractor.decode_plan.num_workers, len(items))
        # Bounded: decoders may run only a few chunks ahead of the CNN.
        self.out: queue.Queue = queue.Queue(maxsize=2 + 2 * n)
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=extractor._worker, args=(self.tasks, self.out, self.stop), daemon=True, name=f"decode-{i}")
            for i in range(n)
        ]
        for t in self.threads:
            t.start()
        # No workers: the calling thread decodes a chunk whenever the CNNs wait for one.
        self.inline = extractor._decode_items(self.tasks, self.stop) if not self.threads else None
        self.running = max(1, n)

    def receive(self) -> tuple[str, int | None, object]:
        if not self.running:
            return _IDLE
        if self.inline is not None:
            msg = next(self.inline, ("worker_done", None, None))
        else:
            try:
                msg = self.out.get(timeout=0.05)
            except queue.Empty:
                return _IDLE
        if msg[0] == "worker_done":
            self.running -= 1
        elif msg[0] == "fatal":
            error = msg[2]
            raise FeatureExtractionError(f"decode thread {msg[1]} failed: {type(error).__name__}: {error}") from error
        return msg

    def close(self) -> None:
        """Stop the workers and wait for them (they may be blocked on a full queue)."""
        self.stop.set()
        if self.inline is not None:
            self.inline.close()  # closes the video it was reading
        while True:
            try:
                self.out.get_nowait()
            except queue.Empty:
                if not any(t.is_alive() for t in self.threads):
                    break
                time.sleep(0.01)


class _DecodeOnLanes:
    """Decoding on the calling thread's behalf, as jobs on the CNN lanes.

    With a separate decoding thread, a 2-core machine runs three busy
    threads (decoder + two lanes) and time-slices them, evicting the CNNs'
    caches. Here each core runs one lane thread that either runs a CNN batch
    or decodes the next chunk; the calling thread only waits and books
    results. One decode job is in flight at a time (decoding is sequential).
    """

    def __init__(self, feed: _DecodeFeed, lanes: _Lanes):
        self.feed, self.lanes = feed, lanes
        self.job: Future | None = None

    def receive(self) -> tuple[str, int | None, object]:
        """The next decoder message, or ``("wait", ...)`` when a CNN batch finished first."""
        if self.job is None:
            self.job = self.lanes.pool.submit(self.feed.receive)
        oldest = [self.lanes.jobs[0][0]] if self.lanes.jobs else []
        wait([self.job, *oldest], return_when=FIRST_COMPLETED)
        if not self.job.done():
            return _WAIT
        job, self.job = self.job, None
        return job.result()


class _Batches:
    """The inference side of one run: CNN batches across videos, then each video's features."""

    def __init__(self, extractor: FeatureExtractor, items: list[tuple[str, str]]):
        self.ex = extractor
        self.videos = {i: _Video(key, str(path)) for i, (key, path) in enumerate(items)}
        self.visual: list[tuple[int, int, torch.Tensor]] = []  # (video, start step, frames)
        self.audio: list[tuple[int, int, torch.Tensor]] = []
        #: CNN batches run on lane threads while decoding goes on (one lane: here, in turn)
        self.lanes = _Lanes(*extractor.cnn_lanes)

    def buffered(self) -> bool:
        return bool(self.visual or self.audio)

    def busy(self) -> bool:
        """Decoded steps waiting for a batch, or batches still on a lane."""
        return self.buffered() or bool(self.lanes)

    def take(self, msg: str, vid: int | None, payload) -> list[int]:
        """Record one decoder message; returns the videos that may now be complete."""
        if msg == "chunk":
            v = self.videos[vid]
            if payload.num_frames:
                self.visual.append((vid, payload.frame_start, payload.frames))
                v.pending += 1
                v.timestamps.append(payload.timestamps)
            if payload.num_mels:
                self.audio.append((vid, payload.mel_start, payload.mels))
                v.pending += 1
        elif msg == "done":
            self.videos[vid].done = payload
            return [vid]
        elif msg == "error":
            self.videos[vid].error = payload
            return [vid]
        return []

    def flush(self, idle: bool) -> list[int]:
        """Run every full batch (and, when ``idle``, the partial rest) of both buffers."""
        touched: list[int] = []
        for buf, net, kind in ((self.visual, self.ex.visual, "visual"), (self.audio, self.ex.audio, "audio")):
            while buf and (idle or sum(t.shape[0] for _, _, t in buf) >= self.ex.batch_size):
                touched += self._run_cnn(self._take_batch(buf), net, kind)
        return touched

    def _take_batch(self, buf: list) -> list[tuple[int, int, torch.Tensor]]:
        """Exactly ``batch_size`` steps from the front of ``buf`` (fewer only at the end).

        A chunk straddling the boundary is split, so every batch has the
        shape a compiled CNN was built for instead of being padded up to it.
        """
        batch, n = [], 0
        while buf and n < self.ex.batch_size:
            vid, start, t = buf[0]
            room = self.ex.batch_size - n
            if t.shape[0] > room:
                buf[0] = (vid, start + room, t[room:])
                self.videos[vid].pending += 1  # the rest is one more piece to wait for
                t = t[:room]
            else:
                buf.pop(0)
            batch.append((vid, start, t))
            n += t.shape[0]
        return batch

    def _run_cnn(self, batch: list, net: torch.nn.Module, kind: str) -> list[int]:
        """One batch through ``net``: here, or queued on a lane."""
        parts = [t for _, _, t in batch]
        spans = [(vid, start, t.shape[0]) for vid, start, t in batch]
        done = self.lanes.submit(partial(self.ex._infer, net, parts), (kind, spans))
        return [vid for (k, sp), feats in done for vid in self._record(k, sp, feats)]

    def collect(self, wait: bool) -> list[int]:
        """Record the batches the lanes finished (all of them with ``wait``)."""
        return [vid for (k, sp), feats in self.lanes.ready(wait) for vid in self._record(k, sp, feats)]

    def _record(self, kind: str, spans: list[tuple[int, int, int]], feats: np.ndarray) -> list[int]:
        touched, offset = [], 0
        for vid, start, n in spans:
            v = self.videos[vid]
            if v.error is None:
                getattr(v, kind).append((start, feats[offset : offset + n]))
            offset += n
            v.pending -= 1
            touched.append(vid)
        return touched

    def close(self) -> None:
        self.lanes.close()

    def finished(self, vid: int) -> ExtractResult | None:
        v = self.videos.get(vid)
        if v is None or v.pending or (v.error is None and v.done is None):
            return None
        del self.videos[vid]
        if v.error is not None:
            return ExtractResult(v.key, v.path, error=v.error)
        try:
            return ExtractResult(v.key, v.path, features=self.ex._assemble(v))
        except ValueError as e:
            return ExtractResult(v.key, v.path, error=f"{shown(v.path)}: {e}")

    def leftovers(self) -> Iterator[ExtractResult]:
        """Anything left (a worker died without a message)."""
        for vid in list(self.videos):
            v = self.videos.pop(vid)
            yield ExtractResult(v.key, v.path, error=v.error or f"{shown(v.path)}: decoder stopped unexpectedly")
