"""Inference engines: every layout/precision matches fp32 eager, settings are checked and keyed,
and extraction under torchrun writes the same cache and dataset fields as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError, FeaturesConfig, load_experiment
from fiftyone_genre.features import engine as E
from fiftyone_genre.features.backbones import build_audio_cnn, build_visual_backbone
from fiftyone_genre.features.cache import config_key

from support.media import write_video

REPO = Path(__file__).resolve().parents[1]
#: Per-frame cosine between an engine's pooled features and fp32 eager NCHW. bf16 keeps
#: 8 mantissa bits, so single values move by up to ~1-3 %, but the direction of a
#: 576-2048-d pooled vector (what the LSTM reads) barely moves.
MIN_COSINE = 0.999
ENGINES = [("nchw", "bf16"), ("channels_last", "fp32"), ("channels_last", "bf16")]


def _cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=1)


@pytest.mark.parametrize("name,size", [("mobilenet_v3_small", 64), ("inception_v3", 75)])
@pytest.mark.parametrize("engine,precision", ENGINES)
def test_visual_engines_match_fp32_eager(name, size, engine, precision):
    frames = torch.randint(0, 256, (6, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = build_visual_backbone(name, "none", image_size=size)(frames)
    run = E.resolve_engine(engine, precision, "cpu").wrap(build_visual_backbone(name, "none", image_size=size), 4)
    got = run(frames)
    assert got.dtype == torch.float32 and got.shape == reference.shape
    assert _cosines(got, reference).min() >= MIN_COSINE


@pytest.mark.parametrize("engine,precision", ENGINES)
def test_audio_cnn_runs_through_the_same_engine(engine, precision):
    mels = torch.randn(6, 1, 64, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = build_audio_cnn("small_cnn", "none")(mels)
    got = E.resolve_engine(engine, precision, "cpu").wrap(build_audio_cnn("small_cnn", "none"), 4)(mels)
    assert _cosines(got, reference).min() >= MIN_COSINE


def test_compiled_engine_matches_and_reports_its_compile_time():
    """torch.compile pads a partial batch to a compiled shape: 3 inputs with batch 4 reuse the
    one graph compiled for 4 (one compile keeps the test short)."""
    mels = torch.randn(3, 1, 64, 16, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        reference = build_audio_cnn("small_cnn", "none")(mels)
    run = E.resolve_engine("compile", "bf16", "cpu").wrap(build_audio_cnn("small_cnn", "none"), 4)
    assert run.warm_up(mels) > 0
    spent = run.compile_seconds
    got = run(mels)
    assert run.compile_seconds == spent  # no second compile for the partial batch
    assert got.shape == reference.shape
    assert _cosines(got, reference).min() >= MIN_COSINE


def test_auto_follows_the_cpu_and_bad_settings_name_the_key(monkeypatch, tmp_path):
    monkeypatch.setattr(E, "cpu_has_native_bf16", lambda: True)
    assert E.resolve_engine("auto", "auto", "cpu") == E.EngineChoice("channels_last", "bf16", "cpu")
    monkeypatch.setattr(E, "cpu_has_native_bf16", lambda: False)
    assert E.resolve_engine("auto", "auto", "cpu").precision == "fp32"
    with pytest.raises(ValueError, match="features.precision fp16 needs a CUDA device"):
        E.resolve_engine("auto", "fp16", "cpu")
    bad = tmp_path / "bad.yaml"
    bad.write_text("features: {engine: turbo}\n")
    with pytest.raises(ConfigError, match="key 'engine'.*must be one of auto, nchw, channels_last, compile"):
        load_experiment(bad)
    bad.write_text("features: {precision: int8}\n")
    with pytest.raises(ConfigError, match="key 'precision'"):
        load_experiment(bad)


def test_cache_key_includes_engine_and_precision():
    base = FeaturesConfig(weights="none")
    keys = {config_key(FeaturesConfig(weights="none", engine=e, precision=p))
            for e in ("nchw", "channels_last", "compile") for p in ("fp32", "bf16")}
    assert len(keys) == 6
    resolved = E.resolve_engine(base.engine, base.precision, "cpu")
    # "auto" is keyed as it runs here, so an auto run and an explicit one share entries
    assert config_key(base) == config_key(FeaturesConfig(weights="none", engine=resolved.engine, precision=resolved.precision))


# --- torchrun ----------------------------------------------------------------------
def _cli_config(tmp_path: Path, cache: Path) -> Path:
    import yaml

    path = tmp_path / f"{cache.name}.yaml"
    path.write_text(yaml.safe_dump({"features": {
        "backbone": "mobilenet_v3_small", "weights": "none", "image_size": 64, "batch_size": 4,
        "precision": "fp32", "cache_dir": str(cache),
    }}))
    return path


def _dataset_of(name: str, paths: list[Path]):
    import fiftyone as fo

    ds = fo.Dataset(name, overwrite=True)
    ds.persistent = True  # visible to the worker processes
    ds.add_samples([fo.Sample(filepath=str(p)) for p in paths])
    return ds


def _features_by_path(ds, cache_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    from fiftyone_genre.features.cache import cache_for

    ds.reload()
    cache = cache_for(ds)
    assert Path(cache.root) == cache_dir
    out = {}
    for sample in ds:
        f = cache.get(sample.filepath)
        out[Path(sample.filepath).name] = (f.visual, f.audio, sample[g.HAS_AUDIO_FIELD])
    return out


def test_torchrun_two_cpu_processes_write_what_one_process_writes(tmp_path, dataset_name):
    clips = [write_video(tmp_path / f"c{i}.mp4", duration=1.0 + 0.5 * i, tone_hz=300 * (i + 1), audio=i != 2)
             for i in range(5)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {}
    for label, launcher in [("one", []), ("two", ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])]:
        ds = _dataset_of(f"{dataset_name}-{label}", clips)
        try:
            cache = tmp_path / f"cache_{label}"
            cmd = [sys.executable, *launcher, "-m", "fiftyone_genre.cli", "features", "--dataset", ds.name,
                   "--config", str(_cli_config(tmp_path, cache))]
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            runs[label] = (_features_by_path(ds, cache), proc.stdout)
        finally:
            ds.delete()
    (one, _), (two, out_two) = runs["one"], runs["two"]
    assert "features (torchrun, 2 processes): 5 video(s): 5 extracted" in out_two
    assert out_two.count("(shard 1/2)") == 1 and out_two.count("(shard 2/2)") == 1
    assert one.keys() == two.keys() and len(one) == 5
    for name, (vis, aud, has_audio) in one.items():
        vis2, aud2, has_audio2 = two[name]
        assert has_audio == has_audio2 == (name != "c2.mp4")
        np.testing.assert_allclose(vis2, vis, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(aud2, aud, rtol=1e-4, atol=1e-5)


def test_shard_flag_under_torchrun_is_refused(monkeypatch):
    from fiftyone_genre.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr("fiftyone_genre.cli.features.load_dataset", lambda name: None)
    assert main(["features", "--dataset", "x", "--shard", "1/2"]) == 2


def test_gpu_check_smoke_mode_runs_the_whole_pipeline_and_prints_one_table(tmp_path):
    """benchmarks/gpu_check.sh --smoke: the GPU script's every step, CPU-sized."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--smoke", "--workdir", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for row in ("decoded frames/s", "CNN img/s", "training windows/s", "peak GPU memory",
                "share of extraction the CNNs waited for decoding"):
        assert row in proc.stdout
    assert "(0 failed)" in proc.stdout
    assert (tmp_path / "model").is_dir()


def test_compiled_engine_runs_from_several_lanes_while_new_shapes_compile():
    """CNN lanes call one compiled module from several threads. A lane meeting a new batch
    shape compiles while others run: without the compile gate dynamo's tracing broke the
    other lane's call (or crashed the process). Plain and inference tensors share one graph."""
    import threading

    mels = torch.randn(4, 1, 64, 16, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        reference = build_audio_cnn("small_cnn", "none")(mels)
    run = E.resolve_engine("compile", "fp32", "cpu").wrap(build_audio_cnn("small_cnn", "none"), 4, threads=1)
    run(mels)  # the full-batch graph first
    spent, errors, outputs = run.compile_seconds, [], []
    compiled = threading.Event()

    def calls(n: int, i: int) -> None:
        x = mels[:n] if i % 2 else mels[:n].clone()
        with torch.inference_mode(mode=bool(i % 2)):
            outputs.append((n, run(x)))

    def busy_lane() -> None:  # keeps calling the compiled graph while the other lane compiles
        torch.set_num_threads(1)
        try:
            i = 0
            while not compiled.is_set() or i < 4:
                calls(4, i)
                i += 1
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    def compiling_lane() -> None:
        torch.set_num_threads(1)
        try:
            for i in range(4):
                calls(2, i)
                compiled.set()
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            compiled.set()

    threads = [threading.Thread(target=busy_lane), threading.Thread(target=busy_lane), threading.Thread(target=compiling_lane)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert run.compile_seconds > spent  # the batch-2 graph compiled while the others ran
    for n, got in outputs:
        assert _cosines(got, reference[:n]).min() >= 0.9999
