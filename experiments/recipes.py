"""Ablation of the training recipe: each technique added in turn to the study's, every model scored on
MNIST and on digits by other hands.

Rows: the study's recipe (``config.STUDY_RECIPE``), then it with pen strokes mixed in
(``config.STROKE_SHARE``), with elastic distortion (``augment.ELASTIC_SHARE``), with thicker stroke
changes (``augment.THICKER_PIXELS``), and all three, and with distillation from model 6, the CNN
(``config.DISTILL_TEACHER``; ``digitdraw.learning.distill``'s default temperature and weight, or
``--temperature`` and ``--distill-weight``).
``config.IMPROVED_RECIPE`` is the row this chose.
Each row trains the chosen models from the same seed for the same
(short) number of epochs, then scores them with the NumPy forward pass on:

- validation-side sets, which alone choose a recipe: MNIST validation (the last 10,000 training
  images) and 2,000 digits drawn from MNIST *validation* images (``calibration.REFERENCE_SEED``,
  the calibration's reference set);
- report-only sets, which choose nothing: MNIST test, 2,000 digits drawn from MNIST test
  (the models' "drawn" figure), scikit-learn's 1,797 scanned digits by 43 people and 1,000
  Hershey-font digits drawn like a canvas (``experiments/real_hands.py``'s sets).

The chosen recipe is the one with the best mean accuracy on the drawn validation digits among
those that keep every model's MNIST validation accuracy within ``VALIDATION_TOLERANCE`` of the
study's. Drawn validation digits come from the same renderer as the pen strokes the recipe trains
on, so they favour that technique; the scanned and Hershey columns are the independent check.

    .venv/bin/python -m experiments.recipes --epochs 8 --model 2 4
    .venv/bin/python -m experiments.recipes --epochs 8 --model 2 4 --only study distillation

``--only`` trains some rows (the study's always among them, since the rule compares with it);
``--temperature`` and ``--distill-weight`` set the distillation row's.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from digitdraw.learning import data, evalsets
from digitdraw.learning.augment import ELASTIC_SHARE, THICKER_PIXELS, WIDER_OR_NARROWER
from digitdraw.learning.calibration import REFERENCE_SEED, REFERENCE_SIZE
from digitdraw.learning.config import DISTILL_TEACHER, STROKE_SHARE, STUDY_RECIPE, TrainConfig
from digitdraw.learning.distill import DEFAULT_TEMPERATURE, DEFAULT_WEIGHT
from digitdraw.learning.drawn import drawn_evaluation_set
from digitdraw.learning.train import load_dataset, train_model
from digitdraw.serving.networks import MODEL_IDS
from digitdraw.serving.preprocess import to_mnist

VALIDATION_TOLERANCE = 0.003  # A recipe may cost at most 0.3 points of MNIST validation accuracy.
SETS = ("validation", "drawn validation", "test", "drawn", "scanned", "Hershey")


def recipes(
    epochs: int, temperature: float = DEFAULT_TEMPERATURE, weight: float = DEFAULT_WEIGHT
) -> dict[str, TrainConfig]:
    """The study's recipe and each technique added to it, then all three, then distillation at
    ``temperature`` and ``weight``, all for ``epochs`` epochs."""
    study = replace(STUDY_RECIPE, epochs=epochs)
    elastic = replace(study.augmentation, elastic_probability=ELASTIC_SHARE)
    return {
        "study": study,
        "+ strokes": replace(study, stroke_share=STROKE_SHARE),
        "+ elastic": replace(study, augmentation=elastic),
        "+ thickness": replace(
            study, augmentation=replace(study.augmentation, thickness_pixels=THICKER_PIXELS)
        ),
        "+ width": replace(study, augmentation=replace(study.augmentation, width_scale=WIDER_OR_NARROWER)),
        "all three": replace(
            study, stroke_share=STROKE_SHARE, augmentation=replace(elastic, thickness_pixels=THICKER_PIXELS)
        ),
        f"+ distillation (T {temperature:g}, weight {weight:g})": replace(
            study, teacher=DISTILL_TEACHER, distill_temperature=temperature, distill_weight=weight
        ),
    }


def short_name(recipe: str) -> str:
    """A row's one-word name, for ``--only`` and its output folder: 'study', 'strokes', ... 'distillation'."""
    return recipe.strip("+ ").split()[0]


def prepared(images) -> tuple[np.ndarray, np.ndarray]:
    """Images through ``to_mnist``, and which of them had ink."""
    outputs = [to_mnist(image) for image in images]
    inked = np.array([image is not None for image in outputs])
    return np.stack([image for image in outputs if image is not None]), inked


def evaluation_sets(splits, validation: data.SplitRange) -> dict[str, tuple]:
    """The sets beyond the dataset's own splits: drawn validation digits, scanned and Hershey digits
    (each as images, labels and, for the last two, how many came out blank)."""
    (raw_all, y_all), _ = splits
    rows = slice(validation.start, validation.stop)
    x_reference, y_reference = drawn_evaluation_set(
        raw_all[rows], y_all[rows], REFERENCE_SIZE, seed=REFERENCE_SEED
    )
    others = evalsets.other_hands()
    (scanned, y_scanned), (hershey, y_hershey) = others["scanned"], others["hershey"]
    x_scanned, inked_scanned = prepared(scanned)
    x_hershey, inked_hershey = prepared(hershey)
    # A blank image is never right: counted as wrong with the label -1.
    return {
        "drawn validation": (x_reference, y_reference),
        "scanned": (x_scanned, y_scanned[inked_scanned], int((~inked_scanned).sum())),
        "Hershey": (x_hershey, y_hershey[inked_hershey], int((~inked_hershey).sum())),
    }


def accuracy(network, images: np.ndarray, labels: np.ndarray, blanks: int = 0) -> float:
    """Share of right answers, counting ``blanks`` unread images as wrong."""
    right = int((network.predict_proba(images).argmax(axis=1) == labels).sum())
    return right / (len(labels) + blanks)


def main() -> None:
    """Train every recipe for the chosen models, print one row per recipe and model, then the choice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", type=int, nargs="+", default=list(MODEL_IDS))
    parser.add_argument("--out", default="/tmp/digitdraw-recipes", help="where the trained models go")
    names = [short_name(name) for name in recipes(epochs=1)]  # The rows' names, whatever the epochs.
    parser.add_argument("--only", nargs="+", choices=names, default=names, help="the rows to train")
    parser.add_argument(
        "--temperature", type=float, default=DEFAULT_TEMPERATURE, help="the distillation row's temperature"
    )
    parser.add_argument(
        "--distill-weight", type=float, default=DEFAULT_WEIGHT, help="the distillation row's teacher weight"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    splits = data.load_mnist()
    configs = {
        name: config
        for name, config in recipes(args.epochs, args.temperature, args.distill_weight).items()
        if short_name(name) in {"study", *args.only}
    }
    # One dataset with the pen strokes serves every recipe: the others ignore them.
    dataset = load_dataset(replace(STUDY_RECIPE, stroke_share=STROKE_SHARE), splits)
    extra = evaluation_sets(splits, dataset.ranges["validation"])
    print(f"{args.epochs} epochs, models {args.model}; accuracy in %")
    width = max(len(name) for name in configs) + 2  # The distillation row's name states its settings.
    print(f"{'recipe':<{width}}{'model':>6}" + "".join(f"{name:>18}" for name in SETS) + f"{'seconds':>9}")
    table: dict[str, dict[int, dict[str, float]]] = {}
    for name, config in configs.items():
        table[name] = {}
        for model_id in args.model:
            started = time.perf_counter()
            out = Path(args.out) / short_name(name)
            model = train_model(model_id, dataset, config, out_dir=out)
            network = model.network
            scores = {
                "validation": model.metrics.accuracy["validation"],
                "test": model.metrics.accuracy["test"],
                "drawn": model.metrics.accuracy["drawn"],
            }
            for set_name, (images, labels, *blanks) in extra.items():
                scores[set_name] = accuracy(network, images, labels, *blanks)
            table[name][model_id] = scores
            print(
                f"{name:<{width}}{model_id:>6}"
                + "".join(f"{scores[set_name]:>18.2%}" for set_name in SETS)
                + f"{time.perf_counter() - started:>9.0f}",
                flush=True,
            )
    study = table["study"]
    allowed = [
        name
        for name, rows in table.items()
        if all(rows[m]["validation"] >= study[m]["validation"] - VALIDATION_TOLERANCE for m in args.model)
    ]
    chosen = max(allowed, key=lambda name: np.mean([table[name][m]["drawn validation"] for m in args.model]))
    print(
        f"\nchosen on validation-side sets (best mean drawn-validation accuracy, MNIST validation within "
        f"{VALIDATION_TOLERANCE:.1%} of the study's): {chosen}"
    )


if __name__ == "__main__":
    main()
