"""predict(): fields, shapes, timelines, run info, failures and re-runs on a trained tiny model.

The model is a real ``GenreCRNN`` trained on synthetic cached features with a
learnable signal (see ``support.model_assets``); the videos are real MP4s so the
timelines are checked against ffprobe's frame counts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fiftyone_genre import genres as g
from fiftyone_genre.config import PredictConfig
from fiftyone_genre.inference.predict import PredictError, predict
from fiftyone_genre.inference.scoring import step_bounds, window_support
from fiftyone_genre.modeling.model import load_model
from fiftyone_genre.modeling.windows import (
    aggregate_windows,
    collate_windows,
    make_windows,
    pad_window,
)

from support.model_assets import GENRES, assets, build_dataset, make_features


def _softmax(x):
    e = np.exp(np.asarray(x) - np.max(x))
    return e / e.sum()


def _covered(supports: list[list[int]], total: int) -> bool:
    frames = np.zeros(total + 1, dtype=bool)
    for first, last in supports:
        frames[first : last + 1] = True
    return bool(frames[1:].all())


@pytest.fixture
def predicted(dataset_name):
    """A dataset without metadata (predict must compute it) and one clip with no features."""
    ds = build_dataset(dataset_name, with_metadata=False, extra_uncached=1)
    gt_before = {s.id: (s.genre.label, s.genre.id, s.source_label.label if s.source_label else None) for s in ds}
    report = predict(ds, assets().model_dir)
    return ds, report, gt_before


def test_predict_writes_every_field_with_the_right_shape(predicted):
    import fiftyone as fo

    ds, report, _ = predicted
    a = assets()
    _, ckpt = load_model(a.model_dir)
    assert report.num_samples == 26 and report.num_predicted == 25 and report.num_failed == 1
    assert report.slot_s == 2.5 and "timeline: " in str(report)
    assert "25/26" in str(report)

    dims = set()
    for s in ds.exists(g.PRED_FIELD):
        pred = s[g.PRED_FIELD]
        assert isinstance(pred, fo.Classification)
        assert pred.label in GENRES
        assert len(pred.logits) == len(GENRES)
        probs = _softmax(pred.logits)
        assert probs.sum() == pytest.approx(1.0)
        assert GENRES[int(np.argmax(probs))] == pred.label
        assert pred.confidence == pytest.approx(float(probs.max()), abs=1e-6)

        emb = np.asarray(s[g.EMBEDDING_FIELD])
        assert emb.ndim == 1 and np.isfinite(emb).all()
        dims.add(emb.shape[0])

        for field in (g.PRED_VISUAL_FIELD, g.PRED_AUDIO_FIELD):
            assert isinstance(s[field], fo.Classification) and len(s[field].logits) == len(GENRES)

        tl = s[g.TIMELINE_FIELD]
        assert isinstance(tl, fo.TemporalDetections)
        total = s.metadata.total_frame_count
        assert total > 0, "predict computes missing metadata"
        spec = next(x for x in a.specs if x.name == s.clip_name)
        steps = int(round(spec.duration * 4))
        assert len(tl.detections) == -(-steps // 10), "one entry per 2.5 s slot (10 steps at 4 fps)"
        supports = [d.support for d in tl.detections]
        assert all(b[0] == a[1] + 1 for a, b in zip(supports, supports[1:])), "slots neither overlap nor leave gaps"
        for d in tl.detections:
            assert d.label in GENRES and 0.0 <= d.confidence <= 1.0
            first, last = d.support
            assert 1 <= first <= last <= total
        assert supports[0][0] == 1 and max(x[1] for x in supports) == total
        assert _covered(supports, total)
    assert dims == {ckpt.raw["state_dict"]["classifier.weight"].shape[1]}


def test_predictions_follow_the_learned_signal_and_the_experiment_aggregation(predicted):
    """The model really is applied: clean clips are right, planted mislabels are 'wrong'."""
    ds, _, _ = predicted
    a = assets()
    for s in ds.exists(g.PRED_FIELD):
        spec = next(x for x in a.specs if x.name == s.clip_name)
        if spec.kind in ("clean", "mislabeled"):
            assert s[g.PRED_FIELD].label == spec.visual_genre, s.clip_name
        if spec.kind == "disagree":
            assert s[g.PRED_VISUAL_FIELD].label == spec.visual_genre
            assert s[g.PRED_AUDIO_FIELD].label == spec.audio_genre

    # Recompute one clip by hand: same windows, same aggregation as the checkpoint's experiment.
    model, ckpt = load_model(a.model_dir)
    i, spec = next((i, x) for i, x in enumerate(a.specs) if x.duration == 3.0)
    feats = make_features(spec, seed=100 + i)
    w = ckpt.experiment.train.window
    windows = make_windows(feats.num_steps, w, w)
    batch = collate_windows([pad_window(feats, s, e, w) for s, e in windows])
    with torch.no_grad():
        out = model(batch["visual"], batch["audio"], batch["mask"])
    probs = torch.softmax(out.logits, -1).numpy()
    video = aggregate_windows(probs, np.array([e - s for s, e in windows]), ckpt.experiment.train.aggregate)
    sample = ds.match({"clip_name": spec.name}).first()
    assert sample[g.PRED_FIELD].confidence == pytest.approx(float(video.max()), abs=1e-5)
    assert np.asarray(sample[g.EMBEDDING_FIELD]) == pytest.approx(out.embedding.mean(0).numpy(), abs=1e-5)


def test_ground_truth_untouched_failures_recorded_and_run_info(predicted):
    ds, _, gt_before = predicted
    after = {s.id: (s.genre.label, s.genre.id, s.source_label.label if s.source_label else None) for s in ds}
    assert after == gt_before

    bad = ds.match({"clip_kind": "uncached"}).first()
    assert bad[g.PRED_FIELD] is None and bad[g.TIMELINE_FIELD] is None
    assert any(e.startswith("predict: no cached features") for e in bad[g.ERRORS_FIELD])
    assert g.ERROR_TAG in bad.tags
    assert len(ds.match_tags(g.ERROR_TAG)) == 1

    info = ds.info[g.RUN_INFO_KEY]
    assert info["genres"] == GENRES
    assert info["model_path"].endswith("best.pt")
    assert info["modality"] == "fused"
    assert info["features"]["backbone"] == "synthetic-test"
    assert info["experiment"]["train"]["window"] == 6
    assert info["fields"]["pred"] == g.PRED_FIELD and info["fields"]["timeline"] == g.TIMELINE_FIELD
    assert info["date"] and info["num_predicted"] == 25 and info["num_failed"] == 1


def test_rerun_replaces_its_own_fields_only(dataset_name):
    import fiftyone as fo

    ds = build_dataset(dataset_name)
    a = assets()
    predict(ds, a.model_dir)
    ds.add_sample_field("note", fo.StringField)
    ds.set_values("note", [f"n{i}" for i in range(len(ds))])
    first = dict(zip(ds.values("id"), ds.values(f"{g.PRED_FIELD}.id")))
    gt = ds.values(f"{g.GENRE_FIELD}.label")

    # An audio-only model: its predictions replace the fused ones; the fused
    # model's per-modality fields no longer describe what is on the samples.
    report = predict(ds, a.audio_model_dir)
    assert report.modality == "audio" and report.num_predicted == len(ds)
    assert ds.info[g.RUN_INFO_KEY]["modality"] == "audio"
    second = dict(zip(ds.values("id"), ds.values(f"{g.PRED_FIELD}.id")))
    assert all(first[k] != second[k] for k in first)
    assert ds.values(g.PRED_VISUAL_FIELD) == [None] * len(ds)
    assert ds.values(g.PRED_AUDIO_FIELD) == [None] * len(ds)
    assert ds.values("note") == [f"n{i}" for i in range(len(ds))]
    assert ds.values(f"{g.GENRE_FIELD}.label") == gt

    # A re-run on a view only touches that view's samples.
    sub = ds.match({"clip_kind": "disagree"})
    untouched = ds.match({"clip_kind": {"$ne": "disagree"}})
    before = untouched.values(f"{g.PRED_FIELD}.id")
    predict(sub, a.model_dir)
    assert untouched.values(f"{g.PRED_FIELD}.id") == before
    assert all(x is not None for x in sub.values(g.PRED_VISUAL_FIELD))


def test_custom_field_names_and_refusing_ground_truth(dataset_name):
    ds = build_dataset(dataset_name)
    a = assets()
    for bad in (
        PredictConfig(pred_field=g.GENRE_FIELD),
        PredictConfig(timeline_field=g.SOURCE_LABEL_FIELD),
        PredictConfig(embedding_field="genre_pred"),
        PredictConfig(visual_field="frames.x"),
    ):
        with pytest.raises(ValueError):
            predict(ds, a.model_dir, bad)
    assert not ds.has_field(g.PRED_FIELD)

    cfg = PredictConfig(
        pred_field="p2", timeline_field="t2", embedding_field="e2", visual_field="v2", audio_field="a2"
    )
    predict(ds, a.model_dir, cfg)
    for name in ("p2", "t2", "e2", "v2", "a2"):
        assert ds.has_field(name) and all(v is not None for v in ds.values(name))
    assert not ds.has_field(g.PRED_FIELD)
    assert ds.info[g.RUN_INFO_KEY]["fields"]["pred"] == "p2"


def test_nothing_predictable_and_strict_mode(dataset_name):
    import fiftyone as fo

    ds = build_dataset(dataset_name, extra_uncached=1)
    a = assets()
    with pytest.raises(PredictError, match="no cached features"):
        predict(ds, a.model_dir, strict=True)
    only_bad = ds.match({"clip_kind": "uncached"})
    with pytest.raises(PredictError, match="none of the 1 samples"):
        predict(only_bad, a.model_dir)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        predict(ds, a.root)
    # Features extracted with another backbone into another folder: the reason says so.
    ds.info[g.FEATURES_INFO_KEY] = {
        "cache_dir": str(a.root / "other-cache"),
        "config": {"backbone": "resnet18", "fps": 2.0, "weights": "none"},
    }
    ds.save()
    with pytest.raises(PredictError, match="extracted with backbone resnet18"):
        predict(ds, a.model_dir)
    assert isinstance(ds.first().genre, fo.Classification)


def test_fixed_clip_loses_its_predict_error_on_rerun(dataset_name):
    from fiftyone_genre.features.cache import FeatureCache

    from support.model_assets import ClipSpec, features_config

    ds = build_dataset(dataset_name, extra_uncached=1)
    a = assets()
    predict(ds, a.model_dir)
    bad = ds.match({"clip_kind": "uncached"}).first()
    assert bad[g.ERRORS_FIELD] and g.ERROR_TAG in bad.tags
    # The user extracts the missing features; the next run predicts it and clears the error.
    spec = ClipSpec("fixed", g.ROMANCE, g.ROMANCE, g.ACTION, 1.0)
    FeatureCache(a.cache_dir, features_config(a.cache_dir)).put(bad.filepath, make_features(spec, seed=7))
    report = predict(ds, a.model_dir)
    assert report.num_failed == 0
    bad.reload()
    assert not bad[g.ERRORS_FIELD] and g.ERROR_TAG not in bad.tags
    assert bad[g.PRED_FIELD].label == g.ROMANCE


@pytest.mark.parametrize("video_fps,duration,feature_fps,window", [(10, 3.0, 4, 6), (25, 4.2, 4, 5), (29.97, 1.1, 4, 40), (12, 2.0, 3, 1)])
def test_window_supports_tile_the_video(video_fps, duration, feature_fps, window):
    total = int(round(duration * video_fps))
    steps = max(1, int(duration * feature_fps))
    bounds = step_bounds(np.arange(steps) / feature_fps, duration)
    for stride in {window, max(1, window // 2)}:
        supports = [window_support(bounds, s, e, video_fps, total) for s, e in make_windows(steps, window, stride)]
        assert supports[0][0] == 1 and supports[-1][1] == total
        assert all(1 <= first <= last <= total for first, last in supports)
        assert _covered(supports, total)


def test_cli_predict(dataset_name, capsys):
    from fiftyone_genre.cli import main

    ds = build_dataset(dataset_name)
    assert main(["predict", "--dataset", dataset_name, "--model", str(assets().model_dir), "--device", "cpu"]) == 0
    assert f"{len(ds)}/{len(ds)} samples predicted" in capsys.readouterr().out
    assert None not in ds.values(g.PRED_FIELD)
    assert main(["predict", "--dataset", dataset_name, "--model", "/no/such/model"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_why_a_sample_cannot_be_predicted_is_a_pure_check():
    from fiftyone_genre.features.cache import ClipFeatures
    from fiftyone_genre.inference.scoring import unpredictable_reason

    from support.model_assets import ADIM, VDIM, ClipSpec

    feats = make_features(ClipSpec("x", g.ACTION, g.ACTION, g.ACTION, 1.0), seed=1)
    assert unpredictable_reason(feats, VDIM, ADIM) is None
    assert unpredictable_reason(None, VDIM, ADIM, "no features here") == "no features here"
    assert "no cached features" in unpredictable_reason(None, VDIM, ADIM)
    empty = ClipFeatures(np.zeros((0, VDIM), np.float32), np.zeros((0, ADIM), np.float32), np.zeros(0), True)
    assert "no time steps" in unpredictable_reason(empty, VDIM, ADIM)
    assert "do not match the model's 32/8" in unpredictable_reason(feats, 32, ADIM)


def test_chunk_scorer_gives_each_clip_the_same_scores_alone_or_batched():
    """Windows of many clips share batches; a clip's result must not depend on its neighbours."""
    from fiftyone_genre.inference.scoring import ChunkScorer

    a = assets()
    scorer = ChunkScorer.load(a.model_dir, "cpu", batch_size=4)
    feats = [make_features(spec, seed=100 + i) for i, spec in enumerate(a.specs[:7])]
    together = scorer.score(feats, modalities=True)
    for f, batched in zip(feats, together):
        (alone,) = scorer.score([f], modalities=True)
        assert batched.windows == alone.windows == make_windows(f.num_steps, scorer.window, scorer.stride)
        assert batched.probs == pytest.approx(alone.probs, abs=1e-5)
        assert batched.embedding == pytest.approx(alone.embedding, abs=1e-5)
        assert set(batched.modal_probs) == {"visual", "audio"}
    assert scorer.score([]) == []
    assert scorer.score(feats[:1])[0].modal_probs == {}, "single-modality passes only when asked"


def test_train_and_predict_reports_print_file_names_escaped():
    """A file name with a newline cannot forge a line in the train or predict summary."""
    from fiftyone_genre.inference.predict import PredictReport
    from fiftyone_genre.modeling.train import TrainReport

    forged = "/v/a\nFAILED /v/forged.mp4: made up"
    predict = PredictReport("m", 2, 1, failures={forged: "no cached features"}, no_timeline=[forged])
    train = TrainReport("out", "fused", [], 0, 0, None, False, None, {}, [{"filepath": forged, "reason": "no features"}], {})
    for report in (predict, train):
        lines = str(report).splitlines()
        assert not any(line.lstrip().startswith("FAILED /v/forged.mp4") for line in lines), lines
        assert any("'/v/a\\nFAILED /v/forged.mp4: made up'" in line for line in lines), lines
