"""``python -m digitdraw drawings import|export|stats``: the drawings users kept, in and out of the store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from digitdraw.cli.arguments import one_line
from digitdraw.serving.networks import NUM_CLASSES

DATABASE_HELP = "SQLAlchemy URL (default: $DIGITDRAW_DATABASE_URL or data/drawings.sqlite)"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``drawings`` and its three actions."""
    parser = commands.add_parser("drawings", help="import, export and summarise kept drawings")
    parser.add_argument("--database", default=None, metavar="URL", help=DATABASE_HELP)
    actions = parser.add_subparsers(dest="action", required=True)
    load = actions.add_parser(
        "import",
        help="keep the drawings of an .npz file (arrays x and y): checked whole, then kept in batches",
        description="Keep every drawing of an .npz file: x is N x H x W grayscale or N x H x W x 4 RGBA "
        "(28x28 images are kept as they are, larger ones go through the Draw page's preprocessing), y holds "
        "N labels 0-9. A bad file keeps nothing.",
    )
    load.add_argument("file", type=Path)
    load.add_argument("--session", default="import", help="whose drawings they are (default 'import')")
    dump = actions.add_parser(
        "export", help="write kept drawings to an MNIST-style .npz (x uint8 N x 28 x 28, y)"
    )
    dump.add_argument("file", type=Path)
    dump.add_argument("--session", default=None, help="only this session's drawings")
    actions.add_parser("stats", help="counts per digit and each model's accuracy on the kept drawings")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Import, export or summarise; a store, file or path that will not do is ``cli.main``'s one sentence."""
    from digitdraw.drawings import collect, store
    from digitdraw.serving.files import atomic_write

    kept = store.open_store(args.database)
    if args.action == "import":
        x, y = collect.read_npz(args.file)
        count = collect.import_arrays(
            kept, x, y, args.session, progress=_progress if len(x) > collect.IMPORT_BATCH else None
        )
        print(f"kept {count} drawings from {one_line(args.file)} ({kept.count()} in the store)")
    elif args.action == "export":
        arrays = store.export_arrays(kept.drawings(args.session))
        with atomic_write(args.file) as handle:
            np.savez_compressed(handle, **arrays)
        print(f"wrote {len(arrays['y'])} drawings to {one_line(args.file)}")
    else:
        print(stats_table(kept.drawings()))
    return 0


def _progress(done: int, total: int) -> None:
    """A long import's progress on stderr, one line rewritten in place."""
    end = "\n" if done == total else "\r"
    print(f"kept {done:,} of {total:,} drawings", end=end, file=sys.stderr, flush=True)


def stats_table(drawings: list) -> str:
    """Counts per digit and each model's accuracy on the kept drawings, as a plain-text table."""
    from digitdraw.drawings import store

    if not drawings:
        return "no drawings kept yet"
    counts = np.bincount([d.label for d in drawings], minlength=NUM_CLASSES)
    lines = ["digit  " + " ".join(f"{digit:>5}" for digit in range(NUM_CLASSES)) + "  total"]
    lines.append("kept   " + " ".join(f"{count:>5}" for count in counts) + f"  {len(drawings):>5}")
    lines += ["", f"{'model':<7}{'right':>7}{'of':>7}{'accuracy':>10}"]
    for model_id, (right, total) in store.accuracy(drawings).items():
        lines.append(f"{model_id:<7}{right:>7}{total:>7}{right / total:>10.2%}")
    return "\n".join(lines)
