"""torchrun entry point: the ``fiftyone-genre train`` command, one process per device.

    torchrun --nproc_per_node 2 training/train.py --dataset NAME \
        --config cpu_fast --out runs/fast

Each process loads the dataset and the feature cache, joins the process group
(gloo on CPU, nccl on CUDA) and trains its shard of the windows under
DistributedDataParallel; rank 0 alone writes checkpoints, logs and reports.
Without torchrun it is an ordinary single-process run. ``--ablate`` trains
fused/visual/audio models in turn.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from fiftyone_genre.cli.training import add_train_arguments, run_ablate, run_train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser, "train")  # the train command's flags, --modality included
    parser.add_argument("--ablate", action="store_true", help="train fused, visual and audio models")
    args = parser.parse_args(argv)
    # N processes share the cores: default to cores / processes threads each.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // world)
    try:
        return run_ablate(args) if args.ablate else run_train(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"training/train.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
