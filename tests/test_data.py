"""Windows, padding, masks, aggregation, imbalance handling and the dataset reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fiftyone_genre import genres as g
from fiftyone_genre.config import TrainConfig
from fiftyone_genre.modeling import dataset as D
from fiftyone_genre.modeling import windows as W

from support.feature_data import AUDIO_DIM, VISUAL_DIM, balanced_videos, clip_features, populate


def feats(steps: int):
    return clip_features(0, steps, np.random.default_rng(0))


def test_make_windows_short_video_is_one_padded_window():
    assert W.make_windows(3, 40, 20) == [(0, 3)]
    assert W.make_windows(40, 40, 20) == [(0, 40)]
    assert W.make_windows(0, 40, 20) == []


@pytest.mark.parametrize("steps,window,stride", [(100, 40, 20), (101, 40, 20), (57, 8, 3), (41, 40, 40)])
def test_make_windows_long_video_covers_every_step(steps, window, stride):
    windows = W.make_windows(steps, window, stride)
    assert len(windows) >= 2
    assert windows[0][0] == 0 and windows[-1][1] == steps
    assert all(e - s == window for s, e in windows)
    covered = np.zeros(steps, bool)
    for s, e in windows:
        covered[s:e] = True
    assert covered.all()
    starts = [s for s, _ in windows]
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))


def test_make_windows_rejects_bad_sizes():
    with pytest.raises(ValueError):
        W.make_windows(10, 0, 1)


def test_pad_window_zero_pads_and_masks_the_tail():
    f = feats(5)
    visual, audio, mask = W.pad_window(f, 0, 5, 8)
    assert visual.shape == (8, VISUAL_DIM) and audio.shape == (8, AUDIO_DIM)
    assert mask.tolist() == [True] * 5 + [False] * 3
    np.testing.assert_array_equal(visual[:5], f.visual)
    assert not visual[5:].any() and not audio[5:].any()


def test_window_dataset_short_padded_long_many(tmp_path):
    short = W.VideoItem("a", "a.mp4", 0, "train", None, feats(3))
    long = W.VideoItem("b", "b.mp4", 1, "train", None, feats(30))
    ds = D.WindowDataset([short, long], window=8, stride=4)
    owners = [v for v, _, _ in ds.windows]
    assert owners.count(0) == 1  # short video kept, as one padded window
    assert owners.count(1) == len(W.make_windows(30, 8, 4)) == 7
    batch = D.collate_labeled([ds[i] for i in range(len(ds))])
    assert batch["visual"].shape == (8, 8, VISUAL_DIM)
    assert batch["mask"].dtype == torch.bool
    assert batch["mask"][0].sum() == 3 and batch["mask"][1:].all()
    assert batch["label"].tolist() == [0] + [1] * 7
    assert ds.lengths.tolist() == [3] + [8] * 7


def test_aggregate_windows_mean_and_length_weighted():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(W.aggregate_windows(probs), [0.5, 0.5])
    np.testing.assert_allclose(W.aggregate_windows(probs, np.array([3, 1]), "length_weighted"), [0.75, 0.25])
    with pytest.raises(ValueError):
        W.aggregate_windows(np.zeros((0, 2)))


def test_video_probabilities_groups_windows_by_video():
    ds = D.WindowDataset(
        [W.VideoItem("a", "a", 0, "test", None, feats(12)), W.VideoItem("b", "b", 1, "test", None, feats(2))],
        window=8,
        stride=8,
    )
    assert [w[0] for w in ds.windows] == [0, 0, 1]
    window_probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    out = ds.video_probabilities(window_probs, "mean")
    np.testing.assert_allclose(out, [[0.7, 0.3], [0.2, 0.8]])
    weighted = ds.video_probabilities(window_probs, "length_weighted")
    np.testing.assert_allclose(weighted[0], [0.7, 0.3])  # both windows are 8 real steps


def test_run_genres_paper_order_then_extras():
    assert W.run_genres(["Sports", "Action", "Documentary", "Sports", None, "Comedy"]) == [
        "Action",
        "Sports",
        "Comedy",
        "Documentary",
    ]


def test_class_weights_inverse_frequency():
    w = D.class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[0] < w[1]
    assert w[2] == 1.0  # absent class
    np.testing.assert_allclose((w[:2] * torch.tensor([3.0, 1.0])).tolist(), [2.0, 2.0])


def test_balanced_sampler_deterministic_balanced_and_sharded():
    labels = np.array([0] * 90 + [1] * 10)
    s = D.BalancedSampler(labels, 2, num_samples=2000, seed=3)
    s.set_epoch(1)
    first = list(s)
    assert first == list(s)  # same epoch, same draws (resume-safe)
    s.set_epoch(2)
    assert first != list(s)
    frac_minority = np.mean(labels[first] == 1)
    assert 0.4 < frac_minority < 0.6
    r0 = D.BalancedSampler(labels, 2, seed=3, num_replicas=2, rank=0)
    r1 = D.BalancedSampler(labels, 2, seed=3, num_replicas=2, rank=1)
    assert len(r0) == len(r1) == 50
    assert sorted(list(r0) + list(r1)) == sorted(D.BalancedSampler(labels, 2, seed=3).__iter__())


def test_train_sampler_shuffles_all_windows_per_epoch():
    ds = D.WindowDataset([W.VideoItem("a", "a", 0, "train", None, feats(40))], window=8, stride=2)
    s = D.train_sampler(ds, 1, "class_weights", seed=0)
    s.set_epoch(0)
    assert sorted(s) == list(range(len(ds)))


def test_load_window_data_splits_strides_and_skips(dataset, tmp_path):
    videos = balanced_videos(genres=("Sports", "Action"), per_split=(2, 1, 1), steps=(3, 20))
    missing = {1, 5}
    populate(dataset, tmp_path, videos, cached=set(range(len(videos))) - missing)
    dataset.add_sample(type(dataset.first())(filepath=str(tmp_path / "unlabeled.mp4"), split="train"))
    cfg = TrainConfig(window=8, stride=4, eval_stride=None)
    data = D.load_window_data(dataset, cfg)
    assert data.genres == ["Action", "Sports"]  # paper order, not sample order
    assert (data.visual_dim, data.audio_dim) == (VISUAL_DIM, AUDIO_DIM)
    assert len(data.skipped) == 2
    n_videos = sum(len(ds.videos) for ds in data.splits.values())
    assert n_videos == len(videos) - 2
    train = data.splits["train"]
    for v, item in enumerate(train.videos):
        expected = W.make_windows(item.features.num_steps, 8, 4)
        assert [(s, e) for w, s, e in train.windows if w == v] == expected
    test = data.splits["test"]
    for v, item in enumerate(test.videos):
        assert [(s, e) for w, s, e in test.windows if w == v] == W.make_windows(item.features.num_steps, 8, 8)
    # skips are recorded on the samples, and cleared once features exist
    bad = dataset.match_tags(g.ERROR_TAG)
    assert len(bad) == 2
    assert all(e.startswith("train: no cached features") for errs in bad.values(g.ERRORS_FIELD) for e in errs)
    assert "skipped 2" in str(data)


def test_load_window_data_clears_fixed_errors(dataset, tmp_path):
    videos = balanced_videos(genres=("Horror",), per_split=(2, 0, 0))
    cache = populate(dataset, tmp_path, videos, cached={0})
    D.load_window_data(dataset, TrainConfig(window=8, stride=4))
    assert len(dataset.match_tags(g.ERROR_TAG)) == 1
    sample = dataset.skip(1).first()
    cache.put(sample.filepath, feats(5))
    D.load_window_data(dataset, TrainConfig(window=8, stride=4))
    assert len(dataset.match_tags(g.ERROR_TAG)) == 0


def test_load_window_data_needs_labels(dataset, tmp_path):
    populate(dataset, tmp_path, [], cached=set())
    with pytest.raises(ValueError, match="genre"):
        D.load_window_data(dataset, TrainConfig())


# ---------------------------------------------------------------------------
# The packed store: training reads no per-clip file, and follows cache changes
# ---------------------------------------------------------------------------


def _pack_files(cache):
    return sorted(p.name for p in (cache.dir / "packed").iterdir())


def test_packed_windows_equal_the_cache_and_read_no_clip_file(dataset, tmp_path, monkeypatch):
    videos = balanced_videos(genres=("Sports", "Action"), per_split=(3, 1, 1), steps=(3, 20))
    cache = populate(dataset, tmp_path, videos)
    data = D.load_window_data(dataset, TrainConfig(window=8, stride=4))
    expected = {}
    for ds in data.splits.values():
        for item in ds.videos:
            expected[item.filepath] = cache.get(item.filepath)

    def no_clip_reads(*args, **kwargs):
        raise AssertionError("an epoch must not open per-clip cache files")

    monkeypatch.setattr(np, "load", no_clip_reads)
    monkeypatch.setattr(type(cache), "get", no_clip_reads)
    for ds in data.splits.values():
        for i in range(len(ds)):
            visual, audio, mask, label, v = ds[i]
            _, start, end = ds.windows[i]
            ref_v, ref_a, ref_m = W.pad_window(expected[ds.videos[v].filepath], start, end, 8)
            np.testing.assert_array_equal(visual, ref_v)
            np.testing.assert_array_equal(audio, ref_a)
            np.testing.assert_array_equal(mask, ref_m)


def test_pack_is_reused_unchanged_and_rebuilt_when_an_entry_changes(dataset, tmp_path):
    videos = balanced_videos(genres=("Horror",), per_split=(3, 0, 0), steps=(6,))
    cache = populate(dataset, tmp_path, videos)
    cfg = TrainConfig(window=8, stride=4)
    first = D.load_window_data(dataset, cfg).splits["train"]
    files = _pack_files(cache)
    assert D.load_window_data(dataset, cfg).splits["train"].videos[0].features.store.token == \
        first.videos[0].features.store.token
    assert _pack_files(cache) == files

    path = first.videos[1].filepath
    cache.put(path, feats(11))  # re-extracted: longer clip, new numbers
    again = D.load_window_data(dataset, cfg).splits["train"]
    item = next(v for v in again.videos if v.filepath == path)
    assert item.features.num_steps == 11
    np.testing.assert_array_equal(W.clip_steps(item.features)[0], feats(11).visual)
    # the old pack is gone, the new one complete: one set of files, named by pack.json
    names = _pack_files(cache)
    assert len([n for n in names if n.endswith(".visual.f32")]) == 1
    token = __import__("json").loads((cache.dir / "packed" / "pack.json").read_text())["token"]
    assert f"{token}.index.npz" in names


def test_pack_follows_an_edited_video(dataset, tmp_path):
    videos = balanced_videos(genres=("Horror",), per_split=(2, 0, 0), steps=(6,))
    populate(dataset, tmp_path, videos)
    D.load_window_data(dataset, TrainConfig(window=8, stride=4))
    edited = dataset.first().filepath
    with open(edited, "ab") as f:
        f.write(b"new bytes")  # the cache entry no longer matches the file
    data = D.load_window_data(dataset, TrainConfig(window=8, stride=4))
    assert [s.filepath for s in data.skipped] == [edited]
    assert "no cached features" in data.skipped[0].reason


def test_feature_stats_stream_matches_all_steps_at_once():
    videos = [W.VideoItem(str(i), str(i), 0, "train", None, clip_features(i, 3 + i, np.random.default_rng(i)))
              for i in range(5)]
    stats = D.feature_stats(videos)
    for name in ("visual", "audio"):
        steps = np.concatenate([getattr(v.features, name) for v in videos]).astype(np.float64)
        np.testing.assert_allclose(stats[f"{name}_mean"], steps.mean(0), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(stats[f"{name}_std"], steps.std(0), rtol=1e-5)


def test_training_a_subset_keeps_the_other_clips_packed(dataset, tmp_path):
    videos = balanced_videos(genres=("Horror",), per_split=(4, 0, 0), steps=(6,))
    cache = populate(dataset, tmp_path, videos)
    cfg = TrainConfig(window=8, stride=4)
    D.load_window_data(dataset, cfg)
    token = __import__("json").loads((cache.dir / "packed" / "pack.json").read_text())["token"]
    subset = dataset.limit(2)
    data = D.load_window_data(subset, cfg)
    assert len(data.splits["train"].videos) == 2
    assert data.splits["train"].videos[0].features.store.token == token  # a subset reuses the pack
    assert len(data.splits["train"].videos[0].features.store.rows) == 4
