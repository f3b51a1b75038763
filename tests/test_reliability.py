"""Issue 9 end to end: a messy corpus through every stage, real kills, concurrent runs, input safety.

One generated corpus (good clips of six genres + ``synth.bad_corpus``) goes
through import -> remap -> split -> features -> train -> predict once per
module (with the network blocked); the other tests reuse it through clones.
Kills are real ``SIGKILL`` s of ``python -m fiftyone_genre.cli`` subprocesses
that share the test's FiftyOne database.

Importer-level checks of the corpus and of split files (missing entries, junk
lines, ``..`` and absolute paths never followed outside the dataset root,
property-based parser test) live in ``tests/test_bad_corpus.py``.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError, FeaturesConfig, from_dict, load_experiment
from fiftyone_genre.demo import synth
from fiftyone_genre.features.cache import FeatureCache
from fiftyone_genre.labels import mapping, remap, split

from support import faults

pytestmark = pytest.mark.slow

#: the e2e experiment: tiny and offline (brief: mobilenet_v3_small, 64 px, weights none)
TINY = {
    "features": {
        "backbone": "mobilenet_v3_small",
        "image_size": 64,
        "weights": "none",
        "audio_weights": "none",
        "batch_size": 16,
    },
    "model": {"hidden_size": 16, "visual_proj": 8, "audio_proj": 8, "dropout": 0.1},
    "train": {"window": 8, "stride": 4, "batch_size": 8, "epochs": 2, "lr": 0.01,
              "patience": 0, "device": "cpu", "seed": 0},
    "predict": {"device": "cpu"},
}
#: kill / concurrency runs: bigger frames and small batches, so a run lasts a few
#: seconds after its first cache entry and entries appear one video at a time
SLOW_FEATURES = {"image_size": 224, "batch_size": 4, "num_workers": 1}

#: what each bad file's import / features error must say
BAD_REASONS = {
    "truncated.mp4": r"cannot be decoded|not a readable video|truncated",
    "zero_bytes.mp4": r"zero-byte",
    "audio_only.mp4": r"no video stream",
    "garbage.avi": r"cannot be decoded|not a readable video",
}
PRED_FIELDS = (g.PRED_FIELD, g.TIMELINE_FIELD, g.EMBEDDING_FIELD, g.PRED_VISUAL_FIELD, g.PRED_AUDIO_FIELD)


# --- helpers -------------------------------------------------------------------------
def run_cli(argv: list[str]) -> tuple[int, str]:
    """``fiftyone_genre.cli.main`` in-process; returns (exit code, stdout + stderr)."""
    from fiftyone_genre.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(argv)
    return rc, buf.getvalue()


def spawn(args: list[str], log: Path, code: str | None = None) -> subprocess.Popen:
    """``python -m fiftyone_genre.cli ARGS`` (or ``python -c CODE ARGS``) on the test database."""
    env = dict(os.environ)  # conftest set FIFTYONE_DATABASE_NAME and friends
    env["FIFTYONE_DATABASE_NAME"] = os.environ["FIFTYONE_DATABASE_NAME"]
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "fiftyone_genre.cli"]
    out = open(log, "w")  # noqa: SIM115 - closed by the OS when the child ends
    return subprocess.Popen(cmd + args, stdout=out, stderr=subprocess.STDOUT, env=env)


def kill_when(proc: subprocess.Popen, ready, log: Path, timeout: float = 150.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` is true; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process ended (rc {proc.returncode}) before it could be killed:\n{log.read_text()[-3000:]}")
        if ready():
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
            return
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"timed out waiting for the kill point:\n{log.read_text()[-3000:]}")


def entries_on_disk(cache_dir: Path) -> list[Path]:
    return sorted(Path(cache_dir).rglob("*.npz"))


def check_cache_entries(cache: FeatureCache, filepaths: list[str]) -> dict[str, object]:
    """Every ``.npz`` under the cache is a complete entry of one of ``filepaths``.

    Returns ``{filepath: ClipFeatures}`` of the valid entries. A file that sits
    where an entry belongs but does not load (partial) fails the check.
    """
    owners = {cache.path_for(p): p for p in filepaths}
    valid = {}
    for f in entries_on_disk(cache.root):
        assert f in owners, f"{f}: a .npz that is no entry of any sample"
        feats = cache.get(owners[f])
        assert feats is not None, f"{f}: an entry file that does not load (partial or corrupt)"
        assert feats.num_steps > 0 and np.isfinite(feats.visual).all()
        valid[owners[f]] = feats
    return valid


def assert_same_features(a, b, what: str) -> None:
    assert a.has_audio == b.has_audio, what
    np.testing.assert_array_equal(a.timestamps, b.timestamps, err_msg=what)
    np.testing.assert_allclose(a.visual, b.visual, rtol=1e-4, atol=1e-5, err_msg=what)
    np.testing.assert_allclose(a.audio, b.audio, rtol=1e-4, atol=1e-5, err_msg=what)


class NoNetwork:
    """Refuse (and record) every connection or name lookup that is not local."""

    def __init__(self) -> None:
        self.attempts: list[object] = []

    @staticmethod
    def _local_host(host) -> bool:
        if host in (None, "", "localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def install(self, mp: pytest.MonkeyPatch) -> None:
        guard = self
        connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

        def check(sock, address) -> None:
            if sock.family == getattr(socket, "AF_UNIX", None):
                return
            host = address[0] if isinstance(address, tuple) else address
            if not guard._local_host(host):
                guard.attempts.append(address)
                raise OSError(f"network access blocked by the test: {address!r}")

        def guarded_connect(sock, address):
            check(sock, address)
            return connect(sock, address)

        def guarded_connect_ex(sock, address):
            check(sock, address)
            return connect_ex(sock, address)

        def guarded_getaddrinfo(host, *a, **k):
            if not guard._local_host(host.decode() if isinstance(host, bytes) else host):
                guard.attempts.append(host)
                raise OSError(f"name lookup blocked by the test: {host!r}")
            return getaddrinfo(host, *a, **k)

        mp.setattr(socket.socket, "connect", guarded_connect)
        mp.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        mp.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


# --- the shared corpus and pipeline ----------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="module")
def corpus(work) -> dict:
    root = work / "media"
    manifest = synth.generate(root, layout="folder", clips_per_class=3, duration=2, size=(64, 48))
    bad = faults.bad_corpus(root)
    good = [c.path for c in manifest.clips] + bad["good"] + list(bad["odd"])
    assert len({Path(p).name for p in good + list(bad["bad"])}) == len(good) + len(bad["bad"])
    return {**bad, "root": str(root), "good": good, "bad": bad["bad"]}


@pytest.fixture(scope="module")
def configs(work) -> dict[str, Path]:
    tiny = work / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(TINY))
    slow = work / "slow.yaml"
    slow.write_text(yaml.safe_dump({**TINY, "features": {**TINY["features"], **SLOW_FEATURES}}))
    return {"tiny": tiny, "slow": slow}


def clone(dataset, dataset_names, tag: str):
    """A persistent copy (same media, fields and info) that a subprocess can load."""
    return dataset.clone(dataset_names(tag), persistent=True)


@pytest.fixture(scope="module")
def pipeline(corpus, configs, work, dataset_names) -> dict:
    """import (CLI) -> remap -> split -> features (CLI) -> train -> predict (CLI), network blocked."""
    import fiftyone as fo

    from fiftyone_genre.modeling import train as T

    name = dataset_names("e2e")
    out: dict = {"name": name, "model": work / "model", "cache": work / "cache_e2e"}
    guard = NoNetwork()
    with pytest.MonkeyPatch.context() as mp:
        guard.install(mp)
        with pytest.raises(OSError, match="blocked by the test"):  # the guard really guards
            socket.create_connection(("203.0.113.7", 80), timeout=1)
        guard.attempts.clear()

        out["import_rc"], out["import_out"] = run_cli(["import", "folder", corpus["root"], "--dataset", name])
        dataset = fo.load_dataset(name)
        out["remap"] = remap.remap(dataset)
        cfg = load_experiment(configs["tiny"])
        out["split"] = split.split_dataset(dataset, cfg.split)
        out["count"] = len(dataset)
        out["truth"] = dict(zip(dataset.values("id"), zip(*dataset.values(["filepath", "genre.label", "split"]))))
        out["features_rc"], out["features_out"] = run_cli(
            ["features", "--dataset", name, "--config", str(configs["tiny"]), "--cache-dir", str(out["cache"])]
        )
        out["train"] = T.train(dataset, cfg, out["model"])
        out["predict_rc"], out["predict_out"] = run_cli(
            ["predict", "--dataset", name, "--model", str(out["model"]), "--device", "cpu"]
        )
    out["network_attempts"] = list(guard.attempts)
    out["dataset"] = fo.load_dataset(name)
    return out


def samples_by_name(dataset) -> dict:
    return {Path(s.filepath).name: s for s in dataset.iter_samples()}


# --- 1. the messy corpus end to end -------------------------------------------------------
def test_messy_corpus_runs_to_the_end_and_reports_each_bad_file(pipeline, corpus):
    assert (pipeline["import_rc"], pipeline["features_rc"], pipeline["predict_rc"]) == (0, 0, 0), (
        pipeline["import_out"] + pipeline["features_out"] + pipeline["predict_out"]
    )
    by_name = samples_by_name(pipeline["dataset"])
    n_bad = len(corpus["bad"])
    for path in corpus["bad"]:
        name = Path(path).name
        s = by_name[name]
        errors = s[g.ERRORS_FIELD] or []
        stages = {e.split(":", 1)[0] for e in errors}
        assert {"import", "features", "train", "predict"} <= stages, (name, errors)
        for e in errors:
            if e.startswith(("import:", "features:")):
                assert re.search(BAD_REASONS[name], e), (name, e)
        assert g.ERROR_TAG in s.tags
        assert all(s[f] is None for f in PRED_FIELDS if s.has_field(f)), name
        # each stage's summary names the file
        assert name in pipeline["import_out"] and f"FAILED {s.filepath}" in pipeline["features_out"]
        assert s.filepath in str(pipeline["train"]) and s.filepath in pipeline["predict_out"]
    # the directory named like a video is skipped and said so
    assert re.search(r"x\.mp4: a directory", pipeline["import_out"])
    # the summaries count the failures
    assert f"{n_bad} unreadable video(s) imported and flagged" in pipeline["import_out"]
    assert f"{n_bad} failed" in pipeline["features_out"]
    assert f"skipped {n_bad} samples" in str(pipeline["train"])
    assert f"{n_bad} sample(s) failed" in pipeline["predict_out"]
    assert len(pipeline["dataset"].match_tags(g.ERROR_TAG)) == n_bad


def test_ground_truth_and_sample_count_unchanged(pipeline):
    dataset = pipeline["dataset"]
    dataset.reload()
    assert len(dataset) == pipeline["count"]
    now = dict(zip(dataset.values("id"), zip(*dataset.values(["filepath", "genre.label", "split"]))))
    assert now == pipeline["truth"]
    assert all(label in g.GENRES for _, label, _ in now.values())


def test_every_good_clip_gets_a_prediction(pipeline, corpus):
    by_name = samples_by_name(pipeline["dataset"])
    assert len(by_name) == len(corpus["good"]) + len(corpus["bad"])
    for path in corpus["good"]:
        s = by_name[Path(path).name]
        assert not s[g.ERRORS_FIELD] and g.ERROR_TAG not in s.tags, (path, s[g.ERRORS_FIELD])
        assert s[g.PRED_FIELD] is not None and s[g.PRED_FIELD].label in g.GENRES, path
        assert s[g.TIMELINE_FIELD] is not None and s[g.TIMELINE_FIELD].detections, path
        assert len(s[g.EMBEDDING_FIELD]) == TINY["model"]["hidden_size"]
        assert s[g.PRED_VISUAL_FIELD] is not None and s[g.PRED_AUDIO_FIELD] is not None
    assert by_name["video_only.mp4"][g.HAS_AUDIO_FIELD] is False
    for name in ("half_second.mp4", "uhd_4k.mp4", "vfr.mp4", "clip ünïcödé 片.mp4", "pcm_audio.avi"):
        assert by_name[name][g.HAS_AUDIO_FIELD] is True, name


def test_no_network_at_run_time_with_weights_none(pipeline):
    # the whole pipeline ran with non-local connections and name lookups refused
    assert pipeline["network_attempts"] == []


# --- CLI exit codes ---------------------------------------------------------------------
def test_exit_codes_nonzero_only_when_nothing_processed_or_strict(pipeline, corpus, configs, dataset_names, work):
    name, tiny, model = pipeline["name"], str(configs["tiny"]), str(pipeline["model"])
    # some files failed, but not all: success, unless --strict
    rc, out = run_cli(["features", "--dataset", name, "--config", tiny, "--strict"])
    assert rc == 2 and "strict" in out and f"{len(corpus['bad'])} video(s) failed" in out, out
    rc, out = run_cli(["predict", "--dataset", name, "--model", model, "--device", "cpu", "--strict"])
    assert rc == 2 and any(p in out for p in corpus["bad"]), out
    rc, out = run_cli(["train", "--dataset", name, "--config", tiny, "--out", str(work / "m_strict"), "--strict"])
    assert rc == 2 and "strict" in out and all(p in out for p in corpus["bad"]), out
    assert not (work / "m_strict" / "last.pt").exists()
    rc, out = run_cli(["import", "folder", corpus["root"], "--dataset", name, "--strict"])
    assert rc == 1 and "strict" in out, out

    # nothing usable at all: non-zero without --strict
    bad_only = pipeline["dataset"].match_tags(g.ERROR_TAG).clone(dataset_names("badonly"), persistent=True)
    assert len(bad_only) == len(corpus["bad"])
    rc, out = run_cli(["features", "--dataset", bad_only.name, "--config", tiny])
    assert rc == 2 and "no video could be processed" in out, out
    rc, out = run_cli(["train", "--dataset", bad_only.name, "--config", tiny, "--out", str(work / "m_bad")])
    assert rc == 2 and "error" in out, out
    rc, out = run_cli(["predict", "--dataset", bad_only.name, "--model", model, "--device", "cpu"])
    assert rc == 2 and "none of the" in out, out
    empty = work / "empty_tree"
    (empty / "Action" / "dir_named_like.mp4").mkdir(parents=True)
    rc, out = run_cli(["import", "folder", str(empty), "--dataset", dataset_names("empty")])
    assert rc == 1 and "nothing could be imported" in out, out

    # the strict runs recorded, but changed nothing
    dataset = pipeline["dataset"]
    dataset.reload()
    assert len(dataset) == pipeline["count"]
    assert len(dataset.exists(g.PRED_FIELD)) == len(corpus["good"])


# --- 2. kill and resume ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def concurrent_features(pipeline, configs, work, dataset_names) -> dict:
    """Two uninterrupted feature runs on one dataset and one cache, at the same time."""
    ds = clone(pipeline["dataset"], dataset_names, "conc")
    cache_dir = work / "cache_conc"
    args = ["features", "--dataset", ds.name, "--config", str(configs["slow"]), "--cache-dir", str(cache_dir)]
    logs = [work / "conc_a.log", work / "conc_b.log"]
    procs = [spawn(args, log) for log in logs]
    rcs = [p.wait(300) for p in procs]
    cfg = load_experiment(configs["slow"]).features
    return {"dataset": ds, "rcs": rcs, "logs": [log.read_text() for log in logs],
            "cache": FeatureCache(cache_dir, cfg)}


def test_concurrent_feature_runs_do_not_corrupt_the_cache(concurrent_features, corpus):
    run = concurrent_features
    assert run["rcs"] == [0, 0], "\n".join(run["logs"])
    good = corpus["good"]
    for log in run["logs"]:
        m = re.search(r"features: (\d+) video\(s\): (\d+) extracted, (\d+) already cached, (\d+) failed", log)
        assert m, log
        total, extracted, cached, failed = map(int, m.groups())
        assert (total, extracted + cached, failed) == (len(good) + len(corpus["bad"]), len(good), len(corpus["bad"]))
    ds = run["dataset"]
    ds.reload()
    valid = check_cache_entries(run["cache"], ds.values("filepath"))
    assert {Path(p).name for p in valid} == {Path(p).name for p in good}
    assert not list(run["cache"].root.rglob("*.tmp")), "a finished run left temp files"
    by_name = samples_by_name(ds)
    for path in good:
        assert by_name[Path(path).name][g.HAS_AUDIO_FIELD] is not None
    for path in corpus["bad"]:
        errors = by_name[Path(path).name][g.ERRORS_FIELD]
        assert sum(e.startswith("features: ") for e in errors) == 1, errors  # not doubled
    assert ds.info[g.FEATURES_INFO_KEY]["cache_dir"] == str(run["cache"].root.resolve())


def test_features_killed_then_resumed(pipeline, concurrent_features, corpus, configs, work, dataset_names):
    ds = clone(pipeline["dataset"], dataset_names, "fkill")
    paths = ds.values("filepath")
    cache_dir = work / "cache_kill"
    cfg = load_experiment(configs["slow"]).features
    cache = FeatureCache(cache_dir, cfg)
    args = ["features", "--dataset", ds.name, "--config", str(configs["slow"]), "--cache-dir", str(cache_dir)]
    log = work / "fkill.log"
    proc = spawn(args, log)
    kill_when(proc, lambda: len(entries_on_disk(cache_dir)) >= 2, log)

    # after the kill: every entry on disk is complete ...
    before = check_cache_entries(cache, paths)
    n_good = len(corpus["good"])
    assert 2 <= len(before) < n_good, f"killed too late: {len(before)} entries\n{log.read_text()[-2000:]}"
    # ... and a temp file is never read as one, even a complete one (named as
    # utils.atomic_path names them)
    orphan = sorted(before)[0]
    entry = cache.path_for(orphan)
    os.replace(entry, entry.parent / f"{entry.name}.x1y2z3.tmp")
    assert cache.get(orphan) is None and cache.lookup(orphan) is None
    del before[orphan]

    rc, out = run_cli(args)
    assert rc == 0, out
    assert f"{len(before)} already cached" in out and f"{n_good - len(before)} extracted" in out, out
    after = check_cache_entries(cache, paths)
    assert set(after) == {p for p in paths if Path(p).name in {Path(q).name for q in corpus["good"]}}
    for p, feats in before.items():  # entries written before the kill were reused, not rewritten
        np.testing.assert_array_equal(after[p].visual, feats.visual)
    ds.reload()
    has_audio = {Path(p).name: a for p, a in zip(*ds.values(["filepath", g.HAS_AUDIO_FIELD]))}
    for p in corpus["good"]:
        assert has_audio[Path(p).name] is (Path(p).name != "video_only.mp4"), p
    # the same features as the uninterrupted runs
    reference = concurrent_features["cache"]
    for p, feats in after.items():
        ref = reference.get(p)
        assert ref is not None, p
        assert_same_features(feats, ref, p)

    # a half-written or empty file where an entry belongs is a miss, never valid data
    victims = sorted(after)[:2]
    blob = cache.path_for(victims[0]).read_bytes()
    cache.path_for(victims[0]).write_bytes(blob[: len(blob) // 2])
    cache.path_for(victims[1]).write_bytes(b"")
    assert cache.get(victims[0]) is None and cache.lookup(victims[0]) is None
    assert cache.get(victims[1]) is None and cache.lookup(victims[1]) is None
    rc, out = run_cli(args)
    assert rc == 0 and "2 extracted" in out and f"{n_good - 2} already cached" in out, out
    for p in victims:
        assert_same_features(cache.get(p), after[p], p)


def _state_dict(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture
def one_thread():
    """The in-process runs use one thread, like the ``--threads 1`` subprocess; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_training_killed_then_resumed_matches_uninterrupted(pipeline, configs, work, one_thread):
    from fiftyone_genre.modeling import model as M
    from fiftyone_genre.modeling import train as T

    epochs = 8
    name, out_dir = pipeline["name"], work / "train_kill"
    # Bit-exact equality needs the same float summation order: one thread in every run.
    args = ["train", "--dataset", name, "--config", str(configs["tiny"]), "--out", str(out_dir),
            "--epochs", str(epochs), "--threads", "1"]
    log = work / "tkill.log"
    proc = spawn(args, log)
    last = out_dir / M.LAST_NAME
    kill_when(proc, last.is_file, log)

    killed_at = M.read_checkpoint(last).epoch  # a complete checkpoint, never a partial one
    assert 1 <= killed_at < epochs, f"killed too late (epoch {killed_at})"
    rc, out = run_cli(args + ["--resume"])
    assert rc == 0, out
    assert f"resumed after epoch {killed_at}" in out, out

    reference = work / "train_ref"
    T.train(pipeline["dataset"], load_experiment(configs["tiny"], train={"epochs": epochs}), reference)
    for ckpt in (M.LAST_NAME, M.BEST_NAME):
        a, b = _state_dict(out_dir / ckpt), _state_dict(reference / ckpt)
        assert a["epoch"] == b["epoch"], ckpt
        assert a["state_dict"].keys() == b["state_dict"].keys()
        for k in a["state_dict"]:
            assert torch.equal(a["state_dict"][k], b["state_dict"][k]), (ckpt, k)
    last, ref_last = _state_dict(out_dir / M.LAST_NAME), _state_dict(reference / M.LAST_NAME)
    assert last["history"] == ref_last["history"] and last["run_state"] == ref_last["run_state"]


PREDICT_SLOWLY = """
import sys, time
import fiftyone_genre.inference.predict as P
P.SAMPLES_PER_WRITE = 2  # write back every two clips ...
_score = P.ChunkScorer.score
def slow(*a, **k):  # ... slowly, so the kill lands between chunks and fields
    time.sleep(0.25)
    return _score(*a, **k)
P.ChunkScorer.score = slow
from fiftyone_genre.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_predict_rerun_after_kill_leaves_consistent_fields(pipeline, corpus, work, dataset_names):
    ds = clone(pipeline["dataset"], dataset_names, "pkill")
    ds.delete_sample_fields([f for f in PRED_FIELDS if ds.has_sample_field(f)])
    ds.info.pop(g.RUN_INFO_KEY, None)
    ds.save()
    raw = ds._sample_collection
    args = ["predict", "--dataset", ds.name, "--model", str(pipeline["model"]), "--device", "cpu"]
    log = work / "pkill.log"
    proc = spawn(args, log, code=PREDICT_SLOWLY)
    kill_when(proc, lambda: raw.count_documents({g.PRED_FIELD: {"$type": "object"}}) >= 2, log)
    partial = raw.count_documents({g.PRED_FIELD: {"$type": "object"}})
    assert 2 <= partial < len(corpus["good"]), partial

    rc, out = run_cli(args)
    assert rc == 0, out
    ds.reload()
    assert len(ds) == pipeline["count"]
    assert g.RUN_INFO_KEY in ds.info
    fresh, reference = samples_by_name(ds), samples_by_name(pipeline["dataset"])
    for name, s in fresh.items():
        ref = reference[name]
        assert s.genre.label == ref.genre.label and s.split == ref.split
        if ref[g.PRED_FIELD] is None:  # the bad files: nothing predicted, reason recorded
            assert all(s[f] is None for f in PRED_FIELDS), name
            assert any(e.startswith("predict: ") for e in s[g.ERRORS_FIELD]), name
            continue
        assert not any(e.startswith("predict: ") for e in s[g.ERRORS_FIELD] or []), name
        assert s[g.PRED_FIELD].label == ref[g.PRED_FIELD].label, name
        assert s[g.PRED_FIELD].confidence == pytest.approx(ref[g.PRED_FIELD].confidence, abs=1e-5)
        assert len(s[g.TIMELINE_FIELD].detections) == len(ref[g.TIMELINE_FIELD].detections)
        np.testing.assert_allclose(s[g.EMBEDDING_FIELD], ref[g.EMBEDDING_FIELD], atol=1e-5)
        assert s[g.PRED_VISUAL_FIELD].label == ref[g.PRED_VISUAL_FIELD].label
        assert s[g.PRED_AUDIO_FIELD].label == ref[g.PRED_AUDIO_FIELD].label


# --- 4. input safety -------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates a marker file: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_with_a_pickled_object_is_refused(pipeline, tmp_path):
    from fiftyone_genre.modeling import model as M

    raw = _state_dict(pipeline["model"] / M.BEST_NAME)
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    torch.save({**raw, "metrics": {"note": _Payload(marker)}}, evil)
    torch.load(evil, weights_only=False)  # the file really runs code when unpickled unsafely
    assert marker.exists()
    marker.unlink()

    with pytest.raises(ValueError, match="not a readable checkpoint") as e:
        M.read_checkpoint(evil)
    assert str(evil) in str(e.value) and "weights_only" in str(e.value).lower().replace(" ", "_")
    assert not marker.exists()
    rc, out = run_cli(["predict", "--dataset", pipeline["name"], "--model", str(evil)])
    assert rc == 2 and str(evil) in out and not marker.exists(), out


def test_yaml_with_python_objects_is_refused_naming_the_file(tmp_path):
    marker = tmp_path / "code_ran"
    payload = f'!!python/object/apply:builtins.open ["{marker}", "w"]'
    evil_config = tmp_path / "evil_experiment.yaml"
    evil_config.write_text(f"features: {payload}\n")
    with pytest.raises(ConfigError, match=re.escape(str(evil_config))):
        load_experiment(evil_config)
    rc, out = run_cli(["train", "--dataset", "unused", "--config", str(evil_config), "--out", str(tmp_path / "m")])
    assert rc == 2 and str(evil_config) in out, out

    evil_mapping = tmp_path / "evil_mapping.yaml"
    evil_mapping.write_text(f"name: evil\nrules:\n  Foo: {payload}\n")
    with pytest.raises(ValueError, match=re.escape(str(evil_mapping))):
        mapping.load_mapping(evil_mapping)
    obj = tmp_path / "object.yaml"
    obj.write_text("features: !!python/object:fiftyone_genre.config.FeaturesConfig {fps: 1.0}\n")
    with pytest.raises(ConfigError, match=re.escape(str(obj))):
        load_experiment(obj)
    assert not marker.exists()
    # a dict that merely looks like one is still validated key by key
    with pytest.raises(ConfigError, match="image_size"):
        from_dict(FeaturesConfig, {"image_size": "huge"}, "x.yaml")


# --- issue 15, item 8: errors up front, one sentence, no traceback, no wrong blame -------------
NO_DATASET = "no-such-dataset-for-this-test"


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--fps", "nan"], r"'fps': must be in \(0, 120\], got nan"),
        (["--fps", "inf"], r"'fps': must be in \(0, 120\], got inf"),
        (["--fps", "-4"], r"'fps': must be in \(0, 120\]"),
        (["--batch-size", "0"], r"'batch_size': must be in \[1, 4096\], got 0"),
        (["--workers", "-1"], r"'num_workers': must be in \[0, 32\], got -1"),
        (["--workers", "1000"], r"'num_workers': must be in \[0, 32\], got 1000"),
        (["--device", "tpu"], r"--device 'tpu' is not a device"),
    ],
)
def test_features_flags_are_checked_before_any_work(flags, needle):
    rc, out = run_cli(["features", "--dataset", NO_DATASET, *flags])
    assert rc == 2 and re.search(needle, out), out
    assert "Traceback" not in out and "no dataset" not in out, out  # refused before the dataset is read


def test_features_section_that_is_a_list_plus_a_flag_is_a_config_error(tmp_path):
    cfg = tmp_path / "list.yaml"
    cfg.write_text("features: [1, 2]\n")
    rc, out = run_cli(["features", "--dataset", NO_DATASET, "--config", str(cfg), "--fps", "2"])
    assert rc == 2 and f"{cfg}: section 'features': expected a mapping" in out, out
    assert "TypeError" not in out


def test_n_mels_out_of_range_is_refused_before_decoding(tmp_path):
    for n in (0, 4):
        cfg = tmp_path / f"mels{n}.yaml"
        cfg.write_text(f"features:\n  n_mels: {n}\n")
        rc, out = run_cli(["features", "--dataset", NO_DATASET, "--config", str(cfg)])
        assert rc == 2 and "'n_mels': must be in [8, 128]" in out and "no dataset" not in out, out


def test_binary_yaml_is_named_by_the_cli(tmp_path):
    cfg = tmp_path / "photo.yaml"
    cfg.write_bytes(bytes(range(256)) * 4)
    rc, out = run_cli(["features", "--dataset", NO_DATASET, "--config", str(cfg)])
    assert rc == 2 and f"{cfg}: not a YAML text file" in out, out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_blames_the_device_not_the_checkpoint(tmp_path):
    from fiftyone_genre.modeling import model as M
    from fiftyone_genre.utils import resolve_device

    rc, out = run_cli(["features", "--dataset", NO_DATASET, "--device", "cuda"])
    assert rc == 2 and "--device 'cuda': CUDA is not available" in out and "Traceback" not in out, out
    ckpt = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "experiment": {}, "genres": ["Action"], "visual_dim": 4, "audio_dim": 4}, ckpt)
    rc, out = run_cli(["predict", "--dataset", NO_DATASET, "--model", str(ckpt), "--device", "cuda"])
    assert rc == 2 and "CUDA is not available" in out and "checkpoint" not in out, out
    # the library call predict makes: the device, not the file, is named
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    assert M.read_checkpoint(ckpt, map_location="cuda").genres == ["Action"]  # read on the CPU


def test_unreadable_checkpoint_never_passes_on_torchs_unsafe_advice(tmp_path, dataset):
    from fiftyone_genre.modeling import model as M

    junk = tmp_path / "random.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError) as e:
        M.read_checkpoint(junk)
    msg = str(e.value)
    assert msg.startswith(f"{junk}: not a readable checkpoint") and "corrupt" in msg, msg
    assert "weights_only set to `False`" not in msg and "will likely succeed" not in msg, msg
    rc, out = run_cli(["predict", "--dataset", dataset.name, "--model", str(junk), "--device", "cpu"])
    assert rc == 2 and str(junk) in out and "likely succeed" not in out and "False" not in out, out


def test_missing_model_path_says_it_does_not_exist(tmp_path):
    missing = tmp_path / "no_model_here"
    rc, out = run_cli(["predict", "--dataset", NO_DATASET, "--model", str(missing), "--device", "cpu"])
    assert rc == 2 and f"{missing}: no checkpoint: no such model directory or checkpoint file" in out, out
    assert "no checkpoint (best.pt" not in out


def test_an_unexpected_error_is_one_line_with_exit_1(monkeypatch):
    from fiftyone_genre import config

    def boom(*a, **k):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(config, "load_experiment", boom)
    rc, out = run_cli(["features", "--dataset", NO_DATASET])
    assert rc == 1 and "unexpected error: RuntimeError: something nobody foresaw" in out, out
    assert "Traceback" not in out


def test_the_config_that_hung_a_worker_is_refused_at_load(tmp_path):
    # issue 15 item 1's reproducer: audio_window_s -1 with a background decode worker
    cfg = tmp_path / "hang.yaml"
    cfg.write_text("features:\n  audio_window_s: -1\n  num_workers: 1\n")
    started = time.monotonic()
    rc, out = run_cli(["features", "--dataset", NO_DATASET, "--config", str(cfg)])
    assert rc == 2 and "'audio_window_s': must be in [0.1, 10], got -1.0" in out, out
    assert time.monotonic() - started < 10
