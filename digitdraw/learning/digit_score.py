"""Fitting the digit score ("not a digit"): the class density, the learned score, the detector's scales
and the threshold, from MNIST alone; ``digitdraw.serving.digit_score`` serves what is fitted here.

The fitting costs minutes (an SVD per digit style, a small Keras network) and
runs once per model in ``python -m digitdraw calibrate``; serving rebuilds the
same objects from the saved arrays in milliseconds and never imports Keras.
The Mahalanobis distance of the last hidden features (Lee et al., 2018) is
fitted here too, for ``experiments/novelty.py`` to measure beside the methods
the app offers; no model uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitdraw.serving.digit_score import (
    COMMITTEE_PART,
    ClassDensity,
    Detector,
    LearnedScore,
    Standardiser,
    committee_energy,
    logits_and_features,
)
from digitdraw.serving.networks import CONV_KERNEL, NUM_CLASSES, Network

KEEP_RATE = 0.97  # Share of real drawn digits a threshold lets through.
# Ten directions per digit did as well as 20 and better than 40 on the tuning part
# (docs/research/digit-score.md).
DENSITY_COMPONENTS = 10
DENSITY_CLUSTERS = 3  # Styles per digit.
KMEANS_ITERATIONS = 15
# The learned score's convolutions (3x3, each followed by a 2x2 max pool) and its hidden dense layer: they
# flagged more tuning non-digits than a 784-128-1 network on the same data, and wider ones flagged
# little more for about twice the fit time (docs/research/digit-score.md).
LEARNED_FILTERS = (8, 16)
LEARNED_HIDDEN_UNITS = 32
LEARNED_EPOCHS = 8
# A random share of both classes is blurred while fitting, so that blur cannot tell them apart: an
# enlarged piece is blurry, and so are scanned digits blown up from 8x8 (docs/research/digit-score.md).
LEARNED_BLUR_SHARE = 0.3
LEARNED_BLUR_SIGMA = (0.5, 1.2)  # Gaussian blur, in pixels of the 28x28 image.
# Added to the shared covariance's diagonal: ReLU units that never fire make it singular.
COVARIANCE_RIDGE = 1e-3


def fit_density(
    images: np.ndarray,
    labels: np.ndarray,
    components: int = DENSITY_COMPONENTS,
    clusters: int = DENSITY_CLUSTERS,
    seed: int = 0,
) -> ClassDensity:
    """A ``ClassDensity`` of preprocessed images: each digit's styles by k-means, then each style's mean,
    directions and variances by SVD."""
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    labels = np.asarray(labels)
    if len(flat) != len(labels) or not 0 < components < flat.shape[1] or clusters < 1:
        raise ValueError(
            f"expected as many labels as images, 1 to {flat.shape[1] - 1} components and at least one "
            f"cluster, got {len(labels)} labels, {len(flat)} images, {components} components, "
            f"{clusters} clusters"
        )
    rng = np.random.default_rng(seed)
    means, bases, variances, noise = [], [], [], []
    for digit in range(NUM_CLASSES):
        digit_rows = flat[labels == digit]
        styles = _kmeans(digit_rows, clusters, rng) if len(digit_rows) >= clusters else np.zeros(0, int)
        for style in range(clusters):
            rows = digit_rows[styles == style]
            if len(rows) <= components:
                raise ValueError(
                    f"expected more than {components} images in each of the digit {digit}'s {clusters} "
                    f"styles, got {len(rows)}"
                )
            mean = rows.mean(axis=0)
            _, singular, directions = np.linalg.svd(rows - mean, full_matrices=False)
            spread = singular**2 / len(rows)
            means.append(mean)
            bases.append(directions[:components])
            variances.append(spread[:components])
            noise.append(spread[components:].sum() / (flat.shape[1] - components))
    return ClassDensity(*(np.asarray(values, np.float32) for values in (means, bases, variances, noise)))


def _kmeans(rows: np.ndarray, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's cluster after Lloyd's iterations from randomly chosen rows (an empty cluster keeps
    its centre)."""
    centres = rows[rng.choice(len(rows), clusters, replace=False)]
    squared = (rows**2).sum(axis=1)[:, None]
    for _ in range(KMEANS_ITERATIONS):
        assignment = (squared - 2 * rows @ centres.T + (centres**2).sum(axis=1)).argmin(axis=1)
        centres = np.stack(
            [
                rows[assignment == c].mean(axis=0) if (assignment == c).any() else centres[c]
                for c in range(clusters)
            ]
        )
    return (squared - 2 * rows @ centres.T + (centres**2).sum(axis=1)).argmin(axis=1)


def blur_some(images: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of preprocessed images with a random ``share`` of them Gaussian-blurred (sigma drawn from
    ``LEARNED_BLUR_SIGMA``) and rescaled to their former peak."""
    images = np.array(images, np.float32)
    for index in np.flatnonzero(rng.random(len(images)) < share):
        blurred = cv2.GaussianBlur(images[index], (0, 0), rng.uniform(*LEARNED_BLUR_SIGMA))
        peak = blurred.max()
        if peak > 0:
            images[index] = blurred * (images[index].max() / peak)
    return images


def fit_learned_score(
    digits: np.ndarray,
    non_digits: np.ndarray,
    filters: tuple[int, ...] = LEARNED_FILTERS,
    hidden_units: int = LEARNED_HIDDEN_UNITS,
    epochs: int = LEARNED_EPOCHS,
    seed: int = 0,
    blur_share: float = LEARNED_BLUR_SHARE,
) -> LearnedScore:
    """A ``LearnedScore`` trained with Keras on preprocessed 28x28 digits (label 1) and non-digits
    (label 0), each class weighted equally, with a share ``blur_share`` of both blurred."""
    import keras

    digits, non_digits = (np.asarray(a, np.float32) for a in (digits, non_digits))
    if (
        len(digits) == 0
        or len(non_digits) == 0
        or digits.shape[1:] != non_digits.shape[1:]
        or digits.ndim != 3
    ):
        raise ValueError(
            f"expected digits and non-digits of one image size (N, H, W), got {digits.shape} and "
            f"{non_digits.shape}"
        )
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = blur_some(np.concatenate([digits, non_digits]), blur_share, rng)
    targets = np.r_[np.ones(len(digits)), np.zeros(len(non_digits))].astype(np.float32)
    # Balanced classes: the score's threshold is set on digits later, so neither class may dominate.
    weights = np.r_[
        np.full(len(digits), len(inputs) / (2 * len(digits))),
        np.full(len(non_digits), len(inputs) / (2 * len(non_digits))),
    ].astype(np.float32)
    layers = [keras.Input(inputs.shape[1:]), keras.layers.Reshape((*inputs.shape[1:], 1))]
    for count in filters:
        layers += [
            keras.layers.Conv2D(count, CONV_KERNEL, activation="relu"),
            keras.layers.MaxPooling2D(2),
        ]
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(hidden_units, activation="relu"),
        keras.layers.Dense(1),
    ]
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(inputs, targets, sample_weight=weights, epochs=epochs, batch_size=128, verbose=0, shuffle=True)
    trained = [layer.get_weights() for layer in model.layers if layer.get_weights()]
    *convolutions, (hidden_weights, hidden_biases), (output_weights, output_bias) = trained
    return LearnedScore(
        hidden_weights,
        hidden_biases,
        output_weights[:, 0],
        output_bias.reshape(()),
        tuple((kernel, biases) for kernel, biases in convolutions),
    )


def fit_detector(
    network: Network,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    validation_images: np.ndarray,
    density: ClassDensity | None = None,
    learned: LearnedScore | None = None,
    committee: Network | None = None,
) -> Detector:
    """A network's ``Detector``: the density fitted on training images unless given, the scales of the
    summed parts on validation images; ``committee``: the member network whose energy the committee
    methods add."""
    density = density or fit_density(train_images, train_labels)
    parts = ("energy", "density") + (("learned",) if learned is not None else ())
    unscaled = Detector(density, {}, learned).scores(network, validation_images, parts)
    scales = {part: Standardiser.fit(unscaled[part]) for part in parts}
    if committee is not None:
        scales[COMMITTEE_PART] = Standardiser.fit(committee_energy(committee, validation_images))
    return Detector(density, scales, learned)


@dataclass(frozen=True)
class Gaussian:
    """Class means and one shared precision matrix of a network's last hidden features."""

    means: np.ndarray  # (10, d)
    precision: np.ndarray  # (d, d)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray) -> Gaussian:
        """Class means and the inverse of the pooled within-class covariance (with a small ridge)."""
        features, labels = np.asarray(features, np.float64), np.asarray(labels)
        if len(features) != len(labels) or len(features) == 0:
            raise ValueError(
                f"expected as many labels as feature rows, got {len(labels)} and {len(features)}"
            )
        means = np.stack([features[labels == c].mean(axis=0) for c in range(NUM_CLASSES)])
        centred = features - means[labels]
        covariance = centred.T @ centred / len(features)
        covariance += COVARIANCE_RIDGE * np.eye(covariance.shape[0])
        return cls(means=means, precision=np.linalg.inv(covariance))

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of every row to every class mean, (N, 10)."""
        difference = np.asarray(features, np.float64)[:, None, :] - self.means[None]
        return np.einsum("ncd,de,nce->nc", difference, self.precision, difference)


def mahalanobis_scores(gaussian: Gaussian, network: Network, images: np.ndarray) -> np.ndarray:
    """Minus the smallest Mahalanobis distance of the network's last hidden features to a class mean."""
    return -gaussian.distances(logits_and_features(network, images)[1]).min(axis=1)


def threshold_for_keep(digit_scores: np.ndarray, keep: float = KEEP_RATE) -> float:
    """The score at or above which a share ``keep`` of these real digits lies."""
    if not 0 < keep <= 1:
        raise ValueError(f"expected a share to keep between 0 and 1, got {keep}")
    return float(np.quantile(np.asarray(digit_scores, np.float64), 1 - keep, method="lower"))


def auroc(digit_scores: np.ndarray, other_scores: np.ndarray) -> float:
    """Chance that a random real digit scores above a random non-digit (ties count half)."""
    digit_scores, other_scores = np.asarray(digit_scores, np.float64), np.asarray(other_scores, np.float64)
    if len(digit_scores) == 0 or len(other_scores) == 0:
        raise ValueError("expected at least one score of each kind")
    combined = np.concatenate([digit_scores, other_scores])
    order = combined.argsort(kind="mergesort")
    ranks = np.empty(len(combined))
    ranks[order] = np.arange(1, len(combined) + 1)
    # Average ranks over ties (Mann-Whitney U).
    sorted_values = combined[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(combined)]
    for start, end in zip(starts, ends):
        if end - start > 1:
            ranks[order[start:end]] = (start + 1 + end) / 2
    rank_sum = ranks[: len(digit_scores)].sum()
    u = rank_sum - len(digit_scores) * (len(digit_scores) + 1) / 2
    return float(u / (len(digit_scores) * len(other_scores)))
