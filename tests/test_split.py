"""Group-aware stratified split, leakage check and balance report."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter, defaultdict

import fiftyone as fo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError, SplitConfig
from fiftyone_genre.labels.leakage import LeakageError, check_leakage
from fiftyone_genre.labels.split import assign_groups, balance_report, split_dataset

# --- the pure assignment: property tests over many seeds and layouts ---------

layouts = st.lists(
    st.tuples(st.sampled_from(g.GENRES), st.integers(min_value=1, max_value=8)),
    min_size=1,
    max_size=400,
)


def _groups(layout) -> dict[str, Counter]:
    return {f"grp{i}": Counter({genre: size}) for i, (genre, size) in enumerate(layout)}


@settings(max_examples=300, deadline=None)
@given(layout=layouts, seed=st.integers(0, 2**32 - 1))
def test_every_group_lands_in_one_split_and_ratios_roughly_hold(layout, seed):
    groups = _groups(layout)
    ratios = (0.8, 0.1, 0.1)
    out = assign_groups(groups, ratios, seed)
    assert set(out) == set(groups) and set(out.values()) <= set(g.SPLITS)
    per_split = Counter()
    for key, split in out.items():
        per_split[split] += sum(groups[key].values())
    n = sum(per_split.values())
    k = len({genre for genre, _ in layout})
    biggest = max(size for _, size in layout)
    # each genre can miss its quota by about one group in each split
    tolerance = 2 * k * biggest / n + 0.01
    for split, ratio in zip(g.SPLITS, ratios):
        assert abs(per_split[split] / n - ratio) <= tolerance, (split, per_split, tolerance)
    # a genre with at least three groups is evaluated: it reaches val and test
    for genre in {genre for genre, _ in layout}:
        keys = [key for key, c in groups.items() if genre in c]
        if len(keys) >= 3:
            assert {out[key] for key in keys} == set(g.SPLITS)


@settings(max_examples=100, deadline=None)
@given(layout=layouts, seed=st.integers(0, 2**32 - 1))
def test_assignment_is_reproducible_by_seed(layout, seed):
    groups = _groups(layout)
    assert assign_groups(groups, (0.8, 0.1, 0.1), seed) == assign_groups(dict(reversed(groups.items())), (0.8, 0.1, 0.1), seed)


def test_bad_ratios_are_config_errors():
    with pytest.raises(ConfigError, match="ratios"):
        assign_groups({"a": Counter({"Action": 1})}, (0.8, 0.1))
    with pytest.raises(ConfigError, match="ratios"):
        assign_groups({"a": Counter({"Action": 1})}, (0.0, 0.5, 0.5))


# --- on a real dataset -----------------------------------------------------------


def make(dataset, tmp_path, layout, source="ucf101", official=None, seed_files=True):
    """layout: list of (genre or None, group, clips); files hold distinct content."""
    samples = []
    for gi, (genre, group, clips) in enumerate(layout):
        for c in range(clips):
            path = tmp_path / f"{source}_{gi:03d}_{c:02d}.mp4"
            if seed_files:
                path.write_bytes(f"{group}/{c}".encode())
            s = fo.Sample(
                filepath=str(path),
                source=source,
                group=group,
                genre=fo.Classification(label=genre) if genre else None,
            )
            if official is not None:
                s[g.SOURCE_SPLIT_FIELD] = official(gi)
            samples.append(s)
    dataset.add_samples(samples)
    return dataset


def splits_by_group(dataset) -> dict[str, set]:
    out = defaultdict(set)
    for group, split in zip(dataset.values(g.GROUP_FIELD), dataset.values(g.SPLIT_FIELD)):
        out[group].add(split)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    layout=st.lists(st.tuples(st.sampled_from(g.GENRES[:4]), st.integers(1, 4)), min_size=1, max_size=40),
    seed=st.integers(0, 10_000),
)
def test_split_dataset_never_puts_a_group_in_two_splits(dataset, tmp_path, layout, seed):
    dataset.clear()
    make(dataset, tmp_path, [(genre, f"ucf101:g{i}", n) for i, (genre, n) in enumerate(layout)], seed_files=False)
    report = split_dataset(dataset, SplitConfig(seed=seed))
    assert all(len(s) == 1 for s in splits_by_group(dataset).values())
    assert sum(report.totals().values()) == len(dataset)
    check_leakage(dataset)  # no group leaks (files are absent: reported as missing, not leakage)


def test_split_is_reproducible_and_leaves_unlabeled_clips_unsplit(dataset, tmp_path):
    layout = [(g.GENRES[i % 3], f"ucf101:g{i:02d}", 1 + i % 3) for i in range(60)]
    layout += [(None, "ucf101:nolabel", 4)]
    make(dataset, tmp_path, layout)
    report = split_dataset(dataset, SplitConfig(seed=7))
    first = dataset.values(g.SPLIT_FIELD)
    assert report.unsplit == 4
    assert dataset.match(fo.ViewField(g.GENRE_FIELD) == None).values(g.SPLIT_FIELD) == [None] * 4  # noqa: E711
    split_dataset(dataset, SplitConfig(seed=7))
    assert dataset.values(g.SPLIT_FIELD) == first
    split_dataset(dataset, SplitConfig(seed=8))
    assert dataset.values(g.SPLIT_FIELD) != first
    fr = report.fractions()
    assert abs(fr["train"] - 0.8) < 0.1 and abs(fr["val"] - 0.1) < 0.06 and abs(fr["test"] - 0.1) < 0.06
    assert dataset.info[g.SPLIT_INFO_KEY]["seed"] == 8
    text = str(report)
    assert "train" in text and "left unsplit (no genre): 4" in text
    # a dry run writes nothing
    before = dataset.values(g.SPLIT_FIELD)
    split_dataset(dataset, SplitConfig(seed=99), dry_run=True)
    assert dataset.values(g.SPLIT_FIELD) == before


def test_keep_official_test(dataset, tmp_path):
    # UCF101-like: groups 0-6 are the official test fold; the folder source has no folds
    layout = [((g.ACTION, g.SPORTS)[i % 2], f"ucf101:g{i:02d}", 3) for i in range(25)]
    make(dataset, tmp_path, layout, official=lambda gi: "test" if gi < 7 else "train")
    make(dataset, tmp_path, [(g.ANIMATION, f"folder:a{i}", 2) for i in range(20)], source="folder")
    report = split_dataset(dataset, SplitConfig(keep_official_test=True, seed=3))
    ucf = dataset.match(fo.ViewField(g.SOURCE_FIELD) == "ucf101")
    official = ucf.values(g.SOURCE_SPLIT_FIELD)
    ours = ucf.values(g.SPLIT_FIELD)
    assert all(s == "test" for o, s in zip(official, ours) if o == "test")
    assert {s for o, s in zip(official, ours) if o == "train"} == {"train", "val"}
    folder_splits = Counter(dataset.match(fo.ViewField(g.SOURCE_FIELD) == "folder").values(g.SPLIT_FIELD))
    assert set(folder_splits) == set(g.SPLITS)  # sources without folds split three ways
    assert report.official_test_groups == 7
    check_leakage(dataset)


def test_leakage_check_catches_planted_duplicate_file_and_shared_group(dataset, tmp_path):
    cache = tmp_path / "hashes.sqlite"
    layout = [(g.GENRES[i % 2], f"ucf101:g{i:02d}", 2) for i in range(20)]
    make(dataset, tmp_path, layout)
    split_dataset(dataset, SplitConfig(seed=1))
    report = check_leakage(dataset, hash_cache=cache)
    assert report.samples == 40 and report.groups == 20

    # a planted duplicate: same bytes, another path, another group, in another split
    train = dataset.match(fo.ViewField(g.SPLIT_FIELD) == "train").first()
    copy = tmp_path / "reupload" / "renamed copy.mp4"
    copy.parent.mkdir()
    copy.write_bytes(open(train.filepath, "rb").read())
    dataset.add_sample(
        fo.Sample(filepath=str(copy), group="yt8m:other", split="test", genre=fo.Classification(label=g.ACTION))
    )
    with pytest.raises(LeakageError) as err:
        check_leakage(dataset, hash_cache=cache)
    msg = str(err.value)
    assert "identical content" in msg and str(copy) in msg and train.filepath in msg
    with sqlite3.connect(cache) as db:  # hashes are cached by path+size+mtime
        assert db.execute("SELECT COUNT(*) FROM hashes").fetchone()[0] >= 2
    # a changed file is re-hashed (mtime/size changed), so the duplicate disappears
    copy.write_bytes(b"now different content!!" + b"x" * 10)
    os.utime(copy, ns=(1, 1))
    check_leakage(dataset, hash_cache=cache)

    # a planted shared group: one clip of a train group moved to val
    victim = dataset.match(fo.ViewField(g.SPLIT_FIELD) == "train").first()
    victim[g.SPLIT_FIELD] = "val"
    victim.save()
    with pytest.raises(LeakageError, match=rf"group '{victim[g.GROUP_FIELD]}' is in train \(1\), val \(1\)"):
        check_leakage(dataset, hash_cache=cache)
    assert isinstance(LeakageError("x"), ValueError)


def test_split_merges_groups_that_share_identical_files(dataset, tmp_path):
    layout = [(g.GENRES[i % 2], f"ucf101:g{i:02d}", 1) for i in range(30)]
    make(dataset, tmp_path, layout)
    # the same clip re-imported under another name, group and source
    dupes = []
    for i, path in enumerate(dataset.values("filepath")[:10]):
        copy = tmp_path / f"copy_{i}.mp4"
        copy.write_bytes(open(path, "rb").read())
        dupes.append(fo.Sample(filepath=str(copy), group=f"yt8m:v{i}", genre=fo.Classification(label=g.ACTION)))
    dataset.add_samples(dupes)
    for seed in range(5):
        report = split_dataset(dataset, SplitConfig(seed=seed), hash_cache=tmp_path / "h.sqlite")
        assert report.merged_groups == 10
        check_leakage(dataset, hash_cache=tmp_path / "h.sqlite")
    off = split_dataset(dataset, SplitConfig(seed=0), merge_duplicates=False)
    assert off.merged_groups == 0


def test_balance_report(dataset, tmp_path):
    make(dataset, tmp_path, [(g.ACTION, "a", 2), (g.SPORTS, "b", 1), (None, "c", 1)])
    for s in dataset:
        s.metadata = fo.VideoMetadata(duration=90.0)
        s.save()
    dataset.set_values(g.SPLIT_FIELD, ["train", "train", "test", None])
    report = balance_report(dataset)
    assert report.clips[g.ACTION] == {"train": 2}
    assert report.minutes[g.ACTION]["train"] == pytest.approx(3.0)
    assert report.minutes[g.SPORTS]["test"] == pytest.approx(1.5)
    assert report.clips["(no genre)"] == {"(unsplit)": 1}
    text = str(report)
    assert "train clips" in text and "3.0" in text and "total" in text


def test_cli_split_check_balance(dataset, tmp_path, capsys):
    from fiftyone_genre.cli import main

    make(dataset, tmp_path, [(g.GENRES[i % 3], f"g{i}", 2) for i in range(30)])
    assert main(["split", "--dataset", dataset.name, "--seed", "4", "--ratios", "0.7", "0.15", "0.15"]) == 0
    assert "seed 4" in capsys.readouterr().out
    assert dataset.info[g.SPLIT_INFO_KEY]["ratios"] == pytest.approx([0.7, 0.15, 0.15])
    assert main(["check-leakage", "--dataset", dataset.name]) == 0
    assert main(["balance", "--dataset", dataset.name]) == 0
    assert "minutes" in capsys.readouterr().out
    s = dataset.match(fo.ViewField(g.SPLIT_FIELD) == "test").first()
    other = dataset.match(fo.ViewField(g.SPLIT_FIELD) == "train").first()
    s[g.GROUP_FIELD] = other[g.GROUP_FIELD]
    s.save()
    assert main(["check-leakage", "--dataset", dataset.name]) == 2
    assert "leakage" in capsys.readouterr().err
    assert main(["split", "--dataset", dataset.name, "--ratios", "0", "1", "0"]) == 2


def test_split_operator_preview_and_execute(dataset, tmp_path):
    import json

    from fiftyone.operators.executor import ExecutionContext, Executor

    from operators.labels import SplitDataset

    make(dataset, tmp_path, [(g.GENRES[i % 2], f"g{i}", 2) for i in range(20)])
    op = SplitDataset()

    def ctx(params):
        return ExecutionContext(request_params={"dataset_name": dataset.name, "params": params}, executor=Executor())

    form = json.dumps(op.resolve_input(ctx({"train": 0.6, "val": 0.2, "test": 0.2, "seed": 2})).to_json())
    assert "dry run" in form and "0.60/0.20/0.20" in form
    assert g.SPLIT_FIELD not in dataset.get_field_schema()
    result = op.execute(ctx({"train": 0.6, "val": 0.2, "test": 0.2, "seed": 2}))
    assert sum(result["totals"].values()) == 40 and "no leakage" in result["report"]
    assert set(dataset.distinct(g.SPLIT_FIELD)) == set(g.SPLITS)


def test_leakage_check_reports_identical_content_with_different_labels(dataset, tmp_path):
    # issue 15 item 7: the same bytes under six genre folders
    make(dataset, tmp_path, [(g.GENRES[i % 2], f"ucf101:g{i:02d}", 2) for i in range(10)])
    same = b"the very same clip" * 100
    for i, genre in enumerate(g.GENRES):
        path = tmp_path / genre / f"copy_{i}.mp4"
        path.parent.mkdir()
        path.write_bytes(same)
        dataset.add_sample(fo.Sample(filepath=str(path), group=f"folder:{genre}/copy_{i}", genre=fo.Classification(label=genre)))
    split_dataset(dataset, SplitConfig(seed=0), hash_cache=tmp_path / "h.sqlite")
    report = check_leakage(dataset, hash_cache=tmp_path / "h.sqlite")  # merged into one group: no leakage
    assert len(report.conflicting_labels) == 1
    text = str(report)
    assert text.startswith("no leakage") and "identical content carries different labels in 1 case" in text
    assert all(genre in text for genre in g.GENRES) and "copy_0.mp4" in text
    # clean data: no warning
    dataset.delete_samples(dataset.match({"filepath": {"$regex": "copy_"}}))
    assert "warning" not in str(check_leakage(dataset, hash_cache=tmp_path / "h.sqlite"))


def test_leakage_messages_escape_file_names(dataset, tmp_path):
    make(dataset, tmp_path, [(g.ACTION, "a", 1)])
    odd = tmp_path / "x\nFAILED forged.mp4"
    odd.write_bytes(b"same")
    dataset.add_sample(fo.Sample(filepath=str(odd), group="b", split="train", genre=fo.Classification(label=g.ACTION)))
    dataset.add_sample(fo.Sample(filepath=str(odd), group="c", split="test", genre=fo.Classification(label=g.ACTION)))
    with pytest.raises(LeakageError) as e:
        check_leakage(dataset, hash_cache=tmp_path / "h.sqlite")
    assert not any(line.startswith("FAILED") for line in str(e.value).splitlines()), str(e.value)
    assert repr(str(odd)) in str(e.value)
