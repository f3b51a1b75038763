"""The genre timeline: one genre per <= 2.5 s slot, from the overlapping windows covering it.

Fast checks of the slot rule on made-up window probabilities (the shipped
configs' geometry: 40-step windows, 4 fps), then predict and classify on a
20 s clip whose features say one genre for 10 s and another after, through
the tiny trained model of ``support.model_assets``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.inference import timeline as tl
from fiftyone_genre.inference.scoring import step_bounds, window_support

from support.model_assets import FEATURE_FPS, assets, features_config, write_video

WINDOW = 40  # steps: 10 s at 4 fps, as in every shipped config


def _content_probs(windows, change_at: int, recency: bool = True, num_genres: int = 6) -> np.ndarray:
    """Window probabilities of a model reading the content: genre 0 before step ``change_at``, genre 1 after.

    ``recency``: each step counts by how late in the window it lies, as the
    LSTM's last state weighs a window; else every step counts the same.
    """
    probs = np.full((len(windows), num_genres), 0.01)
    for i, (s, e) in enumerate(windows):
        t = np.arange(s, e)
        w = (t - s + 1.0) / (e - s) if recency else np.ones(e - s)
        before = float((w * (t < change_at)).sum() / w.sum())
        probs[i, 0] += before
        probs[i, 1] += 1 - before
    return probs / probs.sum(axis=1, keepdims=True)


def test_slot_length_and_ranges():
    assert tl.slot_steps(2.5, 4.0) == 10
    assert tl.slot_steps(2.5, 3.0) == 7, "7 steps = 2.33 s: never longer than asked"
    assert tl.slot_steps(0.1, 4.0) == 1, "at least one step"
    with pytest.raises(ValueError, match="must be > 0"):
        tl.slot_steps(0, 4.0)
    assert tl.slot_ranges(80, 10) == [(s, s + 10) for s in range(0, 80, 10)]
    assert tl.slot_ranges(25, 10) == [(0, 10), (10, 20), (20, 25)]
    assert tl.slot_ranges(0, 10) == []


def test_a_change_at_10_s_in_a_20_s_clip_falls_between_slots():
    """80 steps, genre 0 for the first 40: windows every 2.5 s, slots 0-3 say genre 0, slots 4-7 genre 1."""
    windows = tl.timeline_windows(80, WINDOW, 10)
    assert windows == [(0, 40), (10, 50), (20, 60), (30, 70), (40, 80)]
    slots = tl.slot_ranges(80, 10)
    probs = tl.slot_probs(slots, windows, _content_probs(windows, 40))
    assert [int(np.argmax(p)) for p in probs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert probs.sum(axis=1) == pytest.approx(np.ones(8))
    # the slots next to the change are the least sure: their windows straddle it
    conf = probs.max(axis=1)
    assert conf[0] > conf[3] and conf[7] > conf[4]
    # a model that weighs every step of a window alike: the change is found one slot late at most
    even = tl.slot_probs(slots, windows, _content_probs(windows, 40, recency=False))
    assert [int(np.argmax(p)) for p in even] == [0, 0, 0, 0, 0, 1, 1, 1]

    spans = tl.spans(step_bounds(np.arange(80) / 4.0, 20.0), slots, probs, ["Action", "Horror", "a", "b", "c", "d"])
    assert [(s.start, s.end) for s in spans] == [(2.5 * k, 2.5 * (k + 1)) for k in range(8)]
    merged = tl.merge_runs(spans)
    assert [(m.start, m.end, m.genre) for m in merged] == [(0.0, 10.0, "Action"), (10.0, 20.0, "Horror")]
    assert merged[0].confidence == pytest.approx(float(np.mean(conf[:4])))


def test_a_clip_shorter_than_a_window_still_gets_a_slot_per_2_5_s():
    """6 s = 24 steps: one window covers it all, so three slots (2.5, 2.5, 1 s) with that window's genre."""
    windows = tl.timeline_windows(24, WINDOW, 10)
    assert windows == [(0, 24)]
    slots = tl.slot_ranges(24, 10)
    probs = tl.slot_probs(slots, windows, _content_probs(windows, 24))
    assert slots == [(0, 10), (10, 20), (20, 24)]
    assert probs == pytest.approx(np.repeat(probs[:1], 3, axis=0))
    spans = tl.spans(step_bounds(np.arange(24) / 4.0, 6.0), slots, probs, ["Action", "Horror", "a", "b", "c", "d"])
    assert [(s.start, s.end, s.genre) for s in spans] == [(0.0, 2.5, "Action"), (2.5, 5.0, "Action"), (5.0, 6.0, "Action")]
    assert len(tl.merge_runs(spans)) == 1


def test_slots_longer_than_the_window_still_read_every_step():
    windows = tl.timeline_windows(30, 4, 10)
    covered = np.zeros(30, dtype=bool)
    for s, e in windows:
        covered[s:e] = True
    assert covered.all()
    probs = tl.slot_probs(tl.slot_ranges(30, 10), windows, _content_probs(windows, 14, recency=False))
    # slot 10-20 reads windows 8-12 (its steps 10, 11: the window's last two, all before 14),
    # 12-16 (all four, half before 14) and 16-20 (all four, none): weights 7/4, 10/4, 10/4
    expected = (7 / 4 * 1.0 + 10 / 4 * 0.5) / (7 / 4 + 10 / 4 + 10 / 4)
    assert probs[1, 0] == pytest.approx((expected + 0.01) / 1.06)  # the 0.01 floor of each genre, normalised
    assert [int(np.argmax(p)) for p in probs] == [0, 1, 1]


@pytest.mark.parametrize("video_fps", [10.0, 25.0, 29.97, 3.0])
def test_slot_supports_tile_the_video_without_overlap(video_fps):
    """Adjacent slots never share a frame: the App draws one timeline badge at a time."""
    duration = 20.0
    total = int(round(duration * video_fps))
    bounds = step_bounds(np.arange(80) / 4.0, duration)
    supports = [window_support(bounds, s, e, video_fps, total) for s, e in tl.slot_ranges(80, 10)]
    assert supports[0][0] == 1 and supports[-1][1] == total
    assert all(b[0] == a[1] + 1 for a, b in zip(supports, supports[1:])), supports
    assert tl.detection_spans([_Det(x) for x in supports], video_fps)[4].start == pytest.approx(10.0, abs=1 / video_fps)


class _Det:
    def __init__(self, support):
        self.support, self.label, self.confidence = support, "Action", 0.5


# --------------------------------------------------------------------------- through the model


def _mixed_clip_features(first: str, second: str, duration: float = 20.0, change_at: float = 10.0, seed: int = 5):
    """Features with the learnable signal of ``first`` before ``change_at`` and ``second`` after."""
    from support.model_assets import ClipSpec, make_features

    a = make_features(ClipSpec("a", first, first, first, duration), seed=seed)
    b = make_features(ClipSpec("b", second, second, second, duration), seed=seed + 1)
    cut = int(round(change_at * FEATURE_FPS))
    a.visual[cut:], a.audio[cut:] = b.visual[cut:], b.audio[cut:]
    return a


@pytest.fixture
def mixed_dataset(dataset_name, tmp_path):
    import fiftyone as fo

    from fiftyone_genre.config import to_dict
    from fiftyone_genre.features.cache import FeatureCache

    a = assets()
    path = write_video(tmp_path / "action_then_horror.mp4", 20.0, seed=3)
    cache_dir = tmp_path / "cache"
    FeatureCache(cache_dir, features_config(cache_dir)).put(path, _mixed_clip_features(g.ACTION, g.HORROR))
    ds = fo.Dataset(dataset_name)
    ds.add_sample(fo.Sample(filepath=str(path)))
    ds.info[g.FEATURES_INFO_KEY] = {"cache_dir": str(cache_dir), "config": to_dict(features_config(cache_dir))}
    ds.save()
    return ds, a


def test_predict_writes_a_slot_timeline_that_changes_at_10_s(mixed_dataset):
    from fiftyone_genre.inference.predict import predict

    ds, a = mixed_dataset
    report = predict(ds, a.model_dir)
    assert report.num_slots == 8
    sample = ds.first()
    dets = sample[g.TIMELINE_FIELD].detections
    fps = sample.metadata.frame_rate
    spans = tl.detection_spans(dets, fps)
    assert [s.genre for s in spans] == [g.ACTION] * 4 + [g.HORROR] * 4
    assert [round(s.end - s.start, 2) for s in spans] == [2.5] * 8
    merged = tl.merge_runs(spans)
    assert [(m.start, m.end, m.genre) for m in merged] == [(0.0, 10.0, g.ACTION), (10.0, 20.0, g.HORROR)]
    assert ds.info[g.RUN_INFO_KEY]["timeline_slot_s"] == 2.5


def test_a_coarser_slot_from_the_config(mixed_dataset):
    from fiftyone_genre.config import PredictConfig
    from fiftyone_genre.inference.predict import predict

    ds, a = mixed_dataset
    predict(ds, a.model_dir, PredictConfig(timeline_slot_s=5.0))
    assert len(ds.first()[g.TIMELINE_FIELD].detections) == 4


def test_classify_gives_the_same_timeline_and_its_segments(mixed_dataset):
    from fiftyone_genre import classify_files
    from fiftyone_genre.inference.predict import predict

    ds, a = mixed_dataset
    predict(ds, a.model_dir)
    cache_dir = ds.info[g.FEATURES_INFO_KEY]["cache_dir"]
    (result,) = classify_files([ds.first().filepath], a.model_dir, device="cpu", cache_dir=cache_dir).files
    assert [s.genre for s in result.timeline] == [d.label for d in ds.first()[g.TIMELINE_FIELD].detections]
    assert [(s.start, s.end, s.genre) for s in result.segments] == [(0.0, 10.0, g.ACTION), (10.0, 20.0, g.HORROR)]
    assert "   10.0 -    20.0 s  Horror" in str(result)


def test_the_panel_draws_one_bar_per_slot_in_its_genres_colour():
    """The modal panel's plot: a legend entry per genre, a bar per slot, a truth row; runs as text."""
    from operators.timeline import GENRE_COLORS, bar_traces, runs_markdown

    slots = [tl.GenreSpan(2.5 * k, 2.5 * (k + 1), g.ACTION if k < 4 else g.HORROR, 0.9) for k in range(8)]
    truth = [tl.GenreSpan(0.0, 20.0, g.ACTION, float("nan"))]
    traces = {t["name"]: t for t in bar_traces({"predicted": slots, "truth": truth})}
    assert set(traces) == {g.ACTION, g.HORROR}
    action = traces[g.ACTION]
    assert action["y"] == ["predicted"] * 4 + ["truth"] and action["base"] == [0.0, 2.5, 5.0, 7.5, 0.0]
    assert action["x"] == [2.5] * 4 + [20.0] and action["marker"]["color"] == GENRE_COLORS[g.ACTION]
    assert action["customdata"][0] == "predicted: 0.0-2.5 s 0.90" and action["customdata"][-1] == "truth: 0.0-20.0 s"
    assert runs_markdown(tl.merge_runs(slots)) == "- 0.0-10.0 s **Action** 0.90\n- 10.0-20.0 s **Horror** 0.90"
