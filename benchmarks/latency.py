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

import cv2
import numpy as np

from digitdraw import MODEL_IDS, load_mnist, saved_models
from digitdraw.drawn import drawn_digits
from digitdraw.inference import classify_with, load_models
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
    models, errors = load_models()
    classifiers = {model_id: model.network for model_id, model in models.items()}
    if errors:
        raise SystemExit("\n".join(errors.values()))
    keras_models = {
        m: keras.saving.load_model(saved_models.model_dir(m) / saved_models.MODEL_FILE) for m in MODEL_IDS
    }
    cycle = iter(int(i) for i in np.tile(np.arange(len(canvases)), 10_000))

    def next_canvas():
        return canvases[next(cycle)]

    one_image = to_mnist(canvases[0])[None]
    # A photo-sized image: the 280x280 drawing scaled up to 8000x8000, on a transparent background.
    huge = cv2.resize(canvases[0], (8000, 8000), interpolation=cv2.INTER_NEAREST)

    def predict_all_with_keras() -> None:
        image = to_mnist(next_canvas())[None]
        for model_id in MODEL_IDS:
            keras_models[model_id].predict(image, verbose=0)

    timings = {
        "preprocess: 280x280 RGBA canvas -> 28x28": measure(lambda: to_mnist(next_canvas()), args.repeats),
        "preprocess: 8000x8000 RGBA image -> 28x28": measure(lambda: to_mnist(huge), 10, warmup=1),
        "one model (4): NumPy forward pass": measure(
            lambda: classifiers[4].predict_proba(one_image), args.repeats
        ),
        "canvas -> preprocess + all 5 models (NumPy)": measure(
            lambda: classify_with(next_canvas(), models), args.repeats
        ),
        "one model (4): keras model.predict": measure(
            lambda: keras_models[4].predict(one_image, verbose=0), args.keras_repeats
        ),
        "one model (4): keras model(x) call": measure(
            lambda: keras_models[4](one_image, training=False), args.keras_repeats
        ),
        "canvas -> preprocess + all 5 models (predict)": measure(
            predict_all_with_keras, args.keras_repeats // 2
        ),
    }
    print(f"{'latency (ms)':<44} {'median':>9} {'p95':>9}")
    medians = {}
    for name, samples in timings.items():
        line, medians[name] = summary(name, samples)
        print(line)
    one_model = medians["one model (4): keras model.predict"] / medians["one model (4): NumPy forward pass"]
    all_models = (
        medians["canvas -> preprocess + all 5 models (predict)"]
        / medians["canvas -> preprocess + all 5 models (NumPy)"]
    )
    print()
    print(f"one model:  NumPy forward pass is {one_model:,.0f}x faster than model.predict")
    print(
        f"all models: the app's path is {all_models:,.0f}x faster than preprocessing + 5 model.predict calls"
    )


if __name__ == "__main__":
    main()
