"""How well ``read_digits`` reads whole numbers, per model, on both parts of the evaluation set.

Run from the repository root: ``.venv/bin/python -m experiments.read_accuracy``. Two sets, each built by
``digitdraw.reading.numbers`` in a *tuning* part (the one segmentation may be tuned on) and a *held-out*
part (never tuned on): numbers of MNIST test digits, which flatter (the networks learned from MNIST's
hands), and numbers of digits by other hands (scikit-learn's 43 people and Hershey fonts) on harder
pages: touching neighbours, pen skips, rules and form boxes, table edges, perspective; and the same
numbers written at a slant of up to 20 degrees either way ("slanted").

"count" is the share of numbers in which as many digits were found as the number has. Per digit: a
true digit counts as right when a found box overlaps it (intersection over union at
least 0.3, one box per digit) and that box reads as the true digit. Whole number: the digits read,
in order, are exactly the number. Segmentation is the same for every model (its judge is all of
them together), so each model's figures differ only in how it reads the digits found.
"turned" is the share of numbers whose line was straightened before it was cut.
"sure" is the share of numbers the reading calls sure (``NumberReading.is_sure``: the model and its
second opinion agree, and surely enough), "right if sure" the share of those read exactly right.
"""

from __future__ import annotations

import argparse
import time

from digitdraw import MODEL_IDS, load_mnist, read_digits
from digitdraw.reading import numbers


def sets(count: int, which: list[str]) -> dict[str, list[numbers.NumberSample]]:
    """Each chosen set's numbers, by "set / part"."""
    built = {}
    if "mnist" in which:
        _, (x_test, y_test) = load_mnist()
        for part in numbers.PARTS:
            built[f"mnist / {part}"] = numbers.number_set(x_test, y_test, count, part)
    if "other-hands" in which:
        for part in numbers.PARTS:
            built[f"other hands / {part}"] = numbers.other_hands_number_set(count, part)
    if "slanted" in which:
        for part in numbers.PARTS:
            built[f"slanted / {part}"] = numbers.other_hands_number_set(count, part, numbers.SLANTED)
    return built


def main() -> None:
    """Print per-digit, digit-count and whole-number accuracy per model, set and part."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="numbers per part (default 500)")
    parser.add_argument(
        "--sets",
        nargs="+",
        default=["mnist", "other-hands", "slanted"],
        choices=["mnist", "other-hands", "slanted"],
    )
    parser.add_argument("--models", type=int, nargs="+", default=list(MODEL_IDS))
    args = parser.parse_args()
    print(
        f"{'set / part':<24}{'model':>6}{'numbers':>9}{'digits':>8}{'found':>8}{'per digit':>11}"
        f"{'count':>8}{'whole':>8}{'sure':>8}{'right if sure':>15}"
    )
    for name, samples in sets(args.count, args.sets).items():
        started = time.perf_counter()
        readings = [read_digits(sample.image) for sample in samples]
        seconds = time.perf_counter() - started
        total = sum(len(sample.text) for sample in samples)
        found = sum(
            sum(j is not None for j in numbers.match_boxes(sample.boxes, reading.boxes))
            for sample, reading in zip(samples, readings, strict=True)
        )
        counted = sum(
            len(reading.boxes) == len(sample.text) for sample, reading in zip(samples, readings, strict=True)
        )
        for model_id in args.models:
            right = whole = sure = sure_right = 0
            by_kind: dict[str, list[int]] = {}
            for sample, reading in zip(samples, readings, strict=True):
                digits = reading.digits(model_id)
                right += numbers.digits_right(sample, reading.boxes, digits)
                exact = "".join(map(str, digits)) == sample.text
                whole += exact
                if reading.is_sure(model_id):
                    sure += 1
                    sure_right += exact
                counts = by_kind.setdefault(sample.kind, [0, 0])
                counts[0] += exact
                counts[1] += 1
            kinds = ", ".join(f"{kind} {w / n:.1%} of {n}" for kind, (w, n) in sorted(by_kind.items()))
            print(
                f"{name:<24}{model_id!s:>6}{len(samples):>9}{total:>8}{found / total:>8.1%}"
                f"{right / total:>11.2%}{counted / len(samples):>8.1%}{whole / len(samples):>8.1%}"
                f"{sure / len(samples):>8.1%}{sure_right / max(sure, 1):>15.1%}"
                f"   whole by kind: {kinds}"
            )
        turned = sum(reading.straightening is not None for reading in readings)
        print(
            f"{name:<24} {seconds / len(samples) * 1e3:.1f} ms per number, all models; "
            f"turned {turned / len(samples):.1%}\n"
        )


if __name__ == "__main__":
    main()
