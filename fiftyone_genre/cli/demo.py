"""`fiftyone-genre demo`: the whole pipeline on generated media (`app` lives in cli/app.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate demo videos and run every stage end to end")
    p.add_argument("--out", dest="out_dir", metavar="OUT", default="demo_output", help="output folder (media, cache, model, plots)")
    p.add_argument("--dataset", dest="dataset_name", metavar="NAME", default="genre-demo", help="FiftyOne dataset name")
    p.add_argument("--config", dest="config_path", metavar="CONFIG", default=None,
                   help="experiment config: shipped name or YAML file (default: cpu_fast)")
    p.add_argument("--clips-per-genre", type=int, default=24)
    p.add_argument("--duration", type=float, default=6.0, help="seconds per generated clip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixed-clips", type=int, default=6, metavar="N",
                   help="clips whose genre changes half-way, for the timeline (not scored; default 6, 0: none)")
    p.add_argument("--mixed-duration", type=float, default=20.0, metavar="S", help="seconds per mixed clip (default 20)")
    p.add_argument(
        "--no-ablate",
        dest="ablate",
        action="store_false",
        help="skip the ablation (visual-only and audio-only models beside the fused one)",
    )
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    import inspect

    from fiftyone_genre.database import connect
    from fiftyone_genre.demo.pipeline import run_demo

    connect()

    # the options are named as run_demo's parameters (argparse dest=...)
    params = inspect.signature(run_demo).parameters
    run_demo(**{k: v for k, v in vars(args).items() if k in params})
    return 0

