"""``fiftyone-genre train`` and ``fiftyone-genre ablate``: the training stage's commands.

Both also work under ``torchrun --nproc_per_node N -m fiftyone_genre.cli train ...``
(or ``training/train.py``): the library joins the process group itself and
only rank 0 prints the report.
"""

from __future__ import annotations

import argparse

from fiftyone_genre.cli import load_dataset
from fiftyone_genre.cli.flags import add_config_flags, config_overrides


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``ablate``."""
    t = sub.add_parser("train", help="train the audio-visual CNN-LSTM on cached features")
    add_train_arguments(t, "train")
    t.set_defaults(func=run_train)

    a = sub.add_parser("ablate", help="train fused, visual-only and audio-only models on the same split")
    add_train_arguments(a, "ablate")
    a.set_defaults(func=run_ablate)


def add_train_arguments(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    p.add_argument("--config", default=None, help="experiment config: a shipped name (cpu_fast, paper_pool, paper_softmax) or a YAML file; defaults if omitted")
    p.add_argument("--out", required=True, help="model directory (checkpoints, logs, reports)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt after an interruption")
    add_config_flags(p, command)
    p.add_argument("--tag", default=None, help="train only on samples with this tag (e.g. a curated subset)")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 2) if any labelled sample cannot be used (default: skip it, record why)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (float sums, hence bit-exact resumes, depend on it; default: torch's)")


def _load(args: argparse.Namespace):

    from fiftyone_genre.config import load_experiment

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = load_experiment(args.config, **config_overrides(args))
    collection = load_dataset(args.dataset)
    if args.tag:
        collection = collection.match_tags(args.tag)
    return collection, config


def run_train(args: argparse.Namespace) -> int:
    from fiftyone_genre.modeling.train import train

    collection, config = _load(args)
    report = train(collection, config, args.out, resume=args.resume, strict=args.strict)
    if report is not None:  # None on torchrun ranks > 0
        print(report)
    return 0


def run_ablate(args: argparse.Namespace) -> int:
    from fiftyone_genre.modeling.ablation import ablate

    collection, config = _load(args)
    table = ablate(collection, config, args.out, resume=args.resume, strict=args.strict)
    if table is not None:
        print(table)
    return 0
