"""How well ``read_digits`` reads whole numbers, per model, on both parts of the evaluation set.

Run from the repository root: ``.venv/bin/python -m experiments.read_accuracy``. The set is built by
``digitdraw.reading.numbers`` from MNIST test digits: the *tuning* part (seed 0, first half of the test set)
is the one segmentation was tuned on; the *held-out* part (seed 1, second half) never was.

Per digit: a true digit counts as right when a found box overlaps it (intersection over union at
least 0.3, one box per digit) and that box reads as the true digit. Whole number: the digits read,
in order, are exactly the number. Segmentation is the same for every model (its judge is all of
them together), so each model's figures differ only in how it reads the digits found.
"""

from __future__ import annotations

import argparse
import time

from digitdraw import MODEL_IDS, load_mnist, read_digits
from digitdraw.reading import numbers


def main() -> None:
    """Print per-digit and whole-number accuracy per model and part."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="numbers per part (default 500)")
    args = parser.parse_args()
    _, (x_test, y_test) = load_mnist()
    print(f"{'part':<10}{'model':>6}{'numbers':>9}{'digits':>8}{'found':>8}{'per digit':>11}{'whole':>8}")
    for part in numbers.PARTS:
        samples = numbers.number_set(x_test, y_test, args.count, part)
        started = time.perf_counter()
        readings = [read_digits(sample.image) for sample in samples]
        seconds = time.perf_counter() - started
        total = sum(len(sample.text) for sample in samples)
        found = sum(
            sum(j is not None for j in numbers.match_boxes(sample.boxes, reading.boxes))
            for sample, reading in zip(samples, readings, strict=True)
        )
        for model_id in MODEL_IDS:
            right = whole = 0
            by_kind: dict[str, list[int]] = {}
            for sample, reading in zip(samples, readings, strict=True):
                digits = reading.digits(model_id)
                right += numbers.digits_right(sample, reading.boxes, digits)
                exact = "".join(map(str, digits)) == sample.text
                whole += exact
                counts = by_kind.setdefault(sample.kind, [0, 0])
                counts[0] += exact
                counts[1] += 1
            kinds = ", ".join(f"{kind} {w / n:.1%} of {n}" for kind, (w, n) in sorted(by_kind.items()))
            print(
                f"{part:<10}{model_id!s:>6}{len(samples):>9}{total:>8}{found / total:>8.1%}"
                f"{right / total:>11.2%}{whole / len(samples):>8.1%}   whole by kind: {kinds}"
            )
        print(f"{part:<10} {seconds / len(samples) * 1e3:.1f} ms per number, all models\n")


if __name__ == "__main__":
    main()
