"""What several commands share: model ids as given on the command line, the models folder option, one
line per result, and the one-sentence failure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digitdraw.serving.networks import MODEL_IDS, ModelId, check_custom_name

# Bad requests exit with argparse's status; a command that could not do its work with this one.
FAILED = 1
BAD_REQUEST = 2
# A command stopped with Ctrl-C, as a shell reports it (128 + SIGINT).
INTERRUPTED = 130


def add_models_folder(parser: argparse.ArgumentParser, what: str = "models folder") -> None:
    """Add ``--models DIR``: the saved-models folder a command works in (saved_models/ unless given)."""
    parser.add_argument(
        "--models", type=Path, default=None, metavar="DIR", help=f"{what} (default: saved_models/)"
    )


def model_ids(values: list[str] | None) -> list[int]:
    """The study's model ids a ``--model`` names, matched as written ('all', the default, for every one);
    ValueError for any other."""
    if not values or values == ["all"]:
        return list(MODEL_IDS)
    by_name = {str(model_id): model_id for model_id in MODEL_IDS}
    unknown = [value for value in values if value not in by_name]
    if unknown:
        raise ValueError(f"model must be 'all' or one of {list(MODEL_IDS)}, got {unknown[0]!r}")
    return [by_name[value] for value in values]


def one_line(text: object) -> str:
    """``text`` with every character that is not printable (a newline in a file name among them) written
    as its escape, so that one result stays one line and no name can forge another line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def fail(command: str, error: object, status: int = FAILED) -> int:
    """Print one sentence for a person on stderr, naming the command; return the exit status."""
    print(f"python -m digitdraw {command}: {one_line(error)}", file=sys.stderr)
    return status


def model_or_network_ids(values: list[str] | None) -> list[ModelId]:
    """Like ``model_ids``, and a network's name (trained or opened here) stands for itself."""
    if not values or values == ["all"]:
        return list(MODEL_IDS)
    by_name = {str(model_id): model_id for model_id in MODEL_IDS}
    try:
        return [by_name[value] if value in by_name else check_custom_name(value) for value in values]
    except ValueError as error:
        raise ValueError(
            f"model must be 'all', one of {list(MODEL_IDS)} or a network's name ({error})"
        ) from None
