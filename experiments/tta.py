"""Test-time augmentation: does averaging each model's answer over transformed copies of a drawing help?

A cheap idea worth measuring before building: instead of one forward pass,
a model answers the drawing and a few copies of it (strokes a pixel thicker
and thinner, turned 8 degrees either way, 10% smaller and larger), and its
probabilities are averaged. It needs no retraining, only more forward passes.
The committed models are scored, raw probabilities, on the sets that choose
(MNIST validation, the last 10,000 training images, and 2,000 digits drawn
from them: ``calibration``'s reference set) and on the report-only sets of
other hands; then one drawing's latency through all six models, with each
set of copies, against the single pass, in the same run.

    .venv/bin/python -m experiments.tta
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np

from benchmarks.latency import measure, summary
from digitdraw.learning import data, evalsets
from digitdraw.learning.augment import change_stroke_width
from digitdraw.learning.calibration import REFERENCE_SEED, REFERENCE_SIZE
from digitdraw.learning.config import TrainConfig
from digitdraw.learning.drawn import drawn_evaluation_set
from digitdraw.learning.train import load_dataset
from digitdraw.serving import saved_models
from digitdraw.serving.networks import MODEL_IDS
from digitdraw.serving.preprocess import IMAGE_SIZE


def turned_and_scaled(images: np.ndarray, degrees: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Every image turned and scaled about its centre, as ``cv2.warpAffine`` does alone."""
    centre = ((IMAGE_SIZE - 1) / 2, (IMAGE_SIZE - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, degrees, scale)
    size = (IMAGE_SIZE, IMAGE_SIZE)
    return np.stack([cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR) for image in images])


COPIES = {
    "thicker": lambda images: change_stroke_width(images, 1),
    "thinner": lambda images: change_stroke_width(images, -1),
    "turned left": lambda images: turned_and_scaled(images, 8.0),
    "turned right": lambda images: turned_and_scaled(images, -8.0),
    "smaller": lambda images: turned_and_scaled(images, scale=0.9),
    "larger": lambda images: turned_and_scaled(images, scale=1.1),
}
# Each row: the drawing itself and these copies, averaged.
ROWS = {
    "one pass (as served)": (),
    "+ thicker": ("thicker",),
    "+ thicker, thinner": ("thicker", "thinner"),
    "+ turned either way": ("turned left", "turned right"),
    "+ smaller, larger": ("smaller", "larger"),
    "+ all six copies": tuple(COPIES),
}


def averaged(network, images: np.ndarray, copies: tuple[str, ...]) -> np.ndarray:
    """A network's probabilities averaged over the images and the named copies of them."""
    passes = [network.predict_proba(images)] + [
        network.predict_proba(COPIES[name](images)) for name in copies
    ]
    return np.mean(passes, axis=0)


def main() -> None:
    """Print each row's accuracy for every model on every set, then the latency of each row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per latency row")
    args = parser.parse_args()
    splits = data.load_mnist()
    dataset = load_dataset(TrainConfig(), splits)
    (raw_all, y_all), _ = splits
    validation = dataset.ranges["validation"]
    rows = slice(validation.start, validation.stop)
    sets = {
        "validation": (dataset.x_validation, dataset.y_validation),
        "drawn validation": drawn_evaluation_set(
            raw_all[rows], y_all[rows], REFERENCE_SIZE, seed=REFERENCE_SEED
        ),
        **evalsets.other_hands_inputs(),
    }
    networks = {model_id: saved_models.load(model_id).network for model_id in MODEL_IDS}
    print(f"accuracy in %, models {', '.join(map(str, networks))}")
    for set_name, (images, labels) in sets.items():
        print(f"\n{set_name} ({len(labels):,})")
        for row, copies in ROWS.items():
            accuracies = [
                np.mean(averaged(network, images, copies).argmax(axis=1) == labels)
                for network in networks.values()
            ]
            print(f"  {row:<24}" + "".join(f"{accuracy:>9.2%}" for accuracy in accuracies))
    drawing = sets["drawn validation"][0][:1]
    print(f"\none drawing through all {len(networks)} models (ms){'median':>12}{'p95':>10}")
    for row, copies in ROWS.items():

        def answer(copies=copies) -> None:
            for network in networks.values():
                averaged(network, drawing, copies)

        print(summary(f"  {row}", measure(answer, args.repeats))[0])


if __name__ == "__main__":
    main()
