"""FiftyOne's doors vs predict on the same extracted dataset, as ONE table of ratios from ONE run.

    .venv/bin/python benchmarks/bench_model.py                      # demo-sized: 6 genres x 24 clips x 6 s
    .venv/bin/python benchmarks/bench_model.py --clips-per-genre 4  # a smoke run

A demo-like set is generated (``fiftyone_genre.demo.clips`` clips, H.264 + AAC),
its cpu_fast features are extracted once, and a random-init cpu_fast model is
saved. Then, alternately (best of ``--repeats`` kept, the machine is shared):

1. ``predict`` (all fields: label, timeline, embedding, visual/audio passes);
2. ``dataset.apply_model(GenreModel, store_logits=True)`` including loading
   the model: the ratio row 2 / row 1 is the cost of using the FiftyOne door;
3. ``dataset.compute_embeddings(GenreModel)``;
4. the floor of FiftyOne's video-model loop: opening and closing its ffmpeg
   video reader for every sample (ffprobe + an ffmpeg process), which
   ``apply_model`` pays before any model runs.

The last measured table and what it says are in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("FIFTYONE_DATABASE_NAME", "fiftyone-genre-bench")
os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")


def build(root: Path, clips_per_genre: int, duration: float):
    """Dataset with extracted cpu_fast features, and a saved cpu_fast model directory."""
    import fiftyone as fo

    from fiftyone_genre import genres as g
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.demo.clips import write_clip
    from fiftyone_genre.features.extract import extract_features
    from fiftyone_genre.modeling.model import build_model, save_checkpoint

    samples = []
    for k, genre in enumerate(g.GENRES):
        for j in range(clips_per_genre):
            path = write_clip(root / f"{genre}_{j}.mp4", genre, duration=duration, seed=100 * k + j)
            samples.append(fo.Sample(filepath=str(path)))
    ds = fo.Dataset()
    ds.add_samples(samples, progress=False)
    ds.compute_metadata(progress=False)
    exp = load_experiment("cpu_fast")
    exp.features = replace(exp.features, cache_dir=str(root / "cache"))
    rep = extract_features(ds, exp.features, device="cpu")
    model = build_model(exp.model, rep.visual_dim, rep.audio_dim, len(g.GENRES))
    save_checkpoint(root / "model" / "best.pt", model, exp, list(g.GENRES), rep.visual_dim, rep.audio_dim, epoch=0)
    return ds, root / "model"


def reader_floor(ds) -> None:
    """What FiftyOne's video-model loop costs per sample before a model runs."""
    import eta.core.video as etav

    for path in ds.values("filepath"):
        with etav.FFmpegVideoReader(path):
            pass


def measure(ds, model_dir: Path, repeats: int) -> dict[str, float]:
    from fiftyone_genre import GenreModel
    from fiftyone_genre.inference.predict import predict

    def run_apply() -> None:
        ds.apply_model(GenreModel.from_dir(model_dir, device="cpu"), label_field="fo_pred", store_logits=True)

    model = GenreModel.from_dir(model_dir, device="cpu")
    runs = {
        "predict": lambda: predict(ds, model_dir),
        "apply_model": run_apply,
        "compute_embeddings": lambda: ds.compute_embeddings(model),
        "reader_floor": lambda: reader_floor(ds),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips-per-genre", type=int, default=24)
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        ds, model_dir = build(Path(tmp), args.clips_per_genre, args.duration)
        try:
            best = measure(ds, model_dir, args.repeats)
        finally:
            ds.delete()
    n = args.clips_per_genre * 6
    rows = [
        ("1 predict (all fields)", best["predict"], 1.0),
        ("2 apply_model(GenreModel, store_logits)", best["apply_model"], best["apply_model"] / best["predict"]),
        ("3 compute_embeddings(GenreModel)", best["compute_embeddings"], best["compute_embeddings"] / best["predict"]),
        ("4 floor: FiftyOne's ffmpeg reader per sample", best["reader_floor"], best["reader_floor"] / best["predict"]),
    ]
    if args.json:
        print(json.dumps({"samples": n, "seconds": best}, indent=2))
        return 0
    print(f"{n} clips x {args.duration:g} s, cpu_fast features cached, best of {args.repeats}")
    print(f"{'row':48s} {'seconds':>8s} {'ms/clip':>8s} {'x predict':>9s}")
    for name, sec, ratio in rows:
        print(f"{name:48s} {sec:8.2f} {1000 * sec / n:8.1f} {ratio:9.2f}")
    extra = best["apply_model"] - best["reader_floor"]
    print(f"apply_model minus its reader floor: {extra:.2f} s = {extra / best['predict']:.2f}x predict")
    return 0


if __name__ == "__main__":
    sys.exit(main())
