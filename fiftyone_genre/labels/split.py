"""Group-aware, genre-stratified train/val/test split and the balance report.

The paper's public code split overlapping 10 s windows at random, so windows
of one video landed in both train and test. Here the unit of assignment is the
``group`` (one source video / one movie, set by the importers): a group goes
whole to one split, and :func:`~fiftyone_genre.labels.leakage.check_leakage`
verifies it.

Assignment (deterministic for a seed): groups are shuffled with the seed, then
taken largest first; each goes to the allowed split whose genre quota is the
most unfilled *relative to its target* (target = ratio x the genre's clips),
so small genres still get a val and test group before train takes the rest.
Groups that share a file (the same path, or identical content under another
name) are merged first, so a split never fails its own leakage check.
With ``keep_official_test`` a group with any clip in the source's official
test fold goes to test, groups from the official train/unused folds are
shared between train and val, and clips from sources without official folds
are split three ways as usual.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError, SplitConfig
from fiftyone_genre.database import dataset_writer
from fiftyone_genre.labels.leakage import content_hashes
from fiftyone_genre.report import Report
from fiftyone_genre.samples import field_values
from fiftyone_genre.utils import ProgressFn, track

UNSPLIT = "(unsplit)"




def _normalized_ratios(ratios) -> tuple[float, float, float]:
    vals = tuple(float(r) for r in ratios)
    if len(vals) != 3:
        raise ConfigError(f"split ratios: expected 3 values (train val test), got {list(ratios)}")
    if any(r < 0 for r in vals) or vals[0] <= 0:
        raise ConfigError(f"split ratios: must be >= 0 with a train share > 0, got {list(vals)}")
    total = sum(vals)
    return tuple(r / total for r in vals)  # type: ignore[return-value]


@dataclass
class SplitReport(Report):
    """Clips per split and genre, groups per split, what was left out."""

    seed: int
    ratios: tuple[float, float, float]
    keep_official_test: bool
    dry_run: bool = False
    #: split -> genre -> clips
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    #: clips without a genre: left with split = None
    unsplit: int = 0
    #: clips without a group: each treated as its own group
    no_group: int = 0
    #: groups sent to test because one of their clips is in the official test fold
    official_test_groups: int = 0
    #: groups with clips in both official train and test (all sent to test)
    mixed_official_groups: int = 0
    #: groups joined to another because they share an identical file
    merged_groups: int = 0

    def totals(self) -> dict[str, int]:
        return {s: sum(self.counts.get(s, {}).values()) for s in g.SPLITS}

    def fractions(self) -> dict[str, float]:
        tot = self.totals()
        n = sum(tot.values()) or 1
        return {s: tot[s] / n for s in g.SPLITS}

    def extra(self) -> dict[str, Any]:
        return {"totals": self.totals()}

    def __str__(self) -> str:
        head = "split (dry run: nothing written)" if self.dry_run else "split"
        r = "/".join(f"{x:.2f}" for x in self.ratios)
        lines = [f"{head}: seed {self.seed}, ratios {r}, keep_official_test={self.keep_official_test}"]
        genres = sorted({k for c in self.counts.values() for k in c})
        lines += _table(
            ["genre", *g.SPLITS],
            [[gen, *(str(self.counts.get(s, {}).get(gen, 0)) for s in g.SPLITS)] for gen in genres]
            + [["total", *(str(v) for v in self.totals().values())]]
            + [["groups", *(str(self.groups.get(s, 0)) for s in g.SPLITS)]],
        )
        frac = ", ".join(f"{s} {v:.1%}" for s, v in self.fractions().items())
        lines.append(f"achieved: {frac}")
        if self.unsplit:
            lines.append(f"left unsplit (no genre): {self.unsplit} clips")
        if self.no_group:
            lines.append(f"warning: {self.no_group} clips have no group; each is its own group")
        if self.merged_groups:
            lines.append(
                f"{self.merged_groups} groups merged with another: they share identical files"
            )
        if self.official_test_groups:
            lines.append(f"official test fold: {self.official_test_groups} groups kept as test")
        if self.mixed_official_groups:
            lines.append(
                f"warning: {self.mixed_official_groups} groups had clips in official train and "
                "test; sent whole to test"
            )
        return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda row: "  " + "  ".join(  # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))
    )
    return [fmt(header), *(fmt(r) for r in rows)]


def assign_groups(
    groups: dict[str, Counter],
    ratios: tuple[float, float, float],
    seed: int = 0,
    fixed: dict[str, str] | None = None,
    allowed: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, str]:
    """Group -> split. ``groups`` maps a group to its Counter of genre -> clips.

    Pure function (no FiftyOne), so the property tests can drive it directly.
    """
    ratios = _normalized_ratios(ratios)
    fixed = dict(fixed or {})
    allowed = allowed or {}
    ratio = dict(zip(g.SPLITS, ratios))
    totals: Counter = Counter()
    for c in groups.values():
        totals.update(c)
    current: dict[str, Counter] = {s: Counter() for s in g.SPLITS}
    for key, s in fixed.items():
        current[s].update(groups[key])

    rng = random.Random(seed)
    free = sorted(k for k in groups if k not in fixed)
    rng.shuffle(free)
    free.sort(key=lambda k: -sum(groups[k].values()))  # stable: ties keep the shuffle

    def score(s: str, counts: Counter) -> float:
        size = sum(counts.values()) or 1
        total = 0.0
        for genre, c in counts.items():
            target = ratio[s] * totals[genre]
            total += c * (target - current[s][genre]) / target
        return total / size

    out = dict(fixed)
    default_allowed = tuple(s for s in g.SPLITS if ratio[s] > 0)
    for key in free:
        choices = [s for s in allowed.get(key, default_allowed) if ratio[s] > 0] or ["train"]
        counts = groups[key]
        best = max(choices, key=lambda s: (round(score(s, counts), 12), ratio[s], -g.SPLITS.index(s)))
        out[key] = best
        current[best].update(counts)
    return out


def _merge_duplicate_groups(collection, key_of, hash_cache, progress) -> dict[str, str]:
    """Groups that share a file (same path or same content) -> one representative.

    A re-uploaded clip under another name and group would otherwise be split
    apart and fail :func:`check_leakage`; merging keeps split and check in
    agreement. Returns {absorbed group: representative}.
    """
    n = len(key_of)
    paths = collection.values("filepath")
    originals = field_values(collection, g.ORIGINAL_PATH_FIELD, n)
    # features-only samples all show one placeholder file: it is no shared content
    only = field_values(collection, g.FEATURES_ONLY_FIELD, n)
    keys_of_path: dict[str, set[str]] = defaultdict(set)
    for i, key in enumerate(key_of):
        if key is not None and not only[i]:
            for p in {paths[i], originals[i]} - {None, ""}:
                keys_of_path[p].add(key)
    by_hash, _, _ = content_hashes(keys_of_path, hash_cache, progress)

    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.get(k, k) != k:
            k = parent[k]
        return k

    def union(keys) -> None:
        keys = sorted(keys)
        root = find(keys[0])
        for k in keys[1:]:
            r = find(k)
            if r != root:
                lo, hi = sorted((root, r))
                parent[hi] = lo
                root = lo

    for keys in keys_of_path.values():
        if len(keys) > 1:
            union(keys)
    for ps in by_hash.values():
        keys = set().union(*(keys_of_path[p] for p in ps))
        if len(keys) > 1:
            union(keys)
    return {k: find(k) for k in parent if find(k) != k}


def split_dataset(
    collection,
    config: SplitConfig | None = None,
    progress: ProgressFn | None = None,
    dry_run: bool = False,
    merge_duplicates: bool = True,
    hash_cache: str | Path | None = None,
) -> SplitReport:
    """Write ``split`` = train/val/test by group, stratified by genre (see module doc).

    Samples without a genre get ``split = None`` and are counted in
    ``report.unsplit``. ``merge_duplicates`` first joins groups that share an
    identical file (content hash), so the split always passes
    :func:`check_leakage`. ``dry_run`` returns the same report and writes
    nothing (the operator's preview).
    """
    config = config or SplitConfig()
    ratios = _normalized_ratios(config.ratios)
    with dataset_writer(collection, "splitting") if not dry_run else contextlib.nullcontext():
        return _split(collection, config, ratios, progress, dry_run, merge_duplicates, hash_cache)


def _split(
    collection, config: SplitConfig, ratios, progress: ProgressFn | None, dry_run: bool, merge_duplicates: bool,
    hash_cache: str | Path | None,
) -> SplitReport:
    """:func:`split_dataset`'s work, under the dataset's writer lease unless ``dry_run``."""
    report = SplitReport(
        seed=config.seed, ratios=ratios, keep_official_test=config.keep_official_test, dry_run=dry_run
    )
    units = _collect_groups(collection, report, progress)
    if merge_duplicates and units.groups:
        units.merge(_merge_duplicate_groups(collection, units.key_of, hash_cache, progress), report)
    fixed, allowed = _official_folds(units.folds, config.keep_official_test, report)
    assignment = assign_groups(units.groups, ratios, config.seed, fixed=fixed, allowed=allowed)
    values = [assignment[k] if k is not None else None for k in units.key_of]
    counts: dict[str, Counter] = {s: Counter() for s in g.SPLITS}
    for genre, s in zip(units.genres, values):
        if s is not None:
            counts[s][genre] += 1
    report.counts = {s: dict(c) for s, c in counts.items()}
    report.groups = dict(Counter(assignment.values()))
    if not dry_run:
        _write_split(collection, values, config, ratios)
    return report


@dataclass
class _Units:
    """The units of assignment: each sample's group key, and each group's genres and folds."""

    genres: list[Any]
    key_of: list[str | None] = field(default_factory=list)
    groups: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    folds: dict[str, set] = field(default_factory=lambda: defaultdict(set))

    def merge(self, canon: dict[str, str], report: SplitReport) -> None:
        """Join absorbed groups into their representatives."""
        if not canon:
            return
        report.merged_groups = len(canon)
        self.key_of = [canon.get(k, k) if k is not None else None for k in self.key_of]
        for old, new in canon.items():
            self.groups[new].update(self.groups.pop(old))
            self.folds[new] |= self.folds.pop(old, set())


def _collect_groups(collection, report: SplitReport, progress: ProgressFn | None) -> _Units:
    ids = collection.values("id")
    n = len(ids)
    units = _Units(genres=field_values(collection, f"{g.GENRE_FIELD}.label", n))
    group_vals = field_values(collection, g.GROUP_FIELD, n)
    official = field_values(collection, g.SOURCE_SPLIT_FIELD, n)
    for i in track(range(n), total=n, desc="split", progress=progress):
        if not units.genres[i]:
            report.unsplit += 1
            units.key_of.append(None)
            continue
        key = group_vals[i]
        if not key:
            report.no_group += 1
            key = f"<sample {ids[i]}>"
        key = str(key)
        units.key_of.append(key)
        units.groups[key][units.genres[i]] += 1
        if official[i]:
            units.folds[key].add(str(official[i]).lower())
    return units


def _official_folds(folds: dict[str, set], keep_official_test: bool, report: SplitReport):
    """``keep_official_test``: groups with an official test clip are fixed to test; other folded groups go to train/val."""
    fixed: dict[str, str] = {}
    allowed: dict[str, tuple[str, ...]] = {}
    if keep_official_test:
        for key, fs in folds.items():
            if "test" in fs:
                fixed[key] = "test"
                report.official_test_groups += 1
                if fs - {"test"}:
                    report.mixed_official_groups += 1
            elif fs:
                allowed[key] = ("train", "val")
    return fixed, allowed


def _write_split(collection, values: list[str | None], config: SplitConfig, ratios) -> None:
    if values:
        collection.set_values(g.SPLIT_FIELD, values)
    dataset = collection._root_dataset
    dataset.info[g.SPLIT_INFO_KEY] = {
        "seed": config.seed,
        "ratios": list(ratios),
        "keep_official_test": config.keep_official_test,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    dataset.save()


@dataclass
class BalanceReport(Report):
    """Clips and minutes per genre per split."""

    #: genre -> split -> clips
    clips: dict[str, dict[str, int]] = field(default_factory=dict)
    #: genre -> split -> minutes (clips without metadata.duration add nothing)
    minutes: dict[str, dict[str, float]] = field(default_factory=dict)
    no_duration: int = 0
    #: features-only clips (YouTube-8M records without a video): counted, no minutes
    features_only: int = 0

    def splits(self) -> list[str]:
        present = {s for per in self.clips.values() for s in per}
        return [s for s in (*g.SPLITS, UNSPLIT) if s in present]

    def __str__(self) -> str:
        splits = self.splits()
        header = ["genre", *(f"{s} clips" for s in splits), *(f"{s} min" for s in splits)]
        rows = []
        for genre in sorted(self.clips):
            rows.append(
                [
                    genre,
                    *(str(self.clips[genre].get(s, 0)) for s in splits),
                    *(f"{self.minutes[genre].get(s, 0.0):.1f}" for s in splits),
                ]
            )
        rows.append(
            [
                "total",
                *(str(sum(c.get(s, 0) for c in self.clips.values())) for s in splits),
                *(f"{sum(m.get(s, 0.0) for m in self.minutes.values()):.1f}" for s in splits),
            ]
        )
        lines = ["balance: clips and minutes per genre per split", *_table(header, rows)]
        if self.no_duration:
            lines.append(
                f"note: {self.no_duration} clips have no metadata.duration "
                "(run dataset.compute_metadata())"
            )
        if self.features_only:
            lines.append(f"note: {self.features_only} features-only clips (no video) add no minutes")
        return "\n".join(lines)


def balance_report(collection) -> BalanceReport:
    """Clips and total minutes (``metadata.duration``) per genre per split."""
    n = len(collection)
    genres = field_values(collection, f"{g.GENRE_FIELD}.label", n)
    splits = field_values(collection, g.SPLIT_FIELD, n)
    durations = field_values(collection, "metadata.duration", n)
    only = field_values(collection, g.FEATURES_ONLY_FIELD, n)
    report = BalanceReport()
    clips: dict[str, Counter] = defaultdict(Counter)
    minutes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for genre, split, dur, no_video in zip(genres, splits, durations, only):
        genre = genre or "(no genre)"
        split = split or UNSPLIT
        clips[genre][split] += 1
        if no_video:  # the placeholder's 1 s is not the record's length
            report.features_only += 1
        elif dur is None:
            report.no_duration += 1
        else:
            minutes[genre][split] += float(dur) / 60.0
    report.clips = {k: dict(v) for k, v in clips.items()}
    report.minutes = {k: dict(minutes[k]) for k in clips}
    return report
