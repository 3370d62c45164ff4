"""How much an input looks like a digit at all, at serve time: scores where higher means more digit-like.

A softmax classifier must spread all its probability over the ten digits, so
a letter or a scribble still gets a confident digit. These scores look
elsewhere. Every method works from what any classifier of the app has (its
logits and the features its last layer reads) or from the input alone, so it
applies to the study's networks and to a future convolutional one alike:

- ``max_softmax``: the largest probability (the baseline every paper beats);
- ``max_logit``: the largest logit, before softmax squashes it;
- ``energy``: ``T * logsumexp(logits / T)`` with T = 1 (Liu et al., 2020);
- ``density``: the log-likelihood of the 28x28 input under probabilistic
  PCAs of three styles per digit (ten directions each) fitted on MNIST's training split run
  through ``to_mnist``: a small learned space of what each digit looks like;
  it ignores the model;
- ``combined``: ``energy`` and ``density`` standardised (each by its mean and
  spread on MNIST's validation split) and added: the model's own evidence
  and the input's resemblance to any digit fail on different non-digits;
- ``learned``: the logit of a small convolutional network
  (conv8-pool-conv16-pool-32-1, ``LearnedScore``) trained to tell MNIST
  digits (as they are, drawn as strokes, thickened or at low resolution) from
  MNIST digits broken into non-digits (``digitdraw.learning.negatives``): outlier exposure
  (Hendrycks et al., 2019) with nothing but MNIST. Like the density it
  ignores the model, so one is fitted and every model shares it (and
  ``Detector.scores`` computes it once for all models that share it);
- ``learned_density``: ``learned`` and ``density`` standardised and added;
- ``learned_combined``: ``learned``, ``density`` and ``energy`` standardised
  and added;
- ``learned_committee``: ``learned``, ``density`` and the energy of *another*
  model, the committee member (the CNN, ``calibration.COMMITTEE_MEMBER``),
  standardised and added. Every model of the app runs on every drawing
  anyway, so the member's energy costs one forward pass per drawing, shared
  by all models. What it trades: a model's digit score, and so its "not a
  digit", then depends on another model's weights (a study network flags as
  the CNN does), and it needs that model to load; when the member is missing,
  broken or retrained, the model falls back to its best method of its own and
  that method's threshold, both kept in its calibration file
  (``saved_models.CommitteeRecord``). It flagged more tuning non-digits for the
  study's networks and turned away more scanned digits (docs/research/digit-score.md).

The threshold is the score that keeps a chosen share (97%) of real digits.
Its reference is digits drawn from MNIST validation images (``digitdraw.learning.drawn``), so
the threshold, like every statistic here, comes from MNIST alone; letters,
symbols, scribbles and other people's digits (``digitdraw.learning.evalsets``) are only for
measuring, with one exception: which of ``CANDIDATE_METHODS`` a model uses
is chosen, per model, as the one that flags most of the *tuning* part of the
generated non-digits at its threshold (``calibration.fit_model``); the
held-out part is never looked at while choosing. ``experiments/novelty.py``
measures every method on both parts (docs/research/digit-score.md).

This module only scores: everything here is rebuilt from a calibrated model's
saved arrays (``detector_for``) and runs in NumPy. Fitting the same objects,
with Keras for the learned score, is ``digitdraw.learning.digit_score``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from digitdraw.serving import saved_models
from digitdraw.serving.networks import CONV_KERNEL, NUM_CLASSES, Network, convolve, max_pool

METHODS = (
    "max_softmax",
    "max_logit",
    "energy",
    "density",
    "combined",
    "learned",
    "learned_density",
    "learned_combined",
    "learned_committee",
)
# The methods the app chooses from, per model, by measurement on the tuning non-digits
# (``digitdraw.learning.calibration``). The learned score alone is measured and not offered: it turns
# away far more scanned digits by other hands (thick strokes, unlike its training digits) than it does
# added to the density (docs/research/digit-score.md).
# Learned + density is offered for the models whose own energy drags the sum down (the 16-unit ones).
# The committee method comes last, so that on a tie a model keeps a method that reads no other model.
CANDIDATE_METHODS = ("density", "combined", "learned_density", "learned_combined", "learned_committee")
# The parts each sum of standardised scores adds.
SUMS = {
    "combined": ("energy", "density"),
    "learned_density": ("learned", "density"),
    "learned_combined": ("learned", "density", "energy"),
    "learned_committee": ("learned", "density", "committee_energy"),
}
# The energy of the committee member, another model, for the same images (``Detector.scores``'s input).
COMMITTEE_PART = "committee_energy"
COMMITTEE_METHODS = tuple(method for method, parts in SUMS.items() if COMMITTEE_PART in parts)
SCALED_PARTS = ("energy", "density", "learned", COMMITTEE_PART)
# The parts that depend on the input alone, not the model: computed once for every model that shares them.
INPUT_PARTS = ("density", "learned")
DENSITY_ARRAYS = ("means", "bases", "variances", "noise")
# The learned score's dense layers' arrays.
LEARNED_ARRAYS = (
    "learned_hidden_weights",
    "learned_hidden_biases",
    "learned_output_weights",
    "learned_output_bias",
)
# The i-th convolution's kernel (3, 3, channels in, filters) and biases.
LEARNED_CONV_KERNEL = "learned_conv{}_kernel"
LEARNED_CONV_BIASES = "learned_conv{}_biases"


def logits_and_features(network: Network, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A network's logits (N, 10) and the features its last layer reads (N, d) for preprocessed images."""
    features, logits = network.features_and_logits(images)
    return logits.astype(np.float64), features.astype(np.float64)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities from logits divided by a temperature, row by row."""
    if not temperature > 0:
        raise ValueError(f"expected a positive temperature, got {temperature}")
    scaled = np.asarray(logits, np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def logsumexp(values: np.ndarray) -> np.ndarray:
    """log(sum(exp(values))) along the last axis, without overflow."""
    values = np.asarray(values, np.float64)
    peak = values.max(axis=-1)
    return peak + np.log(np.exp(values - peak[..., None]).sum(axis=-1))


@dataclass(frozen=True)
class ClassDensity:
    """A few probabilistic PCAs per digit on preprocessed 28x28 images: where digits lie in input space.

    Each digit's training images are split by k-means into ``DENSITY_CLUSTERS``
    styles (a 7 with or without its bar, a 1 with or without its flag); each
    style keeps its mean, its first ``k`` principal directions with their
    variances, and the average variance left outside them (Tipping & Bishop's
    probabilistic PCA). The score is the best style's log-likelihood, up to a
    constant: high for an image close to some digit's learned space, low for
    one that needs directions no digit uses. Three styles per digit flagged
    about 5 points more tuning non-digits than one; five did no better.
    """

    means: np.ndarray  # (styles, 784)
    bases: np.ndarray  # (styles, k, 784), orthonormal rows per style.
    variances: np.ndarray  # (styles, k)
    noise: np.ndarray  # (styles,) variance per remaining direction.

    def __post_init__(self) -> None:
        # Everything that does not depend on the image, made once: the Draw page scores one image per
        # stroke, where recomputing it would cost more than the scoring. Each style's distance splits
        # into ||x||^2 - 2 x.mean + ||mean||^2 and its projection into x.basis - mean.basis, so one
        # image takes two matrix products against every style at once.
        size, components = self.means.shape[1], self.bases.shape[1]
        means, bases = self.means.astype(np.float64), self.bases.astype(np.float64)
        constant = -0.5 * (
            np.log(self.variances.astype(np.float64)).sum(axis=1)
            + (size - components) * np.log(self.noise.astype(np.float64))
        )
        object.__setattr__(self, "_means_t", np.ascontiguousarray(means.T))
        object.__setattr__(self, "_mean_norms", (means**2).sum(axis=1))
        object.__setattr__(self, "_bases_t", np.ascontiguousarray(bases.reshape(-1, size).T))
        object.__setattr__(self, "_mean_projections", np.einsum("cd,ckd->ck", means, bases))
        object.__setattr__(self, "_inverse_variances", 1.0 / self.variances.astype(np.float64))
        object.__setattr__(self, "_inverse_noise", 1.0 / self.noise.astype(np.float64))
        object.__setattr__(self, "_constant", constant)

    def log_likelihood(self, images: np.ndarray) -> np.ndarray:
        """The best style's log-likelihood (without the constant 784/2 log 2 pi) of each image, (N,)."""
        flat = np.asarray(images, np.float64).reshape(len(images), -1)
        styles, components = self.variances.shape
        distances = (flat**2).sum(axis=1)[:, None] - 2 * flat @ self._means_t + self._mean_norms
        inside = (flat @ self._bases_t).reshape(len(flat), styles, components) - self._mean_projections
        outside = distances - (inside**2).sum(axis=2)
        value = self._constant - 0.5 * (
            (inside**2 * self._inverse_variances).sum(axis=2) + outside * self._inverse_noise
        )
        return value.max(axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays by name, for saving."""
        return {"means": self.means, "bases": self.bases, "variances": self.variances, "noise": self.noise}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ClassDensity:
        """Rebuild from saved arrays, checking their shapes agree."""
        try:
            means, bases, variances, noise = (np.asarray(arrays[k], np.float32) for k in DENSITY_ARRAYS)
        except KeyError as error:
            raise ValueError(f"expected the arrays {list(DENSITY_ARRAYS)}, {error} is missing") from None
        styles, components = variances.shape if variances.ndim == 2 else (0, 0)
        expected = {
            "means": (styles, means.shape[-1]),
            "bases": (styles, components, means.shape[-1]),
            "variances": (styles, components),
            "noise": (styles,),
        }
        actual = {
            "means": means.shape,
            "bases": bases.shape,
            "variances": variances.shape,
            "noise": noise.shape,
        }
        if styles == 0 or styles % NUM_CLASSES or actual != expected:
            raise ValueError(
                f"expected density arrays of shapes {expected}, styles a multiple of 10, got {actual}"
            )
        if not (np.all(variances > 0) and np.all(noise > 0)):
            raise ValueError("expected positive variances")
        return cls(means, bases, variances, noise)


@dataclass(frozen=True)
class LearnedScore:
    """A small ReLU network whose output logit says how much a preprocessed image looks like a digit.

    3x3 convolutions, each followed by a 2x2 max pool (``convolutions``: one
    (kernel, biases) pair each, as Keras stores them), then one hidden dense
    layer and one output unit. Trained with Keras
    (``digitdraw.learning.digit_score.fit_learned_score``) and
    served in NumPy (``__call__``) by the classifiers' own convolution and
    pooling (``networks.convolve``, ``networks.max_pool``); a test checks the two agree.
    """

    hidden_weights: np.ndarray  # (flattened maps, H)
    hidden_biases: np.ndarray  # (H,)
    output_weights: np.ndarray  # (H,)
    output_bias: np.ndarray  # ()
    convolutions: tuple[tuple[np.ndarray, np.ndarray], ...] = ()  # ((3, 3, in, filters), (filters,)) each.

    def __post_init__(self) -> None:
        for name in ("hidden_weights", "hidden_biases", "output_weights", "output_bias"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), np.float32, order="C"))
        convolutions = tuple(
            (np.asarray(kernel, np.float32, order="C"), np.asarray(biases, np.float32, order="C"))
            for kernel, biases in self.convolutions
        )
        object.__setattr__(self, "convolutions", convolutions)
        units = self.hidden_biases.shape
        channels, problems = 1, []
        for index, (kernel, biases) in enumerate(convolutions):
            if kernel.shape[:3] != (CONV_KERNEL, CONV_KERNEL, channels) or biases.shape != kernel.shape[3:]:
                problems.append(f"convolution {index}: {kernel.shape} and {biases.shape}")
            channels = kernel.shape[-1] if kernel.ndim == 4 else channels
        if (
            problems
            or self.hidden_weights.ndim != 2
            or self.hidden_weights.shape[1:] != units
            or self.output_weights.shape != units
            or self.output_bias.shape != ()
        ):
            raise ValueError(
                "expected learned-score arrays of shapes (3, 3, channels in, F) and (F,) per convolution, "
                f"(maps, H), (H,), (H,) and (), got {'; '.join(problems) or 'convolutions as expected'}, "
                f"{self.hidden_weights.shape}, {self.hidden_biases.shape}, {self.output_weights.shape} "
                f"and {self.output_bias.shape}"
            )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """The digit logit of each preprocessed image, (N,)."""
        maps = np.asarray(images, np.float32)
        if self.convolutions:
            maps = maps.reshape(len(maps), *maps.shape[-2:], 1)
            for kernel, biases in self.convolutions:
                maps = max_pool(np.maximum(convolve(maps, kernel, biases), 0.0))
        flat = maps.reshape(len(maps), -1)
        if flat.shape[1] != self.hidden_weights.shape[0]:
            raise ValueError(
                f"expected images that give {self.hidden_weights.shape[0]} values before the dense layer, "
                f"got {flat.shape[1]} from images of shape {np.shape(images)[1:]}"
            )
        hidden = np.maximum(flat @ self.hidden_weights + self.hidden_biases, 0.0)
        return (hidden @ self.output_weights + self.output_bias).astype(np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays by name, for saving."""
        values = (self.hidden_weights, self.hidden_biases, self.output_weights, self.output_bias)
        arrays = dict(zip(LEARNED_ARRAYS, values))
        for index, (kernel, biases) in enumerate(self.convolutions):
            arrays[LEARNED_CONV_KERNEL.format(index)] = kernel
            arrays[LEARNED_CONV_BIASES.format(index)] = biases
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> LearnedScore:
        """Rebuild from saved arrays: the dense layers' and a kernel and biases per convolution."""
        try:
            dense = [arrays[name] for name in LEARNED_ARRAYS]
            convolutions = []
            while LEARNED_CONV_KERNEL.format(len(convolutions)) in arrays:
                index = len(convolutions)
                kernel = arrays[LEARNED_CONV_KERNEL.format(index)]
                convolutions.append((kernel, arrays[LEARNED_CONV_BIASES.format(index)]))
        except KeyError as error:
            raise ValueError(
                f"expected the arrays {list(LEARNED_ARRAYS)} and a kernel and biases per convolution, "
                f"{error} is missing"
            ) from None
        return cls(*dense, convolutions=tuple(convolutions))


@dataclass(frozen=True)
class Standardiser:
    """Mean and spread of a score on reference digits, to put two scores on one scale."""

    mean: float
    scale: float

    @classmethod
    def fit(cls, scores: np.ndarray) -> Standardiser:
        """The scores' mean and standard deviation (1 when they do not vary)."""
        scores = np.asarray(scores, np.float64)
        return cls(float(scores.mean()), float(scores.std()) or 1.0)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, np.float64) - self.mean) / self.scale


@dataclass(frozen=True)
class Detector:
    """What the scores need beyond the network: the class density, the learned score when fitted,
    and the scales of the summed scores' parts (the committee member's energy among them when fitted
    with one). Fitted by ``digitdraw.learning.digit_score.fit_detector``; rebuilt from a calibrated
    model's saved arrays by ``detector_for``."""

    density: ClassDensity
    scales: Mapping[str, Standardiser]  # SCALED_PARTS -> their mean and spread on MNIST validation.
    learned: LearnedScore | None = None

    @cached_property
    def input_key(self) -> str:
        """A checksum of the arrays the input-only parts (``INPUT_PARTS``) come from: detectors with the
        same key give the same density and learned scores for the same images."""
        digest = hashlib.sha256()
        arrays = self.density.arrays() | (self.learned.arrays() if self.learned is not None else {})
        for name in sorted(arrays):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(arrays[name]).tobytes())
        return digest.hexdigest()

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods this detector can compute: the learned ones only when it has a learned score,
        the committee ones only when it was fitted with a committee member."""
        return tuple(
            method
            for method in METHODS
            if (self.learned is not None or "learned" not in method)
            and (COMMITTEE_PART in self.scales or method not in COMMITTEE_METHODS)
        )

    def scores(
        self,
        network: Network,
        images: np.ndarray,
        methods: tuple[str, ...] | None = None,
        outputs: tuple[np.ndarray, np.ndarray] | None = None,
        shared: MutableMapping[str, dict[str, np.ndarray]] | None = None,
        committee: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Each method's digit score (higher = more like a digit) for preprocessed images.

        ``outputs``: the network's ``logits_and_features`` of these images when
        the caller has them already. ``shared``: a dict the caller keeps for
        *these same images* and passes to every model's detector: the parts
        that ignore the model (``INPUT_PARTS``) are stored there under
        ``input_key`` and computed once for all detectors that share it.
        ``committee``: the committee member's ``committee_energy`` of these
        images, needed by the committee methods only. ``methods``: all this
        detector can compute (``methods``) when None.
        """
        methods = self.methods if methods is None else methods
        unknown = set(methods) - set(METHODS)
        if unknown:
            raise ValueError(f"expected methods among {list(METHODS)}, got {sorted(unknown)}")
        wanted = set(methods)
        for method in methods:
            wanted.update(SUMS.get(method, ()))
        logits = (outputs if outputs is not None else logits_and_features(network, images))[0]
        result: dict[str, np.ndarray] = {}
        if "max_softmax" in wanted:
            result["max_softmax"] = softmax(logits).max(axis=1)
        if "max_logit" in wanted:
            result["max_logit"] = logits.max(axis=1)
        if "energy" in wanted:
            result["energy"] = logsumexp(logits)
        if "learned" in wanted and self.learned is None:
            raise ValueError("expected a detector fitted with a learned score for the learned methods")
        if COMMITTEE_PART in wanted:
            if committee is None or COMMITTEE_PART not in self.scales:
                raise ValueError(
                    "expected a detector fitted with a committee member, and that member's energies, "
                    "for the committee methods"
                )
            result[COMMITTEE_PART] = np.asarray(committee, np.float64)
        inputs_only = shared.setdefault(self.input_key, {}) if shared is not None else {}
        scorers = {"density": self.density.log_likelihood, "learned": self.learned}
        for part in INPUT_PARTS:
            if part in wanted:
                if part not in inputs_only:
                    inputs_only[part] = scorers[part](images)
                result[part] = inputs_only[part]
        for method, parts in SUMS.items():
            if method in wanted:
                result[method] = sum(self.scales[part](result[part]) for part in parts)
        return {method: result[method] for method in methods}


def committee_energy(member: Network, images: np.ndarray) -> np.ndarray:
    """The committee part: the member network's energy (log-sum-exp of its logits) for preprocessed images."""
    return logsumexp(logits_and_features(member, images)[0])


def detector_for(model: saved_models.SavedModel) -> Detector | None:
    """The digit-score detector a calibrated model saved; None for a model never calibrated."""
    if model.calibration is None or model.novelty_arrays is None:
        return None
    scales = {part: Standardiser(*pair) for part, pair in model.calibration.novelty.scales.items()}
    arrays = model.novelty_arrays
    return Detector(ClassDensity.from_arrays(arrays), scales, learned=LearnedScore.from_arrays(arrays))
