"""Feature extraction: cache hits/invalidation, atomic writes, weights, shards, bad files."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from fiftyone_genre import genres as g
from fiftyone_genre.config import ExperimentConfig, FeaturesConfig, TrainConfig
from fiftyone_genre.features.backbones import WeightsError, build_audio_cnn, build_visual_backbone
from fiftyone_genre.features.cache import ClipFeatures, FeatureCache
from fiftyone_genre.features.decode import decode_all
from fiftyone_genre.features.extract import extract_features, parse_shard, shard_of
from fiftyone_genre.features.extractor import (
    FeatureExtractionError,
    FeatureExtractor,
    cnn_batch_for,
    cnn_lanes_for,
    decode_plan_for,
)
from fiftyone_genre.modeling.finetune import finetune_frame_classifier

from support.media import write_video
from support.threads import ends_within

IMG = 64


def tiny_config(tmp_path: Path, **kw) -> FeaturesConfig:
    base = dict(
        backbone="mobilenet_v3_small",
        weights="none",
        image_size=IMG,
        cache_dir=str(tmp_path / "cache"),
        batch_size=8,
    )
    base.update(kw)
    return FeaturesConfig(**base)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("clips")
    return [
        write_video(d / "tone_300.mp4", duration=2.0, tone_hz=300),
        write_video(d / "tone_3000.mp4", duration=2.0, tone_hz=3000),
        write_video(d / "no_audio.mp4", duration=1.5, audio=False),
        write_video(d / "onset.mp4", duration=3.0, tone_hz=1000, tone_start=1.5),
    ]


@pytest.fixture
def video_dataset(dataset, clips, tmp_path):
    import fiftyone as fo

    paths = []
    for c in clips:  # private copies: tests touch and break files
        p = tmp_path / c.name
        p.write_bytes(c.read_bytes())
        paths.append(str(p))
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    return dataset


# --- extraction + cache ------------------------------------------------------------
def test_extract_writes_cache_has_audio_and_info(video_dataset, tmp_path):
    cfg = tiny_config(tmp_path)
    report = extract_features(video_dataset, cfg)
    assert (report.extracted, report.cached, len(report.failed)) == (4, 0, 0)
    # issue 15 (no tail dropped): no_audio.mp4 holds 38 frames = 1.52 s, so the step at 1.5 s counts (was 6)
    assert report.steps == 8 + 8 + 7 + 12 and report.steps_per_s > 0
    assert video_dataset.values(g.HAS_AUDIO_FIELD) == [True, True, False, True]
    info = video_dataset.info[g.FEATURES_INFO_KEY]
    assert info["cache_dir"] == str((tmp_path / "cache").resolve())
    assert info["config"]["backbone"] == "mobilenet_v3_small"

    cache = FeatureCache(info["cache_dir"], cfg)
    feats = cache.get(video_dataset.first().filepath)
    assert feats.visual.shape == (8, 576) and feats.audio.shape == (8, 512)
    # issue 15: the frame on screen at k/4 s (last pts <= t; was the first frame at or after it)
    np.testing.assert_allclose(feats.timestamps, [0, 0.24, 0.48, 0.72, 1.0, 1.24, 1.48, 1.72], atol=1e-3)
    silent = cache.get(video_dataset.values("filepath")[2])
    assert not silent.has_audio and not silent.audio.any()
    assert "features" in str(report) and "4 extracted" in str(report)


def test_rerun_hits_cache_and_invalidates_on_touch_or_config(video_dataset, tmp_path):
    cfg = tiny_config(tmp_path)
    extract_features(video_dataset, cfg)
    again = extract_features(video_dataset, cfg)
    assert (again.extracted, again.cached) == (0, 4)

    touched = video_dataset.values("filepath")[1]
    st = os.stat(touched)
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    after_touch = extract_features(video_dataset, cfg)
    assert (after_touch.extracted, after_touch.cached) == (1, 3)

    other = extract_features(video_dataset, tiny_config(tmp_path, fps=2.0))
    assert (other.extracted, other.cached) == (4, 0)
    assert FeatureCache(tmp_path / "cache", tiny_config(tmp_path, fps=2.0)).get(touched).num_steps == 4


def test_features_match_a_direct_run_of_the_backbone(clips, tmp_path):
    """The pipeline (threads, cross-video batches) computes exactly what the CNN gives per clip."""
    cfg = tiny_config(tmp_path, batch_size=5)
    ex = FeatureExtractor(cfg)
    results = {r.key: r.features for r in ex.run([(str(c), str(c)) for c in clips])}
    for c in clips:
        d = decode_all(c, fps=4, image_size=IMG)
        with torch.inference_mode():
            vis = ex.visual(d.frames).numpy()
            aud = ex.audio(d.mels).numpy()
        np.testing.assert_allclose(results[str(c)].visual, vis, rtol=1e-4, atol=1e-4)
        if d.has_audio:
            np.testing.assert_allclose(results[str(c)].audio, aud, rtol=1e-4, atol=1e-4)


def test_audio_features_keep_the_frequency_band(clips, tmp_path):
    """Random-init audio CNN: a 300 Hz and a 3 kHz tone must give clearly different vectors."""
    ex = FeatureExtractor(tiny_config(tmp_path))
    low = ex.extract(str(clips[0])).audio[2:6]
    high = ex.extract(str(clips[1])).audio[2:6]
    within = np.linalg.norm(low - low.mean(0), axis=1).mean()
    between = np.linalg.norm(low.mean(0) - high.mean(0))
    assert between > 5 * max(within, 1e-6)
    # and the onset clip's audio changes when the tone starts (t >= 1.5 s)
    onset = ex.extract(str(clips[3])).audio
    before, after = onset[:4], onset[8:]
    assert np.linalg.norm(before.mean(0) - after.mean(0)) > 5 * np.linalg.norm(before - before.mean(0), axis=1).mean()


# --- atomic writes and concurrency -------------------------------------------------
def _feats(value: float, t: int = 5) -> ClipFeatures:
    return ClipFeatures(
        visual=np.full((t, 4), value, np.float32),
        audio=np.full((t, 3), value, np.float32),
        timestamps=np.arange(t) / 4,
        has_audio=True,
        duration=t / 4,
    )


def test_a_decoding_change_invalidates_the_cache(clips, tmp_path, monkeypatch):
    # Features made before a change to frame resizing or mel analysis must not
    # be served as if they came from the new code.
    from fiftyone_genre.features import decode
    from fiftyone_genre.features.cache import config_key

    cfg = tiny_config(tmp_path)
    cache = FeatureCache(tmp_path / "cache", cfg)
    cache.put(clips[0], FeatureExtractor(cfg).extract(clips[0]))
    assert cache.get(clips[0]) is not None
    old = config_key(cfg)
    monkeypatch.setattr(decode, "PREPROCESSING_VERSION", decode.PREPROCESSING_VERSION + 1)
    assert config_key(cfg) != old
    assert FeatureCache(tmp_path / "cache", cfg).get(clips[0]) is None


def test_decoding_plan_follows_the_device_unless_configured(clips, monkeypatch):
    auto = FeaturesConfig()
    assert auto.num_workers is None and auto.decode_threads is None
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    # next to CPU CNNs: the calling thread's decoding runs as jobs on the CNN lanes, one
    # decoder thread and no helper (each core already runs one lane thread); in front of a
    # GPU (or with no CNN running) a background worker with more decoder threads
    assert decode_plan_for(auto, "cpu") == (0, 1, False)
    assert decode_plan_for(FeaturesConfig(cnn_lanes=1), "cpu") == (0, 1, True)  # in turn, helper beside
    assert decode_plan_for(auto, "cuda") == (1, 2, True)
    assert decode_plan_for(auto, None).decode_threads == 2
    # a background decoder beside CPU CNNs keeps to one thread of work
    assert decode_plan_for(FeaturesConfig(num_workers=2, decode_threads=3), "cpu") == (2, 3, False)
    ex = FeatureExtractor(FeaturesConfig(backbone="mobilenet_v3_small", weights="none", image_size=IMG))
    with ex.open(str(clips[0])) as stream:
        assert stream.decode_threads == 1 and not stream.helper_thread


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_inline_and_background_decoding_give_the_same_features(clips, tmp_path, workers):
    cfg = tiny_config(tmp_path, num_workers=workers, decode_threads=workers or 1)
    paths = [str(c) for c in clips]
    results = {r.key: r for r in FeatureExtractor(cfg).run([(p, p) for p in paths])}
    reference = {r.key: r for r in FeatureExtractor(tiny_config(tmp_path, num_workers=0)).run([(p, p) for p in paths])}
    assert set(results) == set(paths)
    for p in paths:
        a, b = results[p].features, reference[p].features
        assert a.num_steps == b.num_steps and a.has_audio == b.has_audio
        np.testing.assert_allclose(a.visual, b.visual, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(a.audio, b.audio, rtol=1e-4, atol=1e-5)


def test_cnn_lanes_default_to_one_per_cpu_thread_and_one_on_cuda(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert cnn_lanes_for(FeaturesConfig(), "cpu") == (4, 1)
    assert cnn_lanes_for(FeaturesConfig(), "cuda") == (1, None)
    assert cnn_lanes_for(FeaturesConfig(cnn_lanes=2), "cpu") == (2, 2)
    assert cnn_lanes_for(FeaturesConfig(cnn_lanes=1), "cpu") == (1, None)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert cnn_lanes_for(FeaturesConfig(), "cpu") == (1, None)


def test_cpu_batches_hold_at_most_eight_steps_and_gpus_the_configured_batch():
    assert cnn_batch_for(FeaturesConfig(), "cpu") == 8  # batch_size 32: a CPU lane's caches hold 8 frames
    assert cnn_batch_for(FeaturesConfig(batch_size=5), "cpu") == 5
    assert cnn_batch_for(FeaturesConfig(), "cuda") == 32
    assert FeatureExtractor(FeaturesConfig(backbone="mobilenet_v3_small", weights="none", image_size=IMG)).batch_size == 8


def _batch_sizes(ex: FeatureExtractor) -> list[tuple[str, int]]:
    """Record (net, batch size) of every CNN call the extractor makes."""
    seen, infer = [], ex.infer_batch

    def recording(net, parts):
        seen.append(("visual" if net is ex.visual else "audio", sum(p.shape[0] for p in parts)))
        return infer(net, parts)

    ex.infer_batch = recording
    return seen


def test_cnn_lanes_give_the_same_features_in_full_batches(clips, tmp_path):
    """Two one-thread lanes compute what one caller computes; every batch but a kind's last is full."""
    paths = [str(c) for c in clips]
    laned = FeatureExtractor(tiny_config(tmp_path, cnn_lanes=2, precision="fp32", batch_size=5))
    single = FeatureExtractor(tiny_config(tmp_path, cnn_lanes=1, precision="fp32", batch_size=5))
    assert laned.cnn_lanes == (2, max(1, torch.get_num_threads() // 2)) and single.cnn_lanes == (1, None)
    sizes = _batch_sizes(laned)
    got = {r.key: r.features for r in laned.run([(p, p) for p in paths])}
    want = {r.key: r.features for r in single.run([(p, p) for p in paths])}
    for p in paths:
        assert got[p].num_steps == want[p].num_steps
        np.testing.assert_allclose(got[p].visual, want[p].visual, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[p].audio, want[p].audio, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(got[p].timestamps, want[p].timestamps)
    for kind in ("visual", "audio"):
        per_kind = [n for k, n in sizes if k == kind]
        assert per_kind and all(n == 5 for n in per_kind[:-1]), (kind, per_kind)
    assert not any(t.name.startswith("cnn-lane") for t in threading.enumerate())


def test_a_failing_cnn_lane_stops_the_run_with_its_error(clips, tmp_path):
    ex = FeatureExtractor(tiny_config(tmp_path, cnn_lanes=2, batch_size=4))
    infer, calls = ex.infer_batch, []

    def third_fails(net, parts):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("CNN lane broke")
        return infer(net, parts)

    ex.infer_batch = third_fails
    error = ends_within(60, lambda: list(ex.run([(str(c), str(c)) for c in clips])))
    assert isinstance(error, RuntimeError) and "CNN lane broke" in str(error), error
    time.sleep(0.2)
    assert not any(t.name.startswith("cnn-lane") for t in threading.enumerate())


def test_infer_on_pre_decoded_steps_matches_run(clips, tmp_path):
    """The benchmark's baseline (``infer``) batches and lanes the steps as ``run`` does."""
    ex = FeatureExtractor(tiny_config(tmp_path, cnn_lanes=2, precision="fp32"))
    decoded = decode_all(clips[0], fps=ex.config.fps, image_size=IMG)
    visual, audio = ex.infer(decoded.frames, decoded.mels)
    (result,) = ex.run([(str(clips[0]), str(clips[0]))])
    np.testing.assert_allclose(visual, result.features.visual, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(audio[: result.features.num_steps], result.features.audio, rtol=1e-4, atol=1e-5)


def test_crash_mid_write_leaves_no_valid_entry(clips, tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path / "cache", tiny_config(tmp_path))
    video = str(clips[0])
    real_savez = np.savez

    def dying_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")  # some bytes reach the disk, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr("fiftyone_genre.features.cache.np.savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        cache.put(video, _feats(1.0))
    monkeypatch.setattr("fiftyone_genre.features.cache.np.savez", real_savez)
    entry = cache.path_for(video)
    assert not entry.exists() and cache.get(video) is None and cache.lookup(video) is None
    assert not list(entry.parent.glob("*.tmp"))  # cleaned up

    # A SIGKILL cannot clean up: the temp file stays but is never read as an entry,
    # and a half-written entry (e.g. a copied cache cut short) reads as a miss.
    (entry.parent / f"{entry.stem}xyz.tmp").write_bytes(b"PK\x03\x04 torn")
    assert cache.get(video) is None and cache.lookup(video) is None
    cache.put(video, _feats(2.0))
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])
    assert cache.get(video) is None and cache.lookup(video) is None


def test_a_new_run_removes_temp_files_of_killed_runs_only(video_dataset, tmp_path):
    cfg = tiny_config(tmp_path)
    extract_features(video_dataset, cfg)
    cache = FeatureCache(tmp_path / "cache", cfg)
    entry = cache.path_for(video_dataset.values("filepath")[0])
    killed = entry.parent / f"{entry.name}.killed.tmp"  # what a SIGKILL mid-write leaves
    live = entry.parent / f"{entry.name}.writing.tmp"  # another run writing right now
    for f in (killed, live):
        f.write_bytes(b"PK\x03\x04 partial")
    two_hours_ago = time.time() - 7200
    os.utime(killed, (two_hours_ago, two_hours_ago))

    report = extract_features(video_dataset, cfg)
    assert report.stale_temp_files == 1 and "removed 1 temp file" in str(report)
    assert not killed.exists() and live.exists()
    assert report.cached == 4  # the valid entries are untouched


def test_concurrent_writers_never_expose_a_torn_entry(clips, tmp_path):
    """Two runs writing the same entry while a third reads: every read is a miss or whole."""
    cfg = tiny_config(tmp_path)
    video = str(clips[0])
    stop = threading.Event()
    errors: list[str] = []

    def writer(value: float) -> None:
        cache = FeatureCache(tmp_path / "cache", cfg)
        for _ in range(40):
            cache.put(video, _feats(value))

    def reader() -> None:
        cache = FeatureCache(tmp_path / "cache", cfg)
        while not stop.is_set():
            f = cache.get(video)
            if f is not None and len(set(np.unique(f.visual)) | set(np.unique(f.audio))) != 1:
                errors.append("mixed entry")

    threads = [threading.Thread(target=writer, args=(v,)) for v in (1.0, 2.0)]
    r = threading.Thread(target=reader)
    r.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    r.join()
    assert not errors
    assert FeatureCache(tmp_path / "cache", cfg).get(video).visual[0, 0] in (1.0, 2.0)
    assert not list(FeatureCache(tmp_path / "cache", cfg).dir.rglob("*.tmp"))


# --- weights -----------------------------------------------------------------------
def test_random_init_is_seeded(tmp_path):
    x = torch.randint(0, 255, (2, 3, IMG, IMG), dtype=torch.uint8)
    with torch.inference_mode():
        a = build_visual_backbone("mobilenet_v3_small", "none", image_size=IMG, init_seed=0)(x)
        b = build_visual_backbone("mobilenet_v3_small", "none", image_size=IMG, init_seed=0)(x)
        c = build_visual_backbone("mobilenet_v3_small", "none", image_size=IMG, init_seed=1)(x)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    m = torch.randn(2, 1, 64, 98)
    with torch.inference_mode():
        assert torch.equal(build_audio_cnn(init_seed=3)(m), build_audio_cnn(init_seed=3)(m))


def test_local_state_dict_weights(tmp_path):
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(123)
    ref = mobilenet_v3_small(weights=None).eval()
    path = tmp_path / "mine.pth"
    torch.save(ref.state_dict(), path)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": ref.state_dict(), "epoch": 3}, wrapped)

    x = torch.randint(0, 255, (2, 3, IMG, IMG), dtype=torch.uint8)
    ref.classifier = torch.nn.Identity()
    with torch.inference_mode():
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
        expected = ref((x.float() - mean) / std)
        for p in (path, wrapped):
            got = build_visual_backbone("mobilenet_v3_small", str(p), image_size=IMG)(x)
            torch.testing.assert_close(got, expected)

    torch.save({"not": "weights"}, tmp_path / "junk.pth")
    with pytest.raises(WeightsError, match="junk.pth"):
        build_visual_backbone("mobilenet_v3_small", str(tmp_path / "junk.pth"))
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    with pytest.raises(WeightsError, match="does not fit resnet18"):
        build_visual_backbone("resnet18", str(tmp_path / "r18.pth"))
    with pytest.raises(WeightsError, match="not found"):
        build_visual_backbone("mobilenet_v3_small", str(tmp_path / "nope.pth"))


def test_offline_default_weights_error_names_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsError) as e:
        build_visual_backbone("resnet18", "DEFAULT")
    msg = str(e.value)
    assert "resnet18" in msg and "--weights DEFAULT" in msg and "--weights PATH" in msg and "--weights none" in msg
    assert "not cached" in msg and "name resolution" in msg


# --- shards, failures ----------------------------------------------------------------
def test_shards_are_disjoint_and_complete(video_dataset, tmp_path):
    ids = video_dataset.values("id")
    for n in (1, 2, 3):
        parts = [{i for i in ids if shard_of(i, n) == k} for k in range(1, n + 1)]
        assert set().union(*parts) == set(ids) and sum(map(len, parts)) == len(ids)
    cfg = tiny_config(tmp_path)
    a = extract_features(video_dataset, cfg, shard="1/2")
    b = extract_features(video_dataset, cfg, shard=(2, 2))
    assert a.total + b.total == 4 and a.extracted + b.extracted == 4
    cache = FeatureCache(tmp_path / "cache", cfg)
    assert all(cache.lookup(p) is not None for p in video_dataset.values("filepath"))
    assert parse_shard("3/4") == (3, 4)
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ValueError, match="K/N"):
            parse_shard(bad)


def test_bad_files_are_recorded_and_the_run_continues(video_dataset, tmp_path):
    import fiftyone as fo

    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_text("not a video")
    video_dataset.add_samples([fo.Sample(filepath=str(tmp_path / n)) for n in ("empty.mp4", "junk.mp4")])
    report = extract_features(video_dataset, tiny_config(tmp_path))
    assert report.extracted == 4 and len(report.failed) == 2
    bad = video_dataset.match_tags(g.ERROR_TAG)
    assert len(bad) == 2
    errors = dict(zip(bad.values("filepath"), bad.values(g.ERRORS_FIELD)))
    assert errors[str(tmp_path / "empty.mp4")] == ["features: zero-byte file"]
    assert errors[str(tmp_path / "junk.mp4")][0].startswith("features: not a readable video")

    with pytest.raises(FeatureExtractionError, match="strict"):
        extract_features(video_dataset, tiny_config(tmp_path), strict=True)
    with pytest.raises(FeatureExtractionError, match="no video could be processed"):
        extract_features(bad, tiny_config(tmp_path))

    # a fixed file clears its old error on the next run
    good = write_video(tmp_path / "fixed.mp4", duration=1.0)
    (tmp_path / "empty.mp4").write_bytes(good.read_bytes())
    extract_features(video_dataset, tiny_config(tmp_path))
    assert len(video_dataset.match_tags(g.ERROR_TAG)) == 1


# --- softmax mode (paper stage 1) ------------------------------------------------------
def test_finetune_frame_classifier_then_softmax_features(video_dataset, tmp_path):
    import fiftyone as fo

    for sample, genre, split in zip(video_dataset, ["Action", "Horror", "Action", "Horror"], ["train", "train", "train", "val"]):
        sample[g.GENRE_FIELD] = fo.Classification(label=genre)
        sample[g.SPLIT_FIELD] = split
        sample.save()
    cfg = tiny_config(tmp_path)
    exp = ExperimentConfig(features=cfg, train=TrainConfig(finetune_epochs=2, batch_size=8, device="cpu"))
    report = finetune_frame_classifier(video_dataset, exp, tmp_path / "stage1", max_frames_per_video=4)
    assert report.train_frames == 12 and report.val_frames == 4 and len(report.history) == 2
    assert {p.name for p in (tmp_path / "stage1").iterdir()} == {"epoch_001.pt", "epoch_002.pt", "last.pt", "best.pt"}

    soft = tiny_config(tmp_path, mode="softmax", softmax_checkpoint=report.checkpoint)
    out = extract_features(video_dataset, soft)
    assert out.extracted == 4 and out.visual_dim == len(g.GENRES)
    feats = FeatureCache(tmp_path / "cache", soft).get(video_dataset.first().filepath)
    np.testing.assert_allclose(feats.visual.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="fine-tuned from 'mobilenet_v3_small'"):
        build_visual_backbone("resnet18", "none", mode="softmax", softmax_checkpoint=report.checkpoint)


# --- CLI and operator ----------------------------------------------------------------
def test_cli_features_reads_experiment_yaml(video_dataset, tmp_path, capsys):
    from fiftyone_genre.cli import main

    video_dataset.persistent = True
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"features:\n  backbone: mobilenet_v3_small\n  weights: none\n  image_size: {IMG}\n  fps: 2.0\n")
    rc = main(["features", "--dataset", video_dataset.name, "--config", str(exp), "--cache-dir", str(tmp_path / "c")])
    assert rc == 0
    assert "4 extracted" in capsys.readouterr().out
    assert video_dataset.info[g.FEATURES_INFO_KEY]["config"]["fps"] == 2.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("features:\n  backbone_typo: x\n")
    assert main(["features", "--dataset", video_dataset.name, "--config", str(bad)]) == 2
    assert "backbone_typo" in capsys.readouterr().err


def test_operator_runs_through_fiftyone(video_dataset, tmp_path):
    import fiftyone.operators as foo

    video_dataset.persistent = True
    op = foo.get_operator("@fiftyone-genre/genre/extract_features")
    assert op.config.allow_delegated_execution and op.config.default_choice_to_delegated
    result = op(
        video_dataset,
        backbone="mobilenet_v3_small",
        weights="none",
        image_size=IMG,
        device="cpu",
        cache_dir=str(tmp_path / "op_cache"),
    )
    assert result.error is None, result.error
    assert result.result["extracted"] == 4
    assert video_dataset.values(g.HAS_AUDIO_FIELD) == [True, True, False, True]


def test_operator_sdk_call_takes_backbone_and_weights_from_the_yaml(video_dataset, tmp_path):
    # op(dataset, config_path=...) must not replace the file's choices with
    # the signature's own (it used InceptionV3 + DEFAULT weights, offline: fail)
    import fiftyone.operators as foo
    import yaml

    video_dataset.persistent = True
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"features": {"backbone": "mobilenet_v3_small", "weights": "none", "image_size": IMG}}))
    op = foo.get_operator("@fiftyone-genre/genre/extract_features")
    result = op(video_dataset, config_path=str(cfg), device="cpu", cache_dir=str(tmp_path / "yaml_cache"))
    assert result.error is None, result.error
    assert result.result["extracted"] == 4
    info = video_dataset.info[g.FEATURES_INFO_KEY]["config"]
    assert (info["backbone"], info["weights"], info["image_size"]) == ("mobilenet_v3_small", "none", IMG)


# --- issue 15 ------------------------------------------------------------------------
def test_decode_worker_failing_at_start_up_stops_the_run(clips, tmp_path, monkeypatch):
    from fiftyone_genre.features import extractor as F

    ex = FeatureExtractor(tiny_config(tmp_path, num_workers=1), device="cpu")

    class BrokenMel:  # what a torchaudio that fails to load looked like
        def __init__(self, *a, **k):
            raise ImportError("torchaudio failed to load")

    monkeypatch.setattr(F, "MelWindows", BrokenMel)
    error = ends_within(30, lambda: list(ex.run([(str(c), str(c)) for c in clips])))
    assert isinstance(error, FeatureExtractionError), error
    assert "decode thread decode-0 failed: ImportError: torchaudio failed to load" in str(error)
    time.sleep(0.2)
    assert not any(t.name.startswith("decode-") for t in threading.enumerate())


def test_decode_worker_failing_mid_run_stops_the_run(clips, tmp_path, monkeypatch):
    from fiftyone_genre.features.extractor import VideoDecoding

    ex = FeatureExtractor(tiny_config(tmp_path, num_workers=1), device="cpu")
    real = VideoDecoding.video_messages
    seen = []

    def second_fails(self, vid, path, mel):  # fails outside a video's own error handling
        seen.append(path)
        if len(seen) == 2:
            raise RuntimeError("worker broke between videos")
        yield from real(self, vid, path, mel)

    monkeypatch.setattr(VideoDecoding, "video_messages", second_fails)
    error = ends_within(60, lambda: list(ex.run([(str(c), str(c)) for c in clips])))
    assert isinstance(error, FeatureExtractionError) and "worker broke between videos" in str(error), error


def test_cli_exits_non_zero_when_a_decode_worker_dies(video_dataset, tmp_path, monkeypatch, capsys):
    from fiftyone_genre.cli import main
    from fiftyone_genre.features import extractor as F

    class BrokenMel:
        def __init__(self, *a, **k):
            raise ImportError("torchaudio failed to load")

    monkeypatch.setattr(F, "MelWindows", BrokenMel)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("features:\n  backbone: mobilenet_v3_small\n  weights: none\n  image_size: 64\n  num_workers: 1\n")
    box = {}
    error = ends_within(60, lambda: box.setdefault("rc", main(["features", "--dataset", video_dataset.name, "--config", str(cfg),
                                                               "--cache-dir", str(tmp_path / "c")])))
    assert error is None and box["rc"] == 2
    assert "torchaudio failed to load" in capsys.readouterr().err


def test_re_extraction_refreshes_stale_metadata(video_dataset, tmp_path):
    video_dataset.compute_metadata()
    sample = video_dataset.match({"filepath": {"$regex": "tone_300"}}).first()
    assert abs(sample.metadata.duration - 2.0) < 0.1
    extract_features(video_dataset, tiny_config(tmp_path))
    # the file is replaced by a longer one after import
    write_video(sample.filepath, duration=4.0, tone_hz=300)
    report = extract_features(video_dataset, tiny_config(tmp_path))
    assert report.extracted == 1
    sample.reload()
    assert abs(sample.metadata.duration - 4.0) < 0.1, sample.metadata
    assert sample.metadata.total_frame_count == 100


def test_report_prints_file_names_escaped(tmp_path):
    from fiftyone_genre.features.extract import FeatureReport

    report = FeatureReport(total=2, failed={"/v/a\nFAILED /v/forged.mp4: made up": "not a readable video"})
    lines = str(report).splitlines()
    assert not any(line.lstrip().startswith("FAILED /v/forged.mp4") for line in lines), lines
    assert any("'/v/a\\nFAILED /v/forged.mp4: made up'" in line for line in lines), lines
