"""YouTube-8M features, written once by the import into one pack per feature space.

YouTube-8M distributes features, not videos. The import streams every
record's features into the same packed store training reads
(:mod:`fiftyone_genre.modeling.packed`): one pack per space, rows keyed
``yt8m:<id>``::

    <store root>/yt8m-video/packed/   one step per record (mean_rgb | mean_audio)
    <store root>/yt8m-frame/packed/   one step per second (dequantised rgb | audio)

The store root is the import's ``features_dir`` (default: the feature cache
folder, ``<fiftyone dataset dir>/genre_features``) and is recorded in
``dataset.info["yt8m_features"]``. Nothing goes into MongoDB and there is no
file per record. A record's features do not depend on the dataset it was
imported into, so datasets share the packs, and an import that finds a key
already stored leaves it as it is: re-importing writes nothing.

An append writes a new pack (the stored rows, then the new ones) and swaps
``pack.json`` in one rename, as a rebuild does, so a reader sees the old pack
or the whole new one. These packs are never rebuilt from the per-clip cache
(:meth:`PackedFeatures.for_paths` is not used on them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fiftyone_genre import genres as g
from fiftyone_genre.features.cache import ClipFeatures, default_cache_dir
from fiftyone_genre.features.spaces import YT8M_FRAME, level_name
from fiftyone_genre.modeling.packed import (
    OK,
    PackedFeatures,
    PackWriter,
    new_pack_token,
    open_pack,
    remove_pack,
    sweep_stale_packs,
)
from fiftyone_genre.utils import track

#: The signature column of an imported row: not a cache entry, not a media file.
NO_SIGNATURE: tuple[int, int, int, str] = (-1, -1, -1, "yt8m-import")


def pack_folder(root: str | Path, space: str) -> Path:
    return Path(root) / space / "packed"


def store_root(collection) -> Path:
    """Where this dataset's YouTube-8M packs are: recorded by the import, else the default."""
    recorded = (collection._root_dataset.info or {}).get(g.YT8M_FEATURES_INFO_KEY)
    return Path(recorded) if recorded else default_cache_dir()


def open_store(root: str | Path, space: str) -> PackedFeatures | None:
    """The current pack of ``space`` under ``root``, or None when nothing was imported there."""
    current = open_pack(pack_folder(root, space))
    return current[0] if current is not None else None


def require_store(collection, space: str) -> PackedFeatures:
    """The pack a run in ``space`` reads; one clear error when the import never wrote it."""
    root = store_root(collection)
    store = open_store(root, space)
    if store is None:
        level = level_name(space)
        raise ValueError(
            f"dataset '{collection._root_dataset.name}' has no YouTube-8M {level} features (looked in "
            f"{root}); import its {level} shards with `fiftyone-genre import yt8m`, or train with "
            "the features its records have"
        )
    return store


def check_store(store: PackedFeatures, keys: list[str], space: str, progress=None) -> None:
    """Refuse, in one sentence, a pack whose rows for ``keys`` fail their checksum (never train on them)."""
    bad = store.verify(keys, progress)
    if bad:
        raise ValueError(
            f"{len(bad)} YouTube-8M {level_name(space)} record(s) in {store.folder} failed their checksum "
            f"(e.g. {bad[0]}): the pack is damaged on disk; import the same shards again with "
            "`fiftyone-genre import yt8m` to rewrite those records, then run again"
        )


def clip_features(store: PackedFeatures, key: str | None, space: str) -> ClipFeatures | None:
    """A stored record's steps as :class:`ClipFeatures` (step ``t`` = second ``t`` at frame level)."""
    clip = store.clip(key) if key else None
    if clip is None:
        return None
    visual, audio = clip.read()
    steps = len(visual)
    return ClipFeatures(
        visual=visual,
        audio=audio,
        timestamps=np.arange(steps, dtype=np.float64),
        has_audio=True,  # every record carries audio features (VGGish of silence is still a vector)
        duration=float(steps) if space == YT8M_FRAME else 0.0,
    )


class _Appender:
    """One space's pack during an import: the keys it holds, and a new pack once a key is new."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.current = open_pack(folder)
        rows = self.current[0].rows if self.current is not None else {}
        held = [k for k, r in rows.items() if r.status == OK and r.offset >= 0]
        #: rows that fail their checksum: not kept, written again when their record is imported
        self.damaged = set(self.current[0].verify(held)) if held else set()
        self.stored = set(held) - self.damaged
        self.writer: PackWriter | None = None
        self.added = 0

    def add(self, key: str, visual: np.ndarray, audio: np.ndarray) -> bool:
        if key in self.stored:
            return False
        if self.writer is None:
            self._start()
        self.writer.add(key, NO_SIGNATURE, visual, audio)  # type: ignore[union-attr]
        self.stored.add(key)
        self.added += 1
        return True

    def _start(self) -> None:
        """A new pack that begins with every row already stored (so nothing stored is lost)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        old = self.current[0] if self.current is not None else None
        sweep_stale_packs(self.folder, keep={old.token} if old else set())
        self.writer = PackWriter(self.folder, new_pack_token())
        if old is None:
            return
        kept = [(k, r) for k, r in old.rows.items() if k in self.stored]
        for key, row in track(kept, desc="copy stored YouTube-8M features"):
            self.writer.add(key, NO_SIGNATURE, *old.read_rows(row.offset, row.num_steps))

    def finish(self) -> None:
        if self.writer is None:
            return
        self.writer.finish()
        if self.current is not None:
            self.current[0].close()
            remove_pack(self.folder, self.current[0].token)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


class StoreWriter:
    """Appends one import's new records to each space's pack; stored keys are left as they are.

    >>> with StoreWriter(root) as store:
    ...     store.add("yt8m-video", "yt8m:abcd", mean_rgb[None], mean_audio[None])
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._packs: dict[str, _Appender] = {}

    def _pack(self, space: str) -> _Appender:
        if space not in self._packs:
            self._packs[space] = _Appender(pack_folder(self.root, space))
        return self._packs[space]

    def has(self, space: str, key: str) -> bool:
        return key in self._pack(space).stored

    def add(self, space: str, key: str, visual: np.ndarray, audio: np.ndarray) -> bool:
        """Write one record's steps unless the key is stored already; True when written."""
        return self._pack(space).add(key, visual, audio)

    @property
    def added(self) -> dict[str, int]:
        return {space: p.added for space, p in self._packs.items() if p.added}

    def finish(self) -> None:
        for pack in self._packs.values():
            pack.finish()

    def abort(self) -> None:
        for pack in self._packs.values():
            pack.abort()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, *args) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
