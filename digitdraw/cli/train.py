"""``python -m digitdraw train``: the study's models (``--model``), or a network of your own design
(``--name``), on MNIST and optionally the drawings users kept (``--drawings``).

Every option is checked, and the kept drawings read and split, before any slow work: a bad request
prints one sentence, writes nothing and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from digitdraw.cli.arguments import BAD_REQUEST, INTERRUPTED, fail, model_ids
from digitdraw.drawings import kept_drawings
from digitdraw.drawings.store import StoreError
from digitdraw.learning import kept_split
from digitdraw.learning.config import RECIPE_KEYS, RECIPES, STUDY_RECIPE, NetworkSettings, recipe_name
from digitdraw.learning.distill import DEFAULT_TEMPERATURE, DEFAULT_WEIGHT
from digitdraw.learning.kept_split import KeptSplit
from digitdraw.serving.files import check_folder_writable
from digitdraw.serving.saved_models import model_dir

# The study's networks' recipe when --recipe is not given.
DEFAULT_RECIPE = "improved"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``train`` and its options."""
    parser = commands.add_parser(
        "train",
        help="train models and write them to saved_models/",
        description="Train the study's models (--model), or one network of your own (--name with --hidden "
        "and --activation), saved as saved_models/custom/NAME/.",
    )
    parser.add_argument(
        "--model", nargs="+", default=None, metavar="ID", help="the study's model ids, or 'all' (default)"
    )
    parser.add_argument("--name", default=None, help="train a network of your own under this name")
    parser.add_argument(
        "--hidden", nargs="+", type=int, default=None, metavar="UNITS", help="hidden layer sizes"
    )
    parser.add_argument("--activation", default=None, help="sigmoid, relu, tanh or gelu")
    parser.add_argument("--optimizer", default=None, help="study (default), adam or sgd")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the optimizer's)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 128)")
    parser.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    parser.add_argument("--force", action="store_true", help="replace a network of the same name")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs per model")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default saved_models/)")
    parser.add_argument(
        "--limit", type=int, default=None, help="train on the first N images only (smoke runs)"
    )
    parser.add_argument("--drawn", type=int, default=None, help="size of the drawn-digit evaluation set")
    parser.add_argument(
        "--recipe",
        choices=("improved", "study"),
        default=None,
        help="the study's models' training recipe: improved (default; the study's is trained beside it "
        "as a measured baseline) or the study's own",
    )
    parser.add_argument(
        "--strokes", type=float, default=None, metavar="SHARE", help="share of digits redrawn as pen strokes"
    )
    parser.add_argument(
        "--elastic", type=float, default=None, metavar="SHARE", help="share of digits elastically distorted"
    )
    parser.add_argument(
        "--thickness", type=int, default=None, metavar="PIXELS", help="strokes thickened or thinned by up to"
    )
    parser.add_argument(
        "--teacher",
        type=int,
        default=None,
        metavar="ID",
        help="distil this saved model (e.g. 6, the CNN) into the ones trained",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help=f"the teacher's softening temperature (default {DEFAULT_TEMPERATURE:g})",
    )
    parser.add_argument(
        "--distill-weight",
        type=float,
        default=None,
        metavar="SHARE",
        help=f"the teacher's weight in the loss; the labels get the rest (default {DEFAULT_WEIGHT:g})",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="do not train the study's recipe beside another one"
    )
    parser.add_argument(
        "--drawings",
        nargs="?",
        const="",
        default=None,
        metavar="URL_OR_NPZ",
        help="train on the drawings users kept too: a store's SQLAlchemy URL, a SQLite file or an .npz from "
        "`drawings export` (alone: $DIGITDRAW_DATABASE_URL or data/drawings.sqlite); 20%% are held out "
        "by what each shows, never trained on, and scored",
    )
    parser.add_argument(
        "--drawings-repeats",
        type=int,
        default=None,
        metavar="N",
        help="times each kept training drawing appears in an epoch, augmented like MNIST (default 10, 1-100)",
    )
    parser.set_defaults(run=run, parser=parser)


def network_settings(args: argparse.Namespace) -> NetworkSettings:
    """The settings of a network of one's own, checked; ValueError says what is wrong."""
    if args.model is not None:
        raise ValueError("--model trains the study's networks, --name one of your own: give one of them")
    recipe_options = {
        "--recipe": args.recipe,
        "--drawn": args.drawn,
        "--no-baseline": args.no_baseline or None,
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
            f"{', '.join(given_recipe)} apply to the study's networks (--model); a network of your own "
            "trains by --hidden, --activation and its optimizer"
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
        optimizer=args.optimizer or "study",
        augmentation=not args.no_augment,
        seed=args.seed,
        **{key: value for key, value in given.items() if value is not None},
    )
    if args.out is not None:
        check_folder_writable(args.out)
    if model_dir(settings.name, args.out).exists() and not args.force:
        raise ValueError(
            f"a network named {settings.name!r} exists already: choose another name, or add --force"
        )
    return settings


def drawings_repeats(args: argparse.Namespace) -> int | None:
    """How often each kept training drawing appears in an epoch, checked; None without ``--drawings``."""
    if args.drawings is None:
        if args.drawings_repeats is not None:
            raise ValueError("--drawings-repeats weighs the kept drawings: add --drawings")
        return None
    given = args.drawings_repeats
    return kept_split.check_repeats(given if given is not None else kept_split.DEFAULT_REPEATS)


def kept_split_or_exit(args: argparse.Namespace, repeats: int | None) -> KeptSplit | None:
    """The kept drawings ``--drawings`` names, read and split for training; None without it. A store that
    cannot be read, a bad file or too few drawings print one line and exit with status 1."""
    if repeats is None:
        return None
    try:
        return kept_split.split(kept_drawings.read(args.drawings), repeats)
    except (ValueError, StoreError) as error:
        if args.debug:
            raise
        sys.exit(fail("train --drawings", error))


def train_own_network(args: argparse.Namespace) -> int:
    """Train one network of one's own design, with a progress bar of per-epoch metrics."""
    try:
        settings = network_settings(args)
        repeats = drawings_repeats(args)
    except ValueError as error:
        # One line, and nothing written.
        return fail("train", error, BAD_REQUEST)
    kept = kept_split_or_exit(args, repeats)
    settings = replace(settings, kept_repeats=repeats)  # Checked already: the card records it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from digitdraw.learning.train import Monitor, ProgressBar, summary_line, train_network

    bar = ProgressBar(settings.name, settings.epochs, stream=sys.stderr)

    def epoch_done(history) -> None:
        bar.update(
            history.epoch[-1],
            f"loss {history.train.loss[-1]:.3f}  train {history.train.accuracy[-1]:.2%}  "
            f"val {history.validation.accuracy[-1]:.2%}  test {history.test.accuracy[-1]:.2%}",
        )

    try:
        monitor = Monitor(epoch_done=epoch_done)
        trained = train_network(settings, out_dir=args.out, monitor=monitor, kept=kept, overwrite=args.force)
    except KeyboardInterrupt:
        print("\nInterrupted: nothing was saved.", file=sys.stderr)
        return INTERRUPTED
    print(summary_line(trained))
    print(f"saved in {trained.directory}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Train a network of one's own (``--name``) or the study's models."""
    if args.name is not None:
        return train_own_network(args)
    if args.hidden is not None or args.activation is not None:
        args.parser.error("--hidden and --activation design a network of your own: give it a --name")
    own_options = {
        "--optimizer": args.optimizer,
        "--lr": args.lr,
        "--batch": args.batch,
        "--no-augment": args.no_augment or None,
        "--force": args.force or None,
    }
    given_own = [option for option, value in own_options.items() if value is not None]
    if given_own:
        args.parser.error(
            f"{', '.join(given_own)} apply to a network of your own (--name); the study's networks train by "
            "their recipe (--recipe)"
        )
    try:
        wanted = model_ids(args.model)
        if args.out is not None:
            check_folder_writable(args.out)
    except ValueError as error:
        args.parser.error(str(error))
    # TensorFlow logs harmless graph-rewrite notices at error level; keep the bar readable.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from digitdraw.learning.train import train_models

    overrides = {"seed": args.seed, "train_limit": args.limit}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.drawn is not None:
        overrides["drawn_eval_size"] = args.drawn
    recipe = RECIPES[args.recipe or DEFAULT_RECIPE]
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
        repeats = drawings_repeats(args)
    except ValueError as error:
        args.parser.error(str(error))
    # Read and split before any slow work: too few drawings or a bad file cost nothing.
    kept = kept_split_or_exit(args, repeats)
    if args.no_baseline or recipe_name(config) == "study":
        baseline = None
    from digitdraw.learning.distill import TeacherError

    try:
        train_models(wanted, config, out_dir=args.out, baseline=baseline, kept=kept)
    except TeacherError as error:
        # Checked before any training (missing, the student itself, other data): one line, nothing written.
        return fail("train", error, BAD_REQUEST)
    except KeyboardInterrupt:
        # Saves are atomic, so an interrupted run leaves every model as it was.
        print("\nInterrupted: models not yet saved keep their previous files.", file=sys.stderr)
        return INTERRUPTED
    return 0
