"""The whole pipeline on one GPU machine, as one table: decode -> CNN features -> 1 epoch -> predict.

    bash benchmarks/gpu_check.sh            # NVIDIA GPU: 2,000 clips of 7 s, 320x240, 25 fps, audio
    bash benchmarks/gpu_check.sh --smoke    # CPU, tiny (the test suite runs this)

The synthetic set is UCF101-sized (UCF101: 13,320 clips of ~7 s; 2,000 clips
here keep the run under 8 minutes): clips of the six genres' visual and audio
cues, written in parallel over the CPU cores. Features are InceptionV3 (299 px,
random init) + the audio CNN on CUDA with ``engine: auto`` (channels-last +
bf16/fp16 autocast), decoding spread over the CPU cores by background decode
workers. Then one training epoch and a prediction pass.

Table columns: decoded frames/s (every frame of every clip passes the decoder),
CNN img/s (the visual CNN alone on a full batch), extraction steps/s,
training windows/s, peak GPU memory, and the share of extraction time the
CNNs were *not* running (time the GPU waited for decoding).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass
class Plan:
    """Sizes of one run: the GPU run or the CPU smoke run."""

    clips: int = 2000
    seconds: float = 7.0
    size: tuple[int, int] = (320, 240)
    fps: float = 25.0
    device: str = "cuda"
    backbone: str = "inception_v3"
    image_size: int | None = None
    batch_size: int = 128
    workers: int = max(1, (os.cpu_count() or 2) - 2)
    decode_threads: int = 1
    model: dict = field(default_factory=lambda: {"hidden_size": 512})
    train: dict = field(default_factory=lambda: {"epochs": 1, "batch_size": 64, "patience": 0})


SMOKE = Plan(clips=6, seconds=2.0, size=(96, 64), device="cpu", backbone="mobilenet_v3_small", image_size=64,
             batch_size=8, workers=1, model={"hidden_size": 16, "visual_proj": 8, "audio_proj": 8},
             train={"epochs": 1, "batch_size": 8, "window": 4, "stride": 4, "patience": 0, "device": "cpu"})


def _write_one(job: tuple[str, str, float, float, tuple[int, int], int]) -> str:
    from fiftyone_genre.demo.clips import write_clip

    path, genre, seconds, fps, size, seed = job
    if not Path(path).exists():
        write_clip(path, genre, duration=seconds, fps=fps, size=size, seed=seed)
    return path


def write_clips(plan: Plan, root: Path) -> list[tuple[str, str]]:
    """``plan.clips`` synthetic clips of the six genres in turn, written over all cores: ``(path, genre)``."""
    from fiftyone_genre import genres as g

    jobs = [(str(root / f"clip_{i:05d}.mp4"), g.GENRES[i % len(g.GENRES)], plan.seconds, plan.fps, plan.size, i)
            for i in range(plan.clips)]
    if len(jobs) <= 16:  # smoke sizes: starting worker processes costs more than writing
        paths = [_write_one(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            paths = list(pool.map(_write_one, jobs, chunksize=8))
    return [(path, job[1]) for path, job in zip(paths, jobs)]


def build_dataset(plan: Plan, root: Path, name: str):
    """Synthetic clips (:func:`write_clips`) in a dataset with genre labels and an 80/10/10 split."""
    import fiftyone as fo

    from fiftyone_genre import genres as g

    ds = fo.Dataset(name, overwrite=True)
    splits = ["train"] * 8 + ["val", "test"]
    ds.add_samples([
        fo.Sample(filepath=p, **{g.GENRE_FIELD: fo.Classification(label=genre), g.SPLIT_FIELD: splits[i % 10]})
        for i, (p, genre) in enumerate(write_clips(plan, root))
    ])
    return ds


class CnnClock:
    """Wall time inside the feature CNNs (synchronised on CUDA), by wrapping the engine's call."""

    def __init__(self, device: str):
        from fiftyone_genre.features import engine

        self.engine, self.seconds, self.cuda = engine, 0.0, device.startswith("cuda")
        self._orig = engine.InferenceEngine.__call__
        clock = self

        def timed(run, x):
            t = time.perf_counter()
            out = clock._orig(run, x)
            clock._sync()
            clock.seconds += time.perf_counter() - t
            return out

        engine.InferenceEngine.__call__ = timed

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def close(self) -> None:
        self.engine.InferenceEngine.__call__ = self._orig


def cnn_img_s(plan: Plan, rounds: int = 5) -> float:
    """The visual CNN alone on full batches already on the device (the engine extraction uses)."""
    import torch

    from fiftyone_genre.features.backbones import build_visual_backbone, image_size_for
    from fiftyone_genre.features.engine import resolve_engine

    size = image_size_for(plan.backbone, plan.image_size)
    run = resolve_engine("auto", "auto", plan.device).wrap(
        build_visual_backbone(plan.backbone, "none", image_size=size, device=plan.device), plan.batch_size)
    x = torch.randint(0, 256, (plan.batch_size, 3, size, size), dtype=torch.uint8, device=plan.device)
    run(x)
    t = time.perf_counter()
    for _ in range(rounds):
        run(x)
    if plan.device.startswith("cuda"):
        torch.cuda.synchronize()
    return plan.batch_size * rounds / (time.perf_counter() - t)


def run_pipeline(plan: Plan, ds, out: Path) -> dict:
    """Features (timed, with the CNN clock), one training epoch, prediction; returns the measurements."""
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.features.extract import extract_features
    from fiftyone_genre.inference.predict import predict
    from fiftyone_genre.modeling.train import train

    exp = load_experiment(None, features={
        "backbone": plan.backbone, "weights": "none", "image_size": plan.image_size, "batch_size": plan.batch_size,
        "num_workers": plan.workers, "decode_threads": plan.decode_threads, "cache_dir": str(out / "cache"),
    }, model=plan.model, train={"device": plan.device, **plan.train})
    m: dict = {"cnn_img_s": cnn_img_s(plan)}
    clock = CnnClock(plan.device)
    try:
        t = time.perf_counter()
        report = extract_features(ds, exp.features, device=plan.device)
        m["extract_s"] = time.perf_counter() - t
    finally:
        clock.close()
    m["cnn_s"], m["steps"], m["failed"] = clock.seconds, report.steps, len(report.failed)
    t = time.perf_counter()
    tr = train(ds, exp, out / "model")
    m["train_s"], m["windows"] = time.perf_counter() - t, tr.counts["train"]["windows"]
    t = time.perf_counter()
    predict(ds, out / "model")
    m["predict_s"] = time.perf_counter() - t
    return m


def print_table(plan: Plan, m: dict, build_s: float) -> None:
    import torch

    frames = plan.clips * plan.seconds * plan.fps
    mem = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if plan.device.startswith("cuda") else "n/a (cpu)"
    gpu = torch.cuda.get_device_name() if plan.device.startswith("cuda") else "cpu"
    rows = [
        ("clips written", f"{plan.clips} x {plan.seconds:g}s {plan.size[0]}x{plan.size[1]} {plan.fps:g} fps + audio in {build_s:.0f}s"),
        ("decoded frames/s (extraction)", f"{frames / m['extract_s']:,.0f}"),
        (f"CNN img/s ({plan.backbone}, batch {plan.batch_size})", f"{m['cnn_img_s']:,.0f}"),
        ("extraction steps/s (frames + mel windows through both CNNs)", f"{m['steps'] / m['extract_s']:,.0f} ({m['failed']} failed)"),
        ("training windows/s (1 epoch incl. val/test)", f"{m['windows'] / m['train_s']:,.0f}"),
        ("predict", f"{m['predict_s']:.1f}s"),
        ("peak GPU memory", mem),
        ("share of extraction the CNNs waited for decoding", f"{1 - m['cnn_s'] / m['extract_s']:.0%}"),
        ("total", f"features {m['extract_s']:.0f}s, train {m['train_s']:.0f}s, predict {m['predict_s']:.0f}s"),
    ]
    print(f"\ngpu_check on {gpu}, {os.cpu_count()} cpu(s), {plan.workers} decode workers x {plan.decode_threads} threads, torch {torch.__version__}")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)} | {v}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="CPU-sized run (tiny clips, CPU): what the test suite runs")
    ap.add_argument("--clips", type=int, help="override the number of clips")
    ap.add_argument("--workdir", help="where clips, cache and model go (default: a temp folder, removed)")
    args = ap.parse_args(argv)
    plan = SMOKE if args.smoke else Plan()
    if args.clips:
        plan.clips = args.clips
    if plan.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device here; run with --smoke for the CPU-sized check", file=sys.stderr)
            return 2
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="genre_gpu_check_"))
    (work / "clips").mkdir(parents=True, exist_ok=True)
    ds = None
    try:
        t = time.perf_counter()
        ds = build_dataset(plan, work / "clips", f"genre-gpu-check-{os.getpid()}")
        build_s = time.perf_counter() - t
        print_table(plan, run_pipeline(plan, ds, work), build_s)
    finally:
        if ds is not None:
            ds.delete()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
