"""Classify drawings with the saved models, fast: preprocessing plus NumPy forward passes.

The one cache rule of the app lives here. A loaded model is kept in memory
and is re-read the moment any of its files changes on disk: before each use
the files are stat-ed (one ``stat`` call per file, a few microseconds), and a change
of any file's inode, size or modification time means a reload. So a model
retrained, replaced, added or deleted while the app runs is seen by the next
request, and nothing is read again while nothing changes. The networks people
trained (``saved_models/custom/<name>/``) follow the same rule, and the list of
models is read from that folder on every call (one directory scan), so a
network trained or deleted while the app runs shows, or goes, on the next
request. Nothing else in the package or the app caches models; what is derived
from a model (here, the digit-score detector built from its calibration arrays)
is cached under the checksums of the files it comes from, which change with the
model.

``classify`` and ``classify_batch`` take raw images (a canvas, a photo, raw
MNIST digits) and preprocess them; a model's ``predict_proba`` expects images
already preprocessed. A model that cannot be loaded is reported in the result
and the others still answer.

A calibrated model (``python -m digitdraw calibrate``) answers with
temperature-scaled probabilities, which state its confidence honestly, and
a digit score with the threshold below which the drawing does not look like
a digit; the network's own probabilities stay available as
``raw_probabilities`` (the same digit wins in both). A model never
calibrated answers with its raw probabilities and no digit score. A model
whose digit score reads another model (a committee method) gets that
member's energy, computed once per batch of drawings for every model that
reads it; when the member cannot load or has other weights than the ones
it was calibrated with, the model answers with its own fallback method and
that method's threshold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitdraw.serving import digit_score, saved_models
from digitdraw.serving.networks import (
    MODEL_IDS,
    NUM_CLASSES,
    ModelId,
    Network,
    check_model_id,
    probabilities,
    saved_models_dir,
)
from digitdraw.serving.preprocess import IMAGE_SIZE, Steps, preprocess_steps, to_mnist

Stamp = tuple[tuple[int, int, int] | None, ...]


def _stamp(directory: Path) -> Stamp:
    """Inode, size and modification time of each of a model's files (optional ones too); None if missing."""
    stamp = []
    for name in (*saved_models.FILES, *saved_models.OPTIONAL_FILES):
        try:
            status = (directory / name).stat()
            stamp.append((status.st_ino, status.st_size, status.st_mtime_ns))
        except OSError:
            stamp.append(None)  # Missing: loading raises the explanatory error.
    return tuple(stamp)


class _ModelCache:
    """Loaded models by folder, each with the stamp of the files it was loaded from."""

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[Stamp, saved_models.SavedModel | saved_models.SavedModelError]] = {}
        self._lock = threading.Lock()
        self.loads = 0  # How many times files were actually read: the tests' window into the rule.

    def get(self, model_id: ModelId, root: Path) -> saved_models.SavedModel:
        directory = saved_models.model_dir(model_id, root)
        stamp = _stamp(directory)
        entry = self._entries.get(directory)
        if entry is None or entry[0] != stamp:
            # One loader at a time: eight sessions asking at once read the files once.
            with self._lock:
                entry = self._entries.get(directory)
                if entry is None or entry[0] != stamp:
                    try:
                        loaded = saved_models.load(model_id, root)
                        _check_detector(loaded)
                    except saved_models.SavedModelError as error:
                        loaded = error  # Remembered too, so a broken model is not re-read every rerun.
                    self.loads += 1
                    # Stamped before loading: a change during the load is caught by the next call.
                    entry = (stamp, loaded)
                    self._entries[directory] = entry
        if isinstance(entry[1], saved_models.SavedModelError):
            raise entry[1]
        return entry[1]


MODEL_CACHE = _ModelCache()


def available_model_ids(root: Path | None = None) -> tuple[ModelId, ...]:
    """Every model there is: the registry's ids (the study's five, then the CNN beyond it), then the
    names of the networks people trained, sorted.

    The registry's are listed whether or not their files load (a broken one is
    reported, not hidden); a custom network exists when its folder does.
    """
    return (*MODEL_IDS, *saved_models.custom_names(root))


def load_saved_model(model_id: ModelId, root: Path | None = None) -> saved_models.SavedModel:
    """A saved model with its card, metrics and history; re-read only when one of its files changes.

    ``model_id`` is one of the registry's ids (1-6) or the name of a network someone trained.
    """
    model_id = check_model_id(model_id)
    root = Path(root) if root is not None else saved_models_dir()
    return MODEL_CACHE.get(model_id, root)


def load_classifier(model_id: ModelId, root: Path | None = None) -> Network:
    """The model's network, whose ``predict_proba`` maps *preprocessed* (N, 28, 28) images to (N, 10).

    ``model_id`` is one of the study's ids or a trained network's name (``load_classifier("my-net")``).
    """
    return load_saved_model(model_id, root).network


def load_models(
    model_ids: Iterable[ModelId] | None = None, root: Path | None = None
) -> tuple[dict[ModelId, saved_models.SavedModel], dict[ModelId, str]]:
    """The saved models that load (all there are when ``model_ids`` is None), and why each other does not."""
    ids = available_model_ids(root) if model_ids is None else [check_model_id(m) for m in model_ids]
    models, errors = {}, {}
    for model_id in ids:
        try:
            models[model_id] = load_saved_model(model_id, root)
        except saved_models.SavedModelError as error:
            errors[model_id] = str(error)
    return models, errors


def prepare_digit_scores(models: Iterable[saved_models.SavedModel]) -> None:
    """Build each calibrated model's digit-score detector now, not on its first drawing.

    A detector is built once per calibration (a few milliseconds each, from the
    saved arrays) and kept by its checksums; building them with the page spares
    the first drawing after the server starts that wait.
    """
    for model in models:
        _detector(model)


def load_classifiers(
    model_ids: Iterable[ModelId] | None = None, root: Path | None = None
) -> tuple[dict[ModelId, Network], dict[ModelId, str]]:
    """The networks that load, and for each model that does not, why."""
    models, errors = load_models(model_ids, root)
    return {model_id: model.network for model_id, model in models.items()}, errors


@dataclass(frozen=True)
class Classification:
    """One drawing's model input and every requested model's answer."""

    image: np.ndarray | None  # The 28x28 model input; None for a blank drawing.
    steps: Steps | None  # How the drawing became that input.
    probabilities: dict[ModelId, np.ndarray] = field(default_factory=dict)  # Model id -> 10 probabilities.
    errors: dict[ModelId, str] = field(default_factory=dict)  # Model id -> why it could not answer.
    # The network's probabilities before temperature scaling; equal to ``probabilities`` if uncalibrated.
    raw_probabilities: dict[ModelId, np.ndarray] = field(default_factory=dict)
    # Calibrated models only: how much the drawing looks like a digit (higher = more).
    digit_scores: dict[ModelId, float] = field(default_factory=dict)
    digit_thresholds: dict[ModelId, float] = field(default_factory=dict)  # Below it: not a digit.

    @property
    def is_blank(self) -> bool:
        """True when the drawing held no ink."""
        return self.image is None

    def digit(self, model_id: ModelId) -> int:
        """The digit a model predicts."""
        return int(np.argmax(self.probabilities[model_id]))

    def confidence(self, model_id: ModelId) -> float:
        """The probability a model gives its predicted digit (calibrated when the model is)."""
        return float(np.max(self.probabilities[model_id]))

    def digit_score(self, model_id: ModelId) -> float | None:
        """How much the drawing looks like a digit to a model (higher = more); None if uncalibrated."""
        return self.digit_scores.get(model_id)

    def is_digit(self, model_id: ModelId) -> bool:
        """False when a calibrated model's digit score is below its threshold: not a digit."""
        score = self.digit_scores.get(model_id)
        return score is None or score >= self.digit_thresholds[model_id]


@dataclass(frozen=True)
class _Answers:
    """One model's answers for a batch of preprocessed images."""

    probabilities: np.ndarray
    raw_probabilities: np.ndarray
    digit_scores: np.ndarray | None
    threshold: float | None


# Detectors built from a model's saved arrays, by the checksums of its weights and arrays: built once
# per calibration, not once per drawing. Old entries are few (one per calibration ever seen) and small.
_DETECTORS: dict[tuple[str, str], digit_score.Detector | None] = {}


def _detector(model: saved_models.SavedModel) -> digit_score.Detector | None:
    if model.calibration is None:
        return None
    key = (model.card.model_sha256, model.calibration.novelty.statistics_sha256)
    if key not in _DETECTORS:
        _DETECTORS[key] = digit_score.detector_for(model)
    return _DETECTORS[key]


def _check_detector(model: saved_models.SavedModel) -> None:
    """Build a calibrated model's detector as it loads, so that digit-score arrays that do not fit
    (missing, of other shapes) disable this model alone, with the command that refits them, instead of
    failing every model's answer the first time a drawing is scored."""
    try:
        _detector(model)
    except (ValueError, IndexError, TypeError, KeyError) as error:
        raise saved_models.SavedModelError(
            f"Model {model.card.model_id!r} cannot be loaded: {saved_models.NOVELTY_FILE} does not hold the "
            f"digit score's arrays ({error}); refit it with "
            f"`{saved_models.calibrate_hint(model.card.model_id)}`"
        ) from error


def _outputs(
    model: saved_models.SavedModel, inputs: np.ndarray, shared: dict[str, dict[str, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """A model's logits and features for a batch, computed once though the committee reads them too."""
    stored = shared.setdefault(f"outputs:{model.card.model_sha256}", {})
    if not stored:
        stored["logits"], stored["features"] = digit_score.logits_and_features(model.network, inputs)
    return stored["logits"], stored["features"]


def _committee_energy(
    record: saved_models.CommitteeRecord | None,
    inputs: np.ndarray,
    shared: dict[str, dict[str, np.ndarray]],
    members: Mapping[ModelId, saved_models.SavedModel],
    root: Path | None,
) -> np.ndarray | None:
    """The committee member's energy for a batch; None when the member cannot load or has other weights
    than the calibration was fitted with (then the model falls back to a method of its own)."""
    if record is None:
        return None
    member = members.get(record.model_id)
    if member is None:
        try:
            member = load_saved_model(record.model_id, root)
        except saved_models.SavedModelError:
            return None
    if member.card.model_sha256 != record.model_sha256:
        return None
    return digit_score.logsumexp(_outputs(member, inputs, shared)[0])


def digit_scores(
    model: saved_models.SavedModel,
    inputs: np.ndarray,
    shared: dict[str, dict[str, np.ndarray]] | None = None,
    members: Mapping[ModelId, saved_models.SavedModel] | None = None,
    root: Path | None = None,
) -> tuple[np.ndarray, float, str] | None:
    """A calibrated model's digit scores for preprocessed images, the threshold below which an image is
    not a digit, and the method used (the fallback when a committee member cannot answer); None when
    uncalibrated. ``shared``: one dict per batch of inputs, for every model, so that the parts that
    ignore the model and the committee member's forward pass are computed once; ``members``: models
    loaded already (a committee member missing there is loaded from ``root``)."""
    detector = _detector(model)
    if model.calibration is None or detector is None:
        return None
    shared = {} if shared is None else shared
    record = model.calibration.novelty
    method, threshold, energy = record.method, record.threshold, None
    if method in digit_score.COMMITTEE_METHODS:
        energy = _committee_energy(record.committee, inputs, shared, members or {}, root)
        if energy is None:
            if record.committee is None:
                raise ValueError(f"expected a committee record in the calibration of the {method} method")
            method, threshold = record.committee.fallback_method, record.committee.fallback_threshold
    outputs = _outputs(model, inputs, shared)
    scores = detector.scores(model.network, inputs, (method,), outputs, shared, energy)[method]
    return scores, threshold, method


def answer_with(
    model: saved_models.SavedModel,
    inputs: np.ndarray,
    shared: dict[str, dict[str, np.ndarray]] | None = None,
    members: Mapping[ModelId, saved_models.SavedModel] | None = None,
    root: Path | None = None,
) -> _Answers:
    """A model's raw and calibrated probabilities and digit scores for preprocessed images; ``shared``,
    one dict per batch of inputs, lets the models share the scores that ignore the model."""
    shared = {} if shared is None else shared
    scored = digit_scores(model, inputs, shared, members, root)
    if scored is None:  # Uncalibrated: the network's own probabilities are all there is.
        raw = model.network.predict_proba(inputs)
        return _Answers(raw, raw, None, None)
    # One forward pass serves the raw and calibrated probabilities and the digit score's energy.
    logits = _outputs(model, inputs, shared)[0]
    raw = probabilities(logits)
    calibrated = digit_score.softmax(logits, model.calibration.temperature).astype(np.float32)
    scores, threshold, _ = scored
    return _Answers(calibrated, raw, scores, threshold)


def classify_with(
    image: np.ndarray,
    models: Mapping[ModelId, saved_models.SavedModel],
    errors: Mapping[ModelId, str] | None = None,
    root: Path | None = None,
) -> Classification:
    """Preprocess one raw image and run already-loaded models on it (a committee member not among them
    is loaded from ``root``)."""
    steps = preprocess_steps(image)
    if steps is None:
        return Classification(image=None, steps=None, errors=dict(errors or {}))
    batch = steps.centred[None]
    # The density, the learned score and the committee member's energy are computed once for all models.
    shared: dict[str, dict[str, np.ndarray]] = {}
    answers = {
        model_id: answer_with(model, batch, shared, models, root) for model_id, model in models.items()
    }
    return Classification(
        image=steps.centred,
        steps=steps,
        probabilities={m: a.probabilities[0] for m, a in answers.items()},
        errors=dict(errors or {}),
        raw_probabilities={m: a.raw_probabilities[0] for m, a in answers.items()},
        digit_scores={m: float(a.digit_scores[0]) for m, a in answers.items() if a.digit_scores is not None},
        digit_thresholds={m: a.threshold for m, a in answers.items() if a.threshold is not None},
    )


def classify(
    image: np.ndarray, model_ids: Iterable[ModelId] | None = None, root: Path | None = None
) -> Classification:
    """Preprocess one raw image (canvas or upload) and run the requested models (all there are when None).

    ``model_ids`` may mix the study's ids and trained networks' names:
    ``classify(image, [4, "my-net"])``. Each calibrated model's
    ``probabilities`` are temperature-scaled, with the network's own in
    ``raw_probabilities``, and it gives a ``digit_score``; ``is_digit`` is
    False when that score is below the model's threshold.
    """
    return classify_with(image, *load_models(model_ids, root), root=root)


@dataclass(frozen=True)
class BatchClassification:
    """Many raw images' model inputs and every requested model's answers, row by row."""

    images: np.ndarray  # (N, 28, 28) model inputs; all zero where the image was blank.
    blank: np.ndarray  # (N,) True where an image held no ink.
    probabilities: dict[ModelId, np.ndarray] = field(
        default_factory=dict
    )  # Model id -> (N, 10); NaN if blank.
    errors: dict[ModelId, str] = field(default_factory=dict)
    raw_probabilities: dict[ModelId, np.ndarray] = field(default_factory=dict)  # Before temperature scaling.
    digit_scores: dict[ModelId, np.ndarray] = field(
        default_factory=dict
    )  # Calibrated models: (N,); NaN if blank.
    digit_thresholds: dict[ModelId, float] = field(default_factory=dict)

    def digits(self, model_id: ModelId) -> np.ndarray:
        """Each image's predicted digit by one model; -1 where the image was blank."""
        digits = np.argmax(np.nan_to_num(self.probabilities[model_id], nan=-1.0), axis=1)
        return np.where(self.blank, -1, digits)


def classify_batch(
    images: Iterable[np.ndarray] | np.ndarray,
    model_ids: Iterable[ModelId] | None = None,
    root: Path | None = None,
) -> BatchClassification:
    """Preprocess raw images the way ``classify`` does and run the models on all of them in one pass.

    Takes anything ``classify`` takes, many at once: an (N, H, W) or
    (N, H, W, C) array (raw MNIST digits, say) or a list of images of any
    sizes. Each image is preprocessed on its own (OpenCV works per image);
    each model then runs once over the whole batch.
    """
    images = list(images)
    if not images:
        raise ValueError("expected at least one image, got none")
    prepared = [to_mnist(image) for image in images]
    blank = np.array([image is None for image in prepared])
    inputs = np.zeros((len(prepared), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for index, image in enumerate(prepared):
        if image is not None:
            inputs[index] = image
    models, errors = load_models(model_ids, root)
    result = BatchClassification(images=inputs, blank=blank, errors=errors)
    shared: dict[str, dict[str, np.ndarray]] = {}  # The scores that ignore the model, once per batch.
    for model_id, model in models.items():
        calibrated, raw = (np.full((len(prepared), NUM_CLASSES), np.nan, np.float32) for _ in range(2))
        scores = np.full(len(prepared), np.nan)
        if not blank.all():
            answers = answer_with(model, inputs[~blank], shared, models, root)
            calibrated[~blank], raw[~blank] = answers.probabilities, answers.raw_probabilities
            if answers.digit_scores is not None:
                scores[~blank] = answers.digit_scores
                result.digit_scores[model_id] = scores
                result.digit_thresholds[model_id] = answers.threshold
        elif model.calibration is not None:
            # No ink, no score; the threshold is the one an inked batch would use.
            result.digit_scores[model_id] = scores
            result.digit_thresholds[model_id] = digit_scores(model, inputs[:1], {}, models, root)[1]
        result.probabilities[model_id], result.raw_probabilities[model_id] = calibrated, raw
    return result
