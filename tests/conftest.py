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
    import tempfile

    from fiftyone_genre import database  # does not import fiftyone (not configured yet)

    if os.environ.get("FIFTYONE_DATABASE_URI") or os.environ.get("FIFTYONE_GENRE_TEST_SHARED_DB"):
        return
    dbpath = tempfile.mkdtemp(prefix="fiftyone-genre-test-db-")
    try:
        proc, uri = database.start_private_mongod(dbpath)
    except database.MongodError:
        return  # could not start: fall back to FiftyOne's own service
    atexit.register(database.stop_private_mongod, proc, dbpath)
    os.environ["FIFTYONE_DATABASE_URI"] = uri
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


@pytest.fixture(scope="module")
def dataset_names(request):
    """Unique persistent dataset names for a module (subprocesses must see them); all deleted after.

    ``make(tag)`` -> ``test-<module>-<tag>-<8 hex>``.
    """
    import fiftyone as fo

    prefix = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    made: list[str] = []

    def make(tag: str) -> str:
        made.append(f"{prefix}-{tag}-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    for name in made:
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
