"""Which digit score tells digits from non-digits best: every method on every saved model.

For each model and method: the threshold that keeps 97% of the reference
digits (digits drawn from MNIST *validation* images, ``drawn.py``), then on
that threshold the share kept of three real-digit sets (digits drawn from
MNIST test images, Hershey-font digits, scikit-learn's scanned digits) and
the share flagged of the non-digits (``evalsets.py``), on a tuning part
(seed 101, from which ``calibrate`` chooses each model's method) and a
held-out part (seed 202, looked at only here), with AUROC against the drawn test digits. Then the cost of each
score on one image, median and p95, beside the forward pass alone.

    .venv/bin/python -m experiments.novelty [--per-kind 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from digitdraw.learning import calibration, evalsets
from digitdraw.learning.calibration import fitting_data
from digitdraw.learning.digit_score import (
    Gaussian,
    auroc,
    fit_density,
    mahalanobis_scores,
    threshold_for_keep,
)
from digitdraw.learning.drawn import drawn_evaluation_set
from digitdraw.serving import digit_score
from digitdraw.serving.inference import digit_scores, load_models
from digitdraw.serving.preprocess import to_mnist


def prepared(canvases) -> np.ndarray:
    """Canvases through to_mnist, blank ones dropped."""
    return np.stack([image for image in (to_mnist(c) for c in canvases) if image is not None])


def main() -> None:
    """Print the table for every model and method."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-kind", type=int, default=300, help="non-digits of each kind per part")
    args = parser.parse_args()
    fitting = fitting_data()
    raw_test, y_test = fitting.raw_test
    real = {
        "drawn test": drawn_evaluation_set(raw_test, y_test, 2000, seed=0)[0],
        "hershey": prepared(evalsets.hershey_digits(evalsets.HERSHEY_COUNT, seed=evalsets.HERSHEY_SEED)[0]),
        "scanned": prepared(evalsets.scanned_digits()[0]),
    }
    parts = {}
    for name, seed in (("tuning", evalsets.TUNING_SEED), ("held-out", evalsets.HELD_OUT_SEED)):
        canvases, kinds = evalsets.non_digits(args.per_kind, raw_test, seed=seed)
        images = [to_mnist(c) for c in canvases]
        keep = np.array([image is not None for image in images])
        parts[name] = (np.stack([image for image in images if image is not None]), kinds[keep])
    models, errors = load_models()
    for model_id, message in errors.items():
        print(f"model {model_id}: {message}")
    density = fit_density(fitting.dataset.x_train, fitting.dataset.y_train)
    started = time.perf_counter()
    learned = fitting.learned_score()
    print(f"learned digit score fitted in {time.perf_counter() - started:.1f} s (Keras, this machine)")
    print(
        f"reference: {len(fitting.x_reference)} digits drawn from MNIST validation images; "
        f"non-digits per part: {len(parts['tuning'][0])} tuning, {len(parts['held-out'][0])} held-out"
    )
    # The committee member's energy on every set, once: the committee method adds it to other models' scores.
    member = models.get(calibration.COMMITTEE_MEMBER)
    committee = {
        name: digit_score.committee_energy(member.network, images) if member is not None else None
        for name, images in (
            ("reference", fitting.x_reference),
            *real.items(),
            *((part, images) for part, (images, _) in parts.items()),
        )
    }
    header = (
        f"{'model':<6}{'method':<16}{'AUROC tune':>11}{'AUROC held':>11}{'flag tune':>10}{'flag held':>10}"
        + "".join(f"{'keep ' + name:>16}" for name in real)
    )
    print(header)
    kind_rows = []
    detectors = {}
    shared: dict[str, dict] = {name: {} for name in ("reference", *real, *parts)}
    for model_id, model in models.items():
        network = model.network
        # The same detector ``calibrate`` fits (the member is no committee of its own).
        detector, _ = calibration.model_detector(model, fitting, density, learned, member)
        detectors[model_id] = detector
        # Measured beside the methods the app offers, never offered: the Mahalanobis distance of the
        # last hidden features to the nearest class mean.
        gaussian = Gaussian.fit(
            digit_score.logits_and_features(network, fitting.dataset.x_train)[1], fitting.dataset.y_train
        )

        measure = (detector, gaussian, network)
        reference = every_score(*measure, fitting.x_reference, shared["reference"], committee["reference"])
        real_scores = {
            name: every_score(*measure, images, shared[name], committee[name])
            for name, images in real.items()
        }
        part_scores = {
            name: every_score(*measure, images, shared[name], committee[name])
            for name, (images, _) in parts.items()
        }
        for method in (*detector.methods, "mahalanobis"):
            threshold = threshold_for_keep(reference[method])
            cells = [
                auroc(real_scores["drawn test"][method], part_scores[part][method])
                for part in ("tuning", "held-out")
            ]
            flagged = [
                float(np.mean(part_scores[part][method] < threshold)) for part in ("tuning", "held-out")
            ]
            kept = [float(np.mean(real_scores[name][method] >= threshold)) for name in real]
            print(
                f"{model_id:<6}{method:<16}{cells[0]:>11.3f}{cells[1]:>11.3f}"
                f"{flagged[0]:>10.1%}{flagged[1]:>10.1%}" + "".join(f"{k:>16.1%}" for k in kept)
            )
            if model.calibration is not None and method == model.calibration.novelty.method:
                held_scores, held_kinds = part_scores["held-out"][method], parts["held-out"][1]
                kind_rows.append(
                    (
                        method,
                        model_id,
                        [
                            float(np.mean(held_scores[held_kinds == k] < threshold))
                            for k in evalsets.NON_DIGIT_KINDS
                        ],
                    )
                )
    print("\nnon-digits flagged by kind, held-out part, by the method each model's calibration chose:")
    print(f"{'model':<6}{'method':<10}" + "".join(f"{kind:>22}" for kind in evalsets.NON_DIGIT_KINDS))
    for method, model_id, shares in kind_rows:
        print(f"{model_id:<6}{method:<10}" + "".join(f"{share:>22.1%}" for share in shares))
    shown_confidently(models, parts["held-out"][0])
    timing(models, detectors, fitting)


def every_score(detector, gaussian, network, images, shared, committee) -> dict[str, np.ndarray]:
    """Every method's scores, the Mahalanobis distance's among them. The density and learned scores
    ignore the model: ``shared`` keeps each set's, computed once for all models."""
    found = detector.scores(network, images, shared=shared, committee=committee)
    return found | {"mahalanobis": mahalanobis_scores(gaussian, network, images)}


def shown_confidently(models, non_digits: np.ndarray) -> None:
    """What a user drawing a non-digit is told, with each model's saved calibration: the share of the
    held-out non-digits answered as a digit with at least 90% confidence, before and now."""
    print("\nheld-out non-digits answered as a digit with >= 90% confidence (what the Draw page shows):")
    print(f"{'model':<6}{'raw, no digit score':>22}{'calibrated, not flagged':>26}")
    for model_id, model in models.items():
        logits = digit_score.logits_and_features(model.network, non_digits)[0]
        before = digit_score.softmax(logits).max(axis=1) >= 0.9
        if model.calibration is None:
            print(f"{model_id:<6}{before.mean():>22.1%}{'not calibrated':>26}")
            continue
        scores, threshold, _ = digit_scores(model, non_digits, members=models)
        now = (digit_score.softmax(logits, model.calibration.temperature).max(axis=1) >= 0.9) & (
            scores >= threshold
        )
        print(f"{model_id:<6}{before.mean():>22.1%}{now.mean():>26.1%}")


def timing(models, detectors, fitting, repeats: int = 300) -> None:
    """Median and p95 of one image's scores against the forward pass alone."""
    model_id = 4 if 4 in detectors else next(iter(detectors))
    model, detector = models[model_id], detectors[model_id]
    member = models.get(calibration.COMMITTEE_MEMBER)
    image = fitting.x_reference[:1]
    committee = digit_score.committee_energy(member.network, image) if member is not None else None
    print(f"\ncost on one image, model {model.card.model_id} (µs)          median       p95")
    rows = [
        ("forward pass alone (predict_proba)", lambda: model.network.predict_proba(image)),
        ("all methods' scores", lambda: detector.scores(model.network, image, committee=committee)),
        ("combined only", lambda: detector.scores(model.network, image, ("combined",))),
        ("learned + density + energy", lambda: detector.scores(model.network, image, ("learned_combined",))),
    ]
    if "learned_committee" in detector.methods:
        rows.append(
            (
                "learned_committee, member's pass included",
                lambda: detector.scores(
                    model.network,
                    image,
                    ("learned_committee",),
                    committee=digit_score.committee_energy(member.network, image),
                ),
            )
        )
    for label, call in rows:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e6)
        print(f"{label:<48}{np.median(times):>8.1f}{np.percentile(times, 95):>10.1f}")


if __name__ == "__main__":
    main()
