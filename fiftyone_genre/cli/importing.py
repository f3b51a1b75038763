"""``fiftyone-genre import SOURCE PATH --dataset NAME``: one importer per official layout."""

from __future__ import annotations

import argparse
import sys

SOURCE_HELP = {
    "ucf101": "folder holding UCF-101/ and ucfTrainTestlist/",
    "hmdb51": "folder holding the action folders and *_test_splitN.txt files",
    "hollywood2": "folder holding AVIClips/ and ClipSets/",
    "yt8m": "folder holding vocabulary.csv and *.tfrecord files",
    "folder": "folder of <label>/<video> files",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``import`` subcommand."""
    from fiftyone_genre.sources import SOURCES

    p = sub.add_parser(
        "import",
        help="import a video dataset in its official layout into a FiftyOne dataset",
        description=(
            "Import UCF101, HMDB51, Hollywood2, YouTube-8M (every record: with its local "
            "video, else features-only) or a <label>/<video> folder tree. Re-importing adds nothing; problems "
            "in the files are reported with file and line, never fatal. Exits 1 only when "
            "nothing could be imported (or with --strict, when anything was reported)."
        ),
        epilog="PATH per source: " + "; ".join(f"{k}: {v}" for k, v in SOURCE_HELP.items()),
    )
    p.add_argument("source", choices=SOURCES, help="layout of PATH")
    p.add_argument("path", help="dataset root on disk")
    p.add_argument(
        "--dataset", required=True, help="FiftyOne dataset name (created persistent if missing)"
    )
    p.add_argument(
        "--fold",
        type=int,
        choices=(1, 2, 3),
        default=None,
        help="official split (UCF101, HMDB51; default 1)",
    )
    p.add_argument(
        "--media-dir",
        default=None,
        help="videos folder (YouTube-8M: <id>.mp4 files; others: override)",
    )
    p.add_argument(
        "--splits-dir", default=None, help="UCF101/HMDB51: folder of split lists (auto-detected)"
    )
    _yt8m_arguments(p)
    p.add_argument(
        "--autotrain", action="store_true", help="Hollywood2: also import the automatic train set"
    )
    p.add_argument(
        "--reencode", action="store_true", help="re-encode non-MP4 videos to H.264 MP4 for the App"
    )
    p.add_argument("--reencode-dir", default=None, help="where re-encoded MP4s go")
    p.add_argument(
        "--no-metadata",
        action="store_true",
        help="skip compute_metadata() and the readability check (faster)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when any problem was reported")
    p.set_defaults(func=run)


def _yt8m_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--features-dir",
        default=None,
        help="YouTube-8M: where the feature packs go (default: the feature cache folder)",
    )
    p.add_argument(
        "--require-video",
        action="store_true",
        help="YouTube-8M: import only records with a local video (the others are counted, not "
        "imported); by default they become features-only samples",
    )
    p.add_argument(
        "--vocabulary", default=None, help="YouTube-8M: vocabulary.csv (default: PATH/vocabulary.csv)"
    )


def build_kwargs(args: argparse.Namespace) -> dict:
    """Only the options the chosen importer understands; others are an error."""
    kw: dict = {
        "reencode": args.reencode,
        "reencode_dir": args.reencode_dir,
        "compute_metadata": not args.no_metadata,
    }
    if args.source in ("ucf101", "hmdb51"):
        kw["fold"] = args.fold or 1
        kw["splits_dir"] = args.splits_dir
        kw["media_dir"] = args.media_dir
    else:
        if args.fold is not None:
            raise ValueError(f"--fold applies to ucf101 and hmdb51, not {args.source}")
        if args.splits_dir is not None:
            raise ValueError(f"--splits-dir applies to ucf101 and hmdb51, not {args.source}")
    if args.source == "yt8m":
        kw["media_dir"] = args.media_dir
        kw["features_dir"] = args.features_dir
        kw["vocabulary"] = args.vocabulary
        kw["require_video"] = args.require_video
    else:
        for flag, value in (("--features-dir", args.features_dir), ("--vocabulary", args.vocabulary),
                            ("--require-video", args.require_video or None)):  # fmt: skip
            if value is not None:
                raise ValueError(f"{flag} applies to yt8m only")
    if args.source == "hollywood2":
        kw["autotrain"] = args.autotrain
        if args.media_dir:
            kw["clips_dir"] = args.media_dir
    elif args.autotrain:
        raise ValueError("--autotrain applies to hollywood2 only")
    if args.source == "folder" and args.media_dir:
        raise ValueError("--media-dir does not apply to folder imports; PATH is the media")
    return kw


def run(args: argparse.Namespace) -> int:
    from fiftyone_genre.sources import import_source

    report = import_source(args.source, args.dataset, args.path, **build_kwargs(args))
    print(report)
    if not report.ok:
        print(f"fiftyone-genre import: nothing could be imported from {args.path}", file=sys.stderr)
        return 1
    if args.strict and (report.problems or report.skipped):
        print("fiftyone-genre import: problems reported (--strict)", file=sys.stderr)
        return 1
    return 0
