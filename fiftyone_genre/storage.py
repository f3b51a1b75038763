"""Where runs write: space and writability checked before work starts, and one writer per folder.

A full disk or an unwritable folder is the folder's problem, never a
sample's: :func:`check_folder` refuses a run before it decodes a video or
builds a model (``os.access`` is not enough: it says yes to root for
``/proc``, so a real file is created and removed), and :func:`disk_error`
turns an ``ENOSPC`` met later into one sentence that names the folder, the
free space and the space needed. The App calls :func:`check_folder` before
it schedules a run.

:class:`FolderLock` keeps a second run out of a folder another run is
writing (a model folder): an ``flock`` on ``<folder>/.fiftyone-genre.lock``,
which the kernel drops when its holder dies, so a killed run's lock is
taken over by the next one; the file names the holder for the refusal.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from fiftyone_genre.utils import shown

LOCK_NAME = ".fiftyone-genre.lock"

#: Errors that are the disk's fault wherever they come from.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
#: Errors that are the folder's fault when they name a path inside it.
FOLDER_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EROFS})


class StorageError(OSError):
    """A folder cannot take what a run writes; the message names it, the free and the needed space.

    Built from the sentence alone (``str()`` has no ``[Errno N]`` prefix);
    still an ``OSError``, so callers that handle disk trouble catch it.
    """

    def __init__(self, message: str, folder: str | Path, free: int | None = None, needed: int | None = None):
        super().__init__(message)
        self.folder, self.free, self.needed = Path(folder), free, needed


class LockHeld(RuntimeError):
    """Another live run is writing the folder (or dataset); the message names that run."""


def human_bytes(n: float | None) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units, as ``df -H`` prints them)."""
    if n is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop always returns


def free_bytes(folder: str | Path) -> int | None:
    """Free space for an unprivileged writer on the filesystem holding ``folder`` (or its nearest parent)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return int(shutil.disk_usage(path).free)
    except OSError:
        return None


def check_writable(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and prove it takes a file; raises :class:`StorageError`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".fiftyone-genre-probe-{uuid.uuid4().hex[:12]}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as e:
        raise StorageError(
            f"{what} {shown(folder)} is not writable ({e.strerror or e}); choose another folder", folder
        ) from None
    return folder


def check_free(folder: str | Path, needed: int, what: str, detail: str = "") -> None:
    """Raise :class:`StorageError` when less than ``needed`` bytes are free where ``folder`` is."""
    free = free_bytes(folder)
    if free is not None and free < needed:
        raise StorageError(
            f"{what} {shown(folder)}: {human_bytes(free)} free, about {human_bytes(needed)} needed{detail}; "
            "free some space or choose another folder",
            folder, free, needed,
        )


def check_folder(folder: str | Path, what: str, needed: int = 0) -> Path:
    """Writable and (when ``needed``) roomy enough: the check a run, or the App, makes before starting."""
    folder = check_writable(folder, what)
    if needed:
        check_free(folder, needed, what)
    return folder


def _inside(path: object, folder: Path) -> bool:
    if not path:
        return False
    try:
        return Path(os.fsdecode(path)).absolute().is_relative_to(folder.absolute())
    except (TypeError, ValueError):
        return False


def disk_error(error: BaseException, folder: str | Path, what: str, needed: int | None = None) -> StorageError | None:
    """The run-stopping sentence for an error that is the folder's fault; None when it is not.

    An ``OSError`` counts by its errno (a full disk anywhere; permission or
    a vanished path only inside ``folder``). Other errors (``torch.save``
    reports a full disk as ``RuntimeError: ... unexpected pos``, without an
    errno) count when less than ``needed`` bytes are free.
    """
    folder = Path(folder)
    free = free_bytes(folder)
    more = f", about {human_bytes(needed)} needed" if needed else ""
    if isinstance(error, OSError) and error.errno is not None:
        disk = error.errno in DISK_ERRNOS
        if not disk and not (error.errno in FOLDER_ERRNOS and (_inside(error.filename, folder) or _inside(error.filename2, folder))):
            return None
        reason = (error.strerror or os.strerror(error.errno)).lower()
    elif needed and free is not None and free < needed:
        reason = "no space left on device"
    else:
        return None
    return StorageError(
        f"{what} {shown(folder)}: {reason} ({human_bytes(free)} free{more}); "
        "free some space or choose another folder",
        folder, free, needed,
    )


def cache_entry_bytes(steps: int, visual_dim: int, audio_dim: int) -> int:
    """One feature-cache entry on disk: float32 features, float64 times and ~2 KB of zip headers."""
    return int(steps) * (int(visual_dim) + int(audio_dim)) * 4 + int(steps) * 8 + 2048


def checkpoint_bytes(num_params: int, with_optimizer: bool) -> int:
    """A checkpoint file: 4 B per parameter, 12 with AdamW's two moments; +10 % and 64 KB of framing.

    Measured on the tiny test model: 61,400 tensor bytes -> 69,957 B file;
    166,848 -> 187,713 B.
    """
    return int(num_params * (12 if with_optimizer else 4) * 1.1) + 65536


# --- one writer per folder ------------------------------------------------------------
def pid_alive(pid: int, started: float | None = None) -> bool:
    """Whether ``pid`` still runs on this machine (and, given ``started``, is the same process)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OSError, ValueError, OverflowError):
        return False
    if started is not None:
        import psutil

        try:
            return abs(psutil.Process(int(pid)).create_time() - float(started)) < 1.0  # else: the PID was reused
        except psutil.Error:
            return False
    return True


def holder_record(doing: str) -> dict:
    """Who is writing: this process, its host and command line, for another run's refusal."""
    import psutil

    program = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    program = "fiftyone-genre" if "fiftyone_genre" in program else Path(program).name  # python -m fiftyone_genre.cli
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": psutil.Process().create_time(),
        "command": " ".join([program, *sys.argv[1:]]),
        "doing": doing,
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "token": uuid.uuid4().hex,
    }


def describe_holder(holder: dict | None) -> str:
    """``process 123 on host ('fiftyone-genre train ...', since ...)``."""
    if not holder or not holder.get("pid"):
        return "another process"
    return (
        f"process {holder.get('pid')} on {holder.get('host')} "
        f"({holder.get('command')!r}, since {holder.get('since')})"
    )


def _read_holder(fd: int) -> dict:
    try:
        data = os.pread(fd, 65536, 0)
        value = json.loads(data.decode() or "{}")
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


class FolderLock:
    """One writer per folder: ``with FolderLock(folder, "training into"):``.

    ``flock`` (not ``fcntl``/POSIX locks): two opens in *one* process conflict
    too, so two runs in threads of the App server exclude each other. The
    kernel releases the lock when its holder dies; the file stays, and
    :attr:`took_over` then holds what the dead run wrote into it. A clean
    release removes the file (while still holding it; a run that opened it
    meanwhile sees its lock is on a removed file and takes a fresh one).
    """

    def __init__(self, folder: str | Path, doing: str, wait_s: float = 0.0):
        self.folder, self.doing, self.wait_s = Path(folder), doing, wait_s
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self.took_over: dict | None = None

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_s
        while (fd := self._try_lock()) is None:
            if time.monotonic() >= deadline:
                holder = self._holder()
                raise LockHeld(
                    f"{shown(self.folder)}: {describe_holder(holder)} is {holder.get('doing') or 'writing'} it; "
                    "wait for it to finish or stop it, or choose another folder"
                )
            time.sleep(0.2)
        old = _read_holder(fd)
        self.took_over = old if old.get("pid") else None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder_record(self.doing)).encode(), 0)
        self.fd = fd
        return self

    def _try_lock(self) -> int | None:
        """The locked file's descriptor, or None while another process holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)  # its holder released (removed) it meanwhile: lock the new file

    def _holder(self) -> dict:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return {}
        try:
            return _read_holder(fd)
        finally:
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.path)  # while holding: nobody can lock this file after we close it
            except OSError:
                pass
            os.close(self.fd)  # drops the flock
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_own_folder(folder: str | Path, ours: Iterable[str], what: str = "--out") -> None:
    """Refuse a folder that holds files we did not write (a user's folder, ``/``, the home folder).

    ``ours`` are names (files or folders) a run writes there; hidden names and
    our temp files (``*.tmp``) are ignored. A missing or empty folder is fine.
    """
    folder = Path(folder).expanduser()
    resolved = folder.resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise ValueError(f"{what} {shown(folder)}: refusing to write into {resolved}; choose a new or empty folder")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ValueError(f"{what} {shown(folder)}: exists and is not a folder; choose a new or empty folder")
    allowed = set(ours) | {LOCK_NAME}
    try:
        foreign = sorted(
            p.name for p in folder.iterdir()
            if p.name not in allowed and not p.name.startswith(".") and not p.name.endswith(".tmp")
        )
    except OSError as e:
        raise StorageError(f"{what} {shown(folder)} cannot be read ({e.strerror or e})", folder) from None
    if foreign:
        listed = ", ".join(shown(n) for n in foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ValueError(
            f"{what} {shown(folder)}: not empty and not a fiftyone-genre model folder (found {listed}); "
            "choose a new or empty folder"
        )
