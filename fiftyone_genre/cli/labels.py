"""Label commands: ``remap``, ``relabel``, ``split``, ``check-leakage``, ``balance``.

Each only parses arguments and calls :mod:`fiftyone_genre.labels`; errors (a bad mapping file, leakage) are
``ValueError`` subclasses that ``main()`` prints without a traceback (exit 2).
"""

from __future__ import annotations

import argparse

from fiftyone_genre.cli import load_dataset
from fiftyone_genre.cli.flags import add_config_flags, config_overrides


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's subcommands."""
    r = sub.add_parser("remap", help="write the genre field from source labels through a mapping")
    r.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    r.add_argument("--mapping", default=None,
                   help="mapping YAML (default: the shipped map for each sample's source)")
    r.add_argument("--dry-run", action="store_true",
                   help="report counts per genre, unmapped classes and conflicts; write nothing")
    r.add_argument("--overwrite-relabeled", action="store_true",
                   help="also remap clips a person relabeled (recorded in their history)")
    r.add_argument("--allow-new-genres", action="store_true",
                   help="accept genres outside the six in --mapping without declaring them")
    r.add_argument("--vocabulary", default=None,
                   help="YouTube-8M vocabulary.csv for the vertical rules")
    r.set_defaults(func=run_remap)

    rl = sub.add_parser("relabel", help="set the genre of chosen samples by hand (audited, undoable)")
    rl.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    what = rl.add_mutually_exclusive_group(required=True)
    what.add_argument("--genre", help="the new genre")
    what.add_argument("--undo", action="store_true", help="revert the latest relabel of the samples")
    which = rl.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", nargs="+", help="sample ids")
    which.add_argument("--tag", help="samples carrying this tag")
    rl.add_argument("--user", default=None, help="who (default: the login name)")
    rl.add_argument("--reason", default=None, help="why, kept in genre_history")
    rl.add_argument("--new-genre", action="store_true", help="allow a genre the dataset does not have yet")
    rl.set_defaults(func=run_relabel)

    s = sub.add_parser("split", help="train/val/test by group, stratified by genre")
    s.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    s.add_argument("--config", default=None, help="experiment YAML whose split: section to use")
    add_config_flags(s, "split")
    s.add_argument("--dry-run", action="store_true", help="show the counts, write nothing")
    s.set_defaults(func=run_split)

    c = sub.add_parser("check-leakage", help="fail if a group or identical file spans two splits")
    c.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    c.set_defaults(func=run_check_leakage)

    b = sub.add_parser("balance", help="clips and minutes per genre per split")
    b.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    b.set_defaults(func=run_balance)


def run_remap(args: argparse.Namespace) -> int:
    from fiftyone_genre.labels.remap import remap

    report = remap(
        load_dataset(args.dataset),
        mapping=args.mapping,
        dry_run=args.dry_run,
        overwrite_relabeled=args.overwrite_relabeled,
        allow_new_genres=args.allow_new_genres or None,
        vocabulary=args.vocabulary,
    )
    print(report)
    return 0


def run_relabel(args: argparse.Namespace) -> int:
    from fiftyone_genre.labels.relabel import relabel, undo_relabel

    ds = load_dataset(args.dataset)
    view = ds.select(args.ids) if args.ids else ds.match_tags(args.tag)
    if args.ids and len(view) != len(set(args.ids)):
        missing = sorted(set(args.ids) - set(view.values("id")))
        raise ValueError(f"no such sample id(s) in '{args.dataset}': {', '.join(missing)}")
    if len(view) == 0:
        raise ValueError("no samples selected")
    if args.undo:
        n = undo_relabel(view)
        print(f"reverted the latest relabel of {n} samples")
    else:
        n = relabel(view, args.genre, user=args.user, reason=args.reason, allow_new_genre=args.new_genre)
        print(f"relabeled {n} samples as {args.genre!r} (tag genre:relabeled; undo with --undo)")
    return 0


def run_split(args: argparse.Namespace) -> int:
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.labels.split import split_dataset

    config = load_experiment(args.config, **config_overrides(args)).split
    print(split_dataset(load_dataset(args.dataset), config, dry_run=args.dry_run))
    return 0


def run_check_leakage(args: argparse.Namespace) -> int:
    from fiftyone_genre.labels.leakage import check_leakage

    print(check_leakage(load_dataset(args.dataset)))
    return 0


def run_balance(args: argparse.Namespace) -> int:
    from fiftyone_genre.labels.split import balance_report

    print(balance_report(load_dataset(args.dataset)))
    return 0
