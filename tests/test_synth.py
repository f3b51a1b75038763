"""The demo/test media generator: real encoded files, cross-modal cues, official layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.demo import clips, synth

from support import faults
from support.media import streams as _streams

TINY = {"size": (64, 48), "fps": 10.0, "duration": 1.0}


def test_cue_table_is_a_cycle_of_pairs():
    assert set(clips.GENRE_CUES) == set(g.GENRES)
    pairs = list(clips.GENRE_CUES.values())
    assert len(set(pairs)) == 6
    for axis in (0, 1):
        values = [p[axis] for p in pairs]
        # every cue value is shared by exactly two genres: one modality leaves a coin flip
        assert sorted(values.count(v) for v in set(values)) == [2, 2, 2]


@pytest.mark.parametrize(
    "container,vcodec,acodec",
    [("mp4", "h264", "aac"), ("avi", "mpeg4", "pcm_s16le"), ("mkv", "h264", "aac")],
)
def test_write_clip_containers(tmp_path, container, vcodec, acodec):
    p = clips.write_clip(tmp_path / f"c.{container}", g.HORROR, container=container, **TINY)
    s = _streams(p)
    assert s["video"] == (vcodec, 64, 48)
    assert s["audio"][0] == acodec and s["audio"][1] == clips.DEFAULT_SAMPLE_RATE
    assert len(s["times"]) == 10


def test_write_clip_mp3_in_avi_and_no_audio(tmp_path):
    p = clips.write_clip(tmp_path / "m.avi", g.ROMANCE, container="avi", audio_codec="mp3", **TINY)
    assert _streams(p)["audio"][0].startswith("mp3")
    q = clips.write_clip(tmp_path / "n.mp4", g.ROMANCE, audio=False, **TINY)
    assert _streams(q)["audio"] is None


def test_vfr_has_irregular_timestamps(tmp_path):
    p = clips.write_clip(tmp_path / "v.mp4", g.SPORTS, vfr=True, size=(64, 48), duration=2.0)
    gaps = np.diff(_streams(p)["times"])
    assert gaps.max() > 2.5 * gaps.min()
    with pytest.raises(ValueError, match="AVI"):
        clips.write_clip(tmp_path / "v.avi", g.SPORTS, vfr=True, container="avi")


def test_unknown_genre_and_odd_size_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown genre 'Western'"):
        clips.write_clip(tmp_path / "x.mp4", "Western")
    with pytest.raises(ValueError, match="even"):
        clips.write_clip(tmp_path / "x.mp4", g.ACTION, size=(65, 48))


def test_visual_cue_is_the_mean_colour_and_audio_cue_the_band(tmp_path):
    """Mean colour identifies the visual cue; the spectral peak the audio cue, per genre and seed."""
    hue_channel = {0: 0, 1: 1, 2: 2}  # red, green, blue families
    for genre, (vcue, acue) in clips.GENRE_CUES.items():
        for seed in (0, 1):
            s = _streams(clips.write_clip(tmp_path / f"{seed}.mp4", genre, seed=seed, **TINY))
            assert int(np.argmax(s["mean_rgb"])) == hue_channel[vcue], (genre, s["mean_rgb"])
            x = s["samples"].astype(np.float64)
            spec = np.abs(np.fft.rfft(x))
            freqs = np.fft.rfftfreq(len(x), 1 / clips.DEFAULT_SAMPLE_RATE)
            peak = freqs[np.argmax(spec)]
            f0 = clips.AUDIO_BANDS[acue][0]
            assert abs(peak - f0) / f0 < 0.06, (genre, peak)


def test_same_seed_same_bytes(tmp_path):
    a = clips.write_clip(tmp_path / "a.avi", g.ACTION, container="avi", seed=3, **TINY)
    b = clips.write_clip(tmp_path / "b.avi", g.ACTION, container="avi", seed=3, **TINY)
    assert a.read_bytes() == b.read_bytes()


def test_generate_ucf101_layout(tmp_path):
    m = faults.generate(
        tmp_path, "ucf101", clips_per_class=4, missing=1, malformed=2, unknown_class=1, **TINY
    )
    lists = tmp_path / "ucfTrainTestlist"
    raw = (lists / "classInd.txt").read_bytes()
    assert b"\r\n" in raw
    assert len(m.clips) == 24
    quirk = [c for c in m.clips if c.labels == ["HandstandPushups"]]
    assert quirk and all("/HandstandPushups/v_HandStandPushups_g" in c.path for c in quirk)
    for fold in (1, 2, 3):
        assert (lists / f"trainlist0{fold}.txt").exists() and (
            lists / f"testlist0{fold}.txt"
        ).exists()
    assert {c.split for c in m.clips} == {"train", "test"}
    assert {p.kind for p in m.problems} == {"missing", "malformed", "unknown_class"}
    assert all(Path(c.path).exists() for c in m.clips)


def test_generate_other_layouts(tmp_path):
    h = synth.generate(tmp_path / "h", "hmdb51", clips_per_class=4, **TINY)
    assert (
        len(list((tmp_path / "h" / "testTrainMulti_7030_splits").glob("*_test_split*.txt"))) == 18
    )
    assert {c.split for c in h.clips} == {"train", "test", "unused"}
    w = synth.generate(
        tmp_path / "w", "hollywood2", clips_per_class=2, autotrain=True, multilabel=0.5, **TINY
    )
    assert any(len(c.labels) > 1 for c in w.clips) and any(c.autotrain for c in w.clips)
    assert (tmp_path / "w" / "ClipSets" / "Kiss_test.txt").exists()
    y = synth.generate(tmp_path / "y", "yt8m", clips_per_class=4, paired_fraction=0.5, **TINY)
    with open(tmp_path / "y" / "vocabulary.csv") as f:
        header = next(csv.reader(f))
    assert header[:4] == ["Index", "TrainVideoCount", "KnowledgeGraphId", "Name"]
    assert (tmp_path / "y" / "video" / "train0000.tfrecord").exists()
    assert (tmp_path / "y" / "frame" / "train0000.tfrecord").exists()
    assert any(c.path is None for c in y.clips) and any(c.path for c in y.clips)
    f = faults.generate(tmp_path / "f", "folder", clips_per_class=1, unreadable=1, **TINY)
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == sorted(g.GENRES)
    assert len(f.problems_of("unreadable")) == 1
    assert "6 clips" in str(f)


def test_generate_custom_classes(tmp_path):
    m = synth.generate(
        tmp_path, "folder", classes={"cartoons": g.ANIMATION}, clips_per_class=2, **TINY
    )
    assert {c.genre for c in m.clips} == {g.ANIMATION}
    assert (tmp_path / "cartoons").is_dir()
    with pytest.raises(ValueError, match="unknown genre"):
        synth.generate(tmp_path, "folder", classes={"x": "Western"})
    with pytest.raises(ValueError, match="layout"):
        synth.generate(tmp_path, "kinetics")


def test_cli_synth(tmp_path, capsys):
    from fiftyone_genre.cli import main

    rc = main(
        [
            "synth",
            str(tmp_path),
            "--layout",
            "hmdb51",
            "--clips-per-class",
            "1",
            "--duration",
            "1",
            "--size",
            "64x48",
        ]
    )
    assert rc == 0
    assert (tmp_path / "manifest.json").exists()
    assert "hmdb51 tree" in capsys.readouterr().out
    assert main(["synth", str(tmp_path), "--size", "big"]) == 2


def test_program_exits_with_the_commands_status_and_its_files_whole(tmp_path):
    """``python -m fiftyone_genre.cli`` (the installed program's ``run``, which skips the final GC pass)."""
    import json
    import subprocess
    import sys

    def program(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fiftyone_genre.cli", "synth", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=300)

    ok = program("--layout", "hmdb51", "--clips-per-class", "1", "--duration", "1", "--size", "64x48")
    assert ok.returncode == 0, ok.stderr[-2000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())  # complete, parseable
    assert manifest and "hmdb51 tree" in ok.stdout
    bad = program("--size", "big")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "size" in bad.stderr
