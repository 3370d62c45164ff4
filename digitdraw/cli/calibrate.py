"""``python -m digitdraw calibrate``: fit each saved model's temperature and digit-score threshold."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitdraw.cli.arguments import model_or_network_ids


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``calibrate`` and its options."""
    parser = commands.add_parser(
        "calibrate",
        help="fit each saved model's temperature and digit-score threshold on MNIST (calibration.json)",
    )
    parser.add_argument(
        "--model",
        nargs="+",
        default=["all"],
        metavar="ID",
        help="the study's model ids or networks' names, or 'all' (default: the study's)",
    )
    parser.add_argument("--root", type=Path, default=None, help="saved-models folder (default saved_models/)")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Fit and write the calibration file of every model asked for."""
    from digitdraw.learning.calibration import calibrate_models

    try:
        wanted = model_or_network_ids(args.model)
    except ValueError as error:
        args.parser.error(str(error))
    calibrate_models(wanted, args.root)  # A model that cannot be loaded is cli.main's one sentence.
    return 0
