"""Where a GPU run's decoding goes: one table from one run on a CUDA machine.

    python benchmarks/bench_gpu_decode.py            # CUDA machine: 160 clips as gpu_check writes them
    python benchmarks/bench_gpu_decode.py --smoke    # CPU, tiny: the script itself works

``gpu_check.sh``'s first run on an H200 with 16 cores decoded 2,991 frames/s
with 14 decode worker threads, while InceptionV3 alone ran 6,894 img/s on the
GPU and one core decodes a clip's 175 frames in about 0.1 s (about 1,750
frames/s per core). This run separates the candidates, each measured here:

1. the sampler alone (``decode_all``: decode, 4 fps, resize, log-mel of whole
   clips) over N threads of one process vs N processes: does decoding
   scale with the cores, or does Python's GIL hold it to about one;
2. the extraction itself (``FeatureExtractor.run`` on CUDA, no FiftyOne) with
   decode worker threads on all cores but two, at Python's default GIL
   switch interval (5 ms) and at 0.5 ms, with the share of its time spent
   inside the CNN calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from gpu_check import Plan, write_clips  # noqa: E402 - after the path set-up above

#: Clips as gpu_check writes them (its Plan's clip settings).
SECONDS, FPS, SIZE = Plan.seconds, Plan.fps, Plan().size


def _sample(path: str) -> int:
    """One clip through the sampler on one thread; returns its steps (the tensors are built, then dropped)."""
    import torch

    from fiftyone_genre.features.decode import decode_all

    torch.set_num_threads(1)
    return int(decode_all(path, fps=4.0, image_size=299, decode_threads=1, helper_thread=False).frames.shape[0])


def sampler_rate(paths: list[str], workers: int, processes: bool) -> float:
    """Decoded frames/s of the sampler over ``workers`` threads or processes (pool started before timing)."""
    pool = (ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if processes
            else ThreadPoolExecutor(workers))
    with pool:
        list(pool.map(_sample, paths[:workers]))  # warm-up: imports in each process
        t = time.perf_counter()
        list(pool.map(_sample, paths))
        return len(paths) * SECONDS * FPS / (time.perf_counter() - t)


def extraction_rate(paths: list[str], device: str, workers: int, switch_s: float, smoke: bool) -> tuple[float, float]:
    """Decoded frames/s of a whole extraction on ``device``, and the share of it inside the CNN calls."""
    from gpu_check import CnnClock

    from fiftyone_genre.config import FeaturesConfig
    from fiftyone_genre.features.extractor import FeatureExtractor

    net = {"backbone": "mobilenet_v3_small", "image_size": 64, "batch_size": 8} if smoke else {"batch_size": 128}
    cfg = FeaturesConfig(weights="none", num_workers=workers, decode_threads=1, **net)
    ex = FeatureExtractor(cfg, device=device)
    list(ex.run([(p, p) for p in paths[:4]]))  # warm-up: kernels, pinned memory
    before = sys.getswitchinterval()
    sys.setswitchinterval(switch_s)
    clock = CnnClock(device)
    try:
        t = time.perf_counter()
        failed = [r.error for r in ex.run([(p, p) for p in paths]) if r.error]
        dt = time.perf_counter() - t
    finally:
        clock.close()
        sys.setswitchinterval(before)
    if failed:
        raise RuntimeError(failed[0])
    return len(paths) * SECONDS * FPS / dt, clock.seconds / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="CPU, 4 clips, 1-2 workers: checks the script, measures nothing")
    ap.add_argument("--clips", type=int, default=160)
    ap.add_argument("--no-sampler", action="store_true", help="only the extraction rows")
    args = ap.parse_args()
    import torch

    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu_decode: no CUDA device here; --smoke checks the script on the CPU", file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0))
    counts = [1, 2] if args.smoke else sorted({1, 4, 8, max(1, cores - 2)})
    with tempfile.TemporaryDirectory(prefix="genre_gpu_decode_") as work:
        plan = Plan(clips=4 if args.smoke else args.clips, seconds=SECONDS, fps=FPS, size=SIZE)
        paths = [path for path, _ in write_clips(plan, Path(work))]
        rows = [] if args.no_sampler else [
            (f"sampler, {n} {kind if n == 1 else kind + 'es' if kind == 'process' else kind + 's'}",
             f"{sampler_rate(paths, n, kind == 'process'):,.0f} frames/s")
            for kind in ("thread", "process") for n in counts]
        for n in counts[-2:]:
            for switch in (0.005, 0.0005):
                rate, share = extraction_rate(paths, device, n, switch, args.smoke)
                rows.append((f"extraction on {device}, {n} decode worker thread(s), GIL switch {switch * 1000:g} ms",
                             f"{rate:,.0f} frames/s, {share:.0%} of it in the CNN calls"))
    print(f"\nbench_gpu_decode: {len(paths)} clips of {SECONDS:g}s {SIZE[0]}x{SIZE[1]} {FPS:g} fps + audio, "
          f"{cores} cpu(s), torch {torch.__version__}, {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)} | {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
