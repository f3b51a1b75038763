"""Import against its floor on a UCF101-size tree, as one table of ratios from one run.

    .venv/bin/python benchmarks/bench_import.py              # 13,320 clips (~2-4 min on 2 cores)
    .venv/bin/python benchmarks/bench_import.py --n 1000     # a quick run

The tree is ``UCF-101/<Class>/<file>.avi`` with the real fold lists from
``../shared/real/ucf101`` when present (else generated lists of the same
shape); every clip is its own file (one small MPEG-4 AVI copied under each
name). Rows, all measured in this run on the same files and database:

* floor = PyAV header probe of every file (open + read the stream header,
  sequential) + ``add_samples`` of bare samples (filepath only) into a fresh
  dataset: what any import must at least do;
* import = ``import_ucf101`` (fold 1) into a fresh dataset: parse the lists,
  probe + decode one frame per file for readability and ``fo.VideoMetadata``
  (threads), add the samples with their fields;
* re-import = the same import again (nothing changed on disk).

Targets: import <= 2x floor, re-import <= 1x floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_LISTS = REPO.parent / "shared" / "real" / "ucf101" / "ucfTrainTestlist"


def _private_database() -> None:
    """Run on a private mongod (the tests' one), never the user's datasets."""
    sys.path.insert(0, str(REPO / "tests"))
    import conftest  # noqa: F401 - starts the private mongod, sets the env


def _lists(root: Path, n: int) -> list[str]:
    """Write fold-1 lists with at most ``n`` clips; returns their ``<Class>/<file>`` names."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    if REAL_LISTS.is_dir():
        shutil.copyfile(REAL_LISTS / "classInd.txt", lists / "classInd.txt")
        train = (REAL_LISTS / "trainlist01.txt").read_text().splitlines()
        test = (REAL_LISTS / "testlist01.txt").read_text().splitlines()
    else:
        classes = [f"Class{i:03d}" for i in range(1, 102)]
        (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
        names = [
            f"{c}/v_{c}_g{g:02d}_c{k:02d}.avi"
            for c in classes
            for g in range(1, 26)
            for k in range(1, 6)
        ]
        names = names[:13320]
        train = [f"{x} {classes.index(x.split('/')[0]) + 1}" for x in names if int(x[-9:-7]) > 7]
        test = [x for x in names if int(x[-9:-7]) <= 7]
    keep_train = max(1, round(n * len(train) / (len(train) + len(test))))
    train, test = train[:keep_train], test[: max(0, n - keep_train)]
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return [line.split()[0] for line in train + test if line.strip()]


def build_tree(root: Path, n: int) -> list[Path]:
    from fiftyone_genre import genres as g
    from fiftyone_genre.demo import clips

    rels = _lists(root, n)
    clip = clips.write_clip(
        root / "clip.avi", g.ACTION, duration=2.0, fps=10.0, size=(160, 120), audio=False,
        container="avi",
    )  # fmt: skip
    paths = []
    for rel in rels:
        dst = root / "UCF-101" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, dst)
        paths.append(dst)
    return paths


def floor(paths: list[Path]) -> tuple[float, float]:
    """(PyAV header probe of every file, bare ``add_samples``) in seconds."""
    import av
    import fiftyone as fo

    t0 = time.perf_counter()
    for p in paths:
        with av.open(str(p)) as c:
            _ = c.streams.video[0].codec_context.width
    probe = time.perf_counter() - t0
    ds = fo.Dataset(f"bench-floor-{uuid.uuid4().hex[:8]}")
    t0 = time.perf_counter()
    ds.add_samples([fo.Sample(filepath=str(p)) for p in paths], progress=False)
    add = time.perf_counter() - t0
    ds.delete()
    return probe, add


def timed_import(root: Path, dataset) -> tuple[float, object]:
    from fiftyone_genre.sources import import_ucf101

    t0 = time.perf_counter()
    report = import_ucf101(dataset, root, fold=1)
    return time.perf_counter() - t0, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=13320, help="clips in the tree")
    args = parser.parse_args(argv)
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    _private_database()
    import fiftyone as fo

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        paths = build_tree(root, args.n)
        probe_s, add_s = floor(paths)
        ds = fo.Dataset(f"bench-import-{uuid.uuid4().hex[:8]}")
        import_s, report = timed_import(root, ds)
        reimport_s, again = timed_import(root, ds)
        assert report.imported == len(paths) and again.imported == 0, (report, again)
        ds.delete()
    floor_s = probe_s + add_s
    rows = [
        ("floor: PyAV header probe", probe_s, None),
        ("floor: bare add_samples", add_s, None),
        ("floor total", floor_s, None),
        ("import (parse + probe/metadata + add)", import_s, 2.0),
        ("re-import (unchanged tree)", reimport_s, 1.0),
    ]
    print(f"\nimport benchmark: {len(paths)} clips, {os.cpu_count()} CPUs")
    print(f"{'row':<40} {'wall s':>8} {'ms/clip':>8} {'x floor':>8} {'target':>7}")
    for name, secs, target in rows:
        ratio = secs / floor_s
        tgt = f"<= {target:g}" if target else ""
        print(f"{name:<40} {secs:8.2f} {1000 * secs / len(paths):8.3f} {ratio:8.2f} {tgt:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
