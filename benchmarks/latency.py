"""Latency of one drawing through preprocessing and the models, against Keras's model.predict.

Run from the repository root with ``make bench`` (or ``.venv/bin/python -m benchmarks.latency``). Every
figure is measured in the same run on the same inputs, so the ratios hold
even on a noisy machine where absolute times drift.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from digitdraw import MODEL_IDS, load_mnist, saved_models
from digitdraw.drawn import drawn_digits
from digitdraw.inference import classify_with, load_classifiers
from digitdraw.preprocess import to_mnist


def measure(function: Callable[[], object], repeats: int, warmup: int = 5) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls, after a few unmeasured warm-up calls."""
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return timings


def summary(name: str, timings: list[float]) -> tuple[str, float]:
    """A table row: median and 95th percentile in milliseconds."""
    median = statistics.median(timings) * 1e3
    p95 = float(np.percentile(timings, 95)) * 1e3
    return f"{name:<44} {median:>9.3f} {p95:>9.3f}", median


def main() -> None:
    """Print the latency table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per row (default 300)")
    parser.add_argument(
        "--keras-repeats", type=int, default=50, help="timed model.predict calls (default 50)"
    )
    args = parser.parse_args()

    import keras

    _, (x_test, y_test) = load_mnist()
    canvases, _ = drawn_digits(x_test, y_test, 32, seed=7)
    classifiers, errors = load_classifiers()
    if errors:
        raise SystemExit("\n".join(errors.values()))
    keras_models = {
        m: keras.saving.load_model(saved_models.model_dir(m) / saved_models.MODEL_FILE) for m in MODEL_IDS
    }
    cycle = iter(int(i) for i in np.tile(np.arange(len(canvases)), 10_000))

    def next_canvas():
        return canvases[next(cycle)]

    one_image = to_mnist(canvases[0])[None]
    rows = [
        summary(
            "preprocess: 280x280 RGBA canvas -> 28x28", measure(lambda: to_mnist(next_canvas()), args.repeats)
        ),
        summary(
            "one model (4): NumPy forward pass",
            measure(lambda: classifiers[4].predict_proba(one_image), args.repeats),
        ),
        summary(
            "canvas -> preprocess + all 5 models (NumPy)",
            measure(lambda: classify_with(next_canvas(), classifiers), args.repeats),
        ),
        summary(
            "one model (4): keras model.predict",
            measure(lambda: keras_models[4].predict(one_image, verbose=0), args.keras_repeats),
        ),
        summary(
            "one model (4): keras model(x) call",
            measure(lambda: keras_models[4](one_image, training=False), args.keras_repeats),
        ),
        summary(
            "canvas -> preprocess + all 5 models (predict)",
            measure(
                lambda: [
                    keras_models[m].predict(to_mnist(next_canvas())[None], verbose=0) for m in MODEL_IDS
                ],
                args.keras_repeats // 2,
            ),
        ),
    ]
    print(f"{'latency (ms)':<44} {'median':>9} {'p95':>9}")
    for line, _ in rows:
        print(line)
    medians = [median for _, median in rows]
    print()
    print(f"one model:  NumPy forward pass is {medians[3] / medians[1]:,.0f}x faster than model.predict")
    print(
        f"all models: the app's path is {medians[5] / medians[2]:,.0f}x faster "
        "than preprocessing + 5 model.predict calls"
    )


if __name__ == "__main__":
    main()
