"""Hand relabelling with an audit trail: fix single clips, and undo.

:func:`relabel` sets the genre of the given samples, tags them
``genre:relabeled`` (so a later remap keeps them) and appends who, when and
the previous label to ``genre_history``; :func:`undo_relabel` restores the
previous label of each.
"""

from __future__ import annotations

import getpass
from typing import Any

from fiftyone_genre import genres as g
from fiftyone_genre.database import dataset_writer
from fiftyone_genre.labels.remap import (
    GenreWrites,
    candidates,
    genre_label,
    now_iso,
    read_rows,
    write_genres,
)


def _username(user: str | None) -> str:
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def known_genres(collection) -> list[str]:
    """The six genres plus any other genre already present in the collection."""
    present: list[str] = []
    if g.GENRE_FIELD in collection.get_field_schema():
        present = [x for x in collection.distinct(f"{g.GENRE_FIELD}.label") if x]
    return list(dict.fromkeys([*g.GENRES, *sorted(present)]))


def relabel(
    collection,
    genre: str,
    user: str | None = None,
    reason: str | None = None,
    allow_new_genre: bool = False,
) -> int:
    """Set the genre of every sample in ``collection``; returns how many.

    Each sample gets a ``genre_history`` entry {time, user, previous, genre,
    reason, removed_tags} and the ``genre:relabeled`` tag, so the change can be
    reviewed (``match_tags``) and reverted with :func:`undo_relabel`. The
    unmapped/conflict tags go: a person has decided. A genre outside the six
    and those already in the dataset needs ``allow_new_genre=True`` (typos).
    """
    with dataset_writer(collection, "relabelling"):  # read-modify-write of genre_history
        return _relabel(collection, genre, user, reason, allow_new_genre)


def _relabel(collection, genre: str, user: str | None, reason: str | None, allow_new_genre: bool) -> int:
    import fiftyone as fo

    genre = _check_relabel_genre(collection, genre, allow_new_genre)
    rows = read_rows(collection, with_source=False)
    if not rows:
        return 0
    who, when = _username(user), now_iso()
    writes = GenreWrites()
    for row in rows:
        removed = [t for t in (g.UNMAPPED_TAG, g.CONFLICT_TAG) if t in row.tags]
        kept = [t for t in row.tags if t not in removed]
        if g.RELABELED_TAG not in kept:
            kept.append(g.RELABELED_TAG)
        entry = {
            "time": when,
            "user": who,
            "previous": genre_label(row.current),
            "previous_candidates": candidates(row.current),
            "genre": genre,
            "reason": reason,
            "removed_tags": removed,
        }
        writes.add(row.id, fo.Classification(label=genre), kept, [*(row.history or []), entry])
    write_genres(collection._root_dataset, writes)
    return len(rows)


def _check_relabel_genre(collection, genre: Any, allow_new_genre: bool) -> str:
    """A non-empty genre name already known, unless a new one is allowed (typos fail)."""
    if not isinstance(genre, str) or not genre.strip():
        raise ValueError(f"relabel: genre must be a non-empty string, got {genre!r}")
    genre = genre.strip()
    allowed = known_genres(collection._root_dataset)
    if genre not in allowed and not allow_new_genre:
        raise ValueError(
            f"relabel: unknown genre {genre!r}; known genres: {', '.join(allowed)} "
            "(pass allow_new_genre=True / --new-genre to add one)"
        )
    return genre


def undo_relabel(collection) -> int:
    """Revert the latest history entry of each sample in ``collection``; returns how many.

    The previous genre (or None) and the tags the relabel removed come back;
    ``genre:relabeled`` goes once a sample's history is empty.
    """
    with dataset_writer(collection, "undoing relabels in"):
        return _undo_relabel(collection)


def _undo_relabel(collection) -> int:
    import fiftyone as fo

    if g.GENRE_HISTORY_FIELD not in collection.get_field_schema():
        return 0
    view = collection.exists(g.GENRE_HISTORY_FIELD)
    writes = GenreWrites()
    for sid, hist, sample_tags in zip(view.values("id"), view.values(g.GENRE_HISTORY_FIELD), view.values("tags")):
        if not hist:
            continue
        hist = list(hist)
        last = hist.pop()
        prev = last.get("previous")
        cands = last.get("previous_candidates")
        kw = {"candidates": list(cands)} if cands else {}
        new_tags = [t for t in (sample_tags or []) if t != g.RELABELED_TAG]
        for t in last.get("removed_tags") or []:
            if t not in new_tags:
                new_tags.append(t)
        if hist and hist[-1].get("user") != "remap" and g.RELABELED_TAG not in new_tags:
            new_tags.append(g.RELABELED_TAG)
        writes.add(sid, fo.Classification(label=prev, **kw) if prev else None, new_tags, hist or None)
    if not writes.ids:
        return 0
    write_genres(collection._root_dataset, writes)
    return len(writes.ids)
