"""The on-disk feature cache: one atomic ``.npz`` file per video and feature config.

Training and prediction read features from here, so a video is decoded and run
through the CNN once. An entry is valid only for the exact file it came from
(path + size + mtime, or a content hash) and the exact feature settings; a
killed writer leaves at most a ``*.tmp`` file that is never read as an entry.
A run claims an entry (:meth:`FeatureCache.claim`) while it extracts it, so
two runs on one cache split the work instead of both doing all of it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiftyone_genre.config import FeaturesConfig, to_dict
from fiftyone_genre.schema import declared
from fiftyone_genre.utils import atomic_path

#: FeaturesConfig keys that change the numbers in a cache entry (declared
#: with ``in_cache_key=True`` in :mod:`fiftyone_genre.config`).
FEATURE_KEY_FIELDS: tuple[str, ...] = tuple(d.name for d in declared(FeaturesConfig) if d.spec.in_cache_key)

CACHE_FORMAT_VERSION = 1
#: A temp file untouched this long belongs to a killed run (a live writer
#: finishes an entry in seconds), so a new run may delete it.
STALE_TEMP_S = 3600.0


@dataclass
class ClipFeatures:
    """Per-step features of one video; step ``t`` of both modalities is one moment."""

    visual: np.ndarray  # [T, Dv] float32
    audio: np.ndarray  # [T, Da] float32, zeros when the video has no audio track
    timestamps: np.ndarray  # [T] float64, presentation time (s) of each sampled frame
    has_audio: bool
    duration: float = 0.0  # seconds of the video as decoded

    @property
    def num_steps(self) -> int:
        return int(self.visual.shape[0])

    def validate(self) -> None:
        t = self.visual.shape[0]
        if self.visual.ndim != 2 or self.audio.ndim != 2:
            raise ValueError("visual and audio must be 2-D [T, D] arrays")
        if self.audio.shape[0] != t or self.timestamps.shape != (t,):
            raise ValueError(
                f"step counts differ: visual {self.visual.shape}, audio {self.audio.shape}, "
                f"timestamps {self.timestamps.shape}"
            )


def _file_weights_identity(spec: str | None) -> str | None:
    """A weights/checkpoint path enters the key with its size and mtime."""
    if spec and spec not in ("DEFAULT", "none") and os.path.exists(spec):
        st = os.stat(spec)
        return f"{os.path.abspath(spec)}:{st.st_size}:{st.st_mtime_ns}"
    return spec


def _engine_key(config: FeaturesConfig) -> tuple[str, str]:
    """Engine and precision as they run: ``auto`` resolved for this machine's CPU.

    Extraction on another device records its resolved values in the config
    (``features.extract_features``), so readers of that cache get the same key.
    """
    from fiftyone_genre.features.engine import resolve_engine

    try:
        choice = resolve_engine(config.engine, config.precision, "cpu")
    except ValueError:  # fp16: CUDA-only, nothing to resolve
        return config.engine, config.precision
    return choice.engine, choice.precision


def config_key(config: FeaturesConfig) -> str:
    """A short hash of the settings that change the features."""
    # imported here: media imports torch, which a cache reader may not need
    from fiftyone_genre.features.decode import PREPROCESSING_VERSION

    values = {k: to_dict(config)[k] for k in FEATURE_KEY_FIELDS}
    for k in ("weights", "softmax_checkpoint", "audio_weights"):
        values[k] = _file_weights_identity(values[k])
    values["engine"], values["precision"] = _engine_key(config)
    values["version"] = CACHE_FORMAT_VERSION
    values["preprocessing"] = PREPROCESSING_VERSION
    blob = json.dumps(values, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_identity(filepath: str | Path, how: str = "stat") -> str:
    """Identity of a media file: path+size+mtime ("stat") or sha256 of content ("hash")."""
    path = Path(filepath)
    st = path.stat()
    if how == "hash":
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return f"sha256:{h.hexdigest()}"
    return f"stat:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def default_cache_dir() -> Path:
    import fiftyone as fo

    return Path(fo.config.default_dataset_dir) / "genre_features"


class FeatureCache:
    """Per-video feature files under ``root/<config key>/``.

    >>> cache = FeatureCache("/data/cache", FeaturesConfig(backbone="mobilenet_v3_small"))
    >>> cache.get("/videos/a.mp4")     # None on a miss or a stale entry
    >>> cache.put("/videos/a.mp4", feats)
    """

    def __init__(self, root: str | Path | None, config: FeaturesConfig):
        self.root = Path(root) if root else default_cache_dir()
        self.config = config
        self.key = config_key(config)
        self.dir = self.root / self.key

    def path_for(self, filepath: str | Path) -> Path:
        digest = hashlib.sha1(str(Path(filepath).resolve()).encode()).hexdigest()
        return self.dir / digest[:2] / f"{digest}.npz"

    def _write_meta(self) -> None:
        meta = self.dir / "config.json"
        if not meta.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(meta, json.dumps(to_dict(self.config), indent=2).encode())

    def get(self, filepath: str | Path) -> ClipFeatures | None:
        """The cached features, or None when missing, stale or unreadable."""
        path = self.path_for(filepath)
        if not path.exists():
            return None
        try:
            identity = file_identity(filepath, self.config.cache_key)
        except OSError:
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["identity"]) != identity:
                    return None
                feats = ClipFeatures(
                    visual=z["visual"].astype(np.float32),
                    audio=z["audio"].astype(np.float32),
                    timestamps=z["timestamps"].astype(np.float64),
                    has_audio=bool(z["has_audio"]),
                    duration=float(z["duration"]),
                )
            feats.validate()
            return feats
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
            return None

    def contains(self, filepath: str | Path) -> bool:
        return self.get(filepath) is not None

    def lookup(self, filepath: str | Path) -> bool | None:
        """Cheap validity check for skip decisions: ``None`` on a miss, else ``has_audio``.

        Reads only the zip directory and the small ``identity`` / ``has_audio``
        members (``np.load`` is lazy per member), so checking a large cache
        before a re-run does not load every feature matrix. A truncated file
        has no zip directory and counts as a miss.
        """
        path = self.path_for(filepath)
        if not path.exists():
            return None
        try:
            identity = file_identity(filepath, self.config.cache_key)
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                if not {"visual.npy", "audio.npy", "timestamps.npy", "identity.npy"} <= names:
                    return None
            with np.load(path, allow_pickle=False) as z:
                if str(z["identity"]) != identity:
                    return None
                return bool(z["has_audio"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
            return None

    def remove_stale_temp_files(self, older_than_s: float = STALE_TEMP_S) -> int:
        """Delete ``*.tmp`` files a killed run left in this config's folder; returns the count.

        Only files untouched for ``older_than_s`` go: a live writer (another
        shard, a concurrent run) finishes an entry in seconds, so its temp
        file is never taken from under it. Claim files of killed runs go too
        (never one that a live run holds).
        """
        if not self.dir.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for tmp in self.dir.glob("*/*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:  # its writer finished or another sweep got it
                continue
        for lock in self.dir.glob("*/*.npz.lock"):
            try:
                if lock.stat().st_mtime < cutoff and (claim := EntryClaim.take(lock.with_suffix(""))) is not None:
                    claim.release()  # unlinks it
            except OSError:
                continue
        return removed

    def claim(self, filepath: str | Path, block: bool = False) -> EntryClaim | None:
        """Claim this video's entry while extracting it; None when another run holds it (``block``: wait)."""
        return EntryClaim.take(self.path_for(filepath), block)

    def put(self, filepath: str | Path, feats: ClipFeatures) -> Path:
        """Write atomically: a temp file in the same folder, then ``os.replace``."""
        feats.validate()
        self._write_meta()
        path = self.path_for(filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        identity = file_identity(filepath, self.config.cache_key)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                visual=feats.visual.astype(np.float32),
                audio=feats.audio.astype(np.float32),
                timestamps=np.asarray(feats.timestamps, dtype=np.float64),
                has_audio=np.bool_(feats.has_audio),
                duration=np.float64(feats.duration),
                identity=np.str_(identity),
            )
        return path


class EntryClaim:
    """An ``flock`` on ``<entry>.lock`` held while one run extracts that entry.

    The kernel drops it when its holder dies, so a killed run's videos are
    free at once. Releasing unlinks the file while still holding it; a run
    that opened the old file meanwhile sees that its lock is on an unlinked
    file and takes a fresh one.
    """

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    @classmethod
    def take(cls, entry: Path, block: bool = False) -> EntryClaim | None:
        path = entry.with_name(entry.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return cls(path, fd)
            except FileNotFoundError:
                pass
            os.close(fd)  # the holder before us released (unlinked) it: claim the new file

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.unlink(self.path)  # while holding: nobody can lock this file after we close it
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = -1


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def cache_for(collection, config: FeaturesConfig | None = None) -> FeatureCache:
    """The cache a dataset's features were extracted into (``dataset.info``).

    With ``config`` given it wins; otherwise the config recorded by the last
    extraction run is used, so training needs no second copy of the settings.
    """
    from fiftyone_genre import genres as g
    from fiftyone_genre.config import from_dict

    info = collection._dataset.info.get(g.FEATURES_INFO_KEY) or {}
    if config is None:
        if not info.get("config"):
            raise ValueError(
                f"dataset '{collection._dataset.name}' has no extracted features; "
                "run `fiftyone-genre features` first"
            )
        config = from_dict(FeaturesConfig, info["config"], "dataset.info.genre_features")
    return FeatureCache(cache_dir_for(collection, config), config)


def cache_dir_for(collection, config: FeaturesConfig) -> Path:
    """Configured folder, else the one this dataset's features went to, else the FiftyOne default."""
    from fiftyone_genre import genres as g

    if config.cache_dir:
        return Path(config.cache_dir).expanduser().resolve()
    info = collection._dataset.info.get(g.FEATURES_INFO_KEY) or {}
    if info.get("cache_dir"):
        return Path(info["cache_dir"])
    return default_cache_dir()
