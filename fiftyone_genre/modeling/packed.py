"""Training features packed into two contiguous files per feature config, read window by window.

The per-clip cache (:mod:`fiftyone_genre.features.cache`) is the right shape for
extraction (one atomic file per video) but the wrong one for training: reading
13,000 ``.npz`` files every epoch, or holding every clip's steps in RAM,
makes a run's memory and time grow with the dataset. So training first packs
the cache entries it needs into::

    <cache dir>/<config key>/packed/
        pack.json             the current pack's token (replaced atomically)
        <token>.visual.f32    every clip's visual steps, one after another [sum T, Dv]
        <token>.audio.f32     the same for audio [sum T, Da]
        <token>.index.npz     per clip: path, offset, steps, sizes, the CRC-32 of
                              its rows, and the stat signature of its cache
                              entry and media file

A window is two ``os.pread`` calls into those files (no memory map: mapped
pages would count as the process's resident memory and grow with every clip
an epoch touches). The pack is reused while every clip's cache entry and media
file keep the size/mtime recorded in the index, and rebuilt (under a new
token, then ``pack.json`` swapped in one rename) when any of them changes, so
a reader sees the old pack or the complete new one, never a partial one.

The raw ``.f32`` files carry no check of their own, so the pack does: its
files must have the sizes ``pack.json`` records, and before a pack is reused
every requested clip's rows must match the CRC-32 taken when they were
written. A pack that fails (truncated, overwritten, an unreadable index) is
rebuilt from the cache entries, so training never reads damaged features.
Builds take ``packed/.fiftyone-genre.lock``: a second run waits and reuses
the first one's pack instead of writing another.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiftyone_genre.features.cache import ClipFeatures, FeatureCache, file_identity
from fiftyone_genre.storage import FolderLock, check_free, disk_error
from fiftyone_genre.utils import ProgressFn, atomic_path, shown, track

POINTER = "pack.json"
#: 2: per-clip CRC-32 columns and the total step count (file sizes) in pack.json
PACK_FORMAT_VERSION = 2
#: A second run waits this long for another's build of the same pack before giving up.
BUILD_WAIT_S = 3600.0
#: Pack files of a killed build are removed once this old (a live build
#: writes continuously, so its files are never this stale).
STALE_PACK_S = 3600.0

#: Row status in the index.
OK, MISSING = 0, 1


@dataclass(frozen=True)
class PackedClip:
    """Where one clip's steps sit in a pack; ``read`` returns its ``[start, end)`` steps."""

    store: PackedFeatures
    offset: int
    num_steps: int

    def read(self, start: int = 0, end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        end = self.num_steps if end is None else end
        return self.store.read_rows(self.offset + start, end - start)


@dataclass(frozen=True)
class PackRow:
    """What the pack knows about one clip: missing from the cache, or its steps and sizes."""

    status: int
    offset: int
    num_steps: int
    visual_dim: int
    audio_dim: int


def signature(cache: FeatureCache, filepath: str) -> tuple[int, int, int, str]:
    """``(entry size, mtime_ns, inode, media stat identity)``; any change means the row is stale.

    The cache entry's own stat catches a re-extraction (``put`` renames a new
    file into place, so the inode changes even within one mtime tick); the
    media file's catches an edited video whose old entry the cache would now refuse.
    """
    try:
        st = os.stat(cache.path_for(filepath))
        entry = (int(st.st_size), int(st.st_mtime_ns), int(st.st_ino))
    except OSError:
        entry = (-1, -1, -1)
    try:
        media = file_identity(filepath, "stat")
    except OSError:
        media = ""
    return (*entry, media)


class PackedFeatures:
    """One pack, opened for reading. Build or reuse one with :meth:`for_paths`."""

    def __init__(
        self, folder: Path, token: str, visual_dim: int, audio_dim: int, rows: dict[str, PackRow],
        crcs: dict[str, tuple[int, int]] | None = None,
    ):
        self.folder = folder
        self.token = token
        self.visual_dim = visual_dim
        self.audio_dim = audio_dim
        self.rows = rows
        #: path -> CRC-32 of its visual and audio rows as written
        self.crcs = crcs or {}
        self._fds: dict[str, int] = {}

    # -- reading ----------------------------------------------------------------
    def file(self, kind: str) -> Path:
        return self.folder / f"{self.token}.{kind}"

    def _fd(self, kind: str) -> int:
        """Opened lazily per process (a forked DataLoader worker opens its own)."""
        key = f"{os.getpid()}:{kind}"
        if key not in self._fds:
            self._fds[key] = os.open(self.file(kind), os.O_RDONLY)
        return self._fds[key]

    def read_bytes(self, first: int, count: int) -> tuple[bytes, bytes]:
        """The raw visual and audio bytes of ``count`` steps from step ``first``."""
        out = []
        for kind, dim in (("visual.f32", self.visual_dim), ("audio.f32", self.audio_dim)):
            nbytes = count * dim * 4
            buf = os.pread(self._fd(kind), nbytes, first * dim * 4)
            if len(buf) != nbytes:
                raise OSError(f"{self.file(kind)}: truncated pack (wanted {nbytes} bytes, got {len(buf)})")
            out.append(buf)
        return out[0], out[1]

    def read_rows(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` consecutive steps from step ``first``: ``(visual [n, Dv], audio [n, Da])``."""
        visual, audio = self.read_bytes(first, count)
        return (
            np.frombuffer(visual, dtype=np.float32).reshape(count, self.visual_dim),
            np.frombuffer(audio, dtype=np.float32).reshape(count, self.audio_dim),
        )

    def intact(self, path: str) -> bool:
        """Whether a stored clip's rows still match the CRC-32 taken when they were written."""
        row = self.rows[path]
        try:
            visual, audio = self.read_bytes(row.offset, row.num_steps)
        except OSError:
            return False
        return (zlib.crc32(visual), zlib.crc32(audio)) == self.crcs.get(path)

    def verify(self, paths: list[str], progress: ProgressFn | None = None) -> list[str]:
        """The clips among ``paths`` whose rows no longer match their CRC-32 (damaged on disk)."""
        bad = []
        for path in track(paths, desc="checking packed features", progress=progress):
            row = self.rows.get(path)
            if row is not None and row.status == OK and row.offset >= 0 and not self.intact(path):
                bad.append(path)
        return bad

    def clip(self, filepath: str) -> PackedClip | None:
        row = self.rows.get(filepath)
        if row is None or row.status != OK or row.offset < 0:
            return None
        return PackedClip(self, row.offset, row.num_steps)

    def close(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fds"] = {}
        return state

    def __del__(self) -> None:
        self.close()

    # -- building ---------------------------------------------------------------
    @classmethod
    def for_paths(
        cls, cache: FeatureCache, paths: list[str], progress: ProgressFn | None = None
    ) -> PackedFeatures:
        """The current pack if it covers ``paths`` unchanged and passes its checks, else a freshly built one."""
        folder = cache.dir / "packed"
        # without the lock first: a read-only shared cache with a good pack needs no lock file
        store, current, sigs = _reusable(cache, folder, paths, progress, say=False)
        if store is not None:
            return store
        folder.mkdir(parents=True, exist_ok=True)
        with FolderLock(folder, "packing features in", wait_s=BUILD_WAIT_S):
            store, current, sigs = _reusable(cache, folder, paths, progress)  # another run may have just built it
            if store is not None:
                return store
            return _build(cache, folder, paths, sigs, current, progress)


def _reusable(cache: FeatureCache, folder: Path, paths: list[str], progress, say: bool = True) -> tuple:
    """``(store, current, signatures)``: the current pack when it serves ``paths`` as it is.

    ``current`` is what a rebuild may carry rows over from: None when the
    pack is missing or damaged (a damaged pack lends nothing to the next
    one). With ``say``, a damaged pack is reported in one line.
    """
    sigs = {p: signature(cache, p) for p in paths}
    current = open_pack(folder, say=say)
    if current is None:
        return None, None, sigs
    if any(current[1].get(p) != sigs[p] for p in paths):
        return None, current, sigs
    bad = current[0].verify(paths, progress)
    if bad:
        if say:
            _say_damaged(folder, f"{len(bad)} clip(s) failed their checksum, e.g. {shown(bad[0])}")
        current[0].close()
        return None, None, sigs
    return current[0], current, sigs


def _say_damaged(folder: Path, why: str) -> None:
    print(f"packed feature store {shown(folder)} is damaged ({why}); rebuilding it from the feature cache", flush=True)


def _pointer_token(folder: Path) -> str | None:
    """The token ``pack.json`` names, even when that pack cannot be opened (so a rebuild removes it)."""
    try:
        token = json.loads((folder / POINTER).read_text()).get("token")
    except (OSError, ValueError, AttributeError):
        return None
    return token if isinstance(token, str) and token and "/" not in token else None


def open_pack(folder: Path, attempts: int = 3, say: bool = True) -> tuple[PackedFeatures, dict[str, tuple]] | None:
    """The pack ``pack.json`` names and each row's signature; None if there is none (or it is unreadable)."""
    for _ in range(attempts):
        try:
            meta = json.loads((folder / POINTER).read_text())
            if meta.get("version") != PACK_FORMAT_VERSION:
                return None
            return _load_index(folder, meta)
        except FileNotFoundError:
            if not (folder / POINTER).exists():
                return None
            continue  # a concurrent build swapped the pack between our two reads: read the new one
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as e:
            if say:
                _say_damaged(folder, str(e) or type(e).__name__)
            return None
    return None


def _load_index(folder: Path, meta: dict) -> tuple[PackedFeatures, dict[str, tuple]]:
    token = meta["token"]
    with np.load(folder / f"{token}.index.npz", allow_pickle=False) as z:
        cols = {k: z[k] for k in z.files}
    rows, sigs, crcs = {}, {}, {}
    for i, path in enumerate(cols["paths"].tolist()):
        rows[path] = PackRow(
            int(cols["status"][i]), int(cols["offset"][i]), int(cols["steps"][i]),
            int(cols["vdim"][i]), int(cols["adim"][i]),
        )
        sigs[path] = (
            int(cols["entry_size"][i]), int(cols["entry_mtime"][i]), int(cols["entry_ino"][i]), str(cols["media"][i])
        )
        crcs[path] = (int(cols["vcrc"][i]), int(cols["acrc"][i]))
    store = PackedFeatures(folder, token, int(meta["visual_dim"]), int(meta["audio_dim"]), rows, crcs)
    for kind, dim in (("visual.f32", store.visual_dim), ("audio.f32", store.audio_dim)):
        size, want = store.file(kind).stat().st_size, int(meta["total_steps"]) * dim * 4
        if size != want:  # truncated or grown: caught here, before a window is read
            raise ValueError(f"{store.file(kind).name} has {size} bytes, the index says {want}")
    return store, sigs


def new_pack_token() -> str:
    """A pack name no other build (another process, an earlier second) can have."""
    return f"{int(time.time())}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class PackWriter:
    """Appends clips to a new pack's two data files and collects its index columns."""

    def __init__(self, folder: Path, token: str):
        self.folder, self.token = folder, token
        self.visual = open(folder / f"{token}.visual.f32", "wb")
        self.audio = open(folder / f"{token}.audio.f32", "wb")
        self.dims: tuple[int, int] | None = None
        self.steps_written = 0
        self.cols: dict[str, list] = {k: [] for k in (
            "paths", "status", "offset", "steps", "vdim", "adim", "vcrc", "acrc",
            "entry_size", "entry_mtime", "entry_ino", "media")}

    def add(self, path: str, sig: tuple, visual: np.ndarray | None, audio: np.ndarray | None) -> None:
        status, offset, steps, vdim, adim, vcrc, acrc = MISSING, -1, 0, 0, 0, 0, 0
        if visual is not None and audio is not None:
            status, steps, vdim, adim = OK, len(visual), visual.shape[1], audio.shape[1]
            self.dims = self.dims or (vdim, adim)
            if (vdim, adim) == self.dims and steps:
                offset = self.steps_written
                vbytes = np.ascontiguousarray(visual, dtype=np.float32).tobytes()
                abytes = np.ascontiguousarray(audio, dtype=np.float32).tobytes()
                self.visual.write(vbytes)
                self.audio.write(abytes)
                vcrc, acrc = zlib.crc32(vbytes), zlib.crc32(abytes)
                self.steps_written += steps
        for key, value in zip(self.cols, (path, status, offset, steps, vdim, adim, vcrc, acrc, *sig)):
            self.cols[key].append(value)

    def finish(self) -> PackedFeatures:
        for f in (self.visual, self.audio):
            f.flush()
            os.fsync(f.fileno())
            f.close()
        dims = self.dims or (0, 0)
        index = self.folder / f"{self.token}.index.npz"
        with atomic_path(index) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in self.cols.items()})
        meta = {"version": PACK_FORMAT_VERSION, "token": self.token, "visual_dim": dims[0], "audio_dim": dims[1],
                "total_steps": self.steps_written}
        with atomic_path(self.folder / POINTER) as tmp:
            tmp.write_text(json.dumps(meta))
        return _load_index(self.folder, meta)[0]

    def abort(self) -> None:
        for f in (self.visual, self.audio):
            f.close()
        remove_pack(self.folder, self.token)


def _cache_rows(cache: FeatureCache, paths: list[str], sigs: dict, progress) -> Iterator[tuple]:
    """``(path, signature, visual, audio)`` read from the per-clip cache (None, None on a miss)."""
    for path in track(paths, desc="packing features", progress=progress):
        feats: ClipFeatures | None = cache.get(path)  # signature was taken first: a later change reads as stale
        if feats is None:
            yield path, sigs[path], None, None
        else:
            yield path, sigs[path], feats.visual, feats.audio


def _build(cache, folder: Path, paths: list[str], sigs: dict, current, progress) -> PackedFeatures:
    """Write a new pack: the requested clips from the cache, plus the old pack's still-valid clips.

    The old pack goes once the new one is in place, also when it could not
    be opened (``pack.json`` still names it). A full disk stops the build
    with the sentence naming this folder; the partial files are removed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    old_token = current[0].token if current else _pointer_token(folder)
    sweep_stale_packs(folder, keep={old_token})
    need = sum(max(0, sigs[p][0]) for p in paths)  # about an entry's size per clip
    check_free(folder, need, "packed feature store", f" to pack {len(paths)} clip(s)")
    writer = PackWriter(folder, new_pack_token())
    try:
        for row in _cache_rows(cache, paths, sigs, progress):
            writer.add(*row)
        if current is not None:
            _carry_valid_rows(writer, cache, current, set(paths))
        store = writer.finish()
    except BaseException as e:
        writer.abort()
        problem = disk_error(e, folder, "packed feature store", need) if isinstance(e, OSError) else None
        if problem is not None:
            raise problem from None
        raise
    if current is not None:
        current[0].close()
    if old_token:
        remove_pack(folder, old_token)
    return store


def _carry_valid_rows(writer: PackWriter, cache: FeatureCache, current, requested: set[str]) -> None:
    """Keep the old pack's clips that are still valid, so training a subset does not shrink the pack."""
    old, old_sigs = current
    for path, row in old.rows.items():
        if path in requested or row.status != OK or row.offset < 0:
            continue
        sig = signature(cache, path)
        same_dims = (row.visual_dim, row.audio_dim) == (writer.dims or (row.visual_dim, row.audio_dim))
        if sig == old_sigs[path] and same_dims and old.intact(path):  # a damaged row is not carried
            visual, audio = old.read_rows(row.offset, row.num_steps)
            writer.add(path, sig, visual, audio)


def remove_pack(folder: Path, token: str) -> None:
    for kind in ("visual.f32", "audio.f32", "index.npz"):
        try:
            (folder / f"{token}.{kind}").unlink()
        except FileNotFoundError:
            pass


def sweep_stale_packs(folder: Path, keep: set, older_than_s: float = STALE_PACK_S) -> None:
    """Remove pack files a killed build left behind (never the current pack, never a fresh file)."""
    cutoff = time.time() - older_than_s
    for path in folder.glob("*.*.f32"):
        token = path.name.split(".")[0]
        try:
            if token not in keep and path.stat().st_mtime < cutoff:
                remove_pack(folder, token)
        except FileNotFoundError:
            continue
