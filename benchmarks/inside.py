"""Speed of the Inside page's views on this machine, each against the obvious alternative.

Run from the repository root: ``.venv/bin/python -m benchmarks.inside``. Rows, all on drawn digits
through ``to_mnist`` and every saved model that loads:

- activations and gradient x input for every model (``look_inside`` plus one backward pass each),
  against the gradient by central finite differences (1,568 perturbed images, one batch per model);
- occlusion for one model, 7x7 patches at stride 2, all patches in one batch, against one forward
  pass per patch;
- a damage-lab update (build the damaged network, score 2,000 MNIST test digits in one batch),
  against scoring them one image at a time;
- one counterfactual search ("what would flip it") for one model;
- the Draw page's stroke timeline as HTML (12 strokes of every model), redrawn on every stroke.
- occlusion and a damage-lab update for the CNN beyond the study (model 6), whose forward pass
  costs about 13 times model 4's.

Goals from the issue: 30 ms, 50 ms and 200 ms for the first three.

Batched rows are matrix products, which OpenBLAS spreads over every core: on a machine whose cores
are busy with other work, those threads wait for each other and a batch can take longer than the
same work one image at a time. Run it once more with ``OPENBLAS_NUM_THREADS=1`` to see how much.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.latency import measure, summary
from digitdraw import load_mnist
from digitdraw.explaining import attribution, counterfactual, damage, inside
from digitdraw.learning.drawn import drawn_digits
from digitdraw.serving.inference import classify_batch, load_classifiers
from digitdraw.serving.preprocess import to_mnist
from digitdraw.ui import charts


def finite_difference_gradient(network, image: np.ndarray, target: int, step: float = 1e-2) -> np.ndarray:
    """d(logit of target)/d(pixel) by central differences: two perturbed images per pixel, one batch."""
    flat = image.reshape(-1)
    eye = np.eye(flat.size, dtype=np.float32) * step
    batch = np.concatenate([flat + eye, flat - eye]).reshape(-1, *image.shape)
    logits = network.logits(batch)[:, target]
    return ((logits[: flat.size] - logits[flat.size :]) / (2 * step)).reshape(image.shape)


def occlusion_per_patch(network, image: np.ndarray, target: int) -> np.ndarray:
    """The same occlusion map with one forward pass per patch position (empty patches skipped)."""
    batch, corners = attribution.occluded_images(image)
    baseline = network.predict_proba(image[None])[0, target]
    total, covered = np.zeros(image.shape), np.zeros(image.shape)
    patch = attribution.OCCLUSION_PATCH
    for occluded, (top, left) in zip(batch, corners):
        covered[top : top + patch, left : left + patch] += 1
        if image[top : top + patch, left : left + patch].any():  # Empty paper: skipped, as when batched.
            fall = baseline - network.predict_proba(occluded[None])[0, target]
            total[top : top + patch, left : left + patch] += fall
    return total / covered


# The fewest timed calls that give a 95th percentile worth printing (the last of 20 is already above it).
P95_CALLS = 20


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per row (default 200)")
    args = parser.parse_args()
    _, (x_test, y_test) = load_mnist()
    canvases, _ = drawn_digits(x_test, y_test, 32, seed=7)
    inputs = [to_mnist(canvas) for canvas in canvases]
    networks, errors = load_classifiers()
    if errors:
        raise SystemExit("\n".join(errors.values()))
    chosen_id = max(networks, key=lambda model_id: networks[model_id].architecture.parameter_count)
    chosen = networks[chosen_id]
    # The largest of the study's networks above; the convolutional one (model 6) in rows of its own.
    cnn_id = next(m for m, network in networks.items() if network.architecture.is_convolutional)
    cnn = networks[cnn_id]
    raw_sample, labels = damage.fixed_sample(x_test, y_test)
    sample = classify_batch(raw_sample, []).images
    cycle = iter(int(i) for i in np.tile(np.arange(len(inputs)), 100_000))

    def everything_inside() -> None:
        image = inputs[next(cycle)]
        for network in networks.values():
            seen = inside.look_inside(network, image)
            attribution.gradient_times_input(network, image, seen.answer)

    def finite_differences() -> None:
        image = inputs[next(cycle)]
        for network in networks.values():
            seen = inside.look_inside(network, image)
            image * finite_difference_gradient(network, image, seen.answer)

    setting = damage.Damage(switched_off={0: (0, 1, 2)}, random_share=0.25, noise=0.3, prune=0.3)

    def damage_update() -> None:
        damage.accuracy(damage.damaged(chosen, setting), sample, labels)

    def cnn_damage_update() -> None:
        damage.accuracy(damage.damaged(cnn, setting), sample, labels)

    def damage_one_by_one() -> None:
        broken = damage.damaged(chosen, setting)
        hits = [
            int(np.argmax(broken.predict_proba(image[None])[0])) == label
            for image, label in zip(sample, labels)
        ]
        float(np.mean(hits))

    def flip() -> None:
        image = inputs[next(cycle)]
        answer = int(np.argmax(chosen.predict_proba(image[None])[0]))
        counterfactual.flip(chosen, image, (answer + 3) % 10)

    strokes = [{model_id: (stroke % 10, 0.9) for model_id in networks} for stroke in range(12)]

    def timeline() -> None:
        charts.stroke_timeline(strokes, chosen_id)

    patch = attribution.OCCLUSION_PATCH
    rows = [
        (f"activations + gradient x input, all {len(networks)} models", everything_inside, args.repeats),
        (
            "  the same, gradient by finite differences",
            finite_differences,
            max(P95_CALLS, args.repeats // 10),
        ),
        (
            f"occlusion {patch}x{patch}/{attribution.OCCLUSION_STRIDE}, model {chosen_id}, one batch",
            lambda: attribution.occlusion(chosen, inputs[next(cycle)]),
            args.repeats,
        ),
        (
            "  the same, one forward pass per patch",
            lambda: occlusion_per_patch(chosen, inputs[next(cycle)], 1),
            args.repeats,
        ),
        (f"damage update, model {chosen_id}, {len(sample):,} digits", damage_update, args.repeats),
        ("  the same, one image at a time", damage_one_by_one, max(P95_CALLS, args.repeats // 20)),
        (f"what would flip it, model {chosen_id}", flip, max(P95_CALLS, args.repeats // 4)),
        (f"stroke timeline HTML, 12 strokes x {len(networks)} models", timeline, args.repeats),
        (
            f"occlusion, model {cnn_id} (CNN), one batch",
            lambda: attribution.occlusion(cnn, inputs[next(cycle)]),
            max(P95_CALLS, args.repeats // 4),
        ),
        (f"damage update, model {cnn_id} (CNN), {len(sample):,} digits", cnn_damage_update, P95_CALLS),
    ]
    print(f"{'inside (ms)':<44} {'median':>9} {'p95':>9}")
    medians = {}
    for name, function, repeats in rows:
        line, medians[name] = summary(name, measure(function, repeats))
        if repeats < P95_CALLS:  # Too few calls for a 95th percentile: the median alone.
            line = f"{line[:-10]} {'–':>9}"
        print(line, flush=True)
    names = [name for name, _, _ in rows]
    print()
    for fast, slow, what in [(0, 1, "gradients"), (2, 3, "occlusion"), (4, 5, "damage lab")]:
        ratio = medians[names[slow]] / medians[names[fast]]
        print(f"{what}: the alternative takes {ratio:,.1f} times as long")


if __name__ == "__main__":
    main()
