"""Decoding and the CNNs together: videos in, per-step feature arrays out (no FiftyOne needed).

:class:`FeatureExtractor` streams each video's
:class:`~fiftyone_genre.features.decode.StepChunk` s and batches frames and
mel windows *across videos* through the visual and audio CNNs under
``torch.inference_mode``. How the work is spread over threads (CNN lanes,
decode jobs, bounded read-ahead) lives in :mod:`fiftyone_genre.features.pipeline`;
this module says what to decode and what to run, and the plan for a device.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from fiftyone_genre.config import FeaturesConfig, check_config
from fiftyone_genre.features.audio import MelWindows
from fiftyone_genre.features.backbones import build_audio_cnn, build_visual_backbone, image_size_for
from fiftyone_genre.features.cache import ClipFeatures
from fiftyone_genre.features.decode import ClipStream, MediaError
from fiftyone_genre.features.engine import InferenceEngine, resolve_engine
from fiftyone_genre.features.pipeline import (
    Chunk,
    DecodeMessage,
    Extraction,
    FeatureExtractionError,
    VideoEnd,
    VideoFailed,
    VideoRecord,
    infer_in_batches,
    torch_threads,
)
from fiftyone_genre.utils import shown

__all__ = ["ExtractResult", "FeatureExtractionError", "FeatureExtractor", "VideoDecoding", "cnn_batch_for", "cnn_lanes_for",
           "decode_plan_for"]


@dataclass
class ExtractResult:
    """One video's outcome: features, or the reason it failed."""

    key: str
    path: str
    features: ClipFeatures | None = None
    error: str | None = None


#: How decoding runs when ``FeaturesConfig.num_workers`` / ``decode_threads``
#: are None. On CPU the CNN batches run on one-thread lanes
#: (:func:`cnn_lanes_for`) and decoding runs as jobs on the same lanes (one
#: decoder thread, no helper): every core runs one thread, and decoding takes
#: its share without stalling a multi-threaded CNN at every operator's
#: barrier. In front of a GPU decoding is the bottleneck: a worker with 2
#: decoder threads overlaps it with inference.
CPU_NUM_WORKERS = 0
CPU_DECODE_THREADS = 1
NUM_WORKERS = 1
DECODE_THREADS = 2


class DecodePlan(NamedTuple):
    """How videos are decoded for the CNNs.

    ``num_workers`` decode worker threads (0: decoding runs as jobs on the
    CNN lanes, in turn with the batches), ``decode_threads`` inside PyAV per
    video, and whether a per-video helper thread resizes frames and analyses
    audio.
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
    feeds the GPU. ``None`` threads: the caller's own.
    """
    threads = torch.get_num_threads()
    if config.cnn_lanes is not None:
        lanes = int(config.cnn_lanes)
    elif torch.device(device).type == "cpu":
        lanes = min(threads, MAX_AUTO_LANES)
    else:
        lanes = 1
    return (lanes, max(1, threads // lanes)) if lanes > 1 else (1, None)


#: Most steps in one CNN batch on a CPU (``batch_size`` caps it lower).
CPU_MAX_BATCH = 8


def cnn_batch_for(config: FeaturesConfig, device: str | torch.device) -> int:
    """Steps per CNN batch: ``batch_size``, at most :data:`CPU_MAX_BATCH` on a CPU.

    A CPU batch runs on one core (a lane): the activations of 8 frames at
    299 px stay in the caches, those of 32 do not (each frame then costs
    ~20 % more), and 8-step jobs spread a run's last batches evenly over the
    lanes and start the first one after 2 s of video, not 8. GPUs get the
    configured batch.
    """
    batch = max(1, int(config.batch_size))
    return min(batch, CPU_MAX_BATCH) if torch.device(device).type == "cpu" else batch


class VideoDecoding:
    """The decoding half of an extraction: how each video is opened and read into typed messages.

    Needs no CNN, so a run can start decoding (:meth:`start`) while the CNNs
    are still being built.
    """

    def __init__(self, config: FeaturesConfig, device: str | torch.device = "cpu"):
        self.config = check_config(config)
        self.device = torch.device(device)
        self.image_size = image_size_for(config.backbone, config.image_size)
        #: steps per CNN batch (:func:`cnn_batch_for`)
        self.batch_size = cnn_batch_for(config, self.device)
        #: (lanes, torch threads per lane) of the CNN calls (:func:`cnn_lanes_for`)
        self.cnn_lanes = cnn_lanes_for(config, self.device)
        self.plan = decode_plan_for(config, self.device)

    def open(self, path: str, mel: MelWindows | None = None) -> ClipStream:
        c = self.config
        return ClipStream(
            path,
            fps=c.fps,
            image_size=self.image_size,
            sample_rate=c.audio_sample_rate,
            n_mels=c.n_mels,
            audio_window_s=c.audio_window_s,
            # small chunks: steps reach the batches every 2 s of video, not per whole batch
            chunk_size=min(self.batch_size, 8),
            decode_threads=self.plan.decode_threads,
            helper_thread=self.plan.helper_thread,
            mel=mel,
        )

    def mel_windows(self) -> MelWindows:
        """The log-mel analysis one decoder shares between its videos."""
        c = self.config
        return MelWindows(c.audio_sample_rate, c.n_mels, c.audio_window_s)

    def video_messages(self, video: int, path: str, mel: MelWindows) -> Iterator[DecodeMessage]:
        """One video's chunks, then its end; a problem with this file becomes its :class:`VideoFailed`."""
        try:
            stream = self.open(path, mel=mel)
            try:
                for chunk in stream:
                    yield Chunk(video, chunk)
            finally:
                stream.close()
            end = VideoEnd(video, stream.num_steps, stream.has_audio, stream.duration)
        except MediaError as e:
            yield VideoFailed(video, str(e))
            return
        except Exception as e:  # noqa: BLE001 - one odd file must not stop the run
            yield VideoFailed(video, f"{shown(path)}: {type(e).__name__}: {e}")
            return
        yield end

    def start(self, items: list[tuple[str, str]]) -> Extraction:
        """Begin decoding ``(key, path)`` items; attach the CNNs with ``Extraction.results``."""
        return Extraction(items, self, self.cnn_lanes, self.plan.num_workers, self.batch_size)


class FeatureExtractor:
    """Visual + audio CNNs with decoding in front of them.

    >>> ex = FeatureExtractor(FeaturesConfig(backbone="mobilenet_v3_small", weights="none"))
    >>> for r in ex.run([("id1", "/videos/a.mp4")]): print(r.key, r.features.visual.shape)
    """

    def __init__(self, config: FeaturesConfig, device: str | torch.device = "cpu"):
        #: how videos are decoded and where the jobs run (:class:`VideoDecoding`)
        self.decoding = VideoDecoding(config, device)
        self.config, self.device = self.decoding.config, self.decoding.device
        self.image_size, self.batch_size = self.decoding.image_size, self.decoding.batch_size
        self.cnn_lanes = self.decoding.cnn_lanes
        #: layout/precision/compilation of both CNNs (``fiftyone_genre.features.engine``)
        self.engine = resolve_engine(config.engine, config.precision, self.device)
        # One lane's threads: the first videos may already decode on the other lanes' cores.
        with torch_threads(self.cnn_lanes[1]):
            self.visual, self.audio = self._build(config, self.cnn_lanes[1])
        self.visual_dim = self.visual.dim
        self.audio_dim = self.audio.dim

    def _build(self, config: FeaturesConfig, lane_threads: int | None) -> tuple[InferenceEngine, InferenceEngine]:
        """The visual and the audio CNN, each wrapped in the run's engine."""
        visual = build_visual_backbone(
            config.backbone,
            weights=config.weights,
            mode=config.mode,
            image_size=self.image_size,
            init_seed=config.init_seed,
            softmax_checkpoint=config.softmax_checkpoint,
            device=self.device,
            channels_last=self.engine.channels_last,
        )
        audio = build_audio_cnn(
            config.audio_backbone,
            weights=config.audio_weights,
            n_mels=config.n_mels,
            init_seed=config.init_seed,
            device=self.device,
        )
        return (self.engine.wrap(visual, self.batch_size, lane_threads),
                self.engine.wrap(audio, self.batch_size, lane_threads))

    @property
    def decode_plan(self) -> DecodePlan:
        return self.decoding.plan

    def open(self, path: str, mel: MelWindows | None = None) -> ClipStream:
        return self.decoding.open(path, mel)

    @torch.inference_mode()
    def infer_batch(self, net, parts: list[torch.Tensor]) -> np.ndarray:
        """One CNN batch (the parts concatenated) -> float32 features; runs on a CNN lane."""
        x = torch.cat(parts) if len(parts) > 1 else parts[0]
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        return net(x).float().cpu().numpy()

    def run(self, items: Iterable[tuple[str, str]], extraction: Extraction | None = None) -> Iterator[ExtractResult]:
        """Extract ``(key, path)`` items; yields results in completion order.

        ``extraction``: a run already started with ``self.decoding.start(items)``
        (its first videos decode while the CNNs are built). Raises
        :class:`FeatureExtractionError` when a decoder fails outside a video's
        own error handling: the run stops with that error.
        """
        items = list(items)
        if not items:
            return
        with extraction or self.decoding.start(items) as run:
            for record in run.results(self):
                yield self._result(record)

    def infer(self, frames: torch.Tensor, mels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Both CNNs over already decoded steps, batched and laned exactly as :meth:`run` does.

        The benchmark's "same engine on pre-decoded frames" baseline.
        """
        out = infer_in_batches(self, self.cnn_lanes, {"visual": frames, "audio": mels})
        return tuple(np.concatenate(v) if v else np.zeros((0, 0), np.float32) for v in out.values())

    def _result(self, record: VideoRecord) -> ExtractResult:
        if record.error is not None:
            return ExtractResult(record.key, record.path, error=record.error)
        if record.end is None:
            return ExtractResult(record.key, record.path, error=f"{shown(record.path)}: decoder stopped unexpectedly")
        try:
            return ExtractResult(record.key, record.path, features=self._assemble(record))
        except ValueError as e:
            return ExtractResult(record.key, record.path, error=f"{shown(record.path)}: {e}")

    def _assemble(self, record: VideoRecord) -> ClipFeatures:
        end, steps = record.end, record.end.num_steps
        visual = np.concatenate([f for _, f in sorted(record.visual, key=lambda p: p[0])])[:steps]
        if visual.shape[0] != steps:
            raise ValueError(f"got {visual.shape[0]} visual steps, expected {steps}")
        audio = np.zeros((steps, self.audio_dim), dtype=np.float32)
        if end.has_audio and record.audio:
            a = np.concatenate([f for _, f in sorted(record.audio, key=lambda p: p[0])])[:steps]
            audio[: a.shape[0]] = a
        feats = ClipFeatures(
            visual=visual.astype(np.float32, copy=False),
            audio=audio,
            timestamps=np.concatenate(record.timestamps)[:steps],
            has_audio=bool(end.has_audio),
            duration=float(end.duration),
        )
        feats.validate()
        return feats

    def extract(self, path: str) -> ClipFeatures:
        """One video, synchronously (raises :class:`MediaError` on a bad file)."""
        (result,) = list(self.run([(str(path), str(path))]))
        if result.error:
            raise MediaError(result.error)
        return result.features
