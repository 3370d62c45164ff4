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

from digitdraw import MODEL_IDS, load_mnist
from digitdraw.learning.drawn import drawn_digits
from digitdraw.serving import saved_models
from digitdraw.serving.inference import classify_with, load_models
from digitdraw.serving.networks import ACTIVATIONS, Network, max_pool
from digitdraw.serving.preprocess import to_mnist

CNN = 6  # The small CNN beyond the study.


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


def loop_forward(network: Network, image: np.ndarray) -> np.ndarray:
    """The obvious alternative to im2col for a CNN: each convolution one position at a time, a 3x3 patch
    times the kernel per output pixel, in Python loops; the pools and dense layers as in ``Network``."""
    activations = image.reshape(*network.architecture.shapes[0])
    for index, layer in enumerate(network.architecture.layers):
        parameters = network.parameter_index[index]
        if layer.kind == "pool":
            activations = max_pool(activations[None])[0]
            continue
        kernel, bias = network.weights[parameters], network.biases[parameters]
        if layer.kind == "conv":
            height, width = activations.shape[0] - 2, activations.shape[1] - 2
            flat_kernel = kernel.reshape(-1, kernel.shape[-1])
            output = np.empty((height, width, kernel.shape[-1]), np.float32)
            for row in range(height):
                for column in range(width):
                    output[row, column] = (
                        activations[row : row + 3, column : column + 3].reshape(-1) @ flat_kernel
                    )
            activations = ACTIVATIONS[layer.activation](output + bias)
        else:
            activations = ACTIVATIONS[layer.activation](activations.reshape(-1) @ kernel + bias)
    return activations


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

    count = len(MODEL_IDS)
    cnn_answer = loop_forward(classifiers[CNN], one_image[0])
    assert np.allclose(cnn_answer, classifiers[CNN].predict_proba(one_image)[0], atol=1e-5)
    timings = {
        "preprocess: 280x280 RGBA canvas -> 28x28": measure(lambda: to_mnist(next_canvas()), args.repeats),
        "preprocess: 8000x8000 RGBA image -> 28x28": measure(lambda: to_mnist(huge), 10, warmup=1),
        "one model (4): NumPy forward pass": measure(
            lambda: classifiers[4].predict_proba(one_image), args.repeats
        ),
        f"one model ({CNN}, CNN): NumPy, im2col": measure(
            lambda: classifiers[CNN].predict_proba(one_image), args.repeats
        ),
        f"one model ({CNN}, CNN): NumPy, loop per pixel": measure(
            lambda: loop_forward(classifiers[CNN], one_image[0]), args.keras_repeats
        ),
        f"one model ({CNN}, CNN): keras model(x) call": measure(
            lambda: keras_models[CNN](one_image, training=False), args.keras_repeats
        ),
        f"canvas -> preprocess + all {count} models (NumPy)": measure(
            lambda: classify_with(next_canvas(), models), args.repeats
        ),
        "one model (4): keras model.predict": measure(
            lambda: keras_models[4].predict(one_image, verbose=0), args.keras_repeats
        ),
        "one model (4): keras model(x) call": measure(
            lambda: keras_models[4](one_image, training=False), args.keras_repeats
        ),
        f"canvas -> preprocess + all {count} models (predict)": measure(
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
        medians[f"canvas -> preprocess + all {count} models (predict)"]
        / medians[f"canvas -> preprocess + all {count} models (NumPy)"]
    )
    cnn = (
        medians[f"one model ({CNN}, CNN): NumPy, loop per pixel"]
        / medians[f"one model ({CNN}, CNN): NumPy, im2col"]
    )
    print()
    print(f"one model:  NumPy forward pass is {one_model:,.0f}x faster than model.predict")
    print(f"the CNN:    im2col is {cnn:,.0f}x faster than a loop over output pixels")
    print(
        f"all models: the app's path is {all_models:,.0f}x faster than preprocessing "
        f"+ {count} model.predict calls"
    )


if __name__ == "__main__":
    main()
