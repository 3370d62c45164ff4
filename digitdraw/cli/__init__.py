"""The command line, ``python -m digitdraw COMMAND``: one module per command, each adding its parser and
the function that runs it (``set_defaults(run=...)``).

- ``train`` trains the study's models, or with ``--name`` a network of your own design, with
  ``--drawings`` on the drawings users kept too;
- ``calibrate`` fits each saved model's temperature and digit-score threshold;
- ``worker`` trains the networks queued on the Train page;
- ``drawings`` imports, exports and summarises the drawings users kept;
- ``read`` reads the numbers in photos and scans;
- ``models`` lists, opens, exports, removes and upgrades saved networks;
- ``cluster`` starts and stops PostgreSQL, app replicas behind HAProxy, and workers on this machine.

``--help`` on each says more. A command that fails prints one sentence on stderr and exits with status 1;
a bad request exits with status 2. Every command's errors end at one place, ``main``: files that cannot
be read or written, a store or model that will not do, and anything unforeseen become that one sentence;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from digitdraw.cli import calibrate, cluster, drawings, models, read, train, worker
from digitdraw.cli.arguments import INTERRUPTED, fail
from digitdraw.drawings.store import StoreError
from digitdraw.learning.data import DataError
from digitdraw.serving.saved_models import SavedModelError

COMMANDS = (train, calibrate, worker, drawings, read, models, cluster)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m digitdraw``."""
    parser = argparse.ArgumentParser(
        prog="python -m digitdraw",
        description="Draw a digit, watch six MNIST networks classify it: the command line.",
    )
    parser.add_argument("--debug", action="store_true", help="show a failure's traceback, not one sentence")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it; returns the process exit code."""
    args = build_parser().parse_args(argv)
    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"\npython -m digitdraw {command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (OSError, ValueError, StoreError, SavedModelError, DataError) as error:
        if args.debug:
            raise
        return fail(command, error)
    except Exception as error:  # What no check foresaw: still one sentence, the traceback on request.
        if args.debug:
            raise
        return fail(command, f"{type(error).__name__}: {error} (run again with --debug to see where)")
