"""The main job end to end on generated media: the `make demo` pipeline.

generate cross-modal clips -> import -> remap -> split -> extract features ->
train -> predict -> evaluate (+ embeddings map). Every step is the same library
call a user makes; re-running reuses what is already there (the import adds
nothing, features come from the cache) and replaces only the demo's own outputs.

Besides the clips of one genre each (``media/<Genre>/``), the demo writes a few
**mixed** clips (``media/mixed/``, 20 s by default) whose genre changes
half-way, e.g. ``Action-then-Romance-00.mp4`` is Action for 10 s, then
Romance: the genre timeline has something to show. A clip that is two genres
has no single true genre, so the mixed clips have **no ground truth**: the
folder name ``mixed`` maps to no genre, remap leaves them unlabelled (tagged
``genre:unmapped``), split, training and evaluation skip them (the metrics
are the single-genre test clips'), and predict writes their label and
timeline like any clip's. Their true genre at each moment is in their name;
the saved view ``mixed-genre-clips`` opens them in the App.
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
#: source label (folder) of the clips whose genre changes half-way; it maps to no genre
MIXED_FOLDER = "mixed"
MIXED_VIEW = "mixed-genre-clips"

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
    mixed_clips: int = 6,
    mixed_duration: float = 20.0,
) -> DemoReport:
    """Run every stage on a generated dataset and print what a user would look at.

    ``mixed_clips`` clips of ``mixed_duration`` seconds change genre half-way
    (no ground truth, not scored; see the module docstring); 0 leaves them out.
    """
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
        media = generate_media(out, clips_per_genre, duration, seed, mixed_clips, mixed_duration)
    with _stage(report, "import", "import"):
        dataset = import_media(dataset_name, media)
    with _stage(report, "remap + split", "remap+split"):
        remap_and_split(dataset, cfg)
        save_mixed_view(dataset)
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


def generate_media(
    out: Path, clips_per_genre: int, duration: float, seed: int, mixed_clips: int = 0, mixed_duration: float = 20.0
) -> Path:
    """Write the demo clips under ``out/media``, or reuse them when ``media.json`` matches.

    Re-runs reuse the clips: rewriting them would change their mtimes and so
    invalidate every feature-cache entry. The stamp is written last, so an
    interrupted generation is redone.
    """
    from fiftyone_genre.demo import synth

    media = out / "media"
    params = {"clips_per_genre": clips_per_genre, "duration": duration, "seed": seed}
    if mixed_clips:
        params.update(mixed_clips=mixed_clips, mixed_duration=mixed_duration)
    stamp = out / "media.json"
    if stamp.exists() and media.is_dir() and json.loads(stamp.read_text()) == params:
        n = sum(1 for p in media.rglob("*") if p.is_file())
        print(f"reusing {n} clips under {media} ({stamp.name} matches)")
        return media
    stamp.unlink(missing_ok=True)
    manifest = synth.generate(media, layout="folder", clips_per_class=clips_per_genre, duration=duration, seed=seed)
    mixed = generate_mixed(media / MIXED_FOLDER, mixed_clips, mixed_duration, seed)
    stamp.write_text(json.dumps(params))
    print(f"{len(manifest.clips)} clips under {media} (visual cue narrows to two genres, audio decides)")
    if mixed:
        print(
            f"{len(mixed)} mixed clips under {media / MIXED_FOLDER} change genre after {mixed_duration / 2:g} s "
            f"(e.g. {mixed[0].name}); they have no single true genre and are not scored"
        )
    return media


def mixed_pairs(n: int) -> list[tuple[str, str]]:
    """``n`` (first, second) genres; each pair differs in both the picture's and the sound's cue.

    Genre ``i`` is followed by genre ``i + 3`` (mod 6): with the cue cycle of
    :data:`~fiftyone_genre.demo.clips.GENRE_CUES` that changes both cues.
    """
    genres = list(g.GENRES)
    return [(genres[i % 6], genres[(i + 3) % 6]) for i in range(n)]


def generate_mixed(folder: Path, n: int, duration: float, seed: int) -> list[Path]:
    """``n`` clips of ``duration`` s: the first genre of :func:`mixed_pairs` for half, then the second."""
    from fiftyone_genre.demo.clips import write_mixed_clip
    from fiftyone_genre.utils import track

    paths = []
    for i, (first, second) in track(list(enumerate(mixed_pairs(n))), total=n, desc="mixed clips"):
        name = f"{first}-then-{second}-{i:02d}.mp4".replace(" ", "_")
        paths.append(write_mixed_clip(folder / name, [first, second], duration / 2, seed=seed + i))
    return paths


def save_mixed_view(dataset) -> None:
    """The saved view ``mixed-genre-clips`` (the clips under ``media/mixed``), when there are any."""
    from fiftyone import ViewField as F

    view = dataset.match(F(f"{g.SOURCE_LABEL_FIELD}.label") == MIXED_FOLDER)
    if len(view) and not dataset.has_saved_view(MIXED_VIEW):
        dataset.save_view(MIXED_VIEW, view, description="clips whose genre changes half-way (no ground truth)")
        print(f"saved view '{MIXED_VIEW}': {len(view)} clips whose genre changes half-way (not scored)")


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
