"""Test isolation: our own FiftyOne database and plugins dir, never the user's.

The environment is set before fiftyone is imported anywhere, so even a test
run started without `make test` cannot touch the user's datasets.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ["FIFTYONE_DATABASE_NAME"] = os.environ.get("FIFTYONE_GENRE_TEST_DB", "fiftyone-genre-test")
os.environ.setdefault("FIFTYONE_PLUGINS_DIR", str(REPO / ".plugins"))
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
os.environ.setdefault("OMP_NUM_THREADS", "2")

if os.environ["FIFTYONE_DATABASE_NAME"] in ("fiftyone", ""):
    raise RuntimeError("refusing to run tests against the default FiftyOne database")


def _start_private_mongod() -> None:
    """Run the test session on its own mongod (temp dir, free loopback port).

    FiftyOne's shared database service is started and stopped by whichever
    process comes first; subprocesses (CLI runs, torchrun, the App server)
    racing it can fail to bind. One mongod owned by this session, inherited by
    every subprocess through FIFTYONE_DATABASE_URI, removes the race and keeps
    the user's database untouched. Set FIFTYONE_GENRE_TEST_SHARED_DB=1 to skip.
    """
    import atexit
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    if os.environ.get("FIFTYONE_DATABASE_URI") or os.environ.get("FIFTYONE_GENRE_TEST_SHARED_DB"):
        return
    import importlib.util

    spec = importlib.util.find_spec("fiftyone")  # locate without importing (config not read yet)
    if spec is None or not spec.submodule_search_locations:
        return
    mongod = os.path.join(list(spec.submodule_search_locations)[0], "db", "bin", "mongod")
    if not os.access(mongod, os.X_OK):
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dbpath = tempfile.mkdtemp(prefix="fiftyone-genre-test-db-")
    proc = subprocess.Popen(
        [mongod, "--dbpath", dbpath, "--port", str(port), "--bind_ip", "127.0.0.1", "--nounixsocket"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(dbpath, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return  # could not start: fall back to FiftyOne's own service
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    os.environ["FIFTYONE_DATABASE_URI"] = f"mongodb://127.0.0.1:{port}"
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")


_start_private_mongod()


@pytest.fixture
def dataset_name(request) -> str:
    """A unique dataset name; the dataset is deleted after the test."""
    name = f"test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
    yield name
    import fiftyone as fo

    if fo.dataset_exists(name):
        fo.delete_dataset(name)


@pytest.fixture
def dataset(dataset_name):
    """An empty, non-persistent video dataset with a unique name."""
    import fiftyone as fo

    return fo.Dataset(dataset_name)


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    """Artifacts a person may want to look at after a run (screenshots, plots)."""
    d = REPO / "test_output"
    d.mkdir(exist_ok=True)
    return d
