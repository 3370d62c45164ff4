"""Honest confidence: temperature scaling, expected calibration error and reliability diagrams.

A network trained to minimise cross-entropy is often over-confident: of the
drawings it reads with 99% confidence, fewer than 99% are right. Temperature
scaling (Guo et al., 2017) divides the logits by one number T fitted on the
validation split, by minimising the negative log-likelihood. It cannot change
which digit wins (dividing by T > 0 keeps the order of the logits), so every
accuracy stays as it was; only the stated confidence moves. The fit is
one-dimensional and convex in 1/T, so a golden-section search finds it; a
test checks it against a brute-force grid.

The expected calibration error (ECE) puts predictions into equal-width bins
of confidence and averages, weighted by the bins' sizes, the gap between each
bin's accuracy and its mean confidence. Fifteen bins, as Guo et al. used.

This module also gathers the data every fitted statistic comes from
(``fitting_data``: MNIST's splits run through ``to_mnist``, and digits drawn
from MNIST validation images as the novelty threshold's reference) and
fits, for each saved model, its temperature and its digit-score detector
(``fit_model``), which ``python -m digitdraw calibrate`` writes beside it.
The learned digit score is trained here too, once for all models, on MNIST
training digits against MNIST training digits broken into non-digits
(``negatives.py``). The one choice made on generated non-digits is which
candidate method a model uses; it looks only at their tuning part
(``evalsets.TUNING_SEED``). One candidate reads another model, the committee
member (``COMMITTEE_MEMBER``): a model that chooses it also keeps its best
method of its own, with that method's threshold, for when the member cannot
answer (``saved_models.CommitteeRecord``).

Beside MNIST test and the drawn test digits, each model's calibration file
reports its reliability, and the share its threshold turns away, on digits by
other hands (``evalsets.other_hands_inputs``). They are measured, never
fitted on or chosen by, so that they stay a fair test; the Compare page shows
them, because MNIST's own digits, drawn or not, flatter every model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitdraw.learning import evalsets, negatives
from digitdraw.learning.config import TrainConfig
from digitdraw.learning.data import load_mnist
from digitdraw.learning.digit_score import (
    KEEP_RATE,
    fit_density,
    fit_detector,
    fit_learned_score,
    threshold_for_keep,
)
from digitdraw.learning.drawn import drawn_evaluation_set
from digitdraw.learning.train import Dataset, load_dataset
from digitdraw.serving import digit_score, saved_models
from digitdraw.serving.networks import ModelId
from digitdraw.serving.preprocess import to_mnist

ECE_BINS = 15
# Temperatures searched, as their inverse: 1/T from 0.05 to 20 covers T from 0.05 to 20.
INVERSE_TEMPERATURE_RANGE = (0.05, 20.0)
REFERENCE_SIZE = 2_000  # Digits drawn from MNIST validation images, the novelty threshold's reference.
REFERENCE_SEED = 1  # Not the drawn test set's seed (0): different drawings as well as different digits.
# The learned digit score's training data: MNIST training digits as they are, drawn as strokes (so
# that the canvas's clean strokes count as digits too) and thickened or coarse (so that a thick or
# blurry digit is not taken for a broken one), against MNIST digits broken into non-digits. Sizes as
# in the trial that chose the method (docs/research/digit-score.md).
LEARNED_MNIST_DIGITS = 20_000
LEARNED_DRAWN_DIGITS = 6_000
LEARNED_VARIED_DIGITS = 8_000
LEARNED_NON_DIGITS = 18_000
LEARNED_SEED = 2  # Neither the drawn test set's seed (0) nor the reference's (1).
TUNING_PER_KIND = 300  # Tuning non-digits of each kind, as benchmarks/digit_score.py uses.
# The model whose energy the committee methods add to every other model's score: the CNN beyond the
# study, whose own energy flagged most tuning non-digits (docs/research/digit-score.md).
COMMITTEE_MEMBER = 6


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-probability of the true labels after dividing the logits by ``temperature``."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(f"expected (N, classes) logits and N labels, got {logits.shape} and {labels.shape}")
    scaled = logits / temperature
    return float(np.mean(digit_score.logsumexp(scaled) - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, tolerance: float = 1e-6) -> float:
    """The temperature that minimises the negative log-likelihood, by golden-section search on 1/T."""
    low, high = INVERSE_TEMPERATURE_RANGE
    ratio = (math.sqrt(5) - 1) / 2

    def loss(inverse: float) -> float:
        return negative_log_likelihood(logits, labels, 1.0 / inverse)

    left, right = high - ratio * (high - low), low + ratio * (high - low)
    left_loss, right_loss = loss(left), loss(right)
    while high - low > tolerance:
        if left_loss < right_loss:
            high, right, right_loss = right, left, left_loss
            left = high - ratio * (high - low)
            left_loss = loss(left)
        else:
            low, left, left_loss = left, right, right_loss
            right = low + ratio * (high - low)
            right_loss = loss(right)
    return 1.0 / ((low + high) / 2)


@dataclass(frozen=True)
class Reliability:
    """Predictions grouped into equal-width bins of confidence: each bin's count, confidence and accuracy."""

    edges: np.ndarray  # (bins + 1,) from 0 to 1.
    counts: np.ndarray  # (bins,)
    confidence: np.ndarray  # (bins,) mean confidence in the bin; NaN where empty.
    accuracy: np.ndarray  # (bins,) share right in the bin; NaN where empty.

    @property
    def ece(self) -> float:
        """Expected calibration error: the bins' |accuracy - confidence|, weighted by their sizes."""
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float((gaps * self.counts[filled]).sum() / self.counts.sum())


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Bin predictions by their top probability into ``bins`` equal-width bins (right edges inclusive)."""
    probabilities, labels = np.asarray(probabilities, np.float64), np.asarray(labels)
    if probabilities.ndim != 2 or len(probabilities) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"expected (N, classes) probabilities and N labels, got {probabilities.shape} and {labels.shape}"
        )
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 cannot occur with 2+ classes.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / counts
        accuracy = np.bincount(index, right.astype(np.float64), bins) / counts
    return Reliability(edges=edges, counts=counts, confidence=mean_confidence, accuracy=accuracy)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of predictions with equal-width confidence bins."""
    return reliability(probabilities, labels, bins).ece


@dataclass(frozen=True)
class FittingData:
    """Everything the fitted statistics come from: MNIST only, preprocessed as the app does."""

    # MNIST's training, validation and test splits through ``to_mnist``, and the drawn test set every
    # model card scores ("drawn" accuracy): the data the models were trained and scored on.
    dataset: Dataset
    x_reference: np.ndarray  # Digits drawn from MNIST validation images: the novelty threshold's reference.
    raw_test: tuple[np.ndarray, np.ndarray]  # Raw MNIST test images and labels, for building other sets.
    # The tuning part of the generated non-digits, preprocessed: only to choose among candidate methods.
    x_tuning_non_digits: np.ndarray
    # The learned score's training data, from MNIST's training split only: digits drawn from its
    # images, its digits thickened or coarse, and its digits broken into non-digits (negatives.py),
    # all preprocessed.
    x_drawn_training: np.ndarray
    x_varied_training: np.ndarray
    x_non_digit_training: np.ndarray
    # Digits by other hands, preprocessed, by ``evalsets.OTHER_HANDS`` name: only measured, never fitted on.
    other_hands: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def learned_score(self) -> digit_score.LearnedScore:
        """The learned digit score, trained on MNIST digits (as they are, drawn, thickened and coarse)
        against MNIST digits broken into non-digits."""
        digits = np.concatenate(
            [self.dataset.x_train[:LEARNED_MNIST_DIGITS], self.x_drawn_training, self.x_varied_training]
        )
        return fit_learned_score(digits, self.x_non_digit_training, seed=LEARNED_SEED)


def fitting_data() -> FittingData:
    """MNIST's splits through ``to_mnist`` (cached on disk by ``train``), the drawn sets and the
    tuning non-digits."""
    splits = load_mnist()
    dataset = load_dataset(TrainConfig(), splits)
    (raw_all, y_all), raw_test = splits
    validation = dataset.ranges["validation"]
    training = dataset.ranges["train"]
    raw_train, y_train = raw_all[training.start : training.stop], y_all[training.start : training.stop]
    x_drawn_training, _ = drawn_evaluation_set(raw_train, y_train, LEARNED_DRAWN_DIGITS, seed=LEARNED_SEED)
    broken, _ = negatives.mnist_non_digits(raw_train, y_train, LEARNED_NON_DIGITS, seed=LEARNED_SEED)
    varied, _ = negatives.varied_digits(raw_train, y_train, LEARNED_VARIED_DIGITS, seed=LEARNED_SEED)
    x_reference, _ = drawn_evaluation_set(
        raw_all[validation.start : validation.stop],
        y_all[validation.start : validation.stop],
        REFERENCE_SIZE,
        seed=REFERENCE_SEED,
    )
    return FittingData(
        dataset=dataset,
        x_reference=x_reference,
        raw_test=raw_test,
        x_tuning_non_digits=np.stack(
            [
                image
                for image in map(
                    to_mnist, evalsets.non_digits(TUNING_PER_KIND, raw_test[0], evalsets.TUNING_SEED)[0]
                )
                if image is not None
            ]
        ),
        x_drawn_training=x_drawn_training,
        x_varied_training=np.stack([image for image in map(to_mnist, varied) if image is not None]),
        x_non_digit_training=np.stack([image for image in map(to_mnist, broken) if image is not None]),
        other_hands=evalsets.other_hands_inputs(),
    )


def reliability_record(probabilities: np.ndarray, labels: np.ndarray) -> saved_models.ReliabilityRecord:
    """A reliability diagram as the saved-model format stores it."""
    bins = reliability(probabilities, labels)

    def listed(values: np.ndarray) -> list[float | None]:
        return [None if np.isnan(value) else float(value) for value in values]

    return saved_models.ReliabilityRecord(
        counts=[int(count) for count in bins.counts],
        confidence=listed(bins.confidence),
        accuracy=listed(bins.accuracy),
        ece=bins.ece,
    )


def model_detector(
    model: saved_models.SavedModel,
    fitting: FittingData,
    density: digit_score.ClassDensity,
    learned: digit_score.LearnedScore | None = None,
    committee: saved_models.SavedModel | None = None,
) -> tuple[digit_score.Detector, saved_models.SavedModel | None]:
    """One model's digit-score detector, fitted on MNIST, and the committee member it adds (None for the
    member itself: a model is no committee of its own)."""
    member = committee if committee is not None and not _same_weights(committee, model) else None
    detector = fit_detector(
        model.network,
        fitting.dataset.x_train,
        fitting.dataset.y_train,
        fitting.dataset.x_validation,
        density=density,
        learned=learned,
        committee=member.network if member is not None else None,
    )
    return detector, member


def fit_model(
    model: saved_models.SavedModel,
    fitting: FittingData,
    density: digit_score.ClassDensity,
    learned: digit_score.LearnedScore | None = None,
    committee: saved_models.SavedModel | None = None,
) -> tuple[saved_models.Calibration, dict[str, np.ndarray]]:
    """One model's temperature (on validation), digit-score scales and threshold, and reliability figures;
    ``committee``: the member whose energy the committee candidates add (ignored for the member itself)."""
    network = model.network
    data = fitting.dataset
    temperature = fit_temperature(
        digit_score.logits_and_features(network, data.x_validation)[0], data.y_validation
    )
    detector, member = model_detector(model, fitting, density, learned, committee)
    # Each candidate's threshold keeps 97% of the reference digits; the one that then flags most
    # tuning non-digits is this model's method.
    candidates = tuple(m for m in digit_score.CANDIDATE_METHODS if m in detector.methods)
    energies = {
        name: digit_score.committee_energy(member.network, images) if member is not None else None
        for name, images in (("reference", fitting.x_reference), ("tuning", fitting.x_tuning_non_digits))
    }
    references = detector.scores(network, fitting.x_reference, candidates, committee=energies["reference"])
    others = detector.scores(network, fitting.x_tuning_non_digits, candidates, committee=energies["tuning"])
    thresholds = {m: threshold_for_keep(references[m]) for m in candidates}
    flagged = {m: float(np.mean(others[m] < thresholds[m])) for m in candidates}
    method = max(candidates, key=flagged.get)  # The first of the best: a method of its own on a tie.
    own = max((m for m in candidates if m not in digit_score.COMMITTEE_METHODS), key=flagged.get)
    committee_record = None
    if method in digit_score.COMMITTEE_METHODS:
        committee_record = saved_models.CommitteeRecord(
            model_id=member.card.model_id,
            model_sha256=member.card.model_sha256,
            fallback_method=own,
            fallback_threshold=thresholds[own],
        )
    figures, turned_away = {}, {}
    measured = {"test": data.split("test"), "drawn": data.split("drawn")}
    for name, (images, labels) in (measured | fitting.other_hands).items():
        outputs = digit_score.logits_and_features(network, images)
        logits = outputs[0]
        figures[name] = {
            "raw": reliability_record(digit_score.softmax(logits), labels),
            "calibrated": reliability_record(digit_score.softmax(logits, temperature), labels),
        }
        energy = digit_score.committee_energy(member.network, images) if committee_record else None
        scores = detector.scores(network, images, (method,), outputs=outputs, committee=energy)[method]
        turned_away[name] = float(np.mean(scores < thresholds[method]))
    record = saved_models.NoveltyRecord(
        method=method,
        threshold=thresholds[method],
        keep_rate=KEEP_RATE,
        reference=f"{len(fitting.x_reference)} digits drawn from MNIST validation (seed {REFERENCE_SEED})",
        tuning_flagged=flagged,
        scales={part: (scale.mean, scale.scale) for part, scale in detector.scales.items()},
        statistics_sha256="",  # Filled in by write_calibration from the arrays it writes.
        committee=committee_record,
        turned_away=turned_away,
    )
    calibration = saved_models.Calibration(
        model_sha256=model.card.model_sha256,
        temperature=temperature,
        novelty=record,
        reliability=figures,
        fitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return calibration, density.arrays() | (learned.arrays() if learned is not None else {})


def _same_weights(first: saved_models.SavedModel, second: saved_models.SavedModel) -> bool:
    """True when two saved models hold the same weights (a model is no committee of its own)."""
    return first.card.model_sha256 == second.card.model_sha256


def calibrate_models(model_ids: list[ModelId], root: Path | None = None, report=print) -> None:
    """Fit and write every listed model's calibration file (the density and the learned score are
    fitted once and shared)."""
    fitting = fitting_data()
    density = fit_density(fitting.dataset.x_train, fitting.dataset.y_train)
    learned = fitting.learned_score()
    try:
        member = saved_models.load(COMMITTEE_MEMBER, root)
    except saved_models.SavedModelError as error:
        member = None
        report(f"no committee candidate: {error}")
    for model_id in model_ids:
        model = saved_models.load(model_id, root)
        calibration, arrays = fit_model(model, fitting, density, learned, member)
        saved_models.write_calibration(model.directory, calibration, arrays)
        ece = {name: figure["raw"].ece for name, figure in calibration.reliability.items()}
        ece_after = {name: figure["calibrated"].ece for name, figure in calibration.reliability.items()}
        report(
            f"model {model_id}: temperature {calibration.temperature:.3f}; ECE on MNIST test "
            f"{ece['test']:.2%} -> {ece_after['test']:.2%}, on drawn digits {ece['drawn']:.2%} -> "
            f"{ece_after['drawn']:.2%}; not a digit below {calibration.novelty.threshold:.3f} "
            f"({calibration.novelty.method})"
        )
        for name in fitting.other_hands:
            figure = calibration.reliability[name]
            report(
                f"  {name}: {figure['raw'].share_right():.2%} right, ECE {figure['raw'].ece:.2%} -> "
                f"{figure['calibrated'].ece:.2%}, {calibration.novelty.turned_away[name]:.1%} turned away"
            )
