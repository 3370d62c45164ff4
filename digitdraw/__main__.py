"""Command line: ``python -m digitdraw train [--model ID ...|all] [--epochs N] [--seed S] [--out DIR]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from digitdraw.models import MODEL_IDS


def _model_ids(values: list[str]) -> list[int]:
    if not values or values == ["all"]:
        return list(MODEL_IDS)
    ids = []
    for value in values:
        if not value.isdigit() or int(value) not in MODEL_IDS:
            raise argparse.ArgumentTypeError(
                f"model must be 'all' or one of {list(MODEL_IDS)}, got {value!r}"
            )
        ids.append(int(value))
    return ids


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m digitdraw``."""
    parser = argparse.ArgumentParser(prog="python -m digitdraw", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train models and write them to saved_models/")
    train.add_argument(
        "--model", nargs="+", default=["all"], metavar="ID", help="model ids, or 'all' (default)"
    )
    train.add_argument("--epochs", type=int, default=None, help="maximum epochs per model")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--out", type=Path, default=None, help="output folder (default saved_models/)")
    train.add_argument(
        "--limit", type=int, default=None, help="train on the first N images only (smoke runs)"
    )
    train.add_argument("--drawn", type=int, default=None, help="size of the drawn-digit evaluation set")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model_ids = _model_ids(args.model)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    # TensorFlow logs harmless graph-rewrite notices at error level; keep the bar readable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from dataclasses import replace

    from digitdraw.train import TrainConfig, train_models

    overrides = {"seed": args.seed, "train_limit": args.limit}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.drawn is not None:
        overrides["drawn_eval_size"] = args.drawn
    try:
        config = replace(TrainConfig(), **overrides)
    except ValueError as error:
        parser.error(str(error))
    try:
        train_models(model_ids, config, out_dir=args.out)
    except KeyboardInterrupt:
        # Saves are atomic, so an interrupted run leaves every model as it was.
        print("\nInterrupted: models not yet saved keep their previous files.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
