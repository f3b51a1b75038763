"""YouTube-8M without the videos: the 60 real validate shards through every stage, against two peers.

    .venv/bin/python benchmarks/bench_yt8m.py                 # 5 split seeds (~30-40 min on 2 cores)
    .venv/bin/python benchmarks/bench_yt8m.py --seeds 1       # one seed, a quick look
    .venv/bin/python benchmarks/bench_yt8m.py --markdown out.md   # the tables for docs/performance.md

Reads ``../shared/real/yt8m`` (``validate/validate0000..0059.tfrecord``, 17,499
records, and ``vocabulary.csv``); without it, says so and exits 0. Every stage
runs as its own process on a private mongod, so each row's peak RSS is that
stage's own (``os.wait4``), and its wall time is measured inside the process
(interpreter and import start-up excluded):

* import: ``import_yt8m`` of the 60 shards (features-only samples, features
  into the pack), against its floor measured in the same process: parsing
  every record (the project's TFRecord reader) + a bare ``add_samples`` of as
  many samples (placeholder path only); then the re-import;
* remap (the shipped mapping), then per split seed: split, check-leakage,
  train (``--config yt8m``) fused, visual-only and audio-only, and the two
  peers trained on the same training samples with the same features:
  scikit-learn ``LogisticRegression(class_weight="balanced")`` (YouTube-8M's
  starter-code baseline for video-level features) and an MLP with one hidden
  layer of 512 units; all scored on the same held-out test records with the
  project's one metrics function (macro-F1 over the genres in the truth or
  the predictions, sklearn's default);
* predict (the first seed's fused model, all 17,499 records), evaluate, maps.

Macro-F1 on this data is noise-dominated: with the shipped mapping the test
part holds ~2 Science Fiction, ~2 Romance and 0-1 Horror records, so one
record moves macro-F1 by several hundredths. The benchmark therefore repeats
the split over several seeds, prints every seed and mean +- sd, and for each
target says whether it is met on the means and whether the seeds resolve it
(the mean paired difference is more than twice its standard error).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "real" / "yt8m"
MODALITIES = ("fused", "visual", "audio")
PEERS = ("LR", "MLP")


def _private_database() -> None:
    """Run on a private mongod (the tests' one), never the user's datasets."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "tests"))
    import conftest  # noqa: F401 - starts the private mongod, sets the env


# --------------------------------------------------------------------------- the stages (each in its own process)


def _stage_import(p: dict) -> dict:
    import fiftyone as fo

    from fiftyone_genre.sources import import_yt8m
    from fiftyone_genre.sources.common import ImportReport
    from fiftyone_genre.sources.features_only import ensure_placeholder
    from fiftyone_genre.sources.yt8m import iter_tfrecord, parse_record

    files = sorted((REAL / "validate").glob("*.tfrecord"))
    for f in files:  # warm the page cache: floor and import read the same bytes
        f.read_bytes()
    t0 = time.perf_counter()
    report = ImportReport("yt8m", "", "")
    n = sum(1 for f in files for _, payload in iter_tfrecord(f, report) if parse_record(payload))
    parse_s = time.perf_counter() - t0
    placeholder = str(ensure_placeholder(Path(p["tmp"]) / "floor"))
    scratch = fo.Dataset()
    t0 = time.perf_counter()
    scratch.add_samples([fo.Sample(filepath=placeholder) for _ in range(n)], progress=False)
    bare_s = time.perf_counter() - t0
    scratch.delete()
    ds = fo.Dataset(p["dataset"], persistent=True)
    kw = dict(vocabulary=REAL / "vocabulary.csv", features_dir=p["store"])
    t0 = time.perf_counter()
    first = import_yt8m(ds, REAL / "validate", **kw)
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = import_yt8m(ds, REAL / "validate", **kw)
    return {
        "records": n, "parse_s": parse_s, "bare_add_s": bare_s, "import_s": import_s,
        "reimport_s": time.perf_counter() - t0, "imported": first.imported, "features_only": first.features_only,
        "problems": len(first.problems), "reimported": again.imported,
    }  # fmt: skip


def _stage_remap(p: dict) -> dict:
    import fiftyone as fo

    from fiftyone_genre.labels.remap import remap

    return {"counts": remap(fo.load_dataset(p["dataset"])).counts}


def _stage_split(p: dict) -> dict:
    import fiftyone as fo

    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.labels.split import split_dataset

    cfg = load_experiment("yt8m", split={"seed": p["seed"]}).split
    return {"counts": split_dataset(fo.load_dataset(p["dataset"]), cfg).counts}


def _stage_leakage(p: dict) -> dict:
    import fiftyone as fo

    from fiftyone_genre.labels.leakage import check_leakage

    report = check_leakage(fo.load_dataset(p["dataset"]), hash_cache=Path(p["tmp"]) / "hashes.sqlite")
    return {"samples": report.samples, "groups": report.groups}


def _stage_train(p: dict) -> dict:
    import fiftyone as fo

    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.modeling.train import train

    overrides = {"seed": p["seed"], "device": "cpu", **({"epochs": p["epochs"]} if p.get("epochs") else {})}
    report = train(fo.load_dataset(p["dataset"]), load_experiment("yt8m", train=overrides), p["out"], modality=p["modality"])
    return {"test": _slim(report.test), "best_epoch": report.best_epoch, "epochs_run": report.epochs_run}


def _slim(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("accuracy", "macro_f1", "per_genre", "num_videos")}


def _peer_data(dataset, store) -> tuple[list[str], dict[str, tuple[Any, Any]]]:
    """``(genres, {split: (X [n, 1152], y)})`` read from the pack the model reads."""
    import numpy as np

    from fiftyone_genre.modeling.dataset import labelled_rows
    from fiftyone_genre.modeling.windows import run_genres

    rows = labelled_rows(dataset)
    genres = run_genres(rows.labels)
    out = {}
    for split in ("train", "test"):
        keep = [i for i, s in enumerate(rows.splits) if s == split]
        x = np.stack([np.concatenate(store.clip(f"yt8m:{rows.yt8m_ids[i]}").read(), axis=1)[0] for i in keep])
        out[split] = (x, np.array([genres.index(rows.labels[i]) for i in keep]))
    return genres, out


def _stage_peers(p: dict) -> dict:
    import fiftyone as fo
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from fiftyone_genre.modeling.metrics import classification_metrics
    from fiftyone_genre.modeling.yt8m_store import require_store

    ds = fo.load_dataset(p["dataset"])
    genres, data = _peer_data(ds, require_store(ds, "yt8m-video"))
    columns = {"fused": slice(0, 1152), "visual": slice(0, 1024), "audio": slice(1024, 1152)}
    out: dict[str, Any] = {}
    for modality, cols in columns.items():
        for name in PEERS:
            model = (
                LogisticRegression(class_weight="balanced", max_iter=5000) if name == "LR"
                else MLPClassifier(hidden_layer_sizes=(512,), random_state=p["seed"], max_iter=500)
            )  # fmt: skip
            t0 = time.perf_counter()
            model.fit(data["train"][0][:, cols], data["train"][1])
            pred = model.predict(data["test"][0][:, cols])
            out[f"{name} {modality}"] = {
                "test": _slim(classification_metrics(data["test"][1], pred, genres)), "fit_s": time.perf_counter() - t0,
            }  # fmt: skip
    return out


def _stage_predict(p: dict) -> dict:
    import fiftyone as fo

    from fiftyone_genre.config import PredictConfig
    from fiftyone_genre.inference.predict import predict

    report = predict(fo.load_dataset(p["dataset"]), p["model"], PredictConfig(device="cpu", batch_size=256))
    return {"predicted": report.num_predicted, "failed": report.num_failed}


def _stage_evaluate(p: dict) -> dict:
    import fiftyone as fo

    from fiftyone_genre.analysis.evaluation import evaluate

    report = evaluate(fo.load_dataset(p["dataset"]), split="test", out_dir=Path(p["tmp"]) / "eval")
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1}


def _stage_maps(p: dict) -> dict:
    import fiftyone as fo

    from fiftyone_genre.analysis.maps import compute_maps

    return {"samples": compute_maps(fo.load_dataset(p["dataset"])).num_samples}


STAGES = {
    "import": _stage_import, "remap": _stage_remap, "split": _stage_split, "check-leakage": _stage_leakage,
    "train": _stage_train, "peers": _stage_peers, "predict": _stage_predict, "evaluate": _stage_evaluate,
    "maps": _stage_maps,
}  # fmt: skip


def _child(stage: str, params: str) -> int:
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    sys.path.insert(0, str(REPO))
    p = json.loads(params)
    t0 = time.perf_counter()
    result = STAGES[stage](p)
    result["wall_s"] = time.perf_counter() - t0
    print("\n" + json.dumps(result, default=str))
    return 0


def run_stage(stage: str, **params: Any) -> dict:
    """One stage in a fresh process: its result, wall time (inside it) and peak RSS in MB (``os.wait4``)."""
    cmd = [sys.executable, __file__, "--child", stage, "--params", json.dumps(params, default=str)]
    log = Path(params["tmp"]) / f"{stage}.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed ({proc.returncode}): {out[-1000:]}\n{log.read_text()[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024
    print(f"  {stage} {params.get('modality', '')} seed {params.get('seed', '-')}: {result['wall_s']:.1f} s, "
          f"{result['rss_mb']:.0f} MB", flush=True)  # fmt: skip
    return result


# --------------------------------------------------------------------------- the run and its tables


def run(seeds: list[int], epochs: int | None, tmp: Path) -> dict:
    name = f"bench-yt8m-{uuid.uuid4().hex[:8]}"
    common = {"dataset": name, "tmp": str(tmp)}
    out: dict[str, Any] = {"seeds": seeds, "stages": {}, "runs": {}}
    try:
        out["stages"]["import"] = run_stage("import", store=str(tmp / "store"), **common)
        out["stages"]["remap"] = run_stage("remap", **common)
        for seed in seeds:
            runs = out["runs"][seed] = {}
            out["stages"].setdefault("split", []).append(run_stage("split", seed=seed, **common))
            out["stages"].setdefault("check-leakage", []).append(run_stage("check-leakage", **common))
            for modality in MODALITIES:
                res = run_stage("train", seed=seed, modality=modality, epochs=epochs,
                                out=str(tmp / f"model-{seed}-{modality}"), **common)  # fmt: skip
                out["stages"].setdefault(f"train {modality}", []).append(res)
                runs[f"CNN-LSTM {modality}"] = res
            peers = run_stage("peers", seed=seed, **common)
            out["stages"].setdefault("peers (LR + MLP, 3 modalities)", []).append(peers)
            runs.update({k: v for k, v in peers.items() if isinstance(v, dict)})
        last = str(tmp / f"model-{seeds[-1]}-fused")  # the split on the dataset is the last seed's
        out["stages"]["predict"] = run_stage("predict", model=last, **common)
        out["stages"]["evaluate"] = run_stage("evaluate", **common)
        out["stages"]["maps"] = run_stage("maps", **common)
    finally:
        import fiftyone as fo

        if fo.dataset_exists(name):
            fo.delete_dataset(name)
    return out


def _ms(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _models(result: dict) -> list[str]:
    return [f"{kind} {m}" for kind in ("CNN-LSTM", *PEERS) for m in MODALITIES]


def _metric(result: dict, model: str, key: str) -> list[float]:
    return [result["runs"][s][model]["test"][key] for s in result["seeds"]]


def scores_table(result: dict) -> list[str]:
    seeds = result["seeds"]
    head = " | ".join(f"seed {s}" for s in seeds)
    lines = [f"| model | accuracy: {head} | accuracy mean ± sd | macro-F1: {head} | macro-F1 mean ± sd |",
             "|---|" + "---:|" * (2 * len(seeds) + 2)]  # fmt: skip
    for model in _models(result):
        acc, f1 = _metric(result, model, "accuracy"), _metric(result, model, "macro_f1")
        lines.append(f"| {model} | " + " | ".join(f"{x:.3f}" for x in acc) + f" | {_ms(acc)} | "
                     + " | ".join(f"{x:.3f}" for x in f1) + f" | {_ms(f1)} |")  # fmt: skip
    return lines


def genre_table(result: dict) -> list[str]:
    first = result["runs"][result["seeds"][0]]["CNN-LSTM fused"]["test"]["per_genre"]
    genres = list(first)
    support = {gn: [result["runs"][s]["CNN-LSTM fused"]["test"]["per_genre"][gn]["support"] for s in result["seeds"]]
               for gn in genres}  # fmt: skip
    lines = ["| model | " + " | ".join(f"{gn} F1 (test records {'/'.join(map(str, support[gn]))})" for gn in genres) + " |",
             "|---|" + "---:|" * len(genres)]  # fmt: skip
    for model in _models(result):
        cells = []
        for gn in genres:  # seeds whose test part has the genre (F1 of an absent genre means nothing)
            f1 = [result["runs"][s][model]["test"]["per_genre"][gn]["f1"] for s, n in zip(result["seeds"], support[gn]) if n]
            cells.append(_ms(f1) if f1 else "–")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def _paired(result: dict, a: str, b: str, key: str, margin: float = 0.0) -> tuple[float, float, bool, bool]:
    """Mean of ``a - b + margin`` over seeds, its sd, whether the mean is >= 0, and whether the seeds resolve it."""
    d = [x - y + margin for x, y in zip(_metric(result, a, key), _metric(result, b, key))]
    mean = statistics.mean(d)
    sd = statistics.stdev(d) if len(d) > 1 else float("nan")
    resolved = len(d) > 1 and abs(mean) > 2 * sd / len(d) ** 0.5
    return mean, sd, mean >= 0, resolved


def targets_table(result: dict) -> list[str]:
    rows = [
        ("fused macro-F1 >= LR fused", "CNN-LSTM fused", "LR fused", "macro_f1", 0.0),
        ("fused macro-F1 within 0.01 of MLP fused", "CNN-LSTM fused", "MLP fused", "macro_f1", 0.01),
        ("fused accuracy >= LR fused", "CNN-LSTM fused", "LR fused", "accuracy", 0.0),
        ("fused macro-F1 > visual-only", "CNN-LSTM fused", "CNN-LSTM visual", "macro_f1", 0.0),
        ("visual-only macro-F1 > audio-only", "CNN-LSTM visual", "CNN-LSTM audio", "macro_f1", 0.0),
        ("(context) fused accuracy > visual-only", "CNN-LSTM fused", "CNN-LSTM visual", "accuracy", 0.0),
        ("(context) visual-only accuracy > audio-only", "CNN-LSTM visual", "CNN-LSTM audio", "accuracy", 0.0),
    ]
    lines = ["| target | paired difference, mean ± sd over seeds | met on the means | resolved by the seeds |",
             "|---|---:|:---:|---|"]  # fmt: skip
    for label, a, b, key, margin in rows:
        mean, sd, met, resolved = _paired(result, a, b, key, margin)
        verdict = "yes" if resolved else "no: the data cannot tell (difference within noise)"
        shown = f"{mean:+.3f} ± {sd:.3f}" + (f" (incl. the {margin} margin)" if margin else "")
        lines.append(f"| {label} | {shown} | {'yes' if met else 'no'} | {verdict} |")
    return lines


def stage_table(result: dict) -> list[str]:
    targets = {"train fused": "< 2048 MB", "train visual": "< 2048 MB", "train audio": "< 2048 MB",
               "predict": "< 2048 MB", "maps": "< 2048 MB"}  # fmt: skip
    lines = ["| stage | wall s (per run) | peak RSS MB | target |", "|---|---:|---:|---|"]
    for stage, res in result["stages"].items():
        runs = res if isinstance(res, list) else [res]
        wall = "/".join(f"{r['wall_s']:.1f}" for r in runs)
        lines.append(f"| {stage} | {wall} | {max(r['rss_mb'] for r in runs):.0f} | {targets.get(stage, '')} |")
    imp = result["stages"]["import"]
    floor = imp["parse_s"] + imp["bare_add_s"]
    lines += [
        "",
        f"Import of {imp['records']:,} records ({imp['features_only']:,} features-only, {imp['problems']} problems): "
        f"{imp['import_s']:.1f} s against its floor {floor:.1f} s (parse {imp['parse_s']:.1f} s + bare `add_samples` "
        f"{imp['bare_add_s']:.1f} s) = **{imp['import_s'] / floor:.2f}x** (target <= 2x); re-import "
        f"{imp['reimport_s']:.1f} s = {imp['reimport_s'] / floor:.2f}x, {imp['reimported']} added.",
    ]
    return lines


def markdown(result: dict) -> str:
    counts = result["stages"]["remap"]["counts"]
    genres = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    parts = [
        f"Records per genre with the shipped mapping: {genres}. Split seeds: {', '.join(map(str, result['seeds']))}.",
        "", "**Held-out test records, per split seed** (macro-F1 over the genres in the truth or the predictions):", "",
        *scores_table(result), "", "**Per-genre F1, mean ± sd over the seeds whose test part has the genre:**", "", *genre_table(result), "",
        "**Targets** (paired over the seeds; resolved = the mean difference is more than twice its standard error):",
        "", *targets_table(result), "", "**Stages** (each in its own process):", "", *stage_table(result),
    ]  # fmt: skip
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="split seeds 0..N-1 (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="override the yt8m config's epochs")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    parser.add_argument("--json", type=Path, default=None, help="also write every number to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.params)
    if not (REAL / "validate").is_dir() or not (REAL / "vocabulary.csv").is_file():
        print(f"skipped: the real YouTube-8M shards are not at {REAL} (validate/*.tfrecord + vocabulary.csv)")
        return 0
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still stops its mongod
    _private_database()
    print(f"YouTube-8M benchmark: 60 shards, seeds 0..{args.seeds - 1}, {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-yt8m-") as tmp:
        result = run(list(range(args.seeds)), args.epochs, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
