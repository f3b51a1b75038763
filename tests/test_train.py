"""Training: reports, checkpoints, resume == uninterrupted, leakage refusal, torchrun, ablation, configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fiftyone_genre.config import load_experiment
from fiftyone_genre.modeling import model as M
from fiftyone_genre.modeling.ablation import ablate
from fiftyone_genre.modeling.train import train

from support.feature_data import balanced_videos, populate, tiny_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread; restored so other test modules keep theirs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def feature_dataset(dataset, tmp_path):
    populate(dataset, tmp_path, balanced_videos())
    return dataset


def test_train_writes_model_dir_and_learns(feature_dataset, tmp_path):
    out = tmp_path / "run"
    seen = []
    report = train(feature_dataset, tiny_config(epochs=3), out, progress=lambda f, label: seen.append(f))
    for name in ("best.pt", "last.pt", "experiment.yaml", "genres.json", "report.json", "report.txt",
                 "curves.png", "history.json"):
        assert (out / name).is_file(), name
    assert any((out / "tb").iterdir())
    assert json.loads((out / "genres.json").read_text()) == ["Action", "Horror", "Sports"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["test"]["num_videos"] == 6
    assert set(saved["test"]["per_genre"]) == {"Action", "Horror", "Sports"}
    assert len(saved["test"]["confusion"]) == 3
    assert saved["counts"]["train"]["videos"] == 18
    assert report.epochs_run == 3 and 1 <= report.best_epoch <= 3
    assert report.test["accuracy"] >= 0.8  # the synthetic classes are easy
    assert "macro-F1" in (out / "report.txt").read_text()
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    # the experiment written is the one actually used, features from dataset.info
    exp = load_experiment(out / "experiment.yaml")
    assert exp.features.backbone == "mobilenet_v3_small" and exp.model.hidden_size == 16


def test_checkpoint_round_trip_weights_only(feature_dataset, tmp_path):
    out = tmp_path / "run"
    train(feature_dataset, tiny_config(epochs=1), out)
    raw = torch.load(out / "last.pt", weights_only=True)
    assert {"optimizer", "scheduler", "run_state", "history", "state_dict"} <= set(raw)
    model, ckpt = M.load_model(out)
    assert ckpt.genres == ["Action", "Horror", "Sports"] and ckpt.epoch == 1
    assert ckpt.experiment.features.image_size == 64
    for k, v in raw["state_dict"].items():
        assert torch.equal(model.state_dict()[k], v)
    assert not model.training


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize("balance", ["class_weights", "sampler"])
def test_resume_after_kill_matches_uninterrupted(feature_dataset, tmp_path, balance):
    cfg = tiny_config(epochs=3, balance=balance, scheduler="cosine")
    full = train(feature_dataset, cfg, tmp_path / "full")

    class Killed(Exception):
        pass

    def kill_in_epoch_3(fraction: float, label: str) -> None:
        if label.startswith("epoch 3/3"):
            raise Killed(label)

    with pytest.raises(Killed):
        train(feature_dataset, cfg, tmp_path / "killed", progress=kill_in_epoch_3)
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["epoch"] == 2

    resumed = train(feature_dataset, cfg, tmp_path / "killed", resume=True)
    assert resumed.resumed_from == 2 and resumed.epochs_run == 3
    a, b = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "killed" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.test == full.test


def test_resume_refuses_a_different_model(feature_dataset, tmp_path):
    train(feature_dataset, tiny_config(epochs=1), tmp_path / "run")
    other = tiny_config(epochs=2)
    other.model.hidden_size = 24
    with pytest.raises(ValueError, match="model section differs"):
        train(feature_dataset, other, tmp_path / "run", resume=True)


def test_refuses_to_train_on_leaky_split(dataset, tmp_path):
    from fiftyone_genre.labels.leakage import LeakageError

    videos = balanced_videos()
    genre, _, group, steps = videos[0]
    videos.append((genre, "test", group, steps))  # the same group in train and test
    populate(dataset, tmp_path, videos)
    with pytest.raises(LeakageError):
        train(dataset, tiny_config(epochs=1), tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_skipped_samples_are_reported(dataset, tmp_path):
    videos = balanced_videos()
    populate(dataset, tmp_path, videos, cached=set(range(1, len(videos))))
    report = train(dataset, tiny_config(epochs=1), tmp_path / "run")
    assert len(report.skipped) == 1 and "no cached features" in report.skipped[0]["reason"]
    assert "skipped 1" in str(report)


def test_ablation_and_cli(feature_dataset, tmp_path, capsys):
    from fiftyone_genre.cli import main

    table = ablate(feature_dataset, tiny_config(epochs=1), tmp_path / "abl")
    assert [r["modality"] for r in table.rows] == ["fused", "visual", "audio"]
    assert (tmp_path / "abl" / "ablation.txt").is_file()
    assert M.read_checkpoint(tmp_path / "abl" / "audio").experiment.model.modality == "audio"
    text = str(table)
    assert "macro-F1" in text and "visual" in text

    cfg = tmp_path / "tiny.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(tiny_config().to_dict()))
    rc = main(["train", "--dataset", feature_dataset.name, "--config", str(cfg), "--out",
               str(tmp_path / "cli"), "--modality", "visual", "--epochs", "1"])
    assert rc == 0
    assert "Training run (visual)" in capsys.readouterr().out
    assert M.read_checkpoint(tmp_path / "cli").experiment.train.epochs == 1
    assert main(["train", "--dataset", feature_dataset.name, "--config", str(tmp_path / "nope.yaml"),
                 "--out", str(tmp_path / "x")]) == 2


def test_torchrun_two_cpu_processes(feature_dataset, tmp_path):
    feature_dataset.persistent = True  # visible to the worker processes; the fixture deletes it
    cfg = tmp_path / "tiny.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(tiny_config(epochs=1).to_dict()))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "training" / "train.py"), "--dataset", feature_dataset.name, "--config", str(cfg),
         "--out", str(out), "--threads", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("Training run (fused)") == 1  # only rank 0 reports
    report = json.loads((out / "report.json").read_text())
    assert report["epochs_run"] == 1 and report["test"]["num_videos"] == 6
    M.load_model(out)


@pytest.mark.parametrize("path", sorted((REPO / "fiftyone_genre" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_training_yamls_load(path):
    exp = load_experiment(path)
    assert exp.train.window >= 1 and exp.model.hidden_size >= 1
    raw = __import__("yaml").safe_load(path.read_text())
    assert {"features", "model", "train", "split", "predict"} <= set(raw)


def test_training_yamls_present():
    names = {p.name for p in (REPO / "fiftyone_genre" / "configs").glob("*.yaml")}
    assert {"paper_pool.yaml", "paper_softmax.yaml", "cpu_fast.yaml"} <= names
    pool = load_experiment("paper_pool")
    assert pool.features.backbone == "inception_v3" and pool.model.hidden_size == 2048
    fast = load_experiment("cpu_fast")
    assert fast.features.weights == "none" and fast.model.hidden_size <= 256


def test_operator_trains_through_fiftyone(feature_dataset, tmp_path):
    import fiftyone.operators as foo
    import yaml

    feature_dataset.persistent = True
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(epochs=2).to_dict()))
    op = foo.get_operator("@fiftyone-genre/genre/train_model")
    assert op.config.allow_delegated_execution and op.config.default_choice_to_delegated
    result = op(feature_dataset, str(tmp_path / "op"), config_path=str(cfg), modality="audio", epochs=1)
    assert result.error is None, result.error
    assert (tmp_path / "op" / "report.json").is_file()
    ckpt = M.read_checkpoint(tmp_path / "op")
    assert ckpt.experiment.model.modality == "audio" and ckpt.experiment.train.epochs == 1
    assert "Training run (audio)" in result.result["report"]


def test_operator_strict_refuses_unusable_samples(dataset, tmp_path):
    import fiftyone.operators as foo
    import yaml

    videos = balanced_videos()
    populate(dataset, tmp_path, videos, cached=set(range(1, len(videos))))  # sample 0: no features
    dataset.persistent = True
    cfg = tmp_path / "tiny.yaml"
    exp = tiny_config(epochs=1)
    exp.model.modality = "audio"  # the SDK call below names no modality: the file's must win
    cfg.write_text(yaml.safe_dump(exp.to_dict()))
    op = foo.get_operator("@fiftyone-genre/genre/train_model")
    from fiftyone.operators.executor import ExecutionError

    with pytest.raises(ExecutionError, match=r"(?s)strict mode.*clip_000\.mp4"):
        op(dataset, str(tmp_path / "strict"), config_path=str(cfg), strict=True)
    assert not (tmp_path / "strict" / "last.pt").exists()
    lenient = op(dataset, str(tmp_path / "lenient"), config_path=str(cfg))
    assert lenient.error is None, lenient.error
    assert "clip_000.mp4" in lenient.result["report"]  # skipped, and said so
    assert M.read_checkpoint(tmp_path / "lenient").experiment.model.modality == "audio"


def test_train_without_val_or_test_keeps_last_epoch(dataset, tmp_path):
    populate(dataset, tmp_path, balanced_videos(per_split=(4, 0, 0)))
    report = train(dataset, tiny_config(epochs=2), tmp_path / "run")
    assert report.best_epoch == 2 and report.best_val_macro_f1 is None
    assert report.test["num_videos"] == 0 and "no test videos" in str(report)
    assert M.read_checkpoint(tmp_path / "run" / "best.pt").epoch == 2
