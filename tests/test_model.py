"""GenreModel: FiftyOne's apply_model / compute_embeddings give what predict writes.

Same tiny trained model and cached features as ``test_predict`` (see
``support.model_assets``): the FiftyOne model must read the same cache and score it
through the same chunk scorer, on a dataset, a view and a clips view.
"""

from __future__ import annotations

import numpy as np
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.inference.predict import predict

from support.model_assets import assets, build_dataset


@pytest.fixture(scope="module")
def model():
    from fiftyone_genre import GenreModel

    return GenreModel.from_dir(assets().model_dir, device="cpu")


def _labels(ds, field):
    return {s.id: s[field] for s in ds.select_fields(field)}


def test_apply_model_writes_predicts_labels_and_logits(dataset_name, model):
    ds = build_dataset(dataset_name)
    predict(ds, assets().model_dir)
    ds.apply_model(model, label_field="fo_pred", store_logits=True)
    ours, theirs = _labels(ds, "fo_pred"), _labels(ds, g.PRED_FIELD)
    assert len(ours) == len(ds) and None not in ours.values()
    for sid, pred in theirs.items():
        assert ours[sid].label == pred.label
        assert ours[sid].confidence == pytest.approx(pred.confidence, abs=1e-5)
        assert np.asarray(ours[sid].logits) == pytest.approx(np.asarray(pred.logits), abs=1e-4)

    # without store_logits: no logits; with a threshold above a clip's confidence: no label
    ds.apply_model(model, label_field="fo_plain")
    assert all(p.logits is None for p in ds.values("fo_plain"))
    conf = sorted(ds.values(f"{g.PRED_FIELD}.confidence"))
    thresh = conf[len(conf) // 2]
    ds.apply_model(model, label_field="fo_thresh", confidence_thresh=thresh)
    for pred, kept in zip(ds.values(g.PRED_FIELD), ds.values("fo_thresh")):
        assert (kept is None) == (pred.confidence < thresh)
    assert model.config.confidence_thresh is None, "apply_model restores the model's own setting"


def test_apply_model_on_a_view_touches_only_the_view(dataset_name, model):
    ds = build_dataset(dataset_name, extra_uncached=1)
    predict(ds, assets().model_dir)
    view = ds.match({"clip_kind": "disagree"})
    view.apply_model(model, label_field="fo_pred")
    assert ds.count("fo_pred") == len(view) == 2
    for s in view:
        assert s.fo_pred.label == s[g.PRED_FIELD].label

    # A clip without cached features: FiftyOne skips it with a warning, or raises our sentence.
    bad = ds.match({"clip_kind": "uncached"})
    bad.apply_model(model, label_field="fo_pred")
    assert bad.first().fo_pred is None
    with pytest.raises(ValueError, match="feature extractor cannot be built"):
        bad.apply_model(model, label_field="fo_pred", skip_failures=False)


def _window_timeline(ds, model) -> None:
    """A ``windows`` field: one detection per window the model scores, with that window's genre."""
    import fiftyone as fo

    from fiftyone_genre.inference.predict import video_geometry
    from fiftyone_genre.inference.scoring import step_bounds, window_support

    for sample in ds:
        feats = model.features(sample.filepath, ds)
        (scored,) = model.scorer.score([feats])
        fps, total, duration = video_geometry(sample.metadata, feats)
        bounds = step_bounds(feats.timestamps, duration)
        dets = []
        for (s, e), p in zip(scored.windows, scored.window_probs):
            k = int(np.argmax(p))
            support = window_support(bounds, s, e, fps, total)
            dets.append(fo.TemporalDetection(label=model.classes[k], support=support, confidence=float(p[k])))
        sample["windows"] = fo.TemporalDetections(detections=dets)
        sample.save()


def test_clips_view_scores_only_the_clip(dataset_name, model):
    """A clip scores only its own steps: clips made from the model's windows get that window's label back.

    (predict's timeline labels a slot from every window around it, so its
    slots, made into clips, are scored with less context: they only have to run.)
    """
    ds = build_dataset(dataset_name)
    predict(ds, assets().model_dir)
    slots = ds.to_clips(g.TIMELINE_FIELD)
    assert len(slots) == ds.count(f"{g.TIMELINE_FIELD}.detections")
    slots.apply_model(model, label_field="clip_pred")
    assert None not in slots.values("clip_pred")

    _window_timeline(ds, model)
    clips = ds.to_clips("windows")
    assert len(clips) > len(ds)
    clips.apply_model(model, label_field="clip_pred")
    for clip in clips:
        det = clip["windows"]
        assert clip.clip_pred.label == det.label, (clip.filepath, clip.support)
        assert clip.clip_pred.confidence == pytest.approx(det.confidence, abs=1e-5)

    emb = clips.compute_embeddings(model)
    assert emb.shape == (len(clips), model.scorer.embedding_dim) and np.isfinite(emb).all()


def test_compute_embeddings_equals_genre_embedding(dataset_name, model):
    ds = build_dataset(dataset_name)
    predict(ds, assets().model_dir)
    emb = ds.compute_embeddings(model)
    expected = np.stack(ds.values(g.EMBEDDING_FIELD))
    assert emb.shape == expected.shape
    assert emb == pytest.approx(expected, abs=1e-5)
    ds.compute_embeddings(model, embeddings_field="fo_emb")
    assert np.stack(ds.values("fo_emb")) == pytest.approx(expected, abs=1e-5)


def test_model_reports_what_fiftyone_asks(model):
    assert model.media_type == "video" and model.has_logits and model.has_embeddings
    assert model.classes == list(g.GENRES)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        type(model).from_dir(assets().root / "nothing-here")
