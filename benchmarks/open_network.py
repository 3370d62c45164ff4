"""Opening a network: ``python -m digitdraw models add`` (checks, Keras in safe mode, conversion, the check
against Keras, the input scaling, the measurement on MNIST in NumPy, the save) against the obvious
alternative, loading the file with Keras and evaluating it with Keras on the same digits. Each run is a
fresh process, as a person or the Train page runs it, so TensorFlow's import is counted; one warm-up run
fills the MNIST caches first. Wall seconds, median and p95 over the runs.

    .venv/bin/python -m benchmarks.open_network [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The alternative: Keras loads the file and evaluates it on the digits DigitDraw measures.
KERAS_CHILD = """
import sys, keras
from digitdraw.learning.config import TrainConfig
from digitdraw.learning.opening import measured_sample
from digitdraw.learning.train import load_dataset
data = measured_sample(load_dataset(TrainConfig()))
model = keras.saving.load_model(sys.argv[1], compile=False)
for split in ("train", "validation", "test", "drawn"):
    images, _ = data.split(split)
    model.predict(images.reshape(len(images), *model.input_shape[1:]), verbose=0, batch_size=1000)
"""


def models(folder: Path) -> dict[str, Path]:
    """The Keras example convnet (34,826 weights) and an MLP of 987,210 weights, saved by Keras."""
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    built = {
        "Keras example convnet": keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                layers.Conv2D(32, 3, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Conv2D(64, 3, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dropout(0.5),
                layers.Dense(10, activation="softmax"),
            ]
        ),
        "MLP 784-1000-200-10": keras.Sequential(
            [
                keras.Input((784,)),
                layers.Dense(1000, activation="relu"),
                layers.Dense(200, activation="relu"),
                layers.Dense(10, activation="softmax"),
            ]
        ),
    }
    paths = {}
    for index, (name, model) in enumerate(built.items()):
        paths[name] = folder / f"model{index}.keras"
        model.save(paths[name])
        print(f"{name}: {model.count_params():,} weights")
    return paths


def seconds(command: list[str]) -> float:
    """Wall seconds of one command in a fresh process; it must succeed."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.perf_counter() - started


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per way and model (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        root = folder / "saved_models"
        root.mkdir()
        for name, path in models(folder).items():
            add = [sys.executable, "-m", "digitdraw", "models", "add", str(path), "--root", str(root)]
            seconds([*add, "--name", "warm-up"])
            opened, alternative = [], []
            for run in range(args.runs):
                opened.append(seconds([*add, "--name", f"run-{run}"]))
                alternative.append(seconds([sys.executable, "-c", KERAS_CHILD, str(path)]))
            shutil.rmtree(root / "custom")
            for label, times in (("models add", opened), ("Keras load + predict", alternative)):
                p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
                print(f"{name:<24} {label:<22} median {statistics.median(times):5.1f} s   p95 {p95:5.1f} s")


if __name__ == "__main__":
    main()
