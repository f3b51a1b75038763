"""Row 6 of ``bench_features.py``: a small extraction run as a user starts it, timed from process start.

A subprocess runs ``fiftyone-genre features --backbone B --weights none`` on
a dataset of 4 clips of 10 s (160 steps, default engine) and is timed from
the moment it is spawned. Its own report gives the steps/s a user sees (the
extraction window: ``extract_features`` from start to end); timestamps taken
inside the child say where the rest went: interpreter and imports, dataset
load, model build, the run, the write-back. The same run's large reference
is row 2's end-to-end rate with the same engine, measured alternately with
the small runs (best of each); the target is the small run's rate within
20 % of it (>= 0.80). Both are also shown against eager fp32 InceptionV3
alone (row 5a), the way the rate was first reported.

The child gets a bytecode cache of its own (``PYTHONPYCACHEPREFIX`` under the
work folder, warmed by one untimed run): an installed package has its
``.pyc`` files, while a session with ``PYTHONDONTWRITEBYTECODE`` would
otherwise recompile torch's and FiftyOne's sources at every start. The
database is a private ``mongod`` unless ``FIFTYONE_DATABASE_URI`` is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CLIPS, CLIP_S = 4, 10.0
#: Child timestamps, in order: (event key, what the interval up to it holds).
PHASES = [
    ("imported", "interpreter + imports (torch, the CLI)"),
    ("extract_start", "argparse, config, dataset load (imports FiftyOne)"),
    ("build_start", "extract_features set-up (cache look-ups)"),
    ("build_end", "model build (decoding already runs)"),
    ("last_result", "extraction until the last video's features"),
    ("extract_end", "write-back to the dataset"),
    ("exit", "exit"),
]


# --- the timed child -------------------------------------------------------------
def child_main(argv: list[str]) -> int:
    """``fiftyone_genre.cli.main(argv)`` with timestamps (seconds since ``BENCH_T0``) printed as JSON."""
    t0 = float(os.environ["BENCH_T0"])
    ev: dict[str, float] = {"python": time.time() - t0}
    cpu: dict[str, float] = {"python": time.process_time()}  # every thread of the process

    def mark(key: str, first: bool = False) -> None:
        if not (first and key in ev):
            ev[key], cpu[key] = time.time() - t0, time.process_time()

    from fiftyone_genre import cli
    from fiftyone_genre.features import extract, extractor

    mark("imported")
    _stamp(extract, "extract_features", "extract_start", "extract_end", mark)
    _stamp(extractor.FeatureExtractor, "__init__", "build_start", "build_end", mark)
    run = extractor.FeatureExtractor.run

    def timed_run(self, *args, **kwargs):
        for result in run(self, *args, **kwargs):
            mark("first_result", first=True)
            mark("last_result")
            yield result

    extractor.FeatureExtractor.run = timed_run
    rc = cli.main(argv)
    mark("exit")
    print("BENCH_EVENTS " + json.dumps({"wall": ev, "cpu": cpu}), flush=True)
    return cli.before_exit(rc)  # as the installed program (``cli.run``) ends


def _stamp(owner, name: str, start: str, end: str, mark) -> None:
    fn = getattr(owner, name)

    def wrapped(*args, **kwargs):
        mark(start)
        try:
            return fn(*args, **kwargs)
        finally:
            mark(end)

    setattr(owner, name, wrapped)


# --- the parent side -------------------------------------------------------------
class SmallRun:
    """The dataset and database of row 6, and one timed run at a time."""

    def __init__(self, work: Path, clips: list[Path], backbone: str):
        self.work, self.clips, self.backbone = work, clips, backbone
        self.env = dict(os.environ, FIFTYONE_DO_NOT_TRACK="true", FIFTYONE_SHOW_PROGRESS_BARS="false",
                        PYTHONPYCACHEPREFIX=str(work / "pycache"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.mongod = None
        if not os.environ.get("FIFTYONE_DATABASE_URI"):
            from fiftyone_genre import database

            shutil.rmtree(work / "db", ignore_errors=True)
            self.mongod, self.env["FIFTYONE_DATABASE_URI"] = database.start_private_mongod(work / "db")
        self.dataset = f"bench-features-small-{os.getpid()}"
        self._python("import fiftyone as fo, sys\n"
                     "ds = fo.Dataset(sys.argv[1], overwrite=True, persistent=True)\n"
                     "ds.add_samples([fo.Sample(filepath=p) for p in sys.argv[2:]])\n"
                     "ds.compute_metadata(progress=False)\n", self.dataset, *map(str, clips))
        self.run()  # untimed: the bytecode cache and the page cache

    def _python(self, code: str, *args: str) -> str:
        out = subprocess.run([sys.executable, "-c", code, *args], env=self.env, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"small run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return out.stdout

    def run(self, weights: str = "none") -> dict:
        """One whole-process run on a fresh cache: wall seconds, reported steps/s, the child's timestamps."""
        cache = self.work / "small_cache"
        shutil.rmtree(cache, ignore_errors=True)
        args = ["features", "--dataset", self.dataset, "--backbone", self.backbone, "--weights", weights, "--cache-dir", str(cache)]
        env = dict(self.env, BENCH_T0=repr(time.time()))
        t = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if out.returncode:
            raise RuntimeError(f"small run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        # the rate as printed (from the unrounded window; the seconds beside it are rounded to 0.1 s)
        steps, rate = re.search(r"(\d+) steps in [\d.]+s = ([\d.]+) steps/s", out.stdout).groups()
        events = json.loads(out.stdout.split("BENCH_EVENTS ", 1)[1].splitlines()[0])
        return {"wall_s": wall, "steps": int(steps), "window_s": int(steps) / float(rate), "events": events,
                "load": os.getloadavg()[0]}

    def close(self) -> None:
        try:
            self._python("import fiftyone as fo, sys\nfo.delete_dataset(sys.argv[1])", self.dataset)
        finally:
            if self.mongod is not None:
                from fiftyone_genre import database

                database.stop_private_mongod(self.mongod, self.work / "db")


def phases(run: dict) -> list[tuple[str, float, float | None]]:
    """Where one run's time went, in order: ``(phase, wall s, CPU s of all its threads)``.

    The last phase (exit) ends at the parent's wall time; its CPU time is not seen.
    """
    wall, cpu = run["events"]["wall"], run["events"]["cpu"]
    out, last, last_cpu = [], 0.0, 0.0
    for key, label in PHASES:
        at = run["wall_s"] if key == "exit" else wall.get(key, last)
        at_cpu = cpu.get(key) if key != "exit" else None
        out.append((label, at - last, None if at_cpu is None else at_cpu - last_cpu))
        last, last_cpu = at, at_cpu if at_cpu is not None else last_cpu
    return out


def measure_small(work: Path, clips: list[Path], backbone: str, large, repeats: int) -> dict:
    """Row 6: small whole-process runs alternating with ``large()`` (row 2's end-to-end, same engine).

    Row 6b, in the same rounds: the same run with the weights in a local file
    (as after ``--weights DEFAULT`` downloaded them once): the network is then
    loaded, not randomly initialised.
    """
    small = SmallRun(work, clips, backbone)
    weights = work / f"{backbone}_weights.pth"
    _save_weights(backbone, weights)
    try:
        runs, loaded, large_s = [], [], []
        for _ in range(repeats):
            runs.append(small.run())
            loaded.append(small.run(str(weights)))
            large_s.append(large())
    finally:
        small.close()
    best = max(runs, key=lambda r: r["steps"] / r["window_s"])
    best_loaded = max(loaded, key=lambda r: r["steps"] / r["window_s"])
    return {"runs": runs, "best": best, "loaded_runs": loaded, "best_loaded": best_loaded, "large_s": large_s}


def _save_weights(backbone: str, path: Path) -> None:
    """A state dict of the backbone (its seeded random init) saved as a weights file."""
    import torch

    from fiftyone_genre.features.backbones import build_body

    torch.save(build_body(backbone, "none").state_dict(), path)


def small_rows(m: dict, large_steps: int, eager_img_s: float, engine: str) -> list[tuple]:
    """The row for ``bench_features``'s table, and its breakdown lines."""
    large_rate = large_steps / min(m["large_s"])
    rows = []
    for key, label, target in (("best", "--weights none", ">= 0.80"), ("best_loaded", "6b same, --weights FILE", "(report)")):
        best = m[key]
        small_rate = best["steps"] / best["window_s"]
        ratio = small_rate / large_rate
        name = (f"6 small run, whole process: CLI {label} on {CLIPS} x {CLIP_S:g}s clips ({best['steps']} steps), "
                f"{engine} / row 2 rate, same engine" if key == "best" else label)
        rows.append((name, f"{small_rate:.1f} vs {large_rate:.1f} steps/s = {small_rate / eager_img_s:.1f}x vs "
                     f"{large_rate / eager_img_s:.1f}x eager fp32; process {best['wall_s']:.1f}s",
                     f"{ratio:.2f}", target, ratio >= 0.8 if key == "best" else None))
    return rows


def breakdown_text(m: dict) -> str:
    lines = []
    for key, row in (("best", "6"), ("best_loaded", "6b")):
        best = m[key]
        lines.append(f"row {row}, where the small run's {best['wall_s']:.1f} s went (best of {len(m['runs'])}, "
                     f"load {best['load']:.1f}): wall s, CPU s of all threads")
        lines += [f"  {label:<55} {wall:6.2f} {'' if cpu is None else f'{cpu:6.2f}'}" for label, wall, cpu in phases(best)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
