"""Issue 9, importer side: messy files are reported with their reason, never fatal."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fiftyone_genre import genres as g
from fiftyone_genre.sources import import_folder, import_ucf101
from fiftyone_genre.sources.common import ImportReport
from fiftyone_genre.sources.ucf101 import parse_ucf101

from support.faults import bad_corpus
from support.media import streams as _streams


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    return bad_corpus(tmp_path_factory.mktemp("bad"))


def test_bad_corpus_files(tmp_path):
    """The corpus holds what its manifest says: empty, 4K, audio-only, odd names."""
    c = bad_corpus(tmp_path)
    assert str(Path(c["dir"]) / "zero_bytes.mp4") in c["bad"]
    assert (Path(c["dir"]) / "zero_bytes.mp4").stat().st_size == 0
    assert (Path(c["dir"]) / "x.mp4").is_dir()
    big = _streams(Path(c["dir"]) / "uhd_4k.mp4")
    assert big["video"][1:] == (3840, 2160)
    assert _streams(Path(c["dir"]) / "audio_only.mp4")["video"] is None
    assert any("ü" in p for p in c["odd"]) and any(" " in Path(p).name for p in c["odd"])
    kinds = {k for _, k, _ in c["split_problems"]}
    assert {"missing", "malformed", "outside_root"} <= kinds


#: what the reported reason must mention for each bad file
REASONS = {
    "truncated.mp4": "cannot be decoded",
    "zero_bytes.mp4": "zero-byte",
    "audio_only.mp4": "no video stream",
    "garbage.avi": "cannot be decoded",
}


def test_folder_import_of_the_corpus(dataset, corpus):
    report = import_folder(dataset, corpus["root"])
    by_name = {Path(s.filepath).name: s for s in dataset}
    expected = {Path(p).name for p in [*corpus["good"], *corpus["bad"], *corpus["odd"]]}
    assert set(by_name) == expected  # every file is a sample: nothing lost
    assert report.imported == len(expected)
    for name, why in REASONS.items():
        errors = by_name[name][g.ERRORS_FIELD]
        assert errors and why in errors[0], (name, errors)
        assert g.ERROR_TAG in by_name[name].tags
        assert any(p.file.endswith(name) and why in p.reason for p in report.problems)
    for path in [*corpus["good"], *corpus["odd"]]:
        s = by_name[Path(path).name]
        assert not s[g.ERRORS_FIELD], (path, s[g.ERRORS_FIELD])
        assert s.metadata is not None and s.metadata.frame_width
    assert by_name["uhd_4k.mp4"].metadata.frame_width == 3840
    # the directory named like a video is skipped and reported, not imported
    assert "x.mp4" not in by_name
    assert any(p.file.endswith("x.mp4") and "directory" in p.reason for p in report.problems)
    assert report.flagged == len(corpus["bad"])
    assert "unreadable video(s) imported and flagged" in str(report)


def _ucf_tree_from_corpus(corpus, tmp_path: Path) -> Path:
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text(f"1 {corpus['genre']}\r\n")
    shutil.copy(corpus["split_file"], lists / "trainlist01.txt")
    (lists / "testlist01.txt").write_text("")
    return lists


def test_split_file_with_missing_entries_and_junk(dataset, corpus, tmp_path):
    lists = _ucf_tree_from_corpus(corpus, tmp_path)
    report = import_ucf101(dataset, corpus["root"], splits_dir=lists, compute_metadata=False)
    train_file = str(lists / "trainlist01.txt")
    lines = {p.line: p.reason for p in report.problems if p.file == train_file}
    for line, kind, _text in corpus["split_problems"]:
        if kind == "blank":
            assert line not in lines  # blank lines are not problems
            continue
        assert line in lines, (line, kind, lines)
        if kind == "missing":
            assert "not found" in lines[line]
        elif kind == "outside_root":
            assert "escapes the dataset root" in lines[line]
        else:
            assert "malformed" in lines[line]
    assert not any("passwd" in fp for fp in dataset.values("filepath"))
    listed = {Path(p).name for p in dataset.match({"source_split": "train"}).values("filepath")}
    assert listed == {"good_0.mp4", "good_1.mp4", "video_only.mp4"}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.text(max_size=60), max_size=12))
def test_split_parser_never_crashes_and_accounts_for_every_line(tmp_path_factory, lines):
    root = tmp_path_factory.mktemp("prop")
    (root / "Action").mkdir()
    (root / "Action" / "a.avi").write_bytes(b"")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Action\n")
    body = "\n".join(lines)
    (lists / "trainlist01.txt").write_bytes(body.encode("utf-8", "surrogatepass"))
    (lists / "testlist01.txt").write_text("Action/a.avi\n")
    report = ImportReport("ucf101", "", str(root))
    entries, report = parse_ucf101(root, 1, report, media_dir=root, include_unlisted=False)
    for e in entries:
        assert Path(e.filepath).resolve().is_relative_to(root.resolve())
    text = body.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    nonblank = [i for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    reported = {p.line for p in report.problems if p.file.endswith("trainlist01.txt")}
    assert reported <= set(nonblank)
    # every non-blank line is reported, or is a well-formed entry for the one real video
    by_line = dict(enumerate(text.splitlines(), 1))
    for i in set(nonblank) - reported:
        parts = by_line[i].split()
        assert len(parts) == 2 and parts[1].lstrip("-").isdigit(), by_line[i]
        assert os.path.normpath(parts[0].replace("\\", "/")) == "Action/a.avi", by_line[i]
