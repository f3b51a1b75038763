"""YouTube-8M without the videos: features-only samples through every stage, on generated shards.

The shards are written by :mod:`fiftyone_genre.demo.synth` (video-level
``Example`` and frame-level ``SequenceExample`` records, quantised as
published) and, for bad input, by ``tfrecord``'s writer. Real shards are
exercised in ``tests/test_real_files.py``.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.demo import clips, synth
from fiftyone_genre.features.spaces import refusal
from fiftyone_genre.modeling.yt8m_store import open_store
from fiftyone_genre.sources import import_yt8m
from fiftyone_genre.sources.features_only import PLACEHOLDER_NAME
from fiftyone_genre.sources.yt8m import dequantize

TINY = {"size": (64, 48), "fps": 8.0, "duration": 1.0}
#: Entities the shipped mapping maps by name or by the Sports vertical, one per genre.
CLASSES = {
    "Action film": g.ACTION, "Cartoon": g.ANIMATION, "Horror film": g.HORROR,
    "Romance film": g.ROMANCE, "Football": g.SPORTS, "Science fiction film": g.SCIENCE_FICTION,
}  # fmt: skip


def _features_only_tree(root: Path, level: str, per_class: int, seconds: float = 10.0) -> synth.Manifest:
    """A tree of records without any video (nothing is encoded: fast)."""
    return synth.generate(
        root, "yt8m", clips_per_class=per_class, duration=seconds, classes=CLASSES, multilabel=0.0,
        paired_fraction=0.0, yt8m_levels=(level,), seed=3,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> synth.Manifest:
    """Both levels, a third of the records with a local video."""
    root = tmp_path_factory.mktemp("yt8m")
    return synth.generate(root / "tree", "yt8m", clips_per_class=3, paired_fraction=0.34, seed=1, **TINY)


def _store(tmp_path: Path) -> Path:
    return tmp_path / "store"


# --------------------------------------------------------------------------- import


def test_every_record_is_imported_once_features_only_without_a_video(dataset, tree, tmp_path):
    report = import_yt8m(dataset, tree.root, features_dir=_store(tmp_path))
    with_video = {c.video_id: c for c in tree.clips if c.path}
    without = {c.video_id: c for c in tree.clips if not c.path}
    assert report.imported == len(dataset) == len(tree.clips)
    assert report.features_only == len(without) > 0 and len(with_video) > 0
    assert f"{len(with_video)} with a local video, {len(without)} features-only" in str(report)
    placeholder = _store(tmp_path) / "yt8m" / PLACEHOLDER_NAME
    for s in dataset:
        clip = with_video.get(s[g.YT8M_ID_FIELD]) or without[s[g.YT8M_ID_FIELD]]
        assert s[g.GROUP_FIELD] == f"yt8m:{clip.video_id}" and s[g.SOURCE_SPLIT_FIELD] == clip.split
        if clip.path:
            assert s.filepath == clip.path and s[g.FEATURES_ONLY_FIELD] is False
        else:  # one shared clip the App can show; its metadata copied, not probed per sample
            assert s.filepath == str(placeholder) and s[g.FEATURES_ONLY_FIELD] is True
            assert s.tags == [g.FEATURES_ONLY_TAG]
            assert s.metadata.duration == 1.0 and s.metadata.frame_width == 320
    # features went once into one pack per space, not into MongoDB or one file per record
    for space in ("yt8m-video", "yt8m-frame"):
        assert set(open_store(_store(tmp_path), space).rows) == {f"yt8m:{c.video_id}" for c in tree.clips}
    assert not [k for k in dataset.get_field_schema() if k.startswith("yt8m_mean")]
    assert len(list(_store(tmp_path).rglob("*"))) < 20
    pack = (_store(tmp_path) / "yt8m-video" / "packed" / "pack.json").read_text()

    again = import_yt8m(dataset, tree.root, features_dir=_store(tmp_path))
    assert again.imported == 0 and again.existing == len(tree.clips) and again.updated == 0
    assert len(dataset) == len(tree.clips)
    assert (_store(tmp_path) / "yt8m-video" / "packed" / "pack.json").read_text() == pack  # nothing rewritten


def test_require_video_keeps_only_records_with_a_video(dataset, tree, tmp_path):
    report = import_yt8m(dataset, tree.root, features_dir=_store(tmp_path), require_video=True)
    paired = [c for c in tree.clips if c.path]
    assert report.imported == len(dataset) == len(paired) and report.features_only == 0
    assert report.skipped["unpaired (no local video)"] == len(tree.clips) - len(paired)
    assert not dataset.match_tags(g.FEATURES_ONLY_TAG)


def test_a_record_that_gets_its_video_keeps_its_sample(dataset, tmp_path):
    m = _features_only_tree(tmp_path / "y", "video", per_class=1)
    import_yt8m(dataset, m.root, features_dir=_store(tmp_path))
    record = m.clips[0]
    before = dataset.match(fo.ViewField(g.YT8M_ID_FIELD) == record.video_id).first()
    video = clips.write_clip(Path(m.extra["media_dir"]) / f"{record.video_id}.mp4", record.genre, **TINY)
    report = import_yt8m(dataset, m.root, features_dir=_store(tmp_path))
    assert report.imported == 0 and len(dataset) == len(m.clips)
    after = dataset[before.id]
    assert after.filepath == str(video) and after[g.FEATURES_ONLY_FIELD] is False
    assert g.FEATURES_ONLY_TAG not in after.tags and after.metadata.frame_width == 64
    assert len(dataset.match_tags(g.FEATURES_ONLY_TAG)) == len(m.clips) - 1


def test_features_only_documents_are_what_add_samples_stores(tmp_path, monkeypatch):
    """After the first batch, features-only samples are inserted as plain documents: same as add_samples."""
    from fiftyone_genre.sources import adding

    m = _features_only_tree(tmp_path / "y", "video", per_class=2)
    volatile = {"_id", "_dataset_id", "_rand", "created_at", "last_modified_at"}

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in volatile}
        return [strip(x) for x in v] if isinstance(v, list) else v

    stored = []
    for batch in (10**6, 3):  # all through add_samples; then all but the first 3 as documents
        monkeypatch.setattr(adding, "ADD_BATCH", batch)
        ds = fo.Dataset()
        try:
            assert import_yt8m(ds, m.root, features_dir=_store(tmp_path)).imported == len(m.clips)
            docs = {d["yt8m_id"]: (sorted(d), strip(d)) for d in ds._sample_collection.find()}
            stored.append((docs, ds.get_field_schema().keys(), sorted(ds.values("metadata.duration"))))
            assert len(ds.match(fo.ViewField("source_label.classifications.vertical1").contains("Sports"))) == 2
        finally:
            ds.delete()
    assert stored[0] == stored[1]


def test_dequantisation_is_the_starter_codes_and_video_level_is_the_mean_of_the_seconds(dataset, tmp_path):
    assert dequantize(np.array([0, 255], np.uint8)).tolist() == [-1.9921875, 2.0078125]
    m = synth.generate(tmp_path / "y", "yt8m", clips_per_class=1, duration=5.0, paired_fraction=0.0, seed=2)
    import_yt8m(dataset, m.root, features_dir=_store(tmp_path))
    video, frame = (open_store(_store(tmp_path), s) for s in ("yt8m-video", "yt8m-frame"))
    for key, row in frame.rows.items():
        assert row.num_steps == 5  # one step per second
        seconds = frame.read_rows(row.offset, row.num_steps)
        mean = video.read_rows(video.rows[key].offset, 1)
        assert video.rows[key].num_steps == 1
        for per_second, pooled in zip(seconds, mean):
            np.testing.assert_allclose(per_second.mean(0), pooled[0], atol=1e-5)


# --------------------------------------------------------------------------- bad input


def _write(path: Path, records: list[tuple]) -> Path:
    """``(id, labels, level, seconds)`` records; level "video-nofeat" / seconds 0 make records without features."""
    from tfrecord import TFRecordWriter

    rng = np.random.default_rng(0)
    writer = TFRecordWriter(str(path))
    for vid, labels, level, seconds in records:
        context = {"id": (vid.encode(), "byte"), "labels": (labels, "int")}
        rgb, aud = synth.yt8m_features(g.SPORTS, max(seconds, 1), rng)
        if level == "frame":
            frames = {"rgb": ([synth.quantize(r).tobytes() for r in rgb[:seconds]], "byte"),
                      "audio": ([synth.quantize(a).tobytes() for a in aud[:seconds]], "byte")}  # fmt: skip
            writer.write(context, frames)
        else:
            context["mean_audio"] = (aud.mean(0).tolist(), "float")
            if level == "video":
                context["mean_rgb"] = (rgb.mean(0).tolist(), "float")
            writer.write(context)
    writer.close()
    return path


def _record_offsets(data: bytes) -> list[int]:
    out, at = [], 0
    while at < len(data):
        out.append(at)
        at += 12 + struct.unpack("<Q", data[at : at + 8])[0] + 4
    return out


def test_bad_shards_get_one_line_each_and_nothing_else_is_lost(dataset, tmp_path):
    root = tmp_path / "bad"
    m = _features_only_tree(root, "video", per_class=1)
    football = list(CLASSES).index("Football")
    good = lambda p: [(f"{p}{i}", [football], "video", 1) for i in range(3)]  # noqa: E731
    corrupt = _write(root / "corrupt.tfrecord", good("c"))
    data = bytearray(corrupt.read_bytes())
    data[_record_offsets(bytes(data))[1] + 14] ^= 0xFF  # a payload byte of record 2
    corrupt.write_bytes(bytes(data))
    truncated = _write(root / "truncated.tfrecord", good("t"))
    truncated.write_bytes(truncated.read_bytes()[:-30])  # the end of record 3 is gone
    _write(root / "unknown.tfrecord", [("u0", [football, 9999], "video", 1), ("u1", [9998], "video", 1)])
    _write(root / "nofeatures.tfrecord", [("n0", [football], "video-nofeat", 1), ("n1", [football], "frame", 0),
                                          ("n2", [football], "video", 1)])  # fmt: skip
    _write(root / "mixed.tfrecord", [("m0", [football], "video", 1), ("m1", [football], "frame", 4),
                                     ("m2", [football], "video", 1)])  # fmt: skip

    report = import_yt8m(dataset, root, features_dir=_store(tmp_path))
    lines = {Path(p.file).name: p.reason for p in report.problems}
    assert len(report.problems) == len(lines) == 5, [str(p) for p in report.problems]
    assert lines["corrupt.tfrecord"] == "record 2: payload CRC mismatch; record skipped"
    assert lines["truncated.tfrecord"] == "record 3: truncated payload; rest of file ignored"
    assert lines["unknown.tfrecord"] == (
        "2 record(s) carry label indices the vocabulary lacks (9998, 9999); those labels dropped, the records kept"
    )
    assert lines["nofeatures.tfrecord"].startswith("2 record(s) without usable features (e.g. record 1, id 'n0': no mean_rgb)")
    assert lines["mixed.tfrecord"] == (
        "mixes 2 video-level and 1 frame-level records; all read, each into its own feature space"
    )
    kept = {"c0", "c2", "t0", "t1", "u0", "u1", "n2", "m0", "m1", "m2"}
    assert set(dataset.values(g.YT8M_ID_FIELD)) == kept | {c.video_id for c in m.clips}
    assert report.skipped == {"corrupt record": 2, "no features": 2}
    u0 = dataset.match(fo.ViewField(g.YT8M_ID_FIELD) == "u0").first()
    assert [c.label for c in u0[g.SOURCE_LABEL_FIELD].classifications] == ["Football"]
    assert "yt8m:m1" in open_store(_store(tmp_path), "yt8m-frame").rows
    assert "yt8m:m1" not in open_store(_store(tmp_path), "yt8m-video").rows


# --------------------------------------------------------------------------- the stages on features-only samples


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A video-level features-only dataset, remapped, split and trained with the shipped yt8m config."""
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.labels.remap import remap
    from fiftyone_genre.labels.split import split_dataset
    from fiftyone_genre.modeling.train import train

    tmp = tmp_path_factory.mktemp("trained")
    m = _features_only_tree(tmp / "y", "video", per_class=30)
    ds = fo.Dataset()
    import_yt8m(ds, m.root, features_dir=tmp / "store")
    remap(ds)
    split = split_dataset(ds)
    cfg = load_experiment("yt8m", train={"epochs": 20, "device": "cpu"}, predict={"device": "cpu"})
    report = train(ds, cfg, tmp / "model")
    try:
        yield ds, tmp / "model", report, split, cfg
    finally:
        ds.delete()


@pytest.mark.slow
def test_split_keeps_each_record_its_own_group_and_passes_the_leakage_check(trained):
    from fiftyone_genre.labels.leakage import check_leakage

    ds, _, _, split, _ = trained
    assert split.merged_groups == 0  # the shared placeholder is no shared content
    assert sum(split.groups.values()) == len(ds) and min(split.totals().values()) > 0
    assert check_leakage(ds).groups == len(ds)


@pytest.mark.slow
def test_train_predict_evaluate_on_features_only_samples(trained, tmp_path):
    from fiftyone_genre.analysis.evaluation import evaluate
    from fiftyone_genre.inference.predict import predict
    from fiftyone_genre.modeling.model import read_checkpoint

    ds, model, report, _, _ = trained
    assert not report.skipped and report.counts["train"]["windows"] == report.counts["train"]["videos"]
    assert read_checkpoint(model).experiment.features.space == "yt8m-video"
    pred = predict(ds, model)
    assert pred.num_predicted == len(ds) and pred.features_only == len(ds) and not pred.failures
    assert f"{len(ds)} features-only sample(s) predicted without a timeline (no video)" in str(pred)
    assert ds.info[g.RUN_INFO_KEY]["feature_cache"].endswith("yt8m-video/packed")
    assert not ds.has_field(g.TIMELINE_FIELD) and ds.count(g.EMBEDDING_FIELD) == len(ds)
    result = evaluate(ds, split="test", out_dir=tmp_path / "eval")
    assert result.accuracy >= 0.6, str(result)  # chance: 0.17


@pytest.mark.slow
def test_modality_ablation_runs_on_stored_features(trained, tmp_path):
    from fiftyone_genre.modeling.ablation import ablate

    ds, _, _, _, cfg = trained
    cfg.train.epochs = 2
    report = ablate(ds, cfg, tmp_path / "ablate", modalities=("visual", "audio"))
    assert [r["modality"] for r in report.rows] == ["visual", "audio"]


@pytest.mark.slow
def test_frame_level_records_train_on_ten_second_windows(dataset, tmp_path):
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.inference.predict import predict
    from fiftyone_genre.labels.remap import remap
    from fiftyone_genre.labels.split import split_dataset
    from fiftyone_genre.modeling.train import train

    m = _features_only_tree(tmp_path / "y", "frame", per_class=6, seconds=12.0)
    import_yt8m(dataset, m.root, features_dir=_store(tmp_path))
    remap(dataset)
    split_dataset(dataset)
    cfg = load_experiment("yt8m_frame", train={"epochs": 8, "device": "cpu"}, predict={"device": "cpu"})
    report = train(dataset, cfg, tmp_path / "model")
    # 12 one-second steps: training windows [0, 10) and [5, 12) (stride 5), evaluation [0, 10) and [10, 12)
    assert report.counts["train"]["windows"] == 2 * report.counts["train"]["videos"]
    pred = predict(dataset, tmp_path / "model")
    assert pred.num_predicted == len(dataset) and pred.num_windows == 2 * len(dataset)


@pytest.mark.slow
def test_a_model_refuses_samples_of_another_feature_space(trained, tmp_path):
    from fiftyone_genre.config import ExperimentConfig, ModelConfig
    from fiftyone_genre.inference.classify import classify_files
    from fiftyone_genre.inference.predict import PredictError, predict
    from fiftyone_genre.modeling.model import build_model, save_checkpoint

    ds, yt8m_model, _, _, _ = trained
    # a model of this project's extractor with YouTube-8M's sizes: only the space tells them apart
    experiment = ExperimentConfig(model=ModelConfig(visual_proj=8, audio_proj=8, hidden_size=8))
    net = build_model(experiment.model, 1024, 128, 6)
    save_checkpoint(tmp_path / "extractor" / "best.pt", net, experiment, list(g.GENRES), 1024, 128, 1)
    view = ds.limit(3)
    with pytest.raises(PredictError, match="features-only YouTube-8M sample \\(no video file\\): this model reads "
                                           "features extracted from video"):  # fmt: skip
        predict(view, tmp_path / "extractor")
    assert view.first()[g.ERRORS_FIELD][0].startswith("predict: features-only YouTube-8M sample")

    clip = clips.write_clip(tmp_path / "clip.mp4", g.SPORTS, **TINY)
    other = fo.Dataset()
    try:
        other.add_sample(fo.Sample(filepath=str(clip)))
        other.info[g.YT8M_FEATURES_INFO_KEY] = ds.info[g.YT8M_FEATURES_INFO_KEY]
        other.save()
        with pytest.raises(PredictError, match=f"{clip}: not a YouTube-8M record: this model reads YouTube-8M "
                                               "video-level features"):  # fmt: skip
            predict(other, yt8m_model)
        assert other.first()[g.ERRORS_FIELD][0].startswith("predict: not a YouTube-8M record")
    finally:
        other.delete()
    (result,) = classify_files([clip], yt8m_model, device="cpu").files
    assert result.error.endswith("which cannot be computed from a video file")
    assert refusal("yt8m-frame", "abc", True) is None and refusal("extractor", None, False) is None


@pytest.mark.slow
def test_features_stage_skips_features_only_samples(trained):
    from fiftyone_genre.config import FeaturesConfig
    from fiftyone_genre.features.extract import extract_features

    ds = trained[0]
    report = extract_features(ds, FeaturesConfig(backbone="mobilenet_v3_small", weights="none"))
    assert report.total == 0 and report.features_only == len(ds)
    assert f"skipped {len(ds)} features-only sample(s): YouTube-8M records without a video" in str(report)
    nothing = extract_features(ds, FeaturesConfig(space="yt8m-video"))
    assert "nothing to extract" in str(nothing) and nothing.total == 0


@pytest.mark.slow
def test_training_in_the_extractor_space_points_at_the_yt8m_config(trained, tmp_path):
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.modeling.train import train

    with pytest.raises(ValueError, match="train them with `--config yt8m`"):
        train(trained[0], load_experiment("cpu_fast"), tmp_path / "m")


# --------------------------------------------------------------------------- CLI and the App's form


def test_cli_import_yt8m_counts_each_kind(dataset_name, tree, tmp_path, capsys):
    from fiftyone_genre.cli import main

    args = ["import", "yt8m", str(tree.root), "--dataset", dataset_name, "--features-dir", str(_store(tmp_path))]
    assert main(args + ["--require-video"]) == 0
    assert "unpaired (no local video)=" in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{sum(not c.path for c in tree.clips)} features-only" in out
    assert main(["import", "folder", str(tree.root), "--dataset", dataset_name, "--require-video"]) == 2
    assert "--require-video applies to yt8m only" in capsys.readouterr().err


def test_the_import_form_offers_require_video(dataset, tree, tmp_path, monkeypatch):
    import fiftyone.operators as foo

    monkeypatch.setattr(fo.config, "default_dataset_dir", str(tmp_path))  # where the packs go
    op = foo.get_operator("@fiftyone-genre/genre/import_videos")
    result = op(dataset, "yt8m", str(tree.root), require_video=True)
    assert result.result["imported"] == sum(bool(c.path) for c in tree.clips)
    result = op(dataset, "yt8m", str(tree.root))
    assert result.result["features_only"] == result.result["imported"] == sum(not c.path for c in tree.clips)
    shutil.rmtree(tmp_path / "genre_features", ignore_errors=True)


def test_a_damaged_pack_is_refused_for_training_and_repaired_by_a_reimport(dataset, tmp_path):
    """Same-size garbage over the imported features: train refuses in one sentence, a re-import rewrites them."""
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.labels.remap import remap
    from fiftyone_genre.labels.split import split_dataset
    from fiftyone_genre.modeling.train import train

    m = _features_only_tree(tmp_path / "y", "video", per_class=4)
    import_yt8m(dataset, m.root, features_dir=_store(tmp_path))
    remap(dataset)
    split_dataset(dataset)
    store = open_store(_store(tmp_path), "yt8m-video")
    visual = store.file("visual.f32")
    store.close()
    visual.write_bytes(np.random.default_rng(0).bytes(visual.stat().st_size))
    cfg = load_experiment("yt8m", train={"epochs": 1, "device": "cpu"})
    with pytest.raises(ValueError, match=r"record\(s\) in .* failed their checksum .* import the same shards again"):
        train(dataset, cfg, tmp_path / "model")
    assert not (tmp_path / "model" / "best.pt").exists()
    again = import_yt8m(dataset, m.root, features_dir=_store(tmp_path))
    assert again.imported == 0  # no new samples: only the damaged rows are written again
    repaired = open_store(_store(tmp_path), "yt8m-video")
    assert not repaired.verify(list(repaired.rows)) and len(repaired.rows) == len(dataset)
    repaired.close()
    assert train(dataset, cfg, tmp_path / "model").epochs_run == 1
