"""Command line: ``python -m digitdraw train ...`` trains the study's models, or with ``--name`` a network
of your own design, with ``--drawings`` on the drawings users kept too; ``python -m digitdraw worker``
trains the networks queued on the Train page;
``python -m digitdraw calibrate ...`` fits each saved model's temperature and digit-score threshold;
``python -m digitdraw drawings ...`` imports, exports and summarises the drawings users kept;
``python -m digitdraw read ...`` reads the numbers in photos and scans. ``--help`` on each says more."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitdraw.distill import DEFAULT_TEMPERATURE, DEFAULT_WEIGHT
from digitdraw.models import MODEL_IDS

if TYPE_CHECKING:  # Only for the annotation: the command imports its modules when a command needs them.
    from digitdraw.kept_drawings import KeptSplit


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
    train = commands.add_parser(
        "train",
        help="train models and write them to saved_models/",
        description="Train the study's models (--model), or one network of your own (--name with --hidden "
        "and --activation), saved as saved_models/custom/NAME/.",
    )
    train.add_argument(
        "--model", nargs="+", default=None, metavar="ID", help="the study's model ids, or 'all' (default)"
    )
    train.add_argument("--name", default=None, help="train a network of your own under this name")
    train.add_argument(
        "--hidden", nargs="+", type=int, default=None, metavar="UNITS", help="hidden layer sizes"
    )
    train.add_argument("--activation", default=None, help="sigmoid, relu, tanh or gelu")
    train.add_argument("--optimizer", default="study", help="study (default), adam or sgd")
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: the optimizer's)")
    train.add_argument("--batch", type=int, default=None, help="batch size (default 128)")
    train.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    train.add_argument("--force", action="store_true", help="replace a network of the same name")
    train.add_argument("--epochs", type=int, default=None, help="maximum epochs per model")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--out", type=Path, default=None, help="output folder (default saved_models/)")
    train.add_argument(
        "--limit", type=int, default=None, help="train on the first N images only (smoke runs)"
    )
    train.add_argument("--drawn", type=int, default=None, help="size of the drawn-digit evaluation set")
    train.add_argument(
        "--recipe",
        choices=("improved", "study"),
        default="improved",
        help="the study's models' training recipe: improved (default; the study's is trained beside it "
        "as a measured baseline) or the study's own",
    )
    train.add_argument(
        "--strokes", type=float, default=None, metavar="SHARE", help="share of digits redrawn as pen strokes"
    )
    train.add_argument(
        "--elastic", type=float, default=None, metavar="SHARE", help="share of digits elastically distorted"
    )
    train.add_argument(
        "--thickness", type=int, default=None, metavar="PIXELS", help="strokes thickened or thinned by up to"
    )
    train.add_argument(
        "--teacher",
        type=int,
        default=None,
        metavar="ID",
        help="distil this saved model (e.g. 6, the CNN) into the ones trained",
    )
    train.add_argument(
        "--temperature",
        type=float,
        default=None,
        help=f"the teacher's softening temperature (default {DEFAULT_TEMPERATURE:g})",
    )
    train.add_argument(
        "--distill-weight",
        type=float,
        default=None,
        metavar="SHARE",
        help=f"the teacher's weight in the loss; the labels get the rest (default {DEFAULT_WEIGHT:g})",
    )
    train.add_argument(
        "--no-baseline", action="store_true", help="do not train the study's recipe beside another one"
    )
    train.add_argument(
        "--drawings",
        nargs="?",
        const="",
        default=None,
        metavar="URL_OR_NPZ",
        help="train on the drawings users kept too: a store's SQLAlchemy URL, a SQLite file or an .npz from "
        "`drawings export` (alone: $DIGITDRAW_DATABASE_URL or data/drawings.sqlite); 20%% are held out by "
        "id, never trained on, and scored",
    )
    train.add_argument(
        "--drawings-repeats",
        type=int,
        default=None,
        metavar="N",
        help="times each kept training drawing appears in an epoch, augmented like MNIST (default 10, 1-100)",
    )

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

    worker = commands.add_parser(
        "worker",
        help="train the networks queued on the Train page, one at a time",
        description="Take training jobs from the queue (in the drawings store's database) one at a time and "
        "save each network under MODELS/custom/NAME/. Run one per core you give to training, on any machine "
        "that reaches the database and the models folder.",
    )
    worker.add_argument("--once", action="store_true", help="train at most one queued job, then exit")
    worker.add_argument("--threads", type=int, default=None, help="cores to train on (default 1)")
    worker.add_argument(
        "--database", default=None, metavar="URL", help="SQLAlchemy URL (default: $DIGITDRAW_DATABASE_URL or "
        "data/drawings.sqlite)",
    )  # fmt: skip
    worker.add_argument(
        "--models", type=Path, default=None, metavar="DIR", help="models folder (default: saved_models/)"
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
        arrays = store.export_arrays(kept.drawings(args.session))
        with atomic_write(args.file) as handle:
            np.savez_compressed(handle, **arrays)
        print(f"wrote {len(arrays['y'])} drawings to {args.file}")
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


def _network_settings(args: argparse.Namespace):
    """The settings of a network of one's own, checked; ValueError says what is wrong."""
    from digitdraw.saved_models import model_dir
    from digitdraw.train import NetworkSettings

    if args.model is not None:
        raise ValueError("--model trains the study's networks, --name one of your own: give one of them")
    recipe_options = {
        "--teacher": args.teacher,
        "--temperature": args.temperature,
        "--distill-weight": args.distill_weight,
        "--strokes": args.strokes,
        "--elastic": args.elastic,
        "--thickness": args.thickness,
    }
    given_recipe = [option for option, value in recipe_options.items() if value is not None]
    if given_recipe:
        raise ValueError(
            f"{', '.join(given_recipe)} change the study's networks' recipe (--model); a network of your "
            "own trains by --hidden, --activation and its optimizer"
        )
    if args.hidden is None or args.activation is None:
        raise ValueError("a network of your own needs --hidden (layer sizes) and --activation")
    given = {
        "learning_rate": args.lr,
        "batch_size": args.batch,
        "epochs": args.epochs,
        "train_limit": args.limit,
    }
    settings = NetworkSettings(
        name=args.name,
        hidden=tuple(args.hidden),
        activation=args.activation,
        optimizer=args.optimizer,
        augmentation=not args.no_augment,
        seed=args.seed,
        **{key: value for key, value in given.items() if value is not None},
    )
    if model_dir(settings.name, args.out).exists() and not args.force:
        raise ValueError(
            f"a network named {settings.name!r} exists already: choose another name, or add --force"
        )
    return settings


def _drawings_repeats(args: argparse.Namespace) -> int | None:
    """How often each kept training drawing appears in an epoch, checked; None without ``--drawings``."""
    from digitdraw import kept_drawings

    if args.drawings is None:
        if args.drawings_repeats is not None:
            raise ValueError("--drawings-repeats weighs the kept drawings: add --drawings")
        return None
    given = args.drawings_repeats
    return kept_drawings.check_repeats(given if given is not None else kept_drawings.DEFAULT_REPEATS)


def _kept_split_or_exit(args: argparse.Namespace, repeats: int | None) -> KeptSplit | None:
    """The kept drawings ``--drawings`` names, read and split for training; None without it. A store that
    cannot be read, a bad file or too few drawings print one line and exit with status 1."""
    from digitdraw import kept_drawings
    from digitdraw.store import StoreError

    if repeats is None:
        return None
    try:
        return kept_drawings.split(kept_drawings.read(args.drawings), repeats)
    except (ValueError, StoreError) as error:
        print(f"python -m digitdraw train --drawings: {error}", file=sys.stderr)
        sys.exit(1)


def _train_network(args: argparse.Namespace) -> int:
    """Train one network of one's own design, with a progress bar of per-epoch metrics."""
    try:
        settings = _network_settings(args)
        repeats = _drawings_repeats(args)
    except ValueError as error:
        # One line, and nothing written.
        print(f"python -m digitdraw train: {error}", file=sys.stderr)
        return 2
    kept = _kept_split_or_exit(args, repeats)
    settings = replace(settings, kept_repeats=repeats)  # Checked already: the card records it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from digitdraw.train import Monitor, ProgressBar, summary_line, train_network

    bar = ProgressBar(settings.name, settings.epochs, stream=sys.stderr)

    def epoch_done(history) -> None:
        bar.update(
            history.epoch[-1],
            f"loss {history.train.loss[-1]:.3f}  train {history.train.accuracy[-1]:.2%}  "
            f"val {history.validation.accuracy[-1]:.2%}  test {history.test.accuracy[-1]:.2%}",
        )

    try:
        trained = train_network(settings, out_dir=args.out, monitor=Monitor(epoch_done=epoch_done), kept=kept)
    except KeyboardInterrupt:
        print("\nInterrupted: nothing was saved.", file=sys.stderr)
        return 130
    print(summary_line(trained))
    print(f"saved in {trained.directory}")
    return 0


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
    if args.command == "worker":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from digitdraw import worker
        from digitdraw.store import StoreError

        worker.be_nice()
        try:
            threads = args.threads if args.threads is not None else worker.THREADS
            return worker.run(args.database, args.models, args.once, stop_on_sigterm=True, threads=threads)
        except (ValueError, StoreError) as error:
            print(f"python -m digitdraw worker: {error}", file=sys.stderr)
            return 1
    if args.command == "calibrate":
        from digitdraw.calibration import calibrate_models
        from digitdraw.saved_models import SavedModelError

        try:
            model_ids = _model_ids(args.model or ["all"])
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
        try:
            calibrate_models(model_ids, args.root)
        except SavedModelError as error:
            print(f"python -m digitdraw calibrate: {error}", file=sys.stderr)
            return 1
        return 0
    if args.name is not None:
        return _train_network(args)
    if args.hidden is not None or args.activation is not None:
        parser.error("--hidden and --activation design a network of your own: give it a --name")
    try:
        model_ids = _model_ids(args.model or ["all"])
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    # TensorFlow logs harmless graph-rewrite notices at error level; keep the bar readable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from digitdraw.train import RECIPE_KEYS, RECIPES, STUDY_RECIPE, recipe_name, train_models

    overrides = {"seed": args.seed, "train_limit": args.limit}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.drawn is not None:
        overrides["drawn_eval_size"] = args.drawn
    recipe = RECIPES[args.recipe]
    for key, value in (
        ("stroke_share", args.strokes),
        ("teacher", args.teacher),
        ("distill_temperature", args.temperature),
        ("distill_weight", args.distill_weight),
    ):
        if value is not None:
            overrides[key] = value
    augmentation = {
        key: value
        for key, value in (("elastic_probability", args.elastic), ("thickness_pixels", args.thickness))
        if value is not None
    }
    try:
        if augmentation:
            overrides["augmentation"] = replace(recipe.augmentation, **augmentation)
        config = replace(recipe, **overrides)
        baseline = replace(STUDY_RECIPE, **{k: v for k, v in overrides.items() if k not in RECIPE_KEYS})
        repeats = _drawings_repeats(args)
    except ValueError as error:
        parser.error(str(error))
    # Read and split before any slow work: too few drawings or a bad file cost nothing.
    kept = _kept_split_or_exit(args, repeats)
    if args.no_baseline or recipe_name(config) == "study":
        baseline = None
    from digitdraw.distill import TeacherError

    try:
        train_models(model_ids, config, out_dir=args.out, baseline=baseline, kept=kept)
    except TeacherError as error:
        # Checked before any training (missing, the student itself, other data): one line, nothing written.
        print(f"python -m digitdraw train: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Saves are atomic, so an interrupted run leaves every model as it was.
        print("\nInterrupted: models not yet saved keep their previous files.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
