"""The main job end to end on generated media: the `make demo` pipeline.

generate cross-modal clips -> import -> remap -> split -> extract features ->
train -> predict -> evaluate (+ embeddings map). Every step is the same library
call a user makes; re-running reuses what is already there (the import adds
nothing, features come from the cache) and replaces only the demo's own outputs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from fiftyone_genre import genres as g

DEFAULT_CONFIG = "cpu_fast"  # shipped in fiftyone_genre/configs/
DEFAULT_DATASET = "genre-demo"


@dataclass
class DemoReport:
    dataset: str
    out_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    ablation: str | None = None

    def __str__(self) -> str:
        lines = [f"Demo dataset '{self.dataset}', outputs in {self.out_dir}", "", "Stage timings:"]
        lines += [f"  {k:<10} {v:7.1f} s" for k, v in self.timings.items()]
        lines.append(f"  {'total':<10} {sum(self.timings.values()):7.1f} s")
        return "\n".join(lines)


def run_demo(
    out_dir: str | Path,
    dataset_name: str = DEFAULT_DATASET,
    config_path: str | Path | None = None,
    clips_per_genre: int = 24,
    duration: float = 6.0,
    seed: int = 0,
    ablate: bool = True,
) -> DemoReport:
    """Run every stage on a generated dataset and print what a user would look at."""
    import fiftyone as fo

    from fiftyone_genre import analysis, features, predict, remap, sources, split, synth, train
    from fiftyone_genre.config import load_experiment

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_experiment(config_path or DEFAULT_CONFIG)
    if cfg.features.cache_dir is None:
        cfg.features.cache_dir = str(out / "feature_cache")
    report = DemoReport(dataset=dataset_name, out_dir=out)

    def stage(name: str):
        print(f"\n=== {name} ===", flush=True)
        return time.perf_counter()

    t = stage("generate demo media")
    media = out / "media"
    # Re-runs reuse the clips: rewriting them would change their mtimes and so
    # invalidate every feature-cache entry. The stamp is written last, so an
    # interrupted generation is redone.
    params = {"clips_per_genre": clips_per_genre, "duration": duration, "seed": seed}
    stamp = out / "media.json"
    if stamp.exists() and media.is_dir() and json.loads(stamp.read_text()) == params:
        n = sum(1 for p in media.rglob("*") if p.is_file())
        print(f"reusing {n} clips under {media} ({stamp.name} matches)")
    else:
        stamp.unlink(missing_ok=True)
        manifest = synth.generate(
            media, layout="folder", clips_per_class=clips_per_genre, duration=duration, seed=seed
        )
        stamp.write_text(json.dumps(params))
        print(f"{len(manifest.clips)} clips under {media} (visual cue narrows to two genres, audio decides)")
    report.timings["generate"] = time.perf_counter() - t

    t = stage("import")
    dataset = fo.load_dataset(dataset_name) if fo.dataset_exists(dataset_name) else fo.Dataset(dataset_name)
    dataset.persistent = True
    print(sources.import_folder(dataset, media))
    report.timings["import"] = time.perf_counter() - t

    t = stage("remap + split")
    print(remap.remap(dataset))
    print(split.split_dataset(dataset, cfg.split))
    print(split.balance_report(dataset))
    report.timings["remap+split"] = time.perf_counter() - t

    t = stage("features")
    print(features.extract_features(dataset, cfg.features, device=cfg.train.device))
    report.timings["features"] = time.perf_counter() - t

    t = stage("train")
    model_dir = out / "model"
    print(train.train(dataset, cfg, model_dir))
    report.timings["train"] = time.perf_counter() - t

    if ablate:
        t = stage("ablation (fused / visual / audio)")
        report.ablation = str(train.ablate(dataset, cfg, out / "ablation"))
        print(report.ablation)
        report.timings["ablation"] = time.perf_counter() - t

    t = stage("predict")
    print(predict.predict(dataset, model_dir, cfg.predict))
    report.timings["predict"] = time.perf_counter() - t

    t = stage("evaluate")
    test_view = dataset.match({g.SPLIT_FIELD: "test"})
    ev = analysis.evaluate(test_view, out_dir=out / "eval")
    print(ev)
    report.metrics = ev.to_json()
    (out / "metrics.json").write_text(json.dumps(report.metrics, indent=2))
    print(analysis.compute_maps(dataset))
    report.timings["evaluate"] = time.perf_counter() - t

    print("\n" + str(report))
    print(
        "\nOpen it in the App:\n"
        f"  make app            # or: FIFTYONE_DATABASE_NAME=<demo db> .venv/bin/fiftyone-genre app --dataset {dataset_name}\n"
        "then press ` (backtick) for the operator browser, or open the 'Genre' panel."
    )
    return report
