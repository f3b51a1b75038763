"""Small shared helpers: progress reporting that serves both a terminal and the App."""

from __future__ import annotations

import os
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tqdm.auto import tqdm

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

#: Library progress callbacks take (fraction done in [0, 1], label). Operators
#: pass ``lambda f, label: ctx.set_progress(progress=f, label=label)``.
ProgressFn = Callable[[float, str], None]


def track(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    progress: ProgressFn | None = None,
    every_s: float = 0.5,
) -> Iterator[T]:
    """Iterate with a tqdm bar and, if given, a throttled ``progress`` callback."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    last = 0.0
    with tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True) as bar:
        for i, item in enumerate(bar, start=1):
            yield item
            if progress is not None and total:
                now = time.monotonic()
                if now - last >= every_s or i == total:
                    last = now
                    progress(min(1.0, i / total), f"{desc} {i}/{total}".strip())


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path`` in one rename.

    Whatever writes the temp file (numpy, torch.save, PyAV, ffmpeg), a reader
    sees either the old file or the complete new one, never a partial file;
    a failure or a kill leaves at most a ``*<suffix>`` file that is never read.
    The file is created as any new file is (mode 0666 less the umask, and a
    folder's default ACLs), so a team's shared cache or model folder stays
    readable to the team; ``tempfile.mkstemp`` would make it 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{path.name}.{uuid.uuid4().hex[:8]}{suffix}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Replace a small text file in one rename (a full disk leaves the old file, never half a new one)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


#: Demuxers that read still images or text: a PNG renamed ``.mp4`` opens with
#: ``png_pipe`` and "decodes" one frame, but it is not a video.
IMAGE_DEMUXERS = frozenset({"image2", "apng", "gif", "tty", "ico", "alias_pix", "brender_pix"})


def not_a_video(container) -> str | None:
    """Why an opened PyAV container is still not a video (None when it is one).

    Shared by the import probe and the decoder, so a file the import flags is
    refused by feature extraction too instead of yielding one "frame".
    """
    names = set(container.format.name.split(","))
    if names & IMAGE_DEMUXERS or any(n.endswith("_pipe") for n in names):
        what = container.format.long_name or container.format.name
        return f"not a video (the content is {what})"
    return None


#: What ``os.stat`` says a path is, for files that are not regular files.
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_file(st: os.stat_result) -> str | None:
    """Why a path with this ``stat`` cannot be a video file (None for a regular file).

    A FIFO or a device reports size 0 (it is not "a zero-byte file"), and
    opening a FIFO blocks until something writes to it: checked before any
    open.
    """
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a video file"
    kind = next((name for test, name in _SPECIAL_KINDS if test(st.st_mode)), "a special file")
    return f"not a regular file ({kind}), not a video file"


def shown(path: object) -> str:
    """A file name as it may be printed in logs and reports.

    A name is data from the outside world: one holding a newline or another
    control character could print a forged line (``FAILED ...``) or move the
    cursor. Printable names (any script) pass unchanged; others are shown as
    a Python string literal, with every control character escaped.
    """
    text = str(path)
    return text if text.isprintable() else repr(text)


#: Device types a user may name; anything else is a typo (``tpu``) and refused up front.
DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(spec: str | None, what: str = "device") -> str:
    """Validate a device spec before any model is loaded; returns the spec resolved.

    ``auto`` (or None) picks cuda when available, else cpu. ``cuda``/``cuda:N``
    and ``mps`` must exist on this machine: otherwise torch would fail later,
    deep inside model loading, and blame the wrong thing (the checkpoint).
    Raises ``ValueError`` with one sentence naming ``what`` and the allowed values.
    """
    import torch

    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = text.partition(":")
    if kind not in DEVICE_TYPES or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise ValueError(f"{what} {spec!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {spec!r}: CUDA is not available on this machine; use cpu or auto")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(
                f"{what} {spec!r}: this machine has {torch.cuda.device_count()} CUDA device(s) (0-based)"
            )
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"{what} {spec!r}: MPS is not available on this machine; use cpu or auto")
    return text

def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; otherwise the named device, checked.

    A device that does not exist here (``cuda`` without CUDA, ``tpu``) raises
    ``ValueError`` naming it (:func:`check_device`).
    """
    import torch

    if isinstance(spec, torch.device):
        return torch.device(check_device(str(spec)))
    return torch.device(check_device(spec))
