"""Issue 24: a full disk, two runs at once, a damaged training store and a lost database.

Each numbered case of the issue is reproduced as a user meets it: a small
tmpfs mounted in a private mount namespace (``unshare --mount``: it exists
only for that process and vanishes with it, even after a kill) for the full
disk, two real processes for concurrency, damaged pack files, a stopped
``mongod`` of the test's own. Data are tiny and generated: six 2-s clips for
extraction, synthetic features (``support.feature_data``) for training.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from fiftyone_genre import genres as g

from support.feature_data import balanced_videos, populate, tiny_config

#: the extraction config: tiny and offline
TINY_FEATURES = {
    "features": {"backbone": "mobilenet_v3_small", "image_size": 64, "weights": "none",
                 "audio_weights": "none", "batch_size": 8},
}
#: training on synthetic features: what tiny_config() sets, as a YAML for the CLI
TINY_TRAIN = {
    "model": {"hidden_size": 16, "visual_proj": 8, "audio_proj": 8, "dropout": 0.1, "modality_dropout": 0.2},
    "train": {"window": 8, "stride": 4, "batch_size": 8, "epochs": 2, "lr": 0.01, "device": "cpu", "patience": 0},
}


# --- helpers ----------------------------------------------------------------------------
def run_cli(argv: list[str]) -> tuple[int, str]:
    """``fiftyone_genre.cli.main`` in-process; returns (exit code, stdout + stderr)."""
    from fiftyone_genre.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(argv)
    return rc, buf.getvalue()


def cli_cmd(args: list[str], prelude: str | None = None) -> list[str]:
    """``python -m fiftyone_genre.cli ARGS``, or the CLI after a Python ``prelude`` (patches for timing)."""
    if prelude is None:
        return [sys.executable, "-m", "fiftyone_genre.cli", *args]
    code = prelude + "\nimport sys\nfrom fiftyone_genre.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return [sys.executable, "-c", code, *args]


def spawn(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    out = open(log, "w")  # noqa: SIM115 - closed by the OS when the child ends
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})


def finish(proc: subprocess.Popen, log: Path, timeout: float = 240) -> tuple[int, str]:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"timed out:\n{log.read_text()[-3000:]}")
    return rc, log.read_text()


def wait_for(ready, what: str, timeout: float = 180, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process ended (rc {proc.returncode}) before {what}:\n{log.read_text()[-3000:] if log else ''}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def error_lines(out: str) -> list[str]:
    """The CLI's own error lines (progress bars may share a line with them)."""
    return re.findall(r"fiftyone-genre \S+: (?:unexpected )?error: .*", out)


# --- a small disk: tmpfs in a private mount namespace ------------------------------------
_MOUNT = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'


@pytest.fixture(scope="session")
def unshare_prefix() -> list[str]:
    """``unshare`` arguments that may mount a tmpfs here (root, or a user namespace), or skip."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) on this machine")
    probe = tempfile.mkdtemp(prefix="genre-unshare-probe-")
    try:
        for prefix in (["unshare", "--mount"], ["unshare", "--mount", "--map-root-user"]):
            res = subprocess.run([*prefix, "sh", "-c", _MOUNT, "sh", "16k", probe, "true"], capture_output=True)
            if res.returncode == 0:
                return prefix
    finally:
        os.rmdir(probe)
    pytest.skip("unshare --mount + mount -t tmpfs is not permitted here (needs CAP_SYS_ADMIN or user namespaces)")


def on_small_disk(prefix: list[str], size: str, mountpoint: Path, cmd: list[str]) -> list[str]:
    """``cmd`` run with a ``size`` tmpfs at ``mountpoint``, seen by that process only."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    return [*prefix, "sh", "-c", _MOUNT, "sh", size, str(mountpoint), *cmd]


# --- shared data ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def configs(work) -> dict[str, Path]:
    out = {"features": work / "features.yaml", "train": work / "train.yaml", "train_b": work / "train_b.yaml"}
    out["features"].write_text(yaml.safe_dump(TINY_FEATURES))
    out["train"].write_text(yaml.safe_dump(TINY_TRAIN))
    other = {**TINY_TRAIN, "model": {**TINY_TRAIN["model"], "hidden_size": 24}}
    out["train_b"].write_text(yaml.safe_dump(other))
    return out


@pytest.fixture(scope="module")
def clips(work, dataset_names) -> str:
    """Six 2-s clips (one per genre), imported once; tests clone the dataset."""
    import fiftyone as fo

    from fiftyone_genre.demo import synth
    from fiftyone_genre.sources import import_folder

    root = work / "media"
    synth.generate(root, layout="folder", clips_per_class=1, duration=2, size=(64, 48))
    name = dataset_names("clips")
    import_folder(fo.Dataset(name, persistent=True), root)
    return name


def clone(name: str, dataset_names, tag: str):
    import fiftyone as fo

    return fo.load_dataset(name).clone(dataset_names(tag), persistent=True)


def featured(work: Path, dataset_names, tag: str, steps=(6, 14)):
    """A persistent dataset of synthetic cached features (no video), ready to train."""
    import fiftyone as fo

    ds = fo.Dataset(dataset_names(tag), persistent=True)
    cache = populate(ds, work / tag, balanced_videos(steps=steps))
    return ds, cache


def tagged_errors(dataset) -> int:
    dataset.reload()
    return len(dataset.match_tags(g.ERROR_TAG))


# === 1. a full disk ========================================================================
@pytest.mark.slow
def test_features_on_a_small_disk_is_refused_before_extracting(clips, dataset_names, configs, work, unshare_prefix):
    ds = clone(clips, dataset_names, "disk")
    disk = work / "small_disk_1"
    cmd = cli_cmd(["features", "--dataset", ds.name, "--config", str(configs["features"]),
                   "--cache-dir", str(disk / "cache")])
    rc, out = finish(spawn(on_small_disk(unshare_prefix, "64k", disk, cmd), work / "disk1.log"), work / "disk1.log")
    assert rc == 2, out
    (line,) = error_lines(out)
    assert re.search(rf"feature cache {re.escape(str(disk / 'cache'))}: [\d.]+ KB free, about [\d.]+ KB needed", line), out
    assert "FAILED" not in out and "Errno" not in out, out
    assert tagged_errors(ds) == 0  # the disk's problem, not the videos'
    assert not list(disk.iterdir())  # the mount was the child's only: nothing left here


@pytest.mark.slow
def test_disk_filling_up_during_extraction_stops_at_the_first_entry_that_does_not_fit(
    clips, dataset_names, configs, work, unshare_prefix
):
    ds = clone(clips, dataset_names, "diskfull")
    disk = work / "small_disk_2"
    # the up-front estimate is switched off, as if another program filled the disk meanwhile
    skip_estimate = "import fiftyone_genre.features.extract as E\nE.check_free = lambda *a, **k: None"
    cmd = cli_cmd(["features", "--dataset", ds.name, "--config", str(configs["features"]),
                   "--cache-dir", str(disk / "cache")], prelude=skip_estimate)
    log = work / "disk2.log"
    rc, out = finish(spawn(on_small_disk(unshare_prefix, "64k", disk, cmd), log), log)
    assert rc == 2, out
    (line,) = error_lines(out)
    assert "feature cache" in line and "no space left on device" in line and "free" in line, out
    assert "FAILED" not in out, out
    assert tagged_errors(ds) == 0


def test_unwritable_cache_is_refused_before_any_video_is_opened(clips, dataset_names, configs, monkeypatch):
    from fiftyone_genre.features import decode

    ds = clone(clips, dataset_names, "proc")
    opened: list[str] = []
    original = decode.ClipStream._open

    def spy(self):
        opened.append(self.path)
        return original(self)

    monkeypatch.setattr(decode.ClipStream, "_open", spy)
    for target in ("/proc", "/proc/genre-cache"):
        rc, out = run_cli(["features", "--dataset", ds.name, "--config", str(configs["features"]), "--cache-dir", target])
        assert rc == 2, out
        assert f"feature cache {target} is not writable" in out, out
    assert opened == []
    assert tagged_errors(ds) == 0


@pytest.mark.slow
def test_train_on_a_small_disk_names_the_model_folder(work, dataset_names, configs, unshare_prefix):
    ds, _ = featured(work, dataset_names, "tdisk")
    disk = work / "small_disk_3"
    out_dir = disk / "model"
    cmd = cli_cmd(["train", "--dataset", ds.name, "--config", str(configs["train"]), "--out", str(out_dir)])
    log = work / "tdisk.log"
    rc, out = finish(spawn(on_small_disk(unshare_prefix, "120k", disk, cmd), log), log)
    assert rc == 2, out
    (line,) = error_lines(out)
    assert re.search(rf"model folder {re.escape(str(out_dir))}: [\d.]+ KB free, about [\d.]+ KB needed", line), out
    assert "inline_container" not in out and "unexpected error" not in out, out

    # the same disk filling up while checkpoints are written (estimate switched off)
    skip_estimate = "import fiftyone_genre.modeling.train as T\nT.check_free = lambda *a, **k: None"
    cmd = cli_cmd(["train", "--dataset", ds.name, "--config", str(configs["train"]), "--out", str(out_dir)],
                  prelude=skip_estimate)
    rc, out = finish(spawn(on_small_disk(unshare_prefix, "24k", disk, cmd), log), log)
    assert rc == 2, out
    (line,) = error_lines(out)
    assert f"model folder {out_dir}: no space left on device" in line and "needed" in line, out
    assert "inline_container" not in out and "unexpected error" not in out, out


def test_storage_checks_name_the_folder_free_and_needed(tmp_path, monkeypatch):
    """The functions the App calls before it schedules a run."""
    import errno

    from fiftyone_genre import storage

    assert storage.check_folder(tmp_path / "new" / "cache", "feature cache") == tmp_path / "new" / "cache"
    assert not list((tmp_path / "new" / "cache").iterdir())  # the probe file is gone
    with pytest.raises(storage.StorageError, match=r"^feature cache /proc is not writable"):
        storage.check_folder("/proc", "feature cache")
    monkeypatch.setattr(storage, "free_bytes", lambda folder: 1500)
    with pytest.raises(storage.StorageError) as e:
        storage.check_folder(tmp_path, "model folder", needed=2_500_000)
    assert str(e.value).startswith(f"model folder {tmp_path}: 1.5 KB free, about 2.5 MB needed")
    assert (e.value.free, e.value.needed) == (1500, 2_500_000)
    full = storage.disk_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path, "feature cache", 10_000)
    assert str(full).startswith(f"feature cache {tmp_path}: no space left on device (1.5 KB free, about 10.0 KB needed)")
    # a video that vanished is the sample's problem, not the folder's
    gone = FileNotFoundError(errno.ENOENT, "No such file or directory", "/videos/a.mp4")
    assert storage.disk_error(gone, tmp_path, "feature cache") is None


# === 2. two runs at once =====================================================================
HOLD_AFTER_FIRST_EPOCH = """
import os, time
import fiftyone_genre.modeling.train as T
_after = T._after_epoch
def held(run, record, improved):
    _after(run, record, improved)
    deadline = time.monotonic() + 180
    while not os.path.exists(os.environ["GENRE_TEST_RELEASE"]) and time.monotonic() < deadline:
        time.sleep(0.1)
T._after_epoch = held
"""


@pytest.mark.slow
def test_second_train_into_one_folder_is_refused_naming_the_first(work, dataset_names, configs):
    from fiftyone_genre.modeling import model as M

    ds, _ = featured(work, dataset_names, "twotrain")
    out_dir, release = work / "m_two", work / "m_two.release"
    base = ["train", "--dataset", ds.name, "--out", str(out_dir)]
    log_a, log_b = work / "train_a.log", work / "train_b.log"
    a = spawn(cli_cmd([*base, "--config", str(configs["train"])], HOLD_AFTER_FIRST_EPOCH), log_a,
              {"GENRE_TEST_RELEASE": str(release)})
    try:
        wait_for((out_dir / M.LAST_NAME).is_file, "run A's first checkpoint", proc=a, log=log_a)
        rc_b, out_b = finish(spawn(cli_cmd([*base, "--config", str(configs["train_b"])]), log_b), log_b)
    finally:
        release.touch()
    rc_a, out_a = finish(a, log_a)
    assert rc_a == 0, out_a
    assert rc_b == 2, out_b
    (line,) = error_lines(out_b)
    assert f"process {a.pid} on " in line and "is training into it" in line and str(out_dir) in line, out_b
    # the folder is run A's alone
    for name in (M.BEST_NAME, M.LAST_NAME):
        assert M.read_checkpoint(out_dir / name).experiment.model.hidden_size == 16, name
    assert yaml.safe_load((out_dir / "experiment.yaml").read_text())["model"]["hidden_size"] == 16
    assert json.loads((out_dir / "report.json").read_text())["epochs_run"] == 2


def test_a_killed_runs_folder_lock_is_taken_over(tmp_path):
    from fiftyone_genre import storage

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom fiftyone_genre.storage import FolderLock\n"
        f"FolderLock({str(tmp_path)!r}, 'training into').acquire()\nprint('held', flush=True)\ntime.sleep(120)\n"
    )], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(storage.LockHeld, match=rf"process {holder.pid} on .* is training into it"):
            storage.FolderLock(tmp_path, "training into").acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        lock = storage.FolderLock(tmp_path, "training into").acquire()
        assert lock.took_over["pid"] == holder.pid  # the dead run's record, reported on take-over
        with pytest.raises(storage.LockHeld):  # flock: a second open in one process is refused too
            storage.FolderLock(tmp_path, "training into").acquire()
        assert (tmp_path / storage.LOCK_NAME).stat().st_mode & 0o777 == 0o666 & ~_umask()
        lock.release()
        assert not (tmp_path / storage.LOCK_NAME).exists()  # a clean release leaves nothing behind
        again = storage.FolderLock(tmp_path, "training into").acquire()
        assert again.took_over is None
        again.release()
    finally:
        holder.kill()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


HOLD_BEFORE_ADDING = """
import os, time
import fiftyone_genre.sources.adding as A
_add = A._add_new
def held(*a, **k):
    open(os.environ["GENRE_TEST_PLANNED"], "w").close()
    deadline = time.monotonic() + 180
    while not os.path.exists(os.environ["GENRE_TEST_RELEASE"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _add(*a, **k)
A._add_new = held
"""


@pytest.mark.slow
def test_two_imports_into_one_dataset_add_each_file_once(work, dataset_names):
    import fiftyone as fo

    from fiftyone_genre.sources import import_folder

    tree = work / "import_tree"
    for genre in g.GENRES:
        (tree / genre).mkdir(parents=True)
        for i in range(4):  # not videos: imported and flagged, which is all the race needs
            (tree / genre / f"{genre.lower()}_{i}.mp4").write_bytes(b"not a video " * (i + 1))
    first = work / "import_first"
    (first / "Action").mkdir(parents=True)
    (first / "Action" / "old.mp4").write_bytes(b"old")
    ds = fo.Dataset(dataset_names("twoimport"), persistent=True)
    import_folder(ds, first)  # an existing dataset, as in the issue

    planned, release = work / "import.planned", work / "import.release"
    args = ["import", "folder", str(tree), "--dataset", ds.name]
    log_a, log_b = work / "import_a.log", work / "import_b.log"
    a = spawn(cli_cmd(args, HOLD_BEFORE_ADDING), log_a, {"GENRE_TEST_PLANNED": str(planned), "GENRE_TEST_RELEASE": str(release)})
    try:
        wait_for(planned.exists, "import A's plan", proc=a, log=log_a)
        b = spawn(cli_cmd(args), log_b)
        # B waits for A (it says so), or, unprotected, runs to the end on its own
        wait_for(lambda: "waiting for" in log_b.read_text() or b.poll() is not None, "import B", timeout=120)
    finally:
        release.touch()
    (rc_a, out_a), (rc_b, out_b) = finish(a, log_a), finish(b, log_b)
    assert rc_a == 0, out_a
    assert rc_b == 0, out_b
    ds.reload()
    paths = Counter(ds.values("filepath"))
    assert [p for p, n in paths.items() if n > 1] == []
    assert len(ds) == 1 + 4 * len(g.GENRES)
    assert "imported 24 new sample(s)" in out_a and "imported 0 new sample(s), 24 already present" in out_b, out_b
    assert f"waiting for process {a.pid}" in out_b


SLOW_CACHE_WRITES = """
import time
import fiftyone_genre.features.cache as C
_put = C.FeatureCache.put
def slow(self, *a, **k):
    time.sleep(1.0)
    return _put(self, *a, **k)
C.FeatureCache.put = slow
"""


@pytest.mark.slow
def test_two_feature_runs_on_one_cache_split_the_work(clips, dataset_names, configs, work):
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.features.cache import FeatureCache

    ds = clone(clips, dataset_names, "twofeat")
    cache_dir = work / "cache_two"
    args = ["features", "--dataset", ds.name, "--config", str(configs["features"]), "--cache-dir", str(cache_dir)]
    logs = [work / "feat_a.log", work / "feat_b.log"]
    procs = [spawn(cli_cmd(args, SLOW_CACHE_WRITES), log) for log in logs]
    results = [finish(p, log) for p, log in zip(procs, logs)]
    counts = []
    for rc, out in results:
        assert rc == 0, out
        m = re.search(r"features: (\d+) video\(s\): (\d+) extracted, (\d+) already cached, (\d+) failed", out)
        counts.append(tuple(map(int, m.groups())))
    assert all(total == 6 and extracted + cached == 6 and failed == 0 for total, extracted, cached, failed in counts), counts
    assert sum(extracted for _, extracted, _, _ in counts) == 6, counts  # each video extracted once
    cache = FeatureCache(cache_dir, load_experiment(configs["features"]).features)
    assert all(cache.get(p) is not None for p in ds.values("filepath"))
    assert not list(cache_dir.rglob("*.lock")) and not list(cache_dir.rglob("*.tmp"))


def test_dataset_writer_lease_waits_refuses_and_takes_over(dataset):
    import socket

    import psutil

    from fiftyone_genre import database, storage

    dataset.save()
    locks = database._locks()
    key = f"dataset:{dataset._doc.id}"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        holder = {"pid": sleeper.pid, "host": socket.gethostname(), "started": psutil.Process(sleeper.pid).create_time(),
                  "command": "fiftyone-genre import folder /data", "doing": "importing into",
                  "since": "2026-01-01 10:00:00", "token": "other"}
        far = {"$add": ["$$NOW", 60_000]}
        locks.update_one({"_id": key}, [{"$set": {**holder, "expires_at": far}}], upsert=True)
        started = time.monotonic()
        with pytest.raises(storage.LockHeld) as e:
            database.DatasetLease(dataset, "remapping", wait_s=1.0).acquire()
        assert time.monotonic() - started >= 1.0
        assert str(e.value) == (
            f"dataset '{dataset.name}': process {sleeper.pid} on {socket.gethostname()} ('fiftyone-genre import "
            "folder /data', since 2026-01-01 10:00:00) is importing into it; wait for it to finish or stop it, "
            "then run the command again"
        )
        sleeper.kill()
        sleeper.wait(30)
        with database.dataset_writer(dataset, "remapping", wait_s=0):  # its PID is gone: taken over at once
            assert locks.find_one({"_id": key})["pid"] == os.getpid()
            with database.dataset_writer(dataset, "remapping", wait_s=0):  # re-entrant in one thread
                pass
        assert locks.find_one({"_id": key}) is None  # released
        # another machine's run that stopped renewing: free once its lease ran out
        locks.insert_one({**holder, "_id": key, "host": "elsewhere", "expires_at": None})
        with database.dataset_writer(dataset, "splitting", wait_s=0):
            assert locks.find_one({"_id": key})["doing"] == "splitting"
    finally:
        sleeper.kill()
        locks.delete_one({"_id": key})


# === 3. a damaged training store =============================================================
@pytest.fixture(scope="module")
def reference_run(work, dataset_names):
    """One training run on synthetic features, and its test metrics."""
    from fiftyone_genre.modeling import train as T

    ds, cache = featured(work, dataset_names, "pack")
    report = T.train(ds, tiny_config(), work / "pack_ref")
    return {"dataset": ds, "cache": cache, "metrics": report.test}


def _pack_files(cache) -> dict[str, Path]:
    folder = cache.dir / "packed"
    token = json.loads((folder / "pack.json").read_text())["token"]
    return {kind: folder / f"{token}.{kind}" for kind in ("visual.f32", "audio.f32", "index.npz")}


def _damage(files: dict[str, Path], how: str) -> None:
    if how == "truncated":
        with open(files["visual.f32"], "r+b") as f:
            f.truncate(files["visual.f32"].stat().st_size // 3)
    elif how == "random bytes":
        rng = np.random.default_rng(1)
        for kind in ("visual.f32", "audio.f32"):
            files[kind].write_bytes(rng.bytes(files[kind].stat().st_size))
    else:  # one flipped byte inside the index's offset column
        blob = bytearray(files["index.npz"].read_bytes())
        at = blob.index(b"offset.npy") + 200
        blob[at] ^= 0xFF
        files["index.npz"].write_bytes(bytes(blob))


@pytest.mark.parametrize("how", ["truncated", "random bytes", "flipped index byte"])
def test_damaged_pack_is_rebuilt_and_training_matches_the_reference(reference_run, work, how, capsys):
    from fiftyone_genre.modeling import train as T

    files = _pack_files(reference_run["cache"])
    _damage(files, how)
    report = T.train(reference_run["dataset"], tiny_config(), work / f"pack_{how.replace(' ', '_')}")
    assert capsys.readouterr().out.count("is damaged") == 1  # one line, naming the store
    assert report.test == reference_run["metrics"]
    assert all(np.isfinite(v) for v in (report.test["accuracy"], report.test["macro_f1"]))
    assert not any(f.exists() for f in files.values())  # the damaged pack is gone, not left for an hour
    assert _pack_files(reference_run["cache"]) != files


def test_non_finite_features_stop_training_before_a_model_is_saved(work, dataset_names):
    from fiftyone_genre.features.cache import ClipFeatures
    from fiftyone_genre.modeling import train as T

    ds, cache = featured(work, dataset_names, "nan")
    path = next(p for p, split in zip(*ds.values(["filepath", "split"])) if split == "train")
    feats = cache.get(path)
    visual = feats.visual.copy()
    visual[0, 0] = np.nan
    cache.put(path, ClipFeatures(visual, feats.audio, feats.timestamps, feats.has_audio, feats.duration))
    with pytest.raises(ValueError, match=r"training loss is nan at epoch 1"):
        T.train(ds, tiny_config(), work / "m_nan")
    assert not (work / "m_nan" / "best.pt").exists()


# === 4. the database goes away, or starts twice ===============================================
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TIMED_MAIN = """
import sys, time
import fiftyone, fiftyone_genre.cli  # imported before the clock starts: only the command is timed
started = time.monotonic()
rc = fiftyone_genre.cli.main(sys.argv[1:])
print(f"[command took {time.monotonic() - started:.1f} s]", file=sys.stderr)
sys.exit(rc)
"""


@pytest.mark.slow
def test_no_database_is_one_sentence_within_seconds(work):
    env = {"FIFTYONE_DATABASE_URI": f"mongodb://127.0.0.1:{_free_port()}", "FIFTYONE_GENRE_DB_TIMEOUT_S": "2"}
    log = work / "nodb.log"
    proc = spawn([sys.executable, "-c", TIMED_MAIN, "balance", "--dataset", "anything"], log, env)
    rc, out = finish(proc, log, timeout=180)
    assert rc == 2, out
    lines = [line for line in out.splitlines() if line.strip() and not line.startswith("[command took")]
    assert lines == [
        f"fiftyone-genre balance: error: the FiftyOne database is unreachable ({env['FIFTYONE_DATABASE_URI']}) "
        "after 2 s; start it (or set FIFTYONE_DATABASE_URI / database_uri to one that runs) and run the command again"
    ], out
    took = float(re.search(r"\[command took ([\d.]+) s\]", out).group(1))
    assert took < 15, out  # 2 s of server selection, not pymongo's 30 s and FiftyOne's exit-time wait


PREDICT_SLOWLY = """
import time
import fiftyone_genre.inference.predict as P
P.CHUNK_SIZE = P.SAMPLES_PER_WRITE = 2  # write back every two clips (named CHUNK_SIZE before issue 25)
_score = P.ChunkScorer.score
def slow(*a, **k):
    time.sleep(0.5)
    return _score(*a, **k)
P.ChunkScorer.score = slow
"""

SETUP_ON_SECOND_DB = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
import fiftyone as fo
from support.feature_data import balanced_videos, populate, tiny_config
from fiftyone_genre.modeling import train as T
ds = fo.Dataset({name!r}, persistent=True)
cache = populate(ds, Path({root!r}), balanced_videos())
for sample in ds.iter_samples(autosave=True):  # the timeline needs frame counts; the media are dummies
    steps = cache.get(sample.filepath).num_steps
    sample.metadata = fo.VideoMetadata(frame_rate=4.0, total_frame_count=steps, duration=steps / 4.0)
T.train(ds, tiny_config(epochs=1), Path({root!r}) / "model")
"""


@pytest.mark.slow
def test_database_lost_during_predict_is_one_sentence_within_seconds(work):
    import pymongo

    from fiftyone_genre import database

    dbpath = work / "second_db"
    try:
        proc, uri = database.start_private_mongod(dbpath)
    except database.MongodError as e:
        pytest.skip(f"cannot start a second mongod: {e}")
    try:
        env = {"FIFTYONE_DATABASE_URI": uri, "FIFTYONE_GENRE_DB_TIMEOUT_S": "3"}
        name, root = "lost-db", work / "lost"
        setup = SETUP_ON_SECOND_DB.format(tests=str(Path(__file__).parent), name=name, root=str(root))
        rc, out = finish(spawn([sys.executable, "-c", setup], work / "lost_setup.log", env), work / "lost_setup.log")
        assert rc == 0, out
        log = work / "lost_predict.log"
        pred = spawn(cli_cmd(["predict", "--dataset", name, "--model", str(root / "model"), "--device", "cpu"],
                             PREDICT_SLOWLY), log, env)
        db = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)[os.environ["FIFTYONE_DATABASE_NAME"]]
        samples = db[db.datasets.find_one({"name": name})["sample_collection_name"]]
        wait_for(lambda: samples.count_documents({g.PRED_FIELD: {"$type": "object"}}) >= 2, "two predictions",
                 proc=pred, log=log)
        proc.kill()
        killed = time.monotonic()
        rc, out = finish(pred, log, timeout=120)
        elapsed = time.monotonic() - killed
    finally:
        database.stop_private_mongod(proc, dbpath)
    assert rc == 2, out
    (line,) = error_lines(out)
    assert line.startswith("fiftyone-genre predict: error: the FiftyOne database is unreachable"), out
    assert "Topology" not in out and "unexpected error" not in out, out
    assert elapsed < 25, elapsed  # not pymongo's 30 s, twice


TWO_STARTS = r"""
ip link set lo up
for i in 1 2; do ( "$@" > "$LOGS/start_$i.log" 2>&1; echo "rc=$?" >> "$LOGS/start_$i.log" ) & done
wait
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_commands_starting_fiftyones_database_together_both_reach_it(work):
    """FiftyOne's own service (no URI) started by two commands at once: both reach the one mongod.

    Runs in private PID and network namespaces, so no other FiftyOne service
    of this user is found or can attach (FiftyOne attaches to any running
    service of the same user, whatever its data folder).
    """
    prefix = ["unshare", "--pid", "--fork", "--mount-proc", "--net"]
    if shutil.which("unshare") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --pid --net is not permitted here")
    logs, dbdir = work / "two_starts", work / "two_starts_db"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_DATABASE_URI", "FIFTYONE_PRIVATE_DATABASE_PORT")}
    env.update(FIFTYONE_DATABASE_DIR=str(dbdir), LOGS=str(logs))
    cmd = cli_cmd(["balance", "--dataset", "no-such-dataset"])
    subprocess.run([*prefix, "sh", "-c", TWO_STARTS, "sh", *cmd], env=env, timeout=560)
    outs = [(logs / f"start_{i}.log").read_text() for i in (1, 2)]
    for out in outs:
        assert "no dataset 'no-such-dataset'" in out and "rc=2" in out, outs
        assert "ServiceListenTimeout" not in out and "unexpected error" not in out, outs


# === 5. smaller items =========================================================================
@pytest.fixture(scope="module")
def tiny_model(reference_run, work) -> Path:
    return work / "pack_ref"


def test_fifo_and_devices_are_named_as_such_without_hanging(tmp_path, tiny_model):
    from fiftyone_genre.features.decode import ClipStream, MediaError
    from fiftyone_genre.sources.probe import probe_video

    fifo = tmp_path / "fifo.mp4"
    os.mkfifo(fifo)
    cases = {str(fifo): "not a regular file (a FIFO), not a video file",
             "/dev/zero": "not a regular file (a character device), not a video file"}
    for path, reason in cases.items():
        with pytest.raises(MediaError, match=re.escape(f"{path}: {reason}")):
            ClipStream(path)
        assert probe_video(path).problem == reason
    res = subprocess.run(cli_cmd(["classify", str(fifo), "/dev/zero", "--model", str(tiny_model), "--device", "cpu"]),
                         capture_output=True, text=True, timeout=180)
    for path, reason in cases.items():
        assert f"{path}: {reason}" in res.stdout + res.stderr, res.stdout + res.stderr
    assert "zero-byte" not in res.stdout + res.stderr


def test_plain_pickle_checkpoint_gives_only_our_sentence(tmp_path):
    import pickle

    from fiftyone_genre.modeling import model as M

    (tmp_path / "best.pt").write_bytes(pickle.dumps({"state_dict": {}, "x": 1}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError) as e:
            M.read_checkpoint(tmp_path)
    assert [str(w.message) for w in caught] == []
    assert str(e.value) == (
        f"{tmp_path / 'best.pt'}: not a readable checkpoint (not a PyTorch checkpoint: corrupt, truncated, "
        "a plain pickle or another kind of file)"
    )


def test_out_folder_of_someone_elses_files_is_refused(work, dataset_names, configs, tmp_path):
    from fiftyone_genre.storage import check_own_folder

    ds, _ = featured(work, dataset_names, "userdir")
    user = tmp_path / "my_documents"
    user.mkdir()
    (user / "thesis.docx").write_text("my thesis")
    (user / "notes.txt").write_text("x")
    rc, out = run_cli(["train", "--dataset", ds.name, "--config", str(configs["train"]), "--out", str(user)])
    assert rc == 2, out
    assert (f"--out {user}: not empty and not a fiftyone-genre model folder (found notes.txt, thesis.docx); "
            "choose a new or empty folder") in out
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt", "thesis.docx"]
    assert (user / "thesis.docx").read_text() == "my thesis"
    for folder in ("/", Path.home()):
        with pytest.raises(ValueError, match="refusing to write into"):
            check_own_folder(folder, ["best.pt"])


@pytest.fixture
def group_umask():
    before = os.umask(0o002)
    yield
    os.umask(before)


def test_files_are_created_with_the_umask(work, dataset_names, group_umask):
    from fiftyone_genre.modeling import train as T

    ds, cache = featured(work, dataset_names, "umask")
    T.train(ds, tiny_config(epochs=1), work / "m_umask")
    written = [*(work / "m_umask").glob("*.pt"), *cache.dir.rglob("*.npz"), cache.dir / "config.json",
               *(cache.dir / "packed").glob("*")]
    assert len(written) > 10
    modes = {str(p.relative_to(work)): oct(p.stat().st_mode & 0o777) for p in written if p.is_file()}
    assert set(modes.values()) == {"0o664"}, modes
