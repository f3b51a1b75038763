"""Extraction's concurrency (features/pipeline.py) with stand-in videos and CNNs: fast, no decoding."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from fiftyone_genre.features.decode import StepChunk
from fiftyone_genre.features.pipeline import (
    Chunk,
    Extraction,
    FeatureExtractionError,
    SerialWorker,
    VideoEnd,
    VideoFailed,
)

from support.threads import ends_within


class Source:
    """Video ``i`` has ``lengths[i]`` steps whose frames and mels hold the value ``100 * i + step``."""

    def __init__(self, lengths: list[int], chunk: int = 3, bad: set[int] = frozenset()):
        self.lengths, self.chunk, self.bad = lengths, chunk, bad
        self.read = threading.Event()

    def mel_windows(self):
        return None

    def video_messages(self, video, path, mel):
        if video in self.bad:
            yield VideoFailed(video, f"{path}: not a video")
            return
        n = self.lengths[video]
        for start in range(0, n, self.chunk):
            values = torch.arange(start, min(n, start + self.chunk), dtype=torch.float32) + 100 * video
            self.read.set()
            yield Chunk(video, StepChunk(values[:, None], start, values.numpy(), values[:, None], start))
        yield VideoEnd(video, n, True, n / 4)


class Cnns:
    """Identity CNNs that record their batch sizes."""

    def __init__(self, batch_size: int, fail_at: int | None = None):
        self.batch_size, self.fail_at, self.sizes = batch_size, fail_at, []
        self.visual, self.audio = "visual", "audio"

    def infer_batch(self, net, parts):
        self.sizes.append((net, sum(p.shape[0] for p in parts)))
        if len(self.sizes) == self.fail_at:
            raise RuntimeError("CNN lane broke")
        return torch.cat(parts).numpy()


def _threads_of_a_run() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("cnn-lane", "decode-worker"))]


@pytest.mark.parametrize("workers", [0, 2])
def test_every_step_comes_back_to_its_video_in_exact_batches(workers):
    lengths = [7, 1, 12, 5]
    items = [(f"k{i}", f"/v/{i}.mp4") for i in range(len(lengths))]
    cnns = Cnns(batch_size=4)
    with Extraction(items, Source(lengths), lanes=(2, 1), decode_workers=workers, batch_size=4) as run:
        records = {r.key: r for r in run.results(cnns)}
    assert set(records) == {key for key, _ in items}
    for i, n in enumerate(lengths):
        r = records[f"k{i}"]
        assert r.error is None and r.end.num_steps == n
        for kind in ("visual", "audio"):
            got = np.concatenate([f for _, f in sorted(getattr(r, kind))])[:, 0]
            np.testing.assert_array_equal(got, 100 * i + np.arange(n))
    for kind in ("visual", "audio"):
        sizes = [n for k, n in cnns.sizes if k == kind]
        assert sum(sizes) == sum(lengths) and all(n == 4 for n in sizes[:-1]), sizes
    assert not _threads_of_a_run()


def test_decoding_starts_before_the_cnns_are_attached():
    source = Source([6, 6])
    with Extraction([("a", "a"), ("b", "b")], source, lanes=(2, 1), decode_workers=0, batch_size=4) as run:
        assert source.read.wait(10), "nothing decoded while the CNNs were being built"
        records = list(run.results(Cnns(batch_size=4)))
    assert len(records) == 2


def test_a_bad_video_is_its_own_error_and_the_others_finish():
    with Extraction([("a", "a"), ("b", "b"), ("c", "c")], Source([5, 5, 5], bad={1}), lanes=(2, 1),
                    decode_workers=0, batch_size=4) as run:
        records = {r.key: r for r in run.results(Cnns(batch_size=4))}
    assert records["b"].error == "b: not a video"
    assert records["a"].error is None and records["c"].error is None


def test_a_failing_batch_stops_the_run_and_leaves_no_thread():
    def go():
        with Extraction([("a", "a"), ("b", "b")], Source([9, 9]), lanes=(2, 1), decode_workers=1, batch_size=2) as run:
            list(run.results(Cnns(batch_size=2, fail_at=3)))

    error = ends_within(30, go)
    assert isinstance(error, RuntimeError) and "CNN lane broke" in str(error)
    assert not _threads_of_a_run()


def test_a_failing_decoder_stops_the_run_naming_it():
    class Broken(Source):
        def video_messages(self, video, path, mel):
            if video == 1:
                raise OSError("disk gone")
            yield from super().video_messages(video, path, mel)

    def go():
        with Extraction([("a", "a"), ("b", "b")], Broken([4, 4]), lanes=(2, 1), decode_workers=1, batch_size=2) as run:
            list(run.results(Cnns(batch_size=2)))

    error = ends_within(30, go)
    assert isinstance(error, FeatureExtractionError), error
    assert "decode thread decode-0 failed: OSError: disk gone" in str(error)
    assert not _threads_of_a_run()


def test_stopping_early_closes_the_video_being_read():
    closed = threading.Event()

    class Watched(Source):
        def video_messages(self, video, path, mel):
            try:
                yield from super().video_messages(video, path, mel)
            finally:
                closed.set()

    source = Watched([400, 400], chunk=1)  # more than the read-ahead: the first video is still open
    run = Extraction([("a", "a"), ("b", "b")], source, lanes=(2, 1), decode_workers=0, batch_size=2)
    assert source.read.wait(10)
    run.close()  # e.g. the CNNs could not be built
    assert closed.is_set() and not _threads_of_a_run()


def test_serial_worker_runs_jobs_in_order_and_raises_the_first_failure():
    done: list[int] = []
    worker = SerialWorker("test-worker", max_jobs=2)
    for i in range(20):
        worker.submit(lambda i=i: (time.sleep(0.001), done.append(i)))
    worker.join()
    assert done == list(range(20))

    worker = SerialWorker("test-worker", max_jobs=1)

    def broken():
        raise MemoryError("no room")

    def submit_all():
        worker.submit(broken)
        for _ in range(50):  # the slot of a failed job is freed: this never blocks
            worker.submit(lambda: None)

    error = ends_within(10, submit_all)
    assert isinstance(error, MemoryError)
    with pytest.raises(MemoryError):
        worker.join()
    assert not any(t.name.startswith("test-worker") for t in threading.enumerate())


def test_cnns_are_built_with_one_lanes_threads_beside_decoding(monkeypatch):
    """The build shares the cores with decoding lanes: one lane's torch threads, the caller's count restored."""
    from fiftyone_genre.config import FeaturesConfig
    from fiftyone_genre.features import extractor

    seen = []
    build = extractor.build_visual_backbone

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return build(*args, **kwargs)

    monkeypatch.setattr(extractor, "build_visual_backbone", spy)
    before = torch.get_num_threads()
    cfg = FeaturesConfig(backbone="mobilenet_v3_small", weights="none", image_size=64, cnn_lanes=2)
    ex = extractor.FeatureExtractor(cfg)
    assert seen == [ex.cnn_lanes[1]] == [max(1, before // 2)]
    assert torch.get_num_threads() == before
