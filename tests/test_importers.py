"""Importers against synthetic trees in each official layout (compared with the generator's manifest)."""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.demo import clips, synth
from fiftyone_genre.sources import (
    import_folder,
    import_hmdb51,
    import_hollywood2,
    import_source,
    import_ucf101,
    import_yt8m,
)
from fiftyone_genre.sources.common import label_names, safe_join

from support import faults

TINY = {"size": (64, 48), "fps": 8.0, "duration": 1.0}
PLANT = {"missing": 1, "malformed": 2, "unknown_class": 1, "unreadable": 1}


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, synth.Manifest]:
    root = tmp_path_factory.mktemp("trees")
    out = {}
    for layout in synth.LAYOUTS:
        kw = dict(PLANT)
        if layout == "hollywood2":
            kw.update(autotrain=True, multilabel=0.5)
        n = 2 if layout == "hollywood2" else 3
        out[layout] = faults.generate(root / layout, layout, clips_per_class=n, seed=1, **TINY, **kw)
    return out


def _by_path(dataset) -> dict[str, fo.Sample]:
    return {s.filepath: s for s in dataset}


def _check_against_manifest(
    dataset, manifest: synth.Manifest, report, fold: int = 1, source: str = ""
):
    expected = {c.path: c for c in manifest.clips if c.path is not None}
    got = _by_path(dataset)
    assert set(got) == set(expected)
    assert report.imported == len(expected)
    for path, clip in expected.items():
        s = got[path]
        assert s[g.SOURCE_FIELD] == (source or manifest.layout)
        assert sorted(label_names(s[g.SOURCE_LABEL_FIELD])) == sorted(clip.labels), path
        assert s[g.GROUP_FIELD] == clip.group
        assert s[g.SOURCE_SPLIT_FIELD] == clip.splits.get(fold)
        errors = s[g.ERRORS_FIELD] or []
        if clip.readable:
            assert not errors and s.metadata is not None and s.metadata.frame_width == 64
        else:
            assert errors and errors[0].startswith("import: unreadable video")
            assert g.ERROR_TAG in s.tags
    assert report.flagged == len(manifest.problems_of("unreadable"))


def _reported(report, problem: synth.Problem) -> bool:
    return any(p.file == problem.file and p.line == problem.line for p in report.problems)


def test_ucf101(dataset, trees):
    m = trees["ucf101"]
    report = import_ucf101(dataset, m.root, fold=1)
    _check_against_manifest(dataset, m, report)
    for kind in ("missing", "malformed", "unknown_class"):
        for p in m.problems_of(kind):
            assert _reported(report, p), (kind, p, [str(x) for x in report.problems])
    assert report.skipped["missing video"] == 1 and report.skipped["malformed line"] == 2
    # the HandstandPushups quirk: folder class, v_HandStandPushups_ files, group from the folder
    quirk = dataset.match(fo.ViewField("source_label.label") == "HandstandPushups")
    assert len(quirk) == 3 and all(
        gr.startswith("ucf101:HandstandPushups_g") for gr in quirk.values("group")
    )
    text = str(report)
    assert "trainlist01.txt:" in text and "imported 18" in text


def test_ucf101_other_fold_updates_splits(dataset, trees):
    m = trees["ucf101"]
    import_ucf101(dataset, m.root, fold=1)
    report = import_ucf101(dataset, m.root, fold=2)
    assert report.imported == 0 and report.existing == len(m.clips)
    got = _by_path(dataset)
    assert all(got[c.path][g.SOURCE_SPLIT_FIELD] == c.splits[2] for c in m.clips)
    with pytest.raises(ValueError, match="fold"):
        import_ucf101(dataset, m.root, fold=4)


def test_hmdb51(dataset, trees):
    m = trees["hmdb51"]
    report = import_hmdb51(dataset, m.root, fold=1)
    _check_against_manifest(dataset, m, report)
    for kind in ("missing", "malformed"):
        for p in m.problems_of(kind):
            assert _reported(report, p), (kind, p)
    assert report.skipped["unknown class"] == 1
    assert "unused" in set(dataset.values(g.SOURCE_SPLIT_FIELD))


def test_hollywood2_multilabel_and_autotrain(dataset, trees):
    m = trees["hollywood2"]
    report = import_hollywood2(dataset, m.root, autotrain=True)
    _check_against_manifest(dataset, m, report)
    field = dataset.get_field(g.SOURCE_LABEL_FIELD)
    assert field.document_type is fo.Classifications
    multi = [c for c in m.clips if len(c.labels) > 1]
    assert multi
    got = _by_path(dataset)
    for c in multi:
        assert len(got[c.path][g.SOURCE_LABEL_FIELD].classifications) == len(c.labels)
    auto = [c.path for c in m.clips if c.autotrain]
    assert auto and all("hollywood2:autotrain" in got[p].tags for p in auto)
    for kind in ("missing", "malformed"):
        for p in m.problems_of(kind):
            assert _reported(report, p), (kind, p)


def test_hollywood2_without_autotrain(dataset, trees):
    m = trees["hollywood2"]
    report = import_hollywood2(dataset, m.root, compute_metadata=False)
    assert report.imported == sum(not c.autotrain for c in m.clips)
    assert not dataset.match_tags("hollywood2:autotrain")


def test_yt8m_pairs_records_with_their_videos(dataset, trees, tmp_path):
    """--require-video: only records with a local video, as before features-only samples."""
    m = trees["yt8m"]
    report = import_yt8m(dataset, m.root, features_dir=tmp_path / "feats", require_video=True)
    _check_against_manifest(dataset, m, report)
    unpaired = [c for c in m.clips if c.path is None]
    assert report.skipped["unpaired (no local video)"] == len(unpaired)
    for s in dataset:
        assert s["yt8m_id"] == Path(s.filepath).stem and s[g.FEATURES_ONLY_FIELD] is False
    assert not dataset.match_tags(g.FEATURES_ONLY_TAG)
    assert any("label indices the vocabulary lacks" in p.reason for p in report.problems)
    assert any(p.file.endswith("vocabulary.csv") and p.line for p in report.problems)


def test_yt8m_video_level_only_and_corrupt_record(dataset, tmp_path):
    m = synth.generate(tmp_path / "y", "yt8m", clips_per_class=1, yt8m_levels=("video",), **TINY)
    rec = tmp_path / "y" / "video" / "train0000.tfrecord"
    data = rec.read_bytes()
    rec.write_bytes(data + data[:20])  # a truncated record at the end
    report = import_yt8m(dataset, tmp_path / "y", features_dir=tmp_path / "f")
    assert report.imported == len(m.clips)  # with their video or features-only
    assert report.features_only == sum(c.path is None for c in m.clips)
    assert any("truncated" in p.reason for p in report.problems)


def _labels_containing(dataset, name: str):
    return dataset.match(
        fo.ViewField(f"{g.SOURCE_LABEL_FIELD}.classifications.label").contains(name)
    )


def test_yt8m_verticals_reach_remap_without_a_vocabulary(dataset, tmp_path):
    """The importer keeps each entity's verticals (label attributes + the vocabulary
    path in dataset.info), so the shipped mapping's ``vertical: Sports`` rule fires."""
    from fiftyone_genre.labels.remap import remap

    m = synth.generate(
        tmp_path / "y", "yt8m", clips_per_class=2, multilabel=0.0, paired_fraction=1.0,
        yt8m_levels=("video",), **TINY,
    )  # fmt: skip
    import_yt8m(dataset, m.root, features_dir=tmp_path / "f")
    assert dataset.info[g.YT8M_VOCABULARY_INFO_KEY] == m.extra["vocabulary"]
    football = _labels_containing(dataset, "Football")
    assert football.count() == 2
    for value in football.values(g.SOURCE_LABEL_FIELD):
        (c,) = value.classifications
        assert c.vertical1 == "Sports" and getattr(c, "vertical2", None) is None
    wedding = _labels_containing(dataset, "Wedding").first()[g.SOURCE_LABEL_FIELD]
    assert wedding.classifications[0].vertical1 == "Arts & Entertainment"

    report = remap(dataset)  # shipped yt8m mapping, no vocabulary passed
    assert not any("no verticals" in w for w in report.warnings), report.warnings
    assert football.values(f"{g.GENRE_FIELD}.label") == [g.SPORTS, g.SPORTS]
    assert report.counts[g.SPORTS] == 2  # only Football sits in the Sports vertical

    # Labels without the attributes (imported before verticals were kept): remap
    # falls back to the vocabulary path recorded on the dataset ...
    bare = [
        fo.Classifications(
            classifications=[fo.Classification(label=c.label) for c in v.classifications]
        )
        for v in dataset.values(g.SOURCE_LABEL_FIELD)
    ]
    dataset.set_values(g.SOURCE_LABEL_FIELD, bare)
    assert remap(dataset, dry_run=True).counts == report.counts
    # ... and a re-import puts the attributes back on the existing samples.
    again = import_yt8m(dataset, m.root, features_dir=tmp_path / "f")
    assert again.imported == 0 and again.updated == len(dataset)
    assert [v.classifications[0].vertical1 for v in football.values(g.SOURCE_LABEL_FIELD)] == [
        "Sports",
        "Sports",
    ]


def test_folder_and_idempotent_reimport(dataset, trees):
    m = trees["folder"]
    first = import_folder(dataset, m.root)
    _check_against_manifest(dataset, m, first)
    assert dataset.get_field(g.SOURCE_LABEL_FIELD).document_type is fo.Classification
    second = import_folder(dataset, m.root)
    assert second.imported == 0 and second.existing == len(m.clips) and second.updated == 0
    assert len(dataset) == len(m.clips)


def test_second_source_adds_only_its_samples(dataset, trees):
    import_folder(dataset, trees["folder"].root)
    n_folder = len(dataset)
    labels_before = sorted(label_names(v)[0] for v in dataset.values(g.SOURCE_LABEL_FIELD))
    report = import_hollywood2(dataset, trees["hollywood2"].root, compute_metadata=False)
    assert len(dataset) == n_folder + report.imported
    assert dataset.count_values(g.SOURCE_FIELD)["folder"] == n_folder
    # single labels were promoted losslessly so multi-label Hollywood2 fits in one field
    folder_view = dataset.match(fo.ViewField(g.SOURCE_FIELD) == "folder")
    after = sorted(label_names(v)[0] for v in folder_view.values(g.SOURCE_LABEL_FIELD))
    assert after == labels_before
    assert any("promoted" in n for n in report.notes)
    again = import_source("folder", dataset, trees["folder"].root, compute_metadata=False)
    assert again.imported == 0 and len(dataset) == n_folder + report.imported


def test_reencode_keeps_original(dataset, tmp_path):
    m = synth.generate(
        tmp_path / "u", "ucf101", clips_per_class=1, classes={"Punch": g.ACTION}, **TINY
    )
    report = import_ucf101(dataset, m.root, reencode=True, reencode_dir=tmp_path / "mp4")
    assert report.reencoded == 1
    s = dataset.first()
    assert s.filepath.endswith(".mp4") and Path(s.filepath).exists()
    assert s[g.ORIGINAL_PATH_FIELD] == m.clips[0].path
    assert s.metadata.encoding_str == "avc1"
    again = import_ucf101(dataset, m.root, reencode=True, reencode_dir=tmp_path / "mp4")
    assert again.imported == 0 and len(dataset) == 1


def test_dataset_by_name_is_created_persistent(dataset_name, trees):
    report = import_source("folder", dataset_name, trees["folder"].root, compute_metadata=False)
    ds = fo.load_dataset(dataset_name)
    assert ds.persistent and len(ds) == report.imported
    with pytest.raises(ValueError, match="does not take fold"):
        import_source("folder", dataset_name, trees["folder"].root, fold=2)
    with pytest.raises(ValueError, match="unknown source"):
        import_source("kinetics", dataset_name, trees["folder"].root)
    with pytest.raises(FileNotFoundError):
        import_source("ucf101", dataset_name, "/no/such/place")


def test_safe_join_refuses_escapes(tmp_path):
    assert safe_join(tmp_path, "a/b.avi") == tmp_path / "a" / "b.avi"
    for bad in ("../x.avi", "a/../../x.avi", "/etc/passwd", "C:/x.avi", "a\\..\\..\\x"):
        assert safe_join(tmp_path, bad) is None, bad


def test_crlf_and_lf_lists_agree(tmp_path, dataset):
    m = synth.generate(
        tmp_path / "lf",
        "ucf101",
        clips_per_class=2,
        crlf=False,
        classes={"Punch": g.ACTION},
        **TINY,
    )
    report = import_ucf101(dataset, m.root, compute_metadata=False)
    assert report.imported == 2 and not report.problems


def test_cli_import(dataset_name, trees, capsys):
    from fiftyone_genre.cli import main

    m = trees["hmdb51"]
    assert main(["import", "hmdb51", m.root, "--dataset", dataset_name, "--fold", "2"]) == 0
    out = capsys.readouterr().out
    assert "hmdb51 import" in out and "imported 18 new sample(s)" in out
    ds = fo.load_dataset(dataset_name)
    got = _by_path(ds)
    assert len(got) == len(m.clips)
    assert all(got[c.path][g.SOURCE_SPLIT_FIELD] == c.splits[2] for c in m.clips)
    # re-run: nothing new, still success; --strict fails because problems were reported
    assert main(["import", "hmdb51", m.root, "--dataset", dataset_name]) == 0
    assert main(["import", "hmdb51", m.root, "--dataset", dataset_name, "--strict"]) == 1
    assert main(["import", "folder", m.root, "--dataset", dataset_name, "--fold", "2"]) == 2
    assert main(["import", "ucf101", "/no/such/dir", "--dataset", dataset_name]) == 2


def test_cli_nothing_importable_exits_1(dataset_name, tmp_path):
    from fiftyone_genre.cli import main

    (tmp_path / "empty" / "label").mkdir(parents=True)
    assert main(["import", "folder", str(tmp_path / "empty"), "--dataset", dataset_name]) == 1


def test_operator_imports(dataset, trees, tmp_path, monkeypatch):
    import fiftyone.operators as foo

    monkeypatch.setattr(fo.config, "default_dataset_dir", str(tmp_path))  # the feature packs go there
    m = trees["yt8m"]
    uri = "@fiftyone-genre/genre/import_videos"
    result = foo.execute_operator(
        uri,
        dict(dataset=dataset),
        params={"source": "yt8m", "path": m.root, "media_dir": m.extra["media_dir"]},
    )
    assert result.error is None, result.error_message
    assert result.result["imported"] == len(m.clips)  # the records without a video: features-only
    assert "yt8m import" in result.result["summary"] and "features-only" in result.result["summary"]
    # the SDK __call__ goes through the same operator; re-import adds nothing
    op = foo.get_operator(uri)
    again = op(dataset, "yt8m", m.root, media_dir=m.extra["media_dir"])
    assert again.result["imported"] == 0 and again.result["existing"] == len(dataset)


def test_operator_form_flags_missing_path(dataset):
    import fiftyone.operators as foo

    ctx = foo.ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "params": {"source": "ucf101", "path": "/no/such/dir"},
        }
    )
    from operators.importing import ImportVideos

    prop = ImportVideos().resolve_input(ctx)
    names = set(prop.type.properties)
    # the error is shown once, on the path field itself
    assert prop.type.properties["path"].invalid and "fold" in names
    assert "media_dir" not in names


# --------------------------------------------------------------------------
# issue 15 (import part) and issue 16: identity, vanished files, escaped
# names, "not a video", in-process metadata, one parse-result shape
# --------------------------------------------------------------------------


def _small_tree(root: Path, n: int = 2) -> list[Path]:
    """``root/Action/clip<i>.mp4``: real tiny MP4s (the folder layout)."""
    paths = []
    for i in range(n):
        p = root / "Action" / f"clip{i}.mp4"
        p.parent.mkdir(parents=True, exist_ok=True)
        paths.append(clips.write_clip(p, g.ACTION, duration=1.0, fps=8.0, size=(64, 48), seed=i))
    return paths


def test_still_images_renamed_as_videos_are_flagged_not_a_video(dataset, tmp_path):
    """A PNG or JPEG renamed .mp4 opens with an image demuxer: flagged, not imported clean."""
    from PIL import Image

    _small_tree(tmp_path / "t", n=1)
    image = Image.fromarray(np.full((48, 64, 3), 128, np.uint8))
    image.save(tmp_path / "t" / "Action" / "photo.mp4", format="PNG")
    image.save(tmp_path / "t" / "Action" / "scan.mp4", format="JPEG")
    report = import_folder(dataset, tmp_path / "t")
    assert report.imported == 3 and report.flagged == 2
    for name in ("photo.mp4", "scan.mp4"):
        s = dataset.match(fo.ViewField("filepath").ends_with(name)).first()
        assert s[g.ERRORS_FIELD][0].startswith("import: unreadable video: not a video"), name
        assert g.ERROR_TAG in s.tags and s.metadata is None
    good = dataset.match(fo.ViewField("filepath").ends_with("clip0.mp4")).first()
    assert good.metadata.frame_width == 64 and not good[g.ERRORS_FIELD]


def test_symlink_to_an_imported_root_adds_nothing(dataset, tmp_path):
    _small_tree(tmp_path / "real", n=2)
    first = import_folder(dataset, tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    again = import_folder(dataset, tmp_path / "link")
    assert first.imported == 2
    assert again.imported == 0 and again.existing == 2 and len(dataset) == 2
    # a symlinked *file* is the same clip too
    (tmp_path / "other" / "Action").mkdir(parents=True)
    (tmp_path / "other" / "Action" / "alias.mp4").symlink_to(tmp_path / "real/Action/clip0.mp4")
    third = import_folder(dataset, tmp_path / "other")
    assert third.imported == 0 and len(dataset) == 2


def test_reimport_reports_vanished_files_and_keeps_their_samples(dataset, tmp_path):
    paths = _small_tree(tmp_path / "t", n=3)
    import_folder(dataset, tmp_path / "t")
    paths[1].unlink()
    again = import_folder(dataset, tmp_path / "t")
    assert again.imported == 0 and again.existing == 2 and again.vanished == 1
    (problem,) = again.problems
    assert problem.file == str(paths[1]) and "vanished" in problem.reason
    assert "1 sample(s) whose file has vanished" in str(again)
    assert len(dataset) == 3  # nothing the user had is deleted
    # another source's samples elsewhere are not blamed
    assert import_folder(dataset, tmp_path / "t").vanished == 1


def test_file_name_with_a_newline_cannot_forge_a_log_line(dataset, tmp_path, capsys):
    from fiftyone_genre.cli import main

    _small_tree(tmp_path / "t", n=1)
    evil = tmp_path / "t" / "Action" / "x\nFAILED everything.mp4"
    evil.write_bytes(b"\x00garbage" * 64)
    report = import_folder(dataset, tmp_path / "t")
    assert report.flagged == 1
    text = str(report)
    assert not any(line.startswith("FAILED") for line in text.splitlines()), text
    assert "x\\nFAILED everything.mp4" in text
    assert "\\n" in report.to_json()
    assert main(["import", "folder", str(tmp_path / "t"), "--dataset", dataset.name]) == 0
    out = capsys.readouterr().out
    assert not any(line.lstrip().startswith("FAILED") for line in out.splitlines()), out


def test_metadata_is_read_in_process_without_ffprobe(dataset, tmp_path, monkeypatch):
    """The readability probe fills ``fo.VideoMetadata``: no ffprobe process per file."""

    def no_ffprobe(*args, **kwargs):
        raise AssertionError("ffprobe-based metadata was called")

    monkeypatch.setattr(fo.VideoMetadata, "build_for", no_ffprobe)
    paths = _small_tree(tmp_path / "t", n=10)
    report = import_folder(dataset, tmp_path / "t")
    assert report.imported == 10 and report.flagged == 0
    for s in dataset:
        md = s.metadata
        assert (md.frame_width, md.frame_height) == (64, 48)
        assert md.frame_rate == 8.0 and md.total_frame_count == 8
        assert abs(md.duration - 1.0) < 0.2 and md.encoding_str == "avc1"
        assert md.mime_type == "video/mp4"
        assert md.size_bytes == Path(s.filepath).stat().st_size
    assert {s.filepath for s in dataset} == {str(p) for p in paths}


def test_every_import_phase_reports_progress(dataset, tmp_path):
    _small_tree(tmp_path / "t", n=10)
    seen: list[str] = []
    import_folder(dataset, tmp_path / "t", progress=lambda f, label: seen.append(label))
    phases = {label.rsplit(" ", 1)[0] for label in seen}
    assert {"import folder", "read video metadata + add samples"} <= phases, seen


def test_unchanged_reimport_writes_nothing_and_a_changed_file_gets_new_metadata(
    dataset, tmp_path, monkeypatch
):
    paths = _small_tree(tmp_path / "t", n=3)
    import_folder(dataset, tmp_path / "t")
    writes: list[str] = []
    real_set_values = fo.Dataset.set_values

    def spy(self, field_name, *args, **kwargs):
        writes.append(field_name)
        return real_set_values(self, field_name, *args, **kwargs)

    monkeypatch.setattr(fo.Dataset, "set_values", spy)
    again = import_folder(dataset, tmp_path / "t")
    assert again.imported == 0 and again.updated == 0 and writes == []
    clips.write_clip(paths[0], g.ACTION, duration=2.0, fps=8.0, size=(96, 64), seed=9)
    third = import_folder(dataset, tmp_path / "t")
    assert writes == ["metadata"] and any("metadata re-read" in n for n in third.notes)
    s = dataset.match(fo.ViewField("filepath") == str(paths[0])).first()
    assert s.metadata.frame_width == 96 and s.metadata.total_frame_count == 16


def test_every_parser_returns_one_parse_result(trees, tmp_path):
    from fiftyone_genre.sources import ParseResult
    from fiftyone_genre.sources.folder import parse_folder
    from fiftyone_genre.sources.hmdb51 import parse_hmdb51
    from fiftyone_genre.sources.hollywood2 import parse_hollywood2
    from fiftyone_genre.sources.ucf101 import parse_ucf101
    from fiftyone_genre.sources.yt8m import parse_yt8m

    parsers = {
        "ucf101": lambda r: parse_ucf101(r, 1),
        "hmdb51": lambda r: parse_hmdb51(r, 1),
        "hollywood2": lambda r: parse_hollywood2(r),
        "yt8m": lambda r: parse_yt8m(r, features_dir=tmp_path / "f"),
        "folder": lambda r: parse_folder(r),
    }
    for layout, parse in parsers.items():
        result = parse(trees[layout].root)
        assert isinstance(result, ParseResult), layout
        assert result.entries and result.media_root is not None and result.media_root.is_dir()
        assert result.multi_label == (layout in ("hollywood2", "yt8m"))
        entries, report = result  # the earlier tuple shape still unpacks
        assert entries is result.entries and report.source == layout


def test_import_report_is_a_report(dataset, trees):
    import json

    from fiftyone_genre.report import Report

    report = import_folder(dataset, trees["folder"].root, compute_metadata=False)
    assert isinstance(report, Report)
    data = json.loads(report.to_json())
    assert data["imported"] == report.imported and data["source"] == "folder"
    assert all(isinstance(p, str) for p in data["problems"])
    assert "sample_ids" not in data and len(report.sample_ids) == report.imported


def test_vocabulary_rows_without_a_name_are_named_by_knowledge_graph_id(tmp_path):
    from fiftyone_genre.sources.common import ImportReport
    from fiftyone_genre.sources.yt8m import read_vocabulary

    path = tmp_path / "vocabulary.csv"
    path.write_text(
        "Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3\n"
        "0,10,/m/01,Game,u,Games,,\n"
        "1,5,/m/0abc,,,Sports,,\n"
        "2,5,/m/0def,,,,,\n"
        "3,5,,,,,,\n"
    )
    report = ImportReport("yt8m", "", str(tmp_path))
    vocab, verticals = read_vocabulary(path, report)
    assert vocab == {0: "Game", 1: "/m/0abc", 2: "/m/0def"}
    assert verticals["/m/0abc"] == {"vertical1": "Sports"}
    assert [p.line for p in report.problems] == [5]  # no id and no name: still a problem
    assert report.notes == [
        "2 vocabulary row(s) have an empty Name (as published): named by their KnowledgeGraphId"
    ]


def test_ffprobe_is_only_a_fallback_for_numbers_pyav_cannot_give(dataset, tmp_path, monkeypatch):
    from fiftyone_genre.sources import probe

    def broken(*args, **kwargs):
        raise ValueError("no numbers")

    monkeypatch.setattr(probe, "_metadata", broken)
    _small_tree(tmp_path / "t", n=2)
    report = import_folder(dataset, tmp_path / "t")
    assert report.imported == 2 and report.flagged == 0
    assert all(s.metadata.frame_width == 64 for s in dataset)  # from ffprobe


def test_a_failing_probe_thread_stops_the_import_with_its_error(dataset, tmp_path, monkeypatch):
    """An exception in a probe worker reaches the caller; the run does not hang."""
    import time

    from fiftyone_genre.sources import probe

    real = probe.probe_video

    def fails_on_the_fifth(path, *args, **kwargs):
        if path.endswith("clip4.mp4"):
            raise RuntimeError("probe worker died")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(probe, "probe_video", fails_on_the_fifth)
    _small_tree(tmp_path / "t", n=10)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="probe worker died"):
        import_folder(dataset, tmp_path / "t")
    assert time.monotonic() - start < 60


def _stored(dataset) -> dict[str, dict]:
    """Each sample's stored document by file path, without ids and timestamps (they differ per write)."""
    volatile = {"_id", "_dataset_id", "_rand", "created_at", "last_modified_at"}

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in volatile}
        return [strip(x) for x in v] if isinstance(v, list) else v

    return {d["filepath"]: strip(d) for d in dataset._sample_collection.find()}


@pytest.mark.parametrize("layout", ["ucf101", "hollywood2"])
def test_direct_batches_store_what_add_samples_stores(trees, layout, monkeypatch):
    """After the first batch, samples are inserted as documents instead of through add_samples:
    every stored document (labels, metadata, error flags, tags) must be the same either way."""
    from fiftyone_genre.sources import adding

    m, datasets = trees[layout], []
    for batch in (10**6, 2):  # everything through add_samples; then mostly direct inserts
        monkeypatch.setattr(adding, "ADD_BATCH", batch)
        ds = fo.Dataset()
        datasets.append(ds)
        report = import_source(layout, ds, m.root, **({"fold": 1} if layout == "ucf101" else {}))
        assert report.imported == len(ds) > 4
    try:
        assert _stored(datasets[0]) == _stored(datasets[1])
        keys = [{d["filepath"]: sorted(d) for d in ds._sample_collection.find()} for ds in datasets]
        assert keys[0] == keys[1]  # ids, dataset id and both timestamps written too
        assert datasets[0].get_field_schema().keys() == datasets[1].get_field_schema().keys()
        # FiftyOne reads the directly inserted samples like its own
        assert sorted(s.filepath for s in datasets[1]) == sorted(datasets[0].values("filepath"))
        assert datasets[1].bounds("metadata.duration") == datasets[0].bounds("metadata.duration")
    finally:
        for ds in datasets:
            ds.delete()


def test_a_refused_direct_insert_raises_what_add_samples_raises(dataset, trees, monkeypatch):
    """add_samples turns the database's BulkWriteError into a ValueError with its message; so must the direct path."""
    import inspect

    from pymongo.errors import BulkWriteError

    from fiftyone_genre.sources import adding

    collection = type(dataset._sample_collection)
    real, direct = collection.insert_many, []

    def refuse_direct(self, docs, *a, **k):  # add_samples' own inserts (the first batch) go through
        if inspect.stack()[1].function == "_insert_documents":
            direct.append(len(docs))
            raise BulkWriteError({"writeErrors": [{"errmsg": "E11000 duplicate key error"}]})
        return real(self, docs, *a, **k)

    monkeypatch.setattr(adding, "ADD_BATCH", 2)
    monkeypatch.setattr(collection, "insert_many", refuse_direct)
    with pytest.raises(ValueError, match="E11000 duplicate key error"):
        import_ucf101(dataset, trees["ucf101"].root, fold=1)
    assert direct == [2]
