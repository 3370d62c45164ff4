"""Every model on digits by other hands: accuracy, how many the digit score turns away, and calibration.

Sets: MNIST test and digits drawn from MNIST test images (the figures every
model card holds), scikit-learn's 1,797 scanned 8x8 digits by 43 people
(upsampled and run through ``to_mnist``) and 1,000 Hershey-font digits drawn
like a canvas (``evalsets.py``). None of them was used to fit anything. For
each: accuracy of the network as it is, the share the digit score flags as
"not a digit" (wrongly: they are all digits), accuracy on the digits it
keeps, and expected calibration error with raw and temperature-scaled
probabilities. Then what calibration and the digit score add to one
answer of the Draw page, median and p95, against the same models uncalibrated,
against each model computing the scores that ignore the model (density,
learned score) on its own, as before they were shared, and against the
models answering with their own methods, without the committee member's energy.
``--per-digit`` prints, instead of the latency, each model's accuracy digit by
digit on every set, which shows where a figure comes from: the Hershey set
has six fonts, so a model that misreads one font's 6 misreads a sixth of its 6s
at once; and, per set, how many digits no model reads: errors every model
shares, a floor under each one's.

    .venv/bin/python -m experiments.real_hands [--timing-only | --per-digit]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from digitdraw.learning import evalsets
from digitdraw.learning.calibration import expected_calibration_error
from digitdraw.learning.data import load_mnist
from digitdraw.learning.drawn import drawn_digits
from digitdraw.serving.inference import answer_with, classify_batch, classify_with, load_models
from digitdraw.serving.preprocess import preprocess_steps


def main() -> None:
    """Print one table per set, every model a row."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timing-only", action="store_true", help="only the Draw-page latency")
    parser.add_argument("--per-digit", action="store_true", help="accuracy digit by digit, no latency")
    args = parser.parse_args()
    _, (raw_test, y_test) = load_mnist()
    drawn, y_drawn = drawn_digits(raw_test, y_test, 2000, seed=0)
    if args.timing_only:
        timing(drawn[:50])
        return
    others = evalsets.other_hands()
    (scanned, y_scanned), (hershey, y_hershey) = others["scanned"], others["hershey"]
    sets = {
        "MNIST test (10,000)": (raw_test, y_test),
        "drawn from MNIST test (2,000)": (drawn, y_drawn),
        "scanned, 43 people (1,797)": (scanned, y_scanned),
        "Hershey fonts (1,000)": (hershey, y_hershey),
    }
    models, errors = load_models()
    for model_id, message in errors.items():
        print(f"model {model_id}: {message}")
    if args.per_digit:
        per_digit(sets)
        return
    print(
        f"{'set':<32}{'model':>6}{'accuracy':>10}{'flagged':>9}{'acc. kept':>11}{'ECE raw':>9}{'ECE cal.':>9}"
    )
    for name, (images, labels) in sets.items():
        batch = classify_batch(images)
        for model_id in models:
            digits = batch.digits(model_id)
            right = digits == labels
            kept = (
                batch.digit_scores[model_id] >= batch.digit_thresholds[model_id]
                if model_id in batch.digit_scores
                else ~batch.blank
            )
            inked = ~batch.blank
            ece_raw = expected_calibration_error(batch.raw_probabilities[model_id][inked], labels[inked])
            ece = expected_calibration_error(batch.probabilities[model_id][inked], labels[inked])
            print(
                f"{name:<32}{model_id:>6}{right.mean():>10.2%}{1 - kept.mean():>9.1%}"
                f"{right[kept].mean():>11.2%}{ece_raw:>9.2%}{ece:>9.2%}"
            )
    timing(drawn[:50])


def per_digit(sets: dict[str, tuple[object, np.ndarray]]) -> None:
    """Each model's accuracy on each digit of each set, and the answer it gives most often when wrong."""
    print(
        f"{'set':<32}{'model':>6}"
        + "".join(f"{digit:>6}" for digit in range(10))
        + "  most common misreading"
    )
    for name, (images, labels) in sets.items():
        batch = classify_batch(images)
        # Errors every model shares: no model, however good, was shown what would read them.
        unread = np.all([batch.digits(m) != labels for m in batch.probabilities], axis=0)
        print(f"{name}: read by no model {unread.sum()} of {len(labels)} ({unread.mean():.2%})")
        for model_id in batch.probabilities:
            digits = batch.digits(model_id)
            row = "".join(f"{(digits[labels == d] == d).mean():>6.0%}" for d in range(10))
            wrong = digits != labels
            pairs, counts = np.unique(np.stack([labels[wrong], digits[wrong]]), axis=1, return_counts=True)
            worst = (
                f"{pairs[0, counts.argmax()]} as {pairs[1, counts.argmax()]} ({counts.max()})"
                if wrong.any()
                else "-"
            )
            print(f"{name:<32}{model_id:>6}{row}  {worst}")


def timing(canvases: list[np.ndarray], repeats: int = 300) -> None:
    """What calibration and the digit score add to one Draw-page answer: ``classify_with`` on a canvas
    with the calibrated models against the same models without their calibration files."""
    models, _ = load_models()
    uncalibrated = {m: replace(model, calibration=None, novelty_arrays=None) for m, model in models.items()}
    own_methods = {m: _without_committee(model) for m, model in models.items()}
    heading = f"one canvas through preprocessing and {len(models)} models (ms)"
    print(f"\n{heading:<55} {'median':>6} {'p95':>9}")

    def unshared(canvas: np.ndarray, chosen: dict) -> None:
        # What classify_with did before: every model computes the density and learned score (and here
        # the committee member's energy) itself.
        batch = preprocess_steps(canvas).centred[None]
        for model in chosen.values():
            answer_with(model, batch)

    for label, call, chosen in (
        ("calibrated, with digit scores", classify_with, models),
        ("calibrated, each model its own density/learned", unshared, models),
        ("calibrated, own methods (no committee)", classify_with, own_methods),
        ("uncalibrated (raw probabilities)", classify_with, uncalibrated),
    ):
        times = []
        for index in range(repeats):
            canvas = canvases[index % len(canvases)]
            start = time.perf_counter()
            call(canvas, chosen)
            times.append((time.perf_counter() - start) * 1e3)
        print(f"{label:<52}{np.median(times):>8.3f}{np.percentile(times, 95):>10.3f}")


def _without_committee(model):
    """The model answering with the method of its own that a committee method falls back to."""
    if model.calibration is None or model.calibration.novelty.committee is None:
        return model
    record = model.calibration.novelty
    own = record.model_copy(
        update={
            "method": record.committee.fallback_method,
            "threshold": record.committee.fallback_threshold,
            "committee": None,
        }
    )
    return replace(model, calibration=model.calibration.model_copy(update={"novelty": own}))


if __name__ == "__main__":
    main()
