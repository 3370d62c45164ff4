"""``python -m digitdraw read IMAGE...``: the number each model reads in photos, scans or drawings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from digitdraw.cli.arguments import FAILED, fail, model_ids, one_line


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``read`` and its options."""
    parser = commands.add_parser(
        "read",
        help="read the number in photos, scans or drawings",
        description="Find the digits in each image (PNG, JPEG, WebP, BMP, GIF...; a photo of a page, a "
        "cheque, a whiteboard, or a drawing) and print the number each model reads, one line per image. A "
        "file that cannot be read gives one line on stderr and exit status 1; the others are still read.",
    )
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    parser.add_argument(
        "--model",
        nargs="+",
        default=["all"],
        metavar="ID",
        help="model ids, or 'all' (default); after the images, since it takes every word that follows",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON: per image, each digit's box and every model's probabilities",
    )
    parser.set_defaults(run=run, parser=parser)


def reading_json(path: Path, reading, wanted: list[int]) -> dict:
    """One image's reading by the models asked for (not their second opinions) as plain JSON values."""
    answered = [m for m in wanted if m in reading.probabilities]
    return {
        "image": str(path),
        "width": reading.size[0],
        "height": reading.size[1],
        "numbers": {str(m): reading.text(m) for m in answered},
        "sure": {str(m): reading.is_sure(m) for m in answered},
        "number_confidence": {str(m): round(reading.number_confidence(m), 6) for m in answered},
        "digits": [
            {
                "box": list(box),
                "line": line,
                "probabilities": {str(m): [round(float(p), 6) for p in reading.probabilities[m][index]]
                                  for m in answered},
            }
            for index, (box, line) in enumerate(zip(reading.boxes, reading.lines, strict=True))
        ],
        "errors": {str(m): message for m, message in reading.errors.items() if m in wanted},
        "left_out": [list(box) for box in reading.left_out],
        # The slant of the line, in degrees, where it was turned level before it was cut; else 0.
        "slant": 0.0 if reading.straightening is None else round(reading.straightening.degrees, 2),
    }  # fmt: skip


def answer(reading, model_id: int, name_the_model: bool) -> str:
    """One model's number, and which digit it doubts when it is not sure of the whole number."""
    text = reading.text(model_id) or "(no digits)"
    if name_the_model:
        text += f" (model {model_id})"
    doubtful = reading.doubtful_digit(model_id)
    return text if doubtful is None else f"{text} (not sure: check digit {doubtful + 1})"


def run(args: argparse.Namespace) -> int:
    """Read every image; one line (or one JSON object) per image, one stderr line per bad file."""
    from digitdraw.reading.read import read_digits

    try:
        wanted = list(dict.fromkeys(model_ids(args.model)))  # Each model once, however often it is named.
    except ValueError as error:
        args.parser.error(str(error))
    status, results = 0, []
    for path in args.images:
        try:
            reading = read_digits(path, wanted)
        except ValueError as error:
            if args.debug:
                raise
            status = fail("read", error)  # One line for this file; the others are still read.
            continue
        if args.json:
            results.append(reading_json(path, reading, wanted))
        else:
            answers = [answer(reading, m, len(wanted) > 1) for m in wanted if m in reading.probabilities]
            answers += [
                f"model {m} unavailable: {message}" for m, message in reading.errors.items() if m in wanted
            ]
            print(f"{one_line(path)}: {one_line(', '.join(answers))}")
    if args.json:
        print(json.dumps(results, indent=2))
    return FAILED if status else 0
