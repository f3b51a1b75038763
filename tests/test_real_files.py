"""Importers on the real official annotation files (``../shared/real/``, read-only).

The lists are the published ones (CRLF UCF101 lists, HMDB51 lines with a
trailing space, the 2018 YouTube-8M vocabulary with its 56 blank-name rows,
two real validate shards); only the media are generated. One tiny valid clip
is hard-linked under every listed name, so 13,320 UCF101 files cost one
encode plus 13,320 links, and the import still probes every file.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import fiftyone as fo
import pytest
import yaml

from fiftyone_genre import genres as g
from fiftyone_genre.demo import clips
from fiftyone_genre.labels.mapping import load_mapping
from fiftyone_genre.sources import import_hmdb51, import_ucf101, import_yt8m
from fiftyone_genre.sources.common import ImportReport, label_names
from fiftyone_genre.sources.hmdb51 import parse_hmdb51
from fiftyone_genre.sources.yt8m import iter_tfrecord, parse_record, read_vocabulary

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real"
UCF_LISTS = REAL / "ucf101" / "ucfTrainTestlist"
HMDB_SPLITS = REAL / "hmdb51" / "testTrainMulti_7030_splits"
YT8M = REAL / "yt8m"

pytestmark = pytest.mark.skipif(
    not REAL.is_dir(),
    reason=f"real official annotation files not found at {REAL} (a checkout without ../shared)",
)

#: Published sizes: (train, test) per UCF101 fold; HMDB51 per fold (train, test, unused).
UCF_SPLITS = {1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)}
HMDB_COUNTS = {"train": 3570, "test": 1530, "unused": 1666}
MAPPINGS = Path(__file__).resolve().parents[1] / "fiftyone_genre" / "labels" / "mappings"
#: Records per genre over the 60 validate shards with the shipped (reviewed) mapping.
YT8M_VALIDATE_GENRES = {
    g.ANIMATION: 758, g.HORROR: 1, g.ROMANCE: 18, g.SPORTS: 2104, g.SCIENCE_FICTION: 21, None: 14597,
}


def _tiny_clip(path: Path) -> Path:
    """One real 2-frame AVI: what the metadata probe must be able to open and decode."""
    return clips.write_clip(
        path, g.ACTION, duration=0.25, fps=8.0, size=(32, 24), audio=False, container="avi"
    )


def _link_all(src: Path, targets: list[Path]) -> None:
    """Hard-link ``src`` under every name (a copy where links are not allowed)."""
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, t)
        except OSError:
            shutil.copyfile(src, t)


def _ucf_list(fold: int, split: str) -> list[str]:
    """``<Class>/<file>`` of one published list, read independently of the importer."""
    text = (UCF_LISTS / f"{split}list0{fold}.txt").read_text()
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _classes_of(rels: list[str]) -> Counter:
    return Counter(rel.split("/")[0] for rel in rels)


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ucf_real")
    rels = {rel for fold in (1, 2, 3) for s in ("train", "test") for rel in _ucf_list(fold, s)}
    _link_all(_tiny_clip(root / "clip.avi"), [root / "UCF-101" / rel for rel in sorted(rels)])
    return root


def _unmapped_as_listed(source: str, classes: set[str]) -> None:
    """The shipped mapping names every official class; the unmapped ones are the listed ones."""
    data = yaml.safe_load((MAPPINGS / f"{source}.yaml").read_text())
    listed = set(data.get("unmapped") or []) | {k for k, v in data["map"].items() if v is None}
    assert set(data["map"]) | listed == classes
    mapping = load_mapping(source)
    assert {c for c in classes if mapping.resolve(c) is None} == listed


def test_ucf101_real_lists_every_fold(ucf_root, dataset):
    assert len(list((ucf_root / "UCF-101").rglob("*.avi"))) == 13320
    report = import_ucf101(dataset, ucf_root, fold=1, splits_dir=UCF_LISTS)
    assert report.imported == 13320 and report.flagged == 0
    assert not report.problems and not report.skipped and not report.notes
    assert len(dataset) == 13320 and dataset.count("metadata") == 13320
    assert dataset.first().metadata.frame_width == 32
    for fold, (n_train, n_test) in UCF_SPLITS.items():
        if fold > 1:
            report = import_ucf101(dataset, ucf_root, fold=fold, splits_dir=UCF_LISTS)
            assert report.imported == 0 and report.existing == 13320 and not report.problems
        assert dict(report.by_split) == {"train": n_train, "test": n_test}
        assert dataset.count_values(g.SOURCE_SPLIT_FIELD) == {"train": n_train, "test": n_test}
        for split in ("train", "test"):
            view = dataset.match(fo.ViewField(g.SOURCE_SPLIT_FIELD) == split)
            got = Counter(view.values(f"{g.SOURCE_LABEL_FIELD}.label"))
            assert got == _classes_of(_ucf_list(fold, split)), (fold, split)
        # a group (the gXX source video) never straddles train and test
        splits_of = defaultdict(set)
        for group, split in zip(*dataset.values([g.GROUP_FIELD, g.SOURCE_SPLIT_FIELD])):
            splits_of[group].add(split)
        assert len(splits_of) == 101 * 25 and all(len(s) == 1 for s in splits_of.values())
    # the HandstandPushups quirk: folder class, v_HandStandPushups_* files
    quirk = dataset.match(fo.ViewField(f"{g.SOURCE_LABEL_FIELD}.label") == "HandstandPushups")
    assert (
        len(quirk) == _classes_of(_ucf_list(1, "train") + _ucf_list(1, "test"))["HandstandPushups"]
    )
    assert all("v_HandStandPushups_" in p for p in quirk.values("filepath"))


def test_ucf101_shipped_mapping_covers_the_real_classes():
    text = (UCF_LISTS / "classInd.txt").read_text()
    classes = {line.split()[1] for line in text.splitlines() if line.strip()}
    assert len(classes) == 101
    _unmapped_as_listed("ucf101", classes)


@pytest.fixture(scope="module")
def hmdb_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hmdb_real")
    targets = set()
    for f in HMDB_SPLITS.glob("*_test_split1.txt"):
        action = f.name.rsplit("_test_split", 1)[0]
        names = [line.split()[0] for line in f.read_text().splitlines() if line.strip()]
        targets |= {root / "videos" / action / n for n in names}
    _link_all(_tiny_clip(root / "clip.avi"), sorted(targets))
    return root


def test_hmdb51_real_splits_every_fold(hmdb_root, dataset):
    actions = {f.name.rsplit("_test_split", 1)[0] for f in HMDB_SPLITS.glob("*.txt")}
    assert len(actions) == 51
    for fold in (1, 2, 3):
        result = parse_hmdb51(hmdb_root, fold, splits_dir=HMDB_SPLITS)
        assert not result.report.problems and len(result.entries) == 6766
        assert Counter(e.split for e in result.entries) == HMDB_COUNTS
        per_action = Counter((e.labels[0], e.split) for e in result.entries)
        assert all(
            per_action[(a, "train")] == 70 and per_action[(a, "test")] == 30 for a in actions
        )
        # within one action, clips of one source video never straddle train and test
        splits_of = defaultdict(set)
        for e in result.entries:
            if e.split != "unused":
                splits_of[(e.labels[0], e.group)].add(e.split)
        assert all(len(s) == 1 for s in splits_of.values()), fold
    report = import_hmdb51(dataset, hmdb_root, fold=2, splits_dir=HMDB_SPLITS)
    assert report.imported == 6766 and report.flagged == 0 and not report.problems
    assert dataset.count_values(g.SOURCE_SPLIT_FIELD) == HMDB_COUNTS
    assert len(dataset.distinct(f"{g.SOURCE_LABEL_FIELD}.label")) == 51
    _unmapped_as_listed("hmdb51", actions)


def _shard_records() -> list[dict]:
    report = ImportReport("yt8m", "", str(YT8M))
    out = []
    for path in sorted(YT8M.glob("*.tfrecord")):
        out += [parse_record(payload) for _n, payload in iter_tfrecord(path, report)]
    assert not report.problems
    return out


def _two_shards(tmp_path: Path) -> Path:
    """A root holding only the two top-level shards and the vocabulary (not ``validate/``)."""
    root = tmp_path / "yt8m"
    root.mkdir()
    for name in ("vocabulary.csv", "validate0067.tfrecord", "validate2L.tfrecord"):
        (root / name).symlink_to(YT8M / name)
    return root


def test_yt8m_real_vocabulary_and_shards(dataset, tmp_path):
    records = _shard_records()
    assert len(records) == 243 + 297
    vocab, verticals = read_vocabulary(YT8M / "vocabulary.csv", ImportReport("yt8m", "", ""))
    assert len(vocab) == 3862
    paired = records[:: len(records) // 5][:5]
    media = tmp_path / "videos"
    clip = _tiny_clip(tmp_path / "clip.avi")
    _link_all(clip, [media / f"{r['id']}.avi" for r in paired])
    root = _two_shards(tmp_path)
    report = import_yt8m(dataset, root, media_dir=media, features_dir=tmp_path / "f", require_video=True)
    assert report.imported == 5 and report.flagged == 0
    assert report.skipped == {"unpaired (no local video)": len(records) - 5}
    assert not report.problems  # the 56 blank-name rows are official: one note, no problems
    blank = [n for n in report.notes if "empty Name" in n]
    assert blank == [
        "56 vocabulary row(s) have an empty Name (as published): named by their KnowledgeGraphId"
    ]
    assert dict(report.by_split) == {"test": 5}  # validate* shards are the labelled test set
    by_id = {s["yt8m_id"]: s for s in dataset}
    for rec in paired:
        s = by_id[rec["id"]]
        assert sorted(label_names(s[g.SOURCE_LABEL_FIELD])) == sorted(
            vocab[i] for i in rec["labels"]
        )
        for c in s[g.SOURCE_LABEL_FIELD].classifications:
            assert getattr(c, "vertical1", None) == verticals.get(c.label, {}).get("vertical1")
    kw = dict(media_dir=media, features_dir=tmp_path / "f")
    assert import_yt8m(dataset, root, require_video=True, **kw).imported == 0
    # without --require-video the other records join as features-only samples
    everything = import_yt8m(dataset, root, **kw)
    assert everything.imported == everything.features_only == len(records) - 5
    assert everything.existing == 5 and not everything.problems
    assert len(dataset.match_tags(g.FEATURES_ONLY_TAG)) == len(records) - 5
    assert import_yt8m(dataset, root, **kw).imported == 0


def test_yt8m_real_records_train_predict_evaluate(dataset, tmp_path):
    """The two real shards, features only: remap, split, train, predict and evaluate run on them."""
    from fiftyone_genre.analysis.evaluation import evaluate
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.inference.predict import predict
    from fiftyone_genre.labels.remap import remap
    from fiftyone_genre.labels.split import split_dataset
    from fiftyone_genre.modeling.train import train

    import_yt8m(dataset, _two_shards(tmp_path), features_dir=tmp_path / "f")
    counts = remap(dataset).counts
    assert set(counts) <= {g.ANIMATION, g.SPORTS, g.SCIENCE_FICTION, g.ROMANCE} and counts[g.SPORTS] > 10
    split_dataset(dataset)
    cfg = load_experiment("yt8m", train={"epochs": 3, "device": "cpu"}, predict={"device": "cpu"})
    report = train(dataset, cfg, tmp_path / "model")
    assert report.features["space"] == "yt8m-video" and not report.skipped
    assert predict(dataset, tmp_path / "model").num_predicted == len(dataset)
    assert evaluate(dataset, split="test").accuracy is not None


@pytest.mark.slow
def test_yt8m_real_validate_shards_import_features_only(dataset, tmp_path):
    """The 60 official validate shards: every record imported features-only, once."""
    from fiftyone_genre.labels.remap import remap
    from fiftyone_genre.modeling.yt8m_store import open_store

    root, vocab = YT8M / "validate", YT8M / "vocabulary.csv"
    report = import_yt8m(dataset, root, vocabulary=vocab, features_dir=tmp_path / "f")
    assert report.imported == report.features_only == 17499 and not report.problems
    assert len(open_store(tmp_path / "f", "yt8m-video").rows) == 17499
    again = import_yt8m(dataset, root, vocabulary=vocab, features_dir=tmp_path / "f")
    assert again.imported == 0 and again.existing == 17499 and again.updated == 0
    counts = remap(dataset).counts
    assert {**counts, None: len(dataset) - sum(counts.values())} == YT8M_VALIDATE_GENRES


def test_yt8m_shipped_mapping_counts_on_the_validate_shards():
    """The reviewed mapping's genres over the 60 shards (remap's own decision, no database)."""
    from fiftyone_genre.labels.remap import Resolved, decide

    report = ImportReport("yt8m", "", str(YT8M))
    vocab, verticals = read_vocabulary(YT8M / "vocabulary.csv", report)
    mapping = load_mapping("yt8m")
    genres: Counter = Counter()
    for path in sorted((YT8M / "validate").glob("*.tfrecord")):
        for _n, payload in iter_tfrecord(path, report):
            names = [vocab[i] for i in parse_record(payload)["labels"] if i in vocab]
            resolved = []
            for name in names:
                verts = tuple(verticals.get(name, {}).values()) or None
                resolved.append(Resolved(name, mapping.resolve(name, verts), mapping.vetoes(name, verts)))
            genres[decide(resolved, mapping)[0]] += 1
    assert dict(genres) == YT8M_VALIDATE_GENRES


#: Mapping keys from before the review that the 2018 vocabulary does not have (harmless: the 2017
#: vocabulary or a user's labels may).
_NOT_IN_2018 = {
    "Anime", "Animated cartoon", "Computer animation", "Clay animation", "Horror film", "Slasher film",
    "Zombie", "Science fiction", "Science fiction film", "Doctor Who", "Romance film", "Romantic comedy",
    "Kiss", "Action film", "Martial arts film", "Martial arts", "Kung fu", "Stunt", "Stop motion",
    "Star Trek", "Animation",
}


def test_yt8m_shipped_mapping_against_the_real_vocabulary():
    """Listed unmapped entities exist and map to nothing; in the Sports vertical only
    they (and video games, by rule) stay unmapped."""
    vocab, verticals = read_vocabulary(YT8M / "vocabulary.csv", ImportReport("yt8m", "", ""))
    names = set(vocab.values())
    data = yaml.safe_load((MAPPINGS / "yt8m.yaml").read_text())
    mapping = load_mapping("yt8m")
    listed = set(data["unmapped"])
    assert listed <= names
    assert all(mapping.resolve(n, tuple(verticals.get(n, {}).values())) is None for n in listed)
    sports_unmapped = {
        n
        for n in names
        if "Sports" in verticals.get(n, {}).values()
        and verticals[n].get("vertical1") != "Games"
        and mapping.resolve(n, tuple(verticals[n].values())) is None
    }
    assert sports_unmapped == {
        n for n in listed
        if "Sports" in verticals.get(n, {}).values() and verticals[n].get("vertical1") != "Games"
    }  # fmt: skip
    # every entity the review named exists in the 2018 vocabulary
    assert set(data["map"]) - names <= {k for k in data["map"] if k in _NOT_IN_2018}
    assert set(data["veto"]) <= names
