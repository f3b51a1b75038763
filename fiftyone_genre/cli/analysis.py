"""``fiftyone-genre predict | evaluate | maps``: write predictions, then find the mistakes."""

from __future__ import annotations

import argparse
import sys

from fiftyone_genre.cli import load_dataset
from fiftyone_genre.cli.flags import add_config_flags, config_overrides


def cmd_predict(args: argparse.Namespace) -> int:
    from fiftyone_genre.config import PredictConfig, check_config
    from fiftyone_genre.inference.predict import predict
    from fiftyone_genre.modeling.model import find_checkpoint
    from fiftyone_genre.utils import check_device

    # device and model path first: a missing GPU is not the checkpoint's fault
    check_device(args.device, "--device")
    find_checkpoint(args.model)
    dataset = load_dataset(args.dataset)
    config = PredictConfig(device=args.device, **config_overrides(args).get("predict", {}))
    check_config(config)  # --slot's range
    report = predict(dataset, args.model, config, strict=args.strict)
    print(report)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import contextlib

    from fiftyone_genre.analysis import evaluate

    dataset = load_dataset(args.dataset)
    kwargs = dict(
        pred_field=args.pred_field, gt_field=args.gt_field, eval_key=args.eval_key,
        out_dir=args.out, split=args.split,
    )
    # --json promises stdout holds only the JSON: route FiftyOne's chatter to stderr.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with quiet:
        report = evaluate(dataset, **kwargs)
    print(report.to_json() if args.json else report)
    return 0


def cmd_maps(args: argparse.Namespace) -> int:
    from fiftyone_genre.analysis import compute_maps

    dataset = load_dataset(args.dataset)
    report = compute_maps(
        dataset,
        embedding_field=args.embedding_field,
        brain_key=args.brain_key,
        similarity_key=args.similarity_key,
        pred_field=args.pred_field,
    )
    print(report)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict``, ``evaluate`` and ``maps``."""
    from fiftyone_genre import genres as g

    p = sub.add_parser(
        "predict",
        help="write genre predictions, timelines and embeddings onto a dataset",
        description="Score every video with a trained model. Writes genre_pred, genre_timeline, "
        "genre_embedding (and genre_pred_visual/audio for fused models); never the ground truth.",
    )
    p.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    p.add_argument("--model", required=True, help="model directory (best.pt / last.pt) or checkpoint")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument(
        "--strict", action="store_true",
        help="fail on the first clip that cannot be predicted (default: record it and go on)",
    )
    add_config_flags(p, "predict")  # --slot
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser(
        "evaluate",
        help="accuracy, per-genre scores, confusion matrix and saved confusion views",
        description="Evaluate predictions against the ground truth; saves views such as "
        "'horror-predicted-as-action' and a confusion-matrix PNG.",
    )
    e.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    e.add_argument(
        "--eval-key", default=None,
        help="evaluation key (default: genre_eval, or genre_eval_<split> with --split)",
    )
    e.add_argument(
        "--split", default=None, choices=list(g.SPLITS),
        help="evaluate one split only (default: every sample with both fields)",
    )
    e.add_argument("--pred-field", default=g.PRED_FIELD, help=f"default: {g.PRED_FIELD}")
    e.add_argument("--gt-field", default=g.GENRE_FIELD, help=f"default: {g.GENRE_FIELD}")
    e.add_argument("--out", default=None, help="folder for the confusion-matrix PNG")
    e.add_argument("--json", action="store_true", help="print only the JSON report to stdout")
    e.set_defaults(func=cmd_evaluate)

    m = sub.add_parser(
        "maps",
        help="UMAP map + similarity index of clip embeddings, mistakenness and hardness",
    )
    m.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    m.add_argument("--embedding-field", default=g.EMBEDDING_FIELD)
    m.add_argument("--brain-key", default="genre_umap")
    m.add_argument("--similarity-key", default="genre_sim")
    m.add_argument("--pred-field", default=g.PRED_FIELD)
    m.set_defaults(func=cmd_maps)
