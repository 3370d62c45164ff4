"""``python -m digitdraw worker``: train the networks queued on the Train page, one at a time."""

from __future__ import annotations

import argparse
import os

from digitdraw.cli.arguments import add_models_folder
from digitdraw.cli.drawings import DATABASE_HELP


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``worker`` and its options."""
    parser = commands.add_parser(
        "worker",
        help="train the networks queued on the Train page, one at a time",
        description="Take training jobs from the queue (in the drawings store's database) one at a time and "
        "save each network under MODELS/custom/NAME/. Run one per core you give to training, on any machine "
        "that reaches the database and the models folder.",
    )
    parser.add_argument("--once", action="store_true", help="train at most one queued job, then exit")
    parser.add_argument("--threads", type=int, default=None, help="cores to train on (default 1)")
    parser.add_argument("--database", default=None, metavar="URL", help=DATABASE_HELP)
    add_models_folder(parser)
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Run the worker until stopped (or one job with ``--once``)."""
    # TensorFlow logs harmless graph-rewrite notices at error level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from digitdraw.jobs import worker

    worker.be_nice()
    threads = args.threads if args.threads is not None else worker.THREADS
    # A store that cannot be reached is cli.main's one sentence.
    return worker.run(args.database, args.models, args.once, stop_on_sigterm=True, threads=threads)
