"""``python -m digitdraw models upgrade``: rewrite saved models of the format's previous version in the
current one, in place (``saved_models.upgrade``), the study's and every network someone trained."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitdraw.cli.arguments import FAILED, fail
from digitdraw.serving import digit_score, saved_models
from digitdraw.serving.networks import MODEL_IDS


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``models`` and its action."""
    parser = commands.add_parser("models", help="look after the saved models")
    actions = parser.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser(
        "upgrade",
        help=f"rewrite saved models of format {saved_models.UPGRADABLE_VERSION} in format "
        f"{saved_models.FORMAT_VERSION}",
    )
    upgrade.add_argument(
        "--root", type=Path, default=None, help="saved-models folder (default saved_models/)"
    )
    parser.set_defaults(run=run, parser=parser)


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
