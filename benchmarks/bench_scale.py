"""Every stage at UCF101 scale, against floors measured in the same run: ONE table.

    .venv/bin/python benchmarks/bench_scale.py                 # 1,000 and 13,320 clips (long)
    .venv/bin/python benchmarks/bench_scale.py --quick         # 40 and 120 clips, a smoke run
    .venv/bin/python benchmarks/bench_scale.py --sizes 500 2000 --work /tmp/bench_scale

The tree is built from the *real* official UCF101 lists (``../shared/real/ucf101``):
the first N clips of a fixed permutation of all 13,320 listed clips, as tiny
unique MPEG-4 AVI files under ``UCF-101/<Class>/<file>.avi`` (the
``HandstandPushups`` / ``v_HandStandPushups_*`` quirk kept), with the official
``classInd.txt`` and fold-1 lists trimmed to those N clips (lines byte for byte,
CRLF kept). A smaller size is a subset (hard links) of the largest one.

Decoding is not the point here (``bench_features.py`` measures it), so the
feature cache is filled with synthetic entries of the paper's sizes: 28 steps
(a 7 s UCF101 clip at 4 fps) of 2048-d visual pool + 512-d audio features,
under the key of ``paper_pool``'s features section. The model and training
settings are ``cpu_fast``'s (a 2048-unit LSTM would time the CPU, not the data
path), trained for one epoch.

Stages run in order, each in its own forked child (the parent has imported
the libraries once and holds no data), through the CLI as a user would; wall
time and peak RSS (``os.wait4``'s ``ru_maxrss``: the child's own, so stages do
not pollute each other; it includes the ~constant libraries the parent had
loaded) are measured around it:

    import -> re-import -> remap -> split -> check-leakage -> features (cached)
    -> train (1 epoch) -> predict -> evaluate -> maps

Floors, same run, same files: a PyAV header probe of every file + bare
``add_samples`` (import); reading every window from the packed store + a bare
no-grad forward pass of the same model (train, predict); ``set_values`` of
predict's fields (its write-back). Targets (table columns): import <= 2x its
floor; re-import <= 1x the import floor; per-clip cost at the largest size <=
1.3x the smallest for every stage; train peak RSS at the largest <= 1.2x the
smallest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REAL = REPO.parent / "shared" / "real" / "ucf101" / "ucfTrainTestlist"

STEPS = 28  # a 7 s UCF101 clip at 4 fps
VISUAL_DIM, AUDIO_DIM = 2048, 512  # inception_v3 pool, small_cnn (64 mels -> 64 channels x 8 bins)
QUICK_SIZES = (16, 48)
QUICK_SKIP = ("maps",)  # UMAP's first-call compile alone outlasts a smoke run
FULL_SIZES = (1000, 13320)
STAGES = ("import", "re-import", "remap", "split", "check-leakage", "features", "train", "predict", "evaluate", "maps")


# --- the tree ------------------------------------------------------------------------
def read_lists(real: Path = REAL) -> tuple[bytes, list[bytes], list[bytes]]:
    """``classInd.txt`` bytes and the fold-1 train/test lines (bytes, line endings kept)."""
    class_ind = (real / "classInd.txt").read_bytes()
    train = (real / "trainlist01.txt").read_bytes().splitlines(keepends=True)
    test = (real / "testlist01.txt").read_bytes().splitlines(keepends=True)
    return class_ind, [x for x in train if x.strip()], [x for x in test if x.strip()]


def chosen(lines: list[tuple[str, bytes]], n: int) -> list[tuple[str, bytes]]:
    """The first ``n`` of a fixed permutation, so every size is a subset of the next."""
    order = np.random.default_rng(0).permutation(len(lines))
    return [lines[i] for i in order[:n]]


def clip_relpath(line: bytes) -> str:
    """``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi`` from a list line (label column dropped)."""
    return line.decode().strip().split()[0]


def write_one(args: tuple[str, int]) -> None:
    from fiftyone_genre.demo.clips import write_clip

    path, seed = args
    if not os.path.exists(path):
        write_clip(path, "Action", duration=2.0, fps=8.0, size=(64, 48), container="avi", seed=seed)


def build_master(work: Path, entries: list[tuple[str, bytes]]) -> Path:
    """Tiny unique clips for every chosen entry, written once and reused by later runs."""
    import multiprocessing as mp

    media = work / "master" / "UCF-101"
    todo = [(str(media / clip_relpath(line)), i) for i, (_, line) in enumerate(entries)]
    missing = [t for t in todo if not os.path.exists(t[0])]
    if missing:
        print(f"writing {len(missing)} tiny clips under {media} (once; reused by later runs) ...", flush=True)
        for path, _ in missing:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with mp.get_context("fork").Pool(2) as pool:
            pool.map(write_one, missing, chunksize=64)
    return media


def build_tree(work: Path, master: Path, class_ind: bytes, entries: list[tuple[str, bytes]], n: int) -> Path:
    """``work/n<N>/`` with ``UCF-101/`` (hard links into the master) and the trimmed official lists."""
    root = work / f"n{n}"
    if root.exists():
        shutil.rmtree(root)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_bytes(class_ind)
    mine = entries[:n]
    for name in ("trainlist01.txt", "testlist01.txt"):
        (lists / name).write_bytes(b"".join(line for which, line in mine if which == name))
    for _, line in mine:
        rel = clip_relpath(line)
        dst = root / "UCF-101" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(master / rel, dst)
    return root


# --- running a step in a forked child -----------------------------------------------
class Measured(dict):
    """``wall_s``, ``rss_mb``, ``ok``, ``log`` of one forked step."""


def in_child(fn: Callable[[], object], log: Path) -> Measured:
    """Run ``fn`` in a forked child with stdout/stderr to ``log``; its own wall time and peak RSS."""
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            rc = fn()
            code = int(rc) if isinstance(rc, int) else 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return Measured(wall_s=wall, rss_mb=usage.ru_maxrss / 1024.0, ok=ok, log=str(log))


def cli(*args: str) -> Callable[[], int]:
    def run() -> int:
        from fiftyone_genre.cli import main

        return main(list(args))

    return run


# --- synthetic features and floors (run inside children) ----------------------------
def write_synthetic_cache(name: str, cache_dir: Path, config_path: Path) -> int:
    """Paper-size cache entries for every sample, under the key ``features`` will look up."""
    import fiftyone as fo

    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.features.cache import ClipFeatures, FeatureCache

    fcfg = load_experiment(config_path).features
    cache = FeatureCache(cache_dir, fcfg)
    rng = np.random.default_rng(0)
    for i, path in enumerate(fo.load_dataset(name).values("filepath")):
        if cache.lookup(path) is not None:
            continue
        visual = rng.standard_normal((STEPS, VISUAL_DIM), dtype=np.float32)
        visual[:, i % 101] += 2.0  # a learnable signal; the numbers do not matter here
        audio = rng.standard_normal((STEPS, AUDIO_DIM), dtype=np.float32)
        ts = np.arange(STEPS, dtype=np.float64) / 4.0
        cache.put(path, ClipFeatures(visual, audio, ts, has_audio=True, duration=STEPS / 4.0))
    return 0


def quick_import(root: Path, name: str) -> int:
    """Setup when the import stage is skipped: ``import --no-metadata``, then metadata from a PyAV probe."""
    import av
    import fiftyone as fo

    from fiftyone_genre.cli import main

    rc = main(["import", "ucf101", str(root), "--dataset", name, "--fold", "1", "--no-metadata"])
    ds = fo.load_dataset(name)
    metadata = []
    for path in ds.values("filepath"):
        with av.open(path) as c:
            s = c.streams.video[0]
            rate = float(s.average_rate or 0)
            metadata.append(fo.VideoMetadata(
                size_bytes=os.path.getsize(path), mime_type="video/x-msvideo", frame_width=s.codec_context.width,
                frame_height=s.codec_context.height, frame_rate=rate, total_frame_count=s.frames,
                duration=float(c.duration or 0) / 1e6, encoding_str=s.codec_context.name,
            ))
    ds.set_values("metadata", metadata)
    return rc


def floor_import(root: Path) -> int:
    """PyAV header probe of every file, then bare ``add_samples`` into a throwaway dataset."""
    import av
    import fiftyone as fo

    paths = sorted(str(p) for p in (root / "UCF-101").rglob("*.avi"))
    t0 = time.perf_counter()
    for p in paths:
        with av.open(p) as c:
            s = c.streams.video[0]
            _ = (s.average_rate, s.frames, s.codec_context.width, c.duration)
    probe = time.perf_counter() - t0
    ds = fo.Dataset()
    t0 = time.perf_counter()
    ds.add_samples([fo.Sample(filepath=p) for p in paths], progress=False)
    add = time.perf_counter() - t0
    ds.delete()
    print(json.dumps({"probe_s": probe, "add_samples_s": add}))
    return 0


def floor_model(name: str, config_path: Path, which: str) -> int:
    """Read every window from the pack (train split, or all) + a bare no-grad forward pass."""
    import fiftyone as fo
    import torch

    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.modeling.dataset import collate_labeled, load_window_data
    from fiftyone_genre.modeling.model import build_model

    exp = load_experiment(config_path)
    data = load_window_data(fo.load_dataset(name), exp.train, record_errors=False)
    splits = ["train"] if which == "train" else ["train", "val", "test"]
    net = build_model(exp.model, data.visual_dim, data.audio_dim, len(data.genres)).eval()
    bs = exp.train.batch_size if which == "train" else exp.predict.batch_size
    read_s = fwd_s = 0.0
    for split in splits:
        ds = data.splits[split]
        for i in range(0, len(ds), bs):
            t0 = time.perf_counter()
            batch = collate_labeled([ds[j] for j in range(i, min(len(ds), i + bs))])
            t1 = time.perf_counter()
            with torch.inference_mode():
                net(batch["visual"], batch["audio"], batch["mask"])
            read_s += t1 - t0
            fwd_s += time.perf_counter() - t1
    print(json.dumps({"read_s": read_s, "forward_s": fwd_s}))
    return 0


def floor_set_values(name: str) -> int:
    """``set_values`` of fields shaped like predict's (label + embedding + per-modality labels)."""
    import fiftyone as fo

    ds = fo.load_dataset(name)
    n = len(ds)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    labels = [fo.Classification(label="Action", confidence=0.5, logits=rng.random(6).tolist()) for _ in range(n)]
    ds.set_values("floor_pred", labels)
    ds.set_values("floor_pred_visual", [fo.Classification(label="Action", confidence=0.5) for _ in range(n)])
    ds.set_values("floor_pred_audio", [fo.Classification(label="Action", confidence=0.5) for _ in range(n)])
    ds.set_values("floor_embedding", [rng.random(128).astype(np.float32) for _ in range(n)])
    wall = time.perf_counter() - t0
    for f in ("floor_pred", "floor_pred_visual", "floor_pred_audio", "floor_embedding"):
        ds.delete_sample_field(f)
    print(json.dumps({"set_values_s": wall}))
    return 0


def last_json(log: str) -> dict:
    for line in reversed(Path(log).read_text().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


# --- one size -------------------------------------------------------------------------
def bench_config(work: Path) -> Path:
    """paper_pool's features, cpu_fast's model/train (one epoch, CPU), paper split."""
    import yaml

    from fiftyone_genre.config import load_experiment

    pool = load_experiment("paper_pool").to_dict()
    fast = load_experiment("cpu_fast").to_dict()
    cfg = {
        "features": pool["features"],
        "model": fast["model"],
        "train": {**fast["train"], "epochs": 1, "patience": 0, "num_workers": 0, "device": "cpu"},
        "split": pool["split"],
        "predict": {**fast["predict"], "device": "cpu"},
    }
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_size(work: Path, root: Path, n: int, config: Path, tag: str, skip: set[str]) -> dict[str, Measured]:
    name = f"bench-scale-{tag}-{n}"
    logs = work / f"logs{n}"
    logs.mkdir(exist_ok=True)
    cache, model = work / f"cache{n}", work / f"model{n}"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(model, ignore_errors=True)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("(libraries only)", lambda: 0),
        ("import", cli("import", "ucf101", str(root), "--dataset", name, "--fold", "1")),
        ("re-import", cli("import", "ucf101", str(root), "--dataset", name, "--fold", "1")),
        ("remap", cli("remap", "--dataset", name)),
        ("split", cli("split", "--dataset", name, "--config", str(config))),
        ("check-leakage", cli("check-leakage", "--dataset", name)),
        ("(synthetic cache write)", lambda: write_synthetic_cache(name, cache, config)),
        ("features", cli("features", "--dataset", name, "--config", str(config), "--cache-dir", str(cache))),
        ("train", cli("train", "--dataset", name, "--config", str(config), "--out", str(model), "--epochs", "1")),
        ("predict", cli("predict", "--dataset", name, "--model", str(model), "--device", "cpu")),
        ("evaluate", cli("evaluate", "--dataset", name, "--out", str(work / f"eval{n}"))),
        ("maps", cli("maps", "--dataset", name)),
        ("floor: import", lambda: floor_import(root)),
        ("floor: train", lambda: floor_model(name, config, "train")),
        ("floor: predict", lambda: floor_model(name, config, "all")),
        ("floor: write-back", lambda: floor_set_values(name)),
    ]
    if "import" in skip:  # the later stages still need the dataset (and its metadata: predict probes without it)
        steps.insert(1, ("(import --no-metadata + PyAV metadata)", lambda: quick_import(root, name)))
    results: dict[str, Measured] = {}
    for i, (stage, fn) in enumerate(steps):
        if stage in skip:
            continue
        m = in_child(fn, logs / f"{i:02d}_{stage.strip('()').replace(' ', '_').replace(':', '')}.log")
        results[stage] = m
        state = "ok" if m["ok"] else f"FAILED (see {m['log']})"
        print(f"  n={n:6d} {stage:24s} {m['wall_s']:8.1f} s  {m['rss_mb']:7.0f} MB  {state}", flush=True)
        if not m["ok"] and not stage.startswith("floor"):
            print(Path(m["log"]).read_text()[-2000:], file=sys.stderr)
    in_child(lambda: __import__("fiftyone").delete_dataset(name), logs / "cleanup.log")
    return results


# --- the table ---------------------------------------------------------------------------
def floors(res: dict[str, Measured]) -> dict[str, float | None]:
    imp = last_json(res["floor: import"]["log"]) if res["floor: import"]["ok"] else {}
    tr = last_json(res["floor: train"]["log"]) if res["floor: train"]["ok"] else {}
    pr = last_json(res["floor: predict"]["log"]) if res["floor: predict"]["ok"] else {}
    wb = last_json(res["floor: write-back"]["log"]) if res["floor: write-back"]["ok"] else {}
    import_floor = imp["probe_s"] + imp["add_samples_s"] if imp else None
    return {
        "import": import_floor,
        "re-import": import_floor,
        "train": tr["read_s"] + tr["forward_s"] if tr else None,
        "predict": (pr["read_s"] + pr["forward_s"] + wb.get("set_values_s", 0.0)) if pr else None,
    }


def _f(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def table(sizes: list[int], results: dict[int, dict[str, Measured]]) -> tuple[str, dict]:
    small, big = min(sizes), max(sizes)
    fl = {n: floors(results[n]) for n in sizes}
    head = ["stage"]
    for n in sizes:
        head += [f"wall s @{n}", f"ms/clip @{n}", f"RSS MB @{n}", f"floor s @{n}", f"x floor @{n}"]
    head += [f"per-clip {big}/{small} (<= 1.3)", "target vs floor", "meets"]
    rows, summary = [], {}
    for stage in ("(libraries only)", "(import --no-metadata + PyAV metadata)", "(synthetic cache write)", *STAGES):
        if stage not in results[small]:
            continue
        row, ok = [stage], True
        for n in sizes:
            m = results[n][stage]
            floor = fl[n].get(stage)
            ratio = m["wall_s"] / floor if floor else None
            row += [_f(m["wall_s"], ".1f") + ("" if m["ok"] else " FAILED"), _f(1000 * m["wall_s"] / n, ".2f"),
                    _f(m["rss_mb"], ".0f"), _f(floor, ".1f"), _f(ratio, ".2f")]
            ok = ok and m["ok"]
        scale = (results[big][stage]["wall_s"] / big) / (results[small][stage]["wall_s"] / small)
        target, meets = "", []
        if not stage.startswith("("):
            meets.append(scale <= 1.3)
        ratio_big = results[big][stage]["wall_s"] / fl[big][stage] if fl[big].get(stage) else None
        if stage == "import":
            target = "<= 2x floor"
            meets.append(ratio_big is not None and ratio_big <= 2.0)
        elif stage == "re-import":
            target = "<= 1x import floor"
            meets.append(ratio_big is not None and ratio_big <= 1.0)
        elif stage == "train":
            rss = results[big]["train"]["rss_mb"] / results[small]["train"]["rss_mb"]
            target = f"RSS {big}/{small} = {rss:.2f} (<= 1.2)"
            meets.append(rss <= 1.2)
        verdict = "" if not meets else ("yes" if all(meets) and ok else "NO")
        row += [f"{scale:.2f}", target, verdict]
        rows.append(row)
        summary[stage] = {"scale": scale, "meets": verdict, **{str(n): dict(results[n][stage]) for n in sizes}}
    floor_rows = []
    for n in sizes:
        res = results[n]
        parts = []
        for key in ("floor: import", "floor: train", "floor: predict", "floor: write-back"):
            data = last_json(res[key]["log"]) if res[key]["ok"] else {"failed": True}
            parts.append(f"{key.split(': ')[1]} " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                                            for k, v in data.items()))
        floor_rows.append(f"floors @{n}: " + "; ".join(parts))
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows), "", *floor_rows]
    summary["floors"] = {str(n): fl[n] for n in sizes}
    return "\n".join(out), summary


# --- database ----------------------------------------------------------------------------
def private_mongod(work: Path) -> subprocess.Popen | None:
    """A mongod of our own unless FIFTYONE_DATABASE_URI is set (the tests' private one, say)."""
    if os.environ.get("FIFTYONE_DATABASE_URI"):
        return None
    from fiftyone_genre import database

    dbpath = work / "db"
    shutil.rmtree(dbpath, ignore_errors=True)
    proc, uri = database.start_private_mongod(dbpath)
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    return proc


def preload() -> None:
    """Import the libraries once, before forking: each stage then times its work, not Python imports.

    Nothing here starts threads or opens the database (both unsafe across fork).
    """
    import importlib

    for name in ("fiftyone", "torch", "av", "matplotlib.figure", "sklearn.metrics", "torch.utils.tensorboard",
                 "fiftyone_genre.cli", "fiftyone_genre.modeling.train", "fiftyone_genre.inference.predict", "fiftyone_genre.analysis",
                 "fiftyone_genre.labels.split", "fiftyone_genre.labels.remap", "fiftyone_genre.features", "fiftyone_genre.sources"):
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} (a smoke run)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help=f"clip counts (default {FULL_SIZES})")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temp folder, removed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenMP threads in every stage (default 1: on a shared 2-core machine two "
                             "OpenMP threads spin against each other and a training step runs 10-20x slower)")
    parser.add_argument("--skip", nargs="*", default=None, choices=STAGES,
                        help=f"stages to leave out (default: none; --quick: {' '.join(QUICK_SKIP)}); "
                        "without import the dataset is imported untimed with --no-metadata + a PyAV probe")
    args = parser.parse_args(argv)
    if not REAL.is_dir():
        print(f"bench_scale: the real UCF101 lists are not at {REAL} (../shared/real); nothing to run")
        return 2
    sizes = sorted(set(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)))
    if len(sizes) < 2 or sizes[-1] > 13320 or sizes[0] < 10:
        parser.error("give at least two sizes between 10 and 13320")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch is imported (preload)
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    mongod = private_mongod(work)
    try:
        return _run(args, sizes, work)
    finally:
        if mongod is not None:
            mongod.terminate()
            mongod.wait(timeout=30)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, sizes: list[int], work: Path) -> int:
    preload()

    class_ind, train, test = read_lists()
    lines = [("trainlist01.txt", x) for x in train] + [("testlist01.txt", x) for x in test]
    entries = chosen(lines, max(sizes))
    master = build_master(work, entries)
    config = bench_config(work)
    tag = f"{os.getpid()}"
    skip = set(args.skip if args.skip is not None else (QUICK_SKIP if args.quick else ()))
    results = {}
    for n in sizes:
        root = build_tree(work, master, class_ind, entries, n)
        results[n] = run_size(work, root, n, config, tag, skip)
    text, summary = table(sizes, results)
    print(f"\nbench_scale: {', '.join(map(str, sizes))} clips (UCF101 fold-1 lists); "
          f"{STEPS} steps x ({VISUAL_DIM}+{AUDIO_DIM}) float32 per clip; {args.threads} torch thread(s); skipped: {', '.join(sorted(skip)) or 'none'}; "
          "'(libraries only)' is a forked child doing nothing: the RSS every stage starts from\n")
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"sizes": sizes, "stages": summary}, indent=2, default=str))
    return 0 if all(results[n][s]["ok"] for n in sizes for s in results[n]) else 1


if __name__ == "__main__":
    sys.exit(main())
