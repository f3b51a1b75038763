"""Defects planted into generated trees, and the bad-input corpus: what importers must report.

:func:`fiftyone_genre.demo.synth.generate` writes clean trees; :func:`generate`
here writes the same tree, then plants ``missing`` (split entries naming absent
videos), ``malformed`` (broken lines), ``unknown_class`` (class indices or
labels that do not exist) and ``unreadable`` (garbage media files) defects,
each recorded in ``Manifest.problems`` with its file and line so a test can
check the importer reported exactly those.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.demo import clips, synth
from fiftyone_genre.demo.synth import ClipRecord, Manifest, Problem


@dataclass(frozen=True)
class Faults:
    """How many defects of each kind to plant."""

    missing: int = 0
    malformed: int = 0
    unknown_class: int = 0
    unreadable: int = 0


def generate(outdir: str | Path, layout: str = "folder", **kwargs: Any) -> Manifest:
    """:func:`synth.generate`, then plant defects: keywords ``missing``, ``malformed``,
    ``unknown_class``, ``unreadable`` (how many of each, listed in ``problems``)."""
    faults = Faults(**{f.name: kwargs.pop(f.name) for f in fields(Faults) if f.name in kwargs})
    manifest = synth.generate(outdir, layout, **kwargs)
    rng = np.random.default_rng(kwargs.get("seed", 0) + 7919)
    _PLANTERS[layout](manifest, faults, rng, kwargs.get("crlf", True))
    plant_unreadable(manifest, faults.unreadable, rng)
    return manifest


def write_garbage(path: Path, rng: np.random.Generator, nbytes: int = 2048) -> Path:
    """A file with a video extension whose bytes are noise (no container inside)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"NOTAVIDEO" + rng.integers(0, 256, size=nbytes, dtype=np.uint8).tobytes())
    return path


def plant_unreadable(manifest: Manifest, k: int, rng: np.random.Generator) -> None:
    """Overwrite ``k`` of the tree's clips with garbage bytes."""
    on_disk = [c for c in manifest.clips if c.path is not None]
    for i in _pick(rng, len(on_disk), k):
        clip = on_disk[i]
        write_garbage(Path(clip.path), rng)
        clip.readable = clip.has_audio = False
        manifest.problems.append(Problem("unreadable", clip.path, None, "garbage bytes"))


def _pick(rng: np.random.Generator, n: int, k: int) -> list[int]:
    k = min(k, n)
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False)) if k else []


def _read_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8").replace("\r\n", "\n").split("\n")[:-1]


def _append(manifest: Manifest, body: list[str], where: Path, kind: str, lines: list[str], strip: bool = False) -> None:
    """Append ``lines`` to a split file's ``body``, one ``kind`` problem each."""
    for line in lines:
        body.append(line)
        manifest.problems.append(Problem(kind, str(where), len(body), line.strip() if strip else line))


def _plant_nothing(manifest: Manifest, faults: Faults, rng: np.random.Generator, crlf: bool) -> None:
    """A folder tree has no list files: only unreadable clips can be planted."""


def _plant_ucf101(manifest: Manifest, faults: Faults, rng: np.random.Generator, crlf: bool) -> None:
    """Defects in trainlist01.txt (the file a fold-1 import reads)."""
    path = Path(manifest.extra["lists_dir"]) / "trainlist01.txt"
    names = sorted(manifest.classes)
    train = _read_lines(path)
    for j in range(min(faults.unknown_class, len(train))):
        train[j] = f"{train[j].split()[0]} {len(names) + 900 + j}"
        manifest.problems.append(Problem("unknown_class", str(path), j + 1, train[j]))
    for j in range(faults.missing):
        first = names[j % len(names)]
        rel = f"{first}/v_{synth.ucf_file_class(first)}_g25_c{90 + j:02d}.avi"
        train.append(f"{rel} {names.index(first) + 1}")
        manifest.problems.append(Problem("missing", str(path), len(train), rel))
    junk = ["this is not a split line", "Punch/v_Punch_g01_c01.avi notanumber", "a b c"]
    _append(manifest, train, path, "malformed", [junk[j % 3] for j in range(faults.malformed)])
    synth.write_lines(path, train, crlf)


def _plant_hmdb51(manifest: Manifest, faults: Faults, rng: np.random.Generator, crlf: bool) -> None:
    """Missing/malformed lines in the first action's fold-1 file; split files for absent actions."""
    splits_dir = Path(manifest.extra["splits_dir"])
    first = sorted(manifest.classes)[0]
    path = splits_dir / f"{first}_test_split1.txt"
    body = _read_lines(path)
    ext = Path(manifest.clips[0].path).suffix
    gone = [f"Gone_Movie{j}_{first}_u_nm_np1_fr_med_0{ext} 1 " for j in range(faults.missing)]
    _append(manifest, body, path, "missing", gone, strip=True)
    junk = ["just_one_token.avi", f"x_{first}_0.avi 7", "x y z"]
    _append(manifest, body, path, "malformed", [junk[j % 3] for j in range(faults.malformed)])
    synth.write_lines(path, body)
    for j in range(faults.unknown_class):
        p = splits_dir / f"no_such_action{j}_test_split1.txt"
        synth.write_lines(p, [f"clip_no_such_action{j}_0.avi 1 "])
        manifest.problems.append(Problem("unknown_class", str(p), None, f"no_such_action{j}"))


def _plant_hollywood2(manifest: Manifest, faults: Faults, rng: np.random.Generator, crlf: bool) -> None:
    """Missing/malformed lines in the first class's train clip set."""
    path = Path(manifest.extra["clipsets_dir"]) / f"{sorted(manifest.classes)[0]}_train.txt"
    body = _read_lines(path)
    _append(manifest, body, path, "missing", [f"actioncliptrain{90000 + j:05d}  1" for j in range(faults.missing)])
    junk = ["actioncliptrain00001", "actioncliptrain00001 maybe", "a b c"]
    _append(manifest, body, path, "malformed", [junk[j % 3] for j in range(faults.malformed)])
    synth.write_lines(path, body)


def _plant_yt8m(manifest: Manifest, faults: Faults, rng: np.random.Generator, crlf: bool) -> None:
    """Junk rows in vocabulary.csv; records (without local video) carrying an unknown label index."""
    vocab = Path(manifest.extra["vocabulary"])
    rows = len(_read_lines(vocab))
    with open(vocab, "a", encoding="utf-8", newline="") as f:
        for j in range(faults.malformed):
            f.write(f"not-an-index-{j},x\r\n")
            manifest.problems.append(Problem("malformed", str(vocab), rows + 1 + j, f"not-an-index-{j},x"))
    for j in range(faults.unknown_class):
        _append_unknown_label_record(manifest, rng, 99000 + j)


def _append_unknown_label_record(manifest: Manifest, rng: np.random.Generator, bad_index: int) -> None:
    """A train record labelled with the first class and ``bad_index``, appended to each level's file."""
    cls = next(iter(manifest.classes))
    genre = manifest.classes[cls]
    vid = synth.yt8m_id(rng)
    rgb, aud = synth.yt8m_features(genre, 1, rng)
    with tempfile.TemporaryDirectory() as tmp:
        files = synth.Yt8mRecordFiles(Path(tmp))
        for level in manifest.extra["levels"]:
            files.write(level, "train", vid, [0, bad_index], rgb, aud)
        files.close()
        for level in manifest.extra["levels"]:
            record = (Path(tmp) / level / "train0000.tfrecord").read_bytes()
            with open(Path(manifest.root) / level / "train0000.tfrecord", "ab") as f:
                f.write(record)
    manifest.clips.append(
        ClipRecord(path=None, genre=genre, labels=[cls], group=f"yt8m:{vid}", splits={1: "train"}, video_id=vid)
    )
    manifest.problems.append(Problem("unknown_class", "train0000.tfrecord", None, f"{vid}: label {bad_index}"))
    manifest.problems.append(Problem("unpaired", "train0000.tfrecord", None, vid))


_PLANTERS = {
    "folder": _plant_nothing,
    "ucf101": _plant_ucf101,
    "hmdb51": _plant_hmdb51,
    "hollywood2": _plant_hollywood2,
    "yt8m": _plant_yt8m,
}


# --------------------------------------------------------------------------
# the bad-input corpus (issue 9)
# --------------------------------------------------------------------------

_TINY = {"size": (64, 48), "fps": 10.0, "duration": 1.0}


def bad_corpus(outdir: str | Path, seed: int = 0, genre: str = g.ACTION) -> dict[str, Any]:
    """Write the messy-input corpus and say what a reader should report for each file.

    Returns ``{"root", "dir", "genre", "good": [paths], "bad": {path: reason},
    "odd": {path: note}, "directories", "split_file", "split_problems": [(line,
    kind, text)]}``. ``bad`` files cannot be used (a reader must report them);
    ``odd`` files are valid but unusual (a reader must cope, not fail). Files
    live in ``<outdir>/<genre>/`` so the folder importer can read the corpus.
    """
    root = Path(outdir).absolute()
    d = root / genre
    d.mkdir(parents=True, exist_ok=True)
    good = [clips.write_clip(d / f"good_{i}.mp4", genre, seed=seed + i, **_TINY) for i in range(2)]
    odd = _odd_files(d, genre, seed)
    fake_dir = d / "x.mp4"
    fake_dir.mkdir(exist_ok=True)
    (fake_dir / "inside.txt").write_text("a directory named like a video\n")
    video_only = next(p for p in odd if p.endswith("video_only.mp4"))
    split_file, split_problems = _split_file(root, genre, [*map(str, good), video_only])
    return {
        "root": str(root),
        "dir": str(d),
        "genre": genre,
        "good": [str(p) for p in good],
        "bad": _bad_files(d, genre, seed),
        "odd": odd,
        "directories": {str(fake_dir): "a directory, not a video file"},
        "split_file": str(split_file),
        "split_problems": split_problems,
    }


def _bad_files(d: Path, genre: str, seed: int) -> dict[str, str]:
    """Files no reader can use: path -> why."""
    full = clips.write_clip(d / "full.mp4", genre, seed=seed + 10, **_TINY)
    data = full.read_bytes()
    trunc = d / "truncated.mp4"
    trunc.write_bytes(data[: len(data) // 3])
    full.unlink()
    zero = d / "zero_bytes.mp4"
    zero.write_bytes(b"")
    audio_only = clips.write_clip(d / "audio_only.mp4", genre, video=False, seed=seed + 11, **_TINY)
    garbage = write_garbage(d / "garbage.avi", np.random.default_rng(seed))
    return {
        str(trunc): "truncated file: container cannot be parsed",
        str(zero): "zero-byte file",
        str(audio_only): "no video stream",
        str(garbage): "not a video container",
    }


def _odd_files(d: Path, genre: str, seed: int) -> dict[str, str]:
    """Valid but unusual files a reader must cope with: path -> what is odd."""
    tiny = {k: v for k, v in _TINY.items() if k != "duration"}
    specs = [  # (name, note, write_clip arguments)
        ("video_only.mp4", "no audio stream (audio features must be zeros, has_audio False)",
         dict(duration=1.0, audio=False, **tiny)),
        ("half_second.mp4", "0.5 s clip (shorter than one window)", dict(duration=0.5, **tiny)),
        ("uhd_4k.mp4", "3840x2160 frames", dict(duration=0.2, fps=5.0, size=(3840, 2160))),
        ("vfr.mp4", "variable frame rate", dict(duration=1.0, vfr=True, **tiny)),
        ("clip ünïcödé 片.mp4", "non-ASCII characters in the name", dict(duration=1.0, **tiny)),
        ("clip with spaces.mp4", "spaces in the name", dict(duration=1.0, **tiny)),
        ("pcm_audio.avi", "MPEG-4 Part 2 AVI with PCM audio", dict(duration=1.0, container="avi", **tiny)),
    ]  # fmt: skip
    return {
        str(clips.write_clip(d / name, genre, seed=seed + 12 + i, **kw)): note
        for i, (name, note, kw) in enumerate(specs)
    }


def _split_file(root: Path, genre: str, listed: list[str]) -> tuple[Path, list[tuple[int, str, str]]]:
    """A UCF101-style trainlist (CRLF) listing ``listed``, then missing entries and junk lines."""
    lines = [f"{Path(p).relative_to(root).as_posix()} 1" for p in listed]
    junk = [
        (f"{genre}/deleted_long_ago.mp4 1", "missing"),
        ("", "blank"),
        ("   \t  ", "blank"),
        ("# a comment line", "malformed"),
        (f"{genre}/good_0.mp4 1 extra tokens", "malformed"),
        (f"{genre}/good_1.mp4 notanumber", "malformed"),
        ("../../etc/passwd 1", "outside_root"),
        ("/etc/passwd 1", "outside_root"),
        ("\x00\x01binary junk", "malformed"),
    ]
    problems = [(len(lines) + i + 1, kind, text) for i, (text, kind) in enumerate(junk)]
    lines += [text for text, _ in junk]
    split_file = root / "splits.txt"
    split_file.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return split_file, problems
