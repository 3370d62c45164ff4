"""``python -m digitdraw models``: look after the saved networks.

- ``list``: every network, the study's and those trained or opened here;
- ``add FILE --name NAME``: open a Keras digit classifier (or DigitDraw's own ``.npz`` export) as a network
  of the app (``learning.opening``);
- ``export ID --format keras|npz --out FILE``: write a network and its model card (``learning.export``);
- ``remove NAME``: delete a network trained or opened here (the study's cannot be);
- ``upgrade``: rewrite saved models of the format's previous version in the current one, in place
  (``saved_models.upgrade``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from digitdraw.cli.arguments import BAD_REQUEST, FAILED, fail, model_or_network_ids, one_line
from digitdraw.serving import digit_score, saved_models
from digitdraw.serving.networks import MODEL_IDS, check_custom_name, is_custom

ROOT_HELP = "saved-models folder (default saved_models/)"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``models`` and its actions."""
    parser = commands.add_parser("models", help="list, open, export, remove and upgrade the saved networks")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every network: the study's and those trained or opened here")
    add = actions.add_parser("add", help="open a Keras digit classifier (.keras) or a DigitDraw .npz export")
    add.add_argument("file", type=Path, help="the .keras or .npz file")
    add.add_argument("--name", required=True, help="the network's name: letters, digits and dashes")
    export = actions.add_parser("export", help="write a network as .keras or .npz, with its model card (.md)")
    export.add_argument("model", help="a study model's id (1-6) or a network's name")
    export.add_argument("--format", choices=("keras", "npz"), default="keras", help="keras (default) or npz")
    export.add_argument(
        "--out", type=Path, default=None, help="the file to write (default: ./digitdraw-ID.FORMAT)"
    )
    remove = actions.add_parser("remove", help="delete a network trained or opened here")
    remove.add_argument("name", help="the network's name")
    upgrade = actions.add_parser(
        "upgrade",
        help=f"rewrite saved models of format {saved_models.UPGRADABLE_VERSION} in format "
        f"{saved_models.FORMAT_VERSION}",
    )
    for action, run_action in (
        (listing, run_list),
        (add, run_add),
        (export, run_export),
        (remove, run_remove),
    ):
        action.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
        action.set_defaults(run=run_action, parser=action)
    upgrade.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
    upgrade.set_defaults(run=run, parser=upgrade)


def run_list(args: argparse.Namespace) -> int:
    """One line per network: id, architecture, MNIST test accuracy and where it came from."""
    models = [*MODEL_IDS, *saved_models.custom_names(args.root)]
    for model_id in models:
        try:
            model = saved_models.load(model_id, args.root)
        except saved_models.SavedModelError as error:
            print(one_line(f"{model_id}: unavailable ({error})"))
            continue
        card = model.card
        origin = "the study's" if not is_custom(model_id) else "trained here"
        if card.opened is not None:
            origin = f"opened from {card.opened.file_name}"
        calibrated = "calibrated" if model.calibration is not None else "uncalibrated"
        print(
            one_line(
                f"{model_id}: {card.architecture.summary}, test {model.metrics.accuracy['test']:.2%}, "
                f"{origin}, {calibrated}"
            )
        )
    return 0


def run_add(args: argparse.Namespace) -> int:
    """Open a file as a network; one line saying what was decided, or one sentence why not."""
    from digitdraw.learning.opening import OpenError, open_network

    try:
        check_custom_name(args.name)
    except ValueError as error:
        return fail("models add", error, BAD_REQUEST)
    try:
        model = open_network(
            args.file, args.name, args.root, report=lambda step: print(f"  {step}", flush=True)
        )
    except OpenError as error:
        return fail("models add", error)
    opened, accuracy = model.card.opened, model.metrics.accuracy
    print(
        one_line(
            f"{args.name}: opened {opened.file_name} as {model.card.architecture.summary}; output read as "
            f"{opened.output}, input as {opened.input_scaling}; MNIST test {accuracy['test']:.2%}, drawn "
            f"digits {accuracy['drawn']:.2%}; in {opened.opened_seconds:.1f} s"
        )
    )
    for note in opened.notes:
        print(one_line(f"  {note}"))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write one network and its model card."""
    from digitdraw.learning.export import export, file_stem

    try:
        if args.model == "all":
            raise ValueError("name one network to export, not 'all'")
        (model_id,) = model_or_network_ids([args.model])
    except ValueError as error:
        return fail("models export", error, BAD_REQUEST)
    model = saved_models.load(model_id, args.root)  # One that cannot be loaded is cli.main's one sentence.
    out = args.out if args.out is not None else Path(f"{file_stem(model_id)}.{args.format}")
    written, card = export(model, args.format, out)
    print(one_line(f"{model_id}: wrote {written} and its model card {card}"))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Delete a network trained or opened here."""
    if args.name in {str(model_id) for model_id in MODEL_IDS}:
        return fail(
            "models remove", f"model {args.name} is one of the study's, which cannot be removed", BAD_REQUEST
        )
    try:
        name = check_custom_name(args.name)
    except ValueError as error:
        return fail("models remove", error, BAD_REQUEST)
    if not saved_models.delete_custom(name, args.root):
        return fail("models remove", f"there is no network named {name!r}")
    print(one_line(f"{name}: removed"))
    return 0


def _serves(model: saved_models.SavedModel) -> None:
    """Refuse an upgraded folder whose digit-score arrays the app could not serve (a calibration without
    the learned score, as format 2 allowed, among them)."""
    try:
        digit_score.detector_for(model)
    except (ValueError, IndexError, TypeError, KeyError) as error:
        raise saved_models.SavedModelError(
            f"{saved_models.NOVELTY_FILE} does not hold what format {saved_models.FORMAT_VERSION} needs "
            f"({error}); refit it with `python -m digitdraw calibrate`"
        ) from error


def run(args: argparse.Namespace) -> int:
    """Upgrade every model folder under the root; one line per folder, status 1 if any could not be."""
    status = 0
    model_ids = [*MODEL_IDS, *saved_models.custom_names(args.root)]
    for model_id in model_ids:
        directory = saved_models.model_dir(model_id, args.root)
        if not directory.is_dir():
            continue
        try:
            rewritten = saved_models.upgrade(directory, check=_serves)
        except saved_models.SavedModelError as error:
            status = fail("models upgrade", f"{directory}: {error}")
            continue
        done = f"rewrote {', '.join(rewritten)}" if rewritten else "already current"
        print(f"{directory}: {done} (format {saved_models.FORMAT_VERSION})")
    return FAILED if status else 0
