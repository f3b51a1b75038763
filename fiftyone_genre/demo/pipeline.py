"""The main job end to end on generated media: the `make demo` pipeline.

generate cross-modal clips -> import -> remap -> split -> extract features ->
train -> predict -> evaluate (+ embeddings map). Every step is the same library
call a user makes; re-running reuses what is already there (the import adds
nothing, features come from the cache) and replaces only the demo's own outputs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiftyone_genre import genres as g
from fiftyone_genre.report import Report

DEFAULT_CONFIG = "cpu_fast"  # shipped in fiftyone_genre/configs/
DEFAULT_DATASET = "genre-demo"

_APP_HINT = (
    "\nOpen it in the App:\n"
    "  make app            # or: FIFTYONE_DATABASE_NAME=<demo db> .venv/bin/fiftyone-genre app --dataset {dataset}\n"
    "then press ` (backtick) for the operator browser, or open the 'Genre' panel."
)


@dataclass
class DemoReport(Report):
    """Where the demo wrote its outputs, how long each stage took, and the test-split metrics."""

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


@contextmanager
def _stage(report: DemoReport, title: str, key: str) -> Iterator[None]:
    """Print the stage's banner and record its wall time under ``key``."""
    print(f"\n=== {title} ===", flush=True)
    start = time.perf_counter()
    yield
    report.timings[key] = time.perf_counter() - start


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
    from fiftyone_genre import features
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.inference import predict
    from fiftyone_genre.modeling import ablation, train

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_experiment(config_path or DEFAULT_CONFIG)
    if cfg.features.cache_dir is None:
        cfg.features.cache_dir = str(out / "feature_cache")
    report = DemoReport(dataset=dataset_name, out_dir=out)
    with _stage(report, "generate demo media", "generate"):
        media = generate_media(out, clips_per_genre, duration, seed)
    with _stage(report, "import", "import"):
        dataset = import_media(dataset_name, media)
    with _stage(report, "remap + split", "remap+split"):
        remap_and_split(dataset, cfg)
    with _stage(report, "features", "features"):
        print(features.extract_features(dataset, cfg.features, device=cfg.train.device))
    with _stage(report, "train", "train"):
        print(train.train(dataset, cfg, out / "model"))
    if ablate:
        with _stage(report, "ablation (fused / visual / audio)", "ablation"):
            report.ablation = str(ablation.ablate(dataset, cfg, out / "ablation"))
            print(report.ablation)
    with _stage(report, "predict", "predict"):
        print(predict.predict(dataset, out / "model", cfg.predict))
    with _stage(report, "evaluate", "evaluate"):
        report.metrics = evaluate_test_split(dataset, out)
    print("\n" + str(report))
    print(_APP_HINT.format(dataset=dataset_name))
    return report


def generate_media(out: Path, clips_per_genre: int, duration: float, seed: int) -> Path:
    """Write the demo clips under ``out/media``, or reuse them when ``media.json`` matches.

    Re-runs reuse the clips: rewriting them would change their mtimes and so
    invalidate every feature-cache entry. The stamp is written last, so an
    interrupted generation is redone.
    """
    from fiftyone_genre.demo import synth

    media = out / "media"
    params = {"clips_per_genre": clips_per_genre, "duration": duration, "seed": seed}
    stamp = out / "media.json"
    if stamp.exists() and media.is_dir() and json.loads(stamp.read_text()) == params:
        n = sum(1 for p in media.rglob("*") if p.is_file())
        print(f"reusing {n} clips under {media} ({stamp.name} matches)")
        return media
    stamp.unlink(missing_ok=True)
    manifest = synth.generate(media, layout="folder", clips_per_class=clips_per_genre, duration=duration, seed=seed)
    stamp.write_text(json.dumps(params))
    print(f"{len(manifest.clips)} clips under {media} (visual cue narrows to two genres, audio decides)")
    return media


def import_media(dataset_name: str, media: Path):
    """The persistent demo dataset (created or reopened) with every clip under ``media``."""
    import fiftyone as fo

    from fiftyone_genre import sources

    dataset = fo.load_dataset(dataset_name) if fo.dataset_exists(dataset_name) else fo.Dataset(dataset_name)
    dataset.persistent = True
    print(sources.import_folder(dataset, media))
    return dataset


def remap_and_split(dataset, cfg) -> None:
    """Folder names are genres (the folder mapping); then a leakage-free split and its balance."""
    from fiftyone_genre.labels import remap, split

    print(remap.remap(dataset))
    print(split.split_dataset(dataset, cfg.split))
    print(split.balance_report(dataset))


def evaluate_test_split(dataset, out: Path) -> dict[str, Any]:
    """Test-split metrics (also written to ``metrics.json``) and the embeddings map."""
    from fiftyone_genre import analysis

    ev = analysis.evaluate(dataset.match({g.SPLIT_FIELD: "test"}), out_dir=out / "eval")
    print(ev)
    metrics = _as_dict(ev)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(analysis.compute_maps(dataset))
    return metrics


def _as_dict(report: Report) -> dict[str, Any]:
    """A report's plain dict (what ``metrics.json`` holds)."""
    return report.to_dict()
