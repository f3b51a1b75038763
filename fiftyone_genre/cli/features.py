"""``fiftyone-genre features`` and ``fiftyone-genre finetune-frames``.

Both read the same experiment YAML that training uses (its ``features``
section, and ``train`` for fine-tuning epochs/lr), so one file describes a
whole experiment; command-line flags override single keys of that section.
"""

from __future__ import annotations

import argparse
import os
import sys

from fiftyone_genre.cli import load_dataset
from fiftyone_genre.cli.flags import add_config_flags, config_overrides


def _launch(args: argparse.Namespace):
    """Under torchrun (``WORLD_SIZE`` > 1): the shard from ``RANK``/``WORLD_SIZE`` and the
    device from ``LOCAL_RANK``, in the process group training uses; otherwise ``--shard``."""
    from fiftyone_genre.modeling.train import DistContext

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None, args.shard, args.device
    if args.shard:
        raise ValueError("--shard and torchrun both split the work: under torchrun leave --shard out")
    ctx = DistContext.from_env(args.device)
    return ctx, (ctx.rank + 1, ctx.world_size), str(ctx.device)


def _features(args: argparse.Namespace) -> int:
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.features.extract import extract_features
    from fiftyone_genre.utils import check_device

    # every value checked before the dataset, a video or a model is touched
    experiment = load_experiment(args.config, **config_overrides(args))
    check_device(args.device, "--device")
    dataset = load_dataset(args.dataset)
    ctx, shard, device = _launch(args)
    try:
        report = extract_features(dataset, experiment.features, device=device, shard=shard, strict=args.strict)
        print(report)
        if ctx is not None:
            _print_total(ctx, report)
    finally:
        if ctx is not None:
            ctx.close()
    return 0


def _print_total(ctx, report) -> None:
    """All ranks wait for each other; rank 0 prints the whole job's counts."""
    total, extracted, cached, failed, steps = ctx.all_sum(
        [report.total, report.extracted, report.cached, len(report.failed), report.steps]
    )
    if ctx.is_main:
        print(
            f"features (torchrun, {ctx.world_size} processes): {int(total)} video(s): {int(extracted)} extracted, "
            f"{int(cached)} already cached, {int(failed)} failed, {int(steps)} steps"
        )


def _finetune(args: argparse.Namespace) -> int:
    from fiftyone_genre.config import load_experiment
    from fiftyone_genre.modeling.finetune import finetune_frame_classifier
    from fiftyone_genre.utils import check_device

    experiment = load_experiment(args.config, **config_overrides(args))
    if args.device is not None:
        check_device(args.device, "--device")
    dataset = load_dataset(args.dataset)
    report = finetune_frame_classifier(dataset, experiment, args.out, device=args.device)
    print(report)
    print(f"use it with: features.mode: softmax, features.softmax_checkpoint: {report.checkpoint}", file=sys.stderr)
    return 0


def _common(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    add_config_flags(p, command)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto (default cpu)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``features`` and ``finetune-frames``."""
    p = sub.add_parser(
        "features",
        help="extract per-step visual + audio CNN features into the cache",
        description="Decode each video once (4 fps frames + log-mel audio windows), run the CNNs, "
        "and write one cache entry per video. Cached videos are skipped; failures are recorded in "
        "the genre_errors field and the run continues.",
    )
    _common(p, "features")
    p.add_argument("--config", help="experiment YAML (its `features` section); flags override keys")
    p.add_argument("--shard", metavar="K/N", help="process only the K-th of N disjoint slices (1 <= K <= N); "
                   "under torchrun the shard comes from RANK/WORLD_SIZE and the GPU from LOCAL_RANK")
    p.add_argument("--strict", action="store_true", help="fail (exit 2) if any video fails")
    p.set_defaults(func=_features)

    q = sub.add_parser(
        "finetune-frames",
        help="paper stage 1: fine-tune the frame CNN on genre labels (train split only)",
        description="Fine-tune the visual backbone as a frame-level genre classifier on frames of "
        "the train split; writes epoch_NNN.pt, last.pt and best.pt (use best.pt as "
        "features.softmax_checkpoint with mode softmax).",
    )
    _common(q, "finetune-frames")
    q.add_argument("--config", required=True, help="experiment YAML (features + train sections)")
    q.add_argument("--out", required=True, help="output folder for the checkpoints")
    q.set_defaults(func=_finetune)
