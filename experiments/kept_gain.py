"""What learning from the drawings people keep could gain, simulated: other hands play the kept drawings.

No one has kept drawings in the app's store yet, so there is nothing real to
measure ``train --drawings`` on, and making drawings up is not allowed. Real
digits by other hands can stand in for them: a part of one set is trained on
exactly as kept drawings are (``kept_split.KeptSplit``, each drawing
repeated ``--repeats`` times an epoch through MNIST's augmentation), and the
figures are taken on digits it never saw:

- ``--stand-in scanned``: scikit-learn's 1,797 scanned digits by 43 people,
  shuffled with a fixed seed and cut in two. The first half is the pool kept
  drawings come from, the second half measures. The file does not say who
  wrote which digit, so the same writers are likely in both halves: that is
  the case of a class whose pupils keep drawings and then draw again.
- ``--stand-in hershey``: 1,000 Hershey-font digits drawn with another seed
  (``POOL_SEED``) than the 1,000 that measure (``evalsets.HERSHEY_SEED``):
  the same six fonts at other sizes, strokes, slants and places.

The other set, never trained on, says whether what was learned from one kind
of hand carries over to another. MNIST validation, test and drawn digits say
what it costs on MNIST. Every row trains from the same seed by the committed
models' recipe (``config.IMPROVED_RECIPE``) for ``--epochs`` epochs, with the
first N drawings of the pool; N = 0 is MNIST alone, the baseline of the same run.
This is a simulation with stand-ins, not users: the committed models are
never trained on these sets, which stay fair tests everywhere else.

    .venv/bin/python -m experiments.kept_gain --epochs 8 --model 1 2 3 4 5 6
    .venv/bin/python -m experiments.kept_gain --stand-in hershey --epochs 8 --model 1 2 3 4 5 6
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from digitdraw.learning import data, evalsets
from digitdraw.learning.config import IMPROVED_RECIPE
from digitdraw.learning.kept_split import DEFAULT_REPEATS, KeptDrawings, KeptSplit, check_repeats
from digitdraw.learning.train import load_dataset, train_model
from digitdraw.serving.networks import MODEL_IDS

from .recipes import accuracy, prepared

# The scanned digits' shuffle, and the Hershey pool's draw: neither is the seed of a set that measures.
POOL_SEED = 303
SETS = ("validation", "test", "drawn", "stand-in", "other hands")


def _inked(images: list | np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images through ``to_mnist`` and their labels, blank ones left out (none of these sets has any)."""
    inputs, inked = prepared(images)
    return inputs, labels[inked]


def stand_in_sets(stand_in: str) -> tuple[tuple, tuple, tuple]:
    """The pool kept drawings are taken from, the same kind of digits that measure, and the other hands'
    set; each as model inputs and labels."""
    measured = evalsets.other_hands_inputs()
    scanned, hershey = measured["scanned"], measured["hershey"]
    if stand_in == "hershey":
        pool = _inked(*evalsets.hershey_digits(evalsets.HERSHEY_COUNT, seed=POOL_SEED))
        return pool, hershey, scanned
    images, labels = scanned
    order = np.random.default_rng(POOL_SEED).permutation(len(labels))
    pool, measured = np.array_split(order, 2)
    return (images[pool], labels[pool]), (images[measured], labels[measured]), hershey


def kept_split(pool: tuple, measured: tuple, count: int, repeats: int) -> KeptSplit:
    """The first ``count`` drawings of the pool to train on, the measuring set as the held-out part."""
    (pool_images, pool_labels), (measured_images, measured_labels) = pool, measured
    training = KeptDrawings(
        ids=np.arange(count, dtype=np.int64),
        images=pool_images[:count].astype(np.float32),
        labels=pool_labels[:count].astype(np.int64),
        source="stand-in",
    )
    held_out = KeptDrawings(
        ids=np.arange(count, count + len(measured_labels), dtype=np.int64),
        images=measured_images.astype(np.float32),
        labels=measured_labels.astype(np.int64),
        source="stand-in",
    )
    return KeptSplit(training=training, held_out=held_out, repeats=repeats)


def main() -> None:
    """Train every model with each number of kept drawings and print one row per pair."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stand-in", choices=("scanned", "hershey"), default="scanned")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", type=int, nargs="+", default=list(MODEL_IDS))
    parser.add_argument("--kept", type=int, nargs="+", help="numbers of kept drawings (0, 100, 300, all)")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--out", default="/tmp/digitdraw-kept-gain", help="where the trained models go")
    args = parser.parse_args()
    repeats = check_repeats(args.repeats)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pool, measured, other = stand_in_sets(args.stand_in)
    counts = args.kept or [0, 100, 300, len(pool[1])]
    if not all(0 <= count <= len(pool[1]) for count in counts):
        parser.error(f"--kept takes counts from 0 to the pool's {len(pool[1])} drawings")
    config = replace(IMPROVED_RECIPE, epochs=args.epochs)
    dataset = load_dataset(config, data.load_mnist())
    print(
        f"stand-in {args.stand_in}: a pool of {len(pool[1])}, {len(measured[1])} measure; other hands "
        f"{len(other[1])}; {args.epochs} epochs, repeats {repeats}; accuracy in %"
    )
    print(f"{'kept':>6}{'model':>6}" + "".join(f"{name:>13}" for name in SETS) + f"{'seconds':>9}")
    for count in counts:
        kept = kept_split(pool, measured, count, repeats) if count else None
        for model_id in args.model:
            started = time.perf_counter()
            out = Path(args.out) / args.stand_in / str(count)
            model = train_model(model_id, replace(dataset, kept=kept), config, out_dir=out)
            scores = [
                model.metrics.accuracy["validation"],
                model.metrics.accuracy["test"],
                model.metrics.accuracy["drawn"],
                accuracy(model.network, *measured),
                accuracy(model.network, *other),
            ]
            print(
                f"{count:>6}{model_id:>6}"
                + "".join(f"{score:>13.2%}" for score in scores)
                + f"{time.perf_counter() - started:>9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
