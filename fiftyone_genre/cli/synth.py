"""``fiftyone-genre synth OUTDIR``: write synthetic clips in a dataset layout."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``synth`` subcommand."""
    from fiftyone_genre.demo.synth import LAYOUTS

    p = sub.add_parser(
        "synth",
        help="generate synthetic genre clips (demo/test media) in a dataset layout",
        description=(
            "Write real encoded clips whose genre shows in both the picture (background hue) "
            "and the sound (tone band), laid out as a folder tree or like UCF101, HMDB51, "
            "Hollywood2 or YouTube-8M. A manifest.json describing every clip is written too."
        ),
    )
    p.add_argument("outdir", help="output folder (created if missing)")
    p.add_argument("--layout", choices=LAYOUTS, default="folder")
    p.add_argument("--clips-per-class", type=int, default=4)
    p.add_argument("--duration", type=float, default=4.0, help="seconds per clip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--size", default="128x96", help="WIDTHxHEIGHT (even numbers)")
    p.add_argument("--container", choices=("mp4", "avi", "mkv"), default=None)
    p.add_argument("--no-audio", dest="audio", action="store_false", help="write clips without an audio track")
    p.add_argument(
        "--autotrain", action="store_true", help="Hollywood2: add the automatic train set"
    )
    p.set_defaults(func=run)


_GENERATE_OPTIONS = ("outdir", "layout", "clips_per_class", "duration", "seed", "fps", "container", "audio", "autotrain")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 128x96, got {text!r}") from None
    return w, h


def run(args: argparse.Namespace) -> int:
    from fiftyone_genre.demo.synth import generate

    # the options are named as generate's keywords; only --size needs parsing
    manifest = generate(size=_size(args.size), **{k: getattr(args, k) for k in _GENERATE_OPTIONS})
    path = manifest.save()
    print(manifest)
    print(f"manifest: {path}")
    return 0
