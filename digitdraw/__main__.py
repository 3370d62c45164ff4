"""Command line: ``python -m digitdraw train ...`` trains models; ``python -m digitdraw calibrate ...``
fits each saved model's temperature and digit-score threshold; ``python -m digitdraw drawings ...``
imports, exports and summarises the drawings users kept; ``python -m digitdraw read ...`` reads the
numbers in photos and scans. ``--help`` on each says more."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

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

    calibrate = commands.add_parser(
        "calibrate",
        help="fit each saved model's temperature and digit-score threshold on MNIST (calibration.json)",
    )
    calibrate.add_argument(
        "--model", nargs="+", default=["all"], metavar="ID", help="model ids, or 'all' (default)"
    )
    calibrate.add_argument(
        "--root", type=Path, default=None, help="saved-models folder (default saved_models/)"
    )

    drawings = commands.add_parser("drawings", help="import, export and summarise kept drawings")
    drawings.add_argument(
        "--database", default=None, metavar="URL", help="SQLAlchemy URL (default: $DIGITDRAW_DATABASE_URL or "
        "data/drawings.sqlite)",
    )  # fmt: skip
    actions = drawings.add_subparsers(dest="action", required=True)
    load = actions.add_parser(
        "import",
        help="keep the drawings of an .npz file (arrays x and y), all or none",
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

    read = commands.add_parser(
        "read",
        help="read the number in photos, scans or drawings",
        description="Find the digits in each image (PNG, JPEG, WebP, BMP, GIF...; a photo of a page, a "
        "cheque, a whiteboard, or a drawing) and print the number each model reads, one line per image. A "
        "file that cannot be read gives one line on stderr and exit status 1; the others are still read.",
    )
    read.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    read.add_argument(
        "--model", nargs="+", default=["all"], metavar="ID", help="model ids, or 'all' (default)"
    )
    read.add_argument(
        "--json",
        action="store_true",
        help="print JSON: per image, each digit's box and every model's probabilities",
    )
    return parser


def _read_model_ids(values: list[str]) -> list:
    """The models asked for by their ids as written (ids are matched as text, whatever their type)."""
    if not values or values == ["all"]:
        return list(MODEL_IDS)
    by_name = {str(model_id): model_id for model_id in MODEL_IDS}
    unknown = [value for value in values if value not in by_name]
    if unknown:
        raise argparse.ArgumentTypeError(f"model must be 'all' or one of {list(by_name)}, got {unknown[0]!r}")
    return [by_name[value] for value in values]


def _reading_json(path: Path, reading) -> dict:
    """One image's reading as plain JSON values."""
    return {
        "image": str(path),
        "width": reading.size[0],
        "height": reading.size[1],
        "numbers": {str(m): reading.text(m) for m in reading.probabilities},
        "digits": [
            {
                "box": list(box),
                "line": line,
                "probabilities": {str(m): [round(float(p), 6) for p in reading.probabilities[m][index]]
                                  for m in reading.probabilities},
            }
            for index, (box, line) in enumerate(zip(reading.boxes, reading.lines, strict=True))
        ],
        "errors": {str(m): message for m, message in reading.errors.items()},
    }  # fmt: skip


def _read(args: argparse.Namespace, model_ids: list) -> int:
    """Read every image; one line (or one JSON object) per image, one stderr line per bad file."""
    from digitdraw.read import read_digits

    status, results = 0, []
    for path in args.images:
        try:
            reading = read_digits(path, model_ids)
        except ValueError as error:
            print(f"python -m digitdraw read: {error}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            results.append(_reading_json(path, reading))
        else:
            answers = [
                f"{reading.text(m) or '(no digits)'}" + (f" (model {m})" if len(model_ids) > 1 else "")
                for m in model_ids
                if m in reading.probabilities
            ]
            answers += [f"model {m} unavailable: {message}" for m, message in reading.errors.items()]
            print(f"{path}: {', '.join(answers)}")
    if args.json:
        print(json.dumps(results, indent=2))
    return status


def _drawings(args: argparse.Namespace) -> int:
    from digitdraw import collect, store
    from digitdraw.files import atomic_write

    kept = store.open_store(args.database)
    if args.action == "import":
        new = collect.from_arrays(*collect.read_npz(args.file), session_id=args.session)
        kept.save_many(new)
        print(f"kept {len(new)} drawings from {args.file} ({kept.count()} in the store)")
    elif args.action == "export":
        x, y = store.as_arrays(kept.drawings(args.session))
        with atomic_write(args.file) as handle:
            np.savez_compressed(handle, x=x, y=y)
        print(f"wrote {len(y)} drawings to {args.file}")
    else:
        print(_stats_table(kept.drawings()))
    return 0


def _stats_table(drawings: list) -> str:
    from digitdraw import store

    if not drawings:
        return "no drawings kept yet"
    counts = np.bincount([d.label for d in drawings], minlength=10)
    lines = ["digit  " + " ".join(f"{digit:>5}" for digit in range(10)) + "  total"]
    lines.append("kept   " + " ".join(f"{count:>5}" for count in counts) + f"  {len(drawings):>5}")
    lines += ["", f"{'model':<7}{'right':>7}{'of':>7}{'accuracy':>10}"]
    for model_id, (right, total) in store.accuracy(drawings).items():
        lines.append(f"{model_id:<7}{right:>7}{total:>7}{right / total:>10.2%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "read":
        try:
            return _read(args, _read_model_ids(args.model))
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
    if args.command == "drawings":
        from digitdraw.store import StoreError

        try:
            return _drawings(args)
        except (ValueError, StoreError) as error:
            # One line a person can act on; nothing was kept.
            print(f"python -m digitdraw drawings {args.action}: {error}", file=sys.stderr)
            return 1
    try:
        model_ids = _model_ids(args.model)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.command == "calibrate":
        from digitdraw.calibration import calibrate_models
        from digitdraw.saved_models import SavedModelError

        try:
            calibrate_models(model_ids, args.root)
        except SavedModelError as error:
            print(f"python -m digitdraw calibrate: {error}", file=sys.stderr)
            return 1
        return 0
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
