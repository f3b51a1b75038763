"""``fiftyone-genre classify VIDEO... --model DIR``: the genre of any file, no dataset needed.

Only parses arguments and calls :func:`fiftyone_genre.inference.classify.classify_files`;
nothing here touches FiftyOne's database, so no MongoDB is started.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from fiftyone_genre.cli.flags import add_config_flags, config_overrides


def cmd_classify(args: argparse.Namespace) -> int:
    from fiftyone_genre.config import PredictConfig, check_config
    from fiftyone_genre.inference.classify import classify_files

    slot_s = config_overrides(args).get("predict", {}).get("timeline_slot_s")
    if slot_s is not None:
        check_config(PredictConfig(timeline_slot_s=slot_s))  # the flag's range, before any decoding

    # --json promises stdout holds only the JSON: progress and chatter go to stderr.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with quiet:
        report = classify_files(
            args.videos, args.model, device=args.device, cache_dir=args.cache_dir, batch_size=args.batch_size,
            slot_s=slot_s,
        )
    if args.json:
        print(report.to_json())
    else:
        ok = [str(f) for f in report.files if f.error is None]
        if ok:
            print("\n".join(ok))
    for f in report.failed:
        print(f"fiftyone-genre classify: error: {f.error}", file=sys.stderr)
    return 1 if report.failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``classify``."""
    p = sub.add_parser(
        "classify",
        help="print the genre and genre timeline of video files (no dataset needed)",
        description="Decode each video, extract the model's features and print its genre, confidence "
        "and its genre segments (start-end seconds; --json adds the timeline: one entry per slot of "
        "at most --slot seconds). Exit status 1 when a file could not be read.",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    p.add_argument("--model", required=True, help="model directory (best.pt / last.pt) or checkpoint")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--cache-dir", default=None, help="feature cache folder to reuse and fill (default: none)")
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default: 64)")
    add_config_flags(p, "classify")  # --slot
    p.set_defaults(func=cmd_classify)
