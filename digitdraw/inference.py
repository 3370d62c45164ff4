"""Classify a drawing with the saved models, fast: preprocessing plus NumPy forward passes.

``load_classifier`` reads a model's weights once per process (re-reading only
when its file changes on disk), so ``classify`` costs one preprocessing and a
few small matrix products: about a millisecond, against about 50 ms for a
single Keras ``model.predict`` call (``benchmarks/latency.py``). A model that cannot be loaded is reported in
the result and the others still answer.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitdraw import saved_models
from digitdraw.models import MODEL_IDS, DenseNetwork, get_spec, saved_models_dir
from digitdraw.preprocess import Steps, preprocess_steps


@functools.lru_cache(maxsize=32)
def _load_cached(model_id: int, root: str, stamp: tuple) -> saved_models.SavedModel:
    return saved_models.load(model_id, Path(root))


def _stamp(directory: Path) -> tuple:
    """When and how big each of a model's files is: a change to any of them means reload."""
    stamp = []
    for name in (saved_models.MODEL_FILE, saved_models.HISTORY_FILE, saved_models.METRICS_FILE):
        try:
            status = (directory / name).stat()
            stamp.append((status.st_mtime_ns, status.st_size))
        except OSError:
            stamp.append(None)  # Missing: load() raises the explanatory error.
    return tuple(stamp)


def load_saved_model(model_id: int, root: Path | None = None) -> saved_models.SavedModel:
    """A saved model with its metrics and history, cached until one of its files changes."""
    get_spec(model_id)
    root = Path(root) if root is not None else saved_models_dir()
    return _load_cached(int(model_id), str(root), _stamp(saved_models.model_dir(model_id, root)))


def load_classifier(model_id: int, root: Path | None = None) -> DenseNetwork:
    """An object whose ``predict_proba(images)`` maps (N, 28, 28) in [0, 1] to (N, 10) probabilities."""
    return load_saved_model(model_id, root).network


@dataclass(frozen=True)
class Classification:
    """One drawing's model input and every requested model's answer."""

    image: np.ndarray | None  # The 28x28 model input; None for a blank drawing.
    steps: Steps | None  # How the drawing became that input.
    probabilities: dict[int, np.ndarray] = field(default_factory=dict)  # Model id -> 10 probabilities.
    errors: dict[int, str] = field(default_factory=dict)  # Model id -> why it could not answer.

    @property
    def is_blank(self) -> bool:
        """True when the drawing held no ink."""
        return self.image is None

    def digit(self, model_id: int) -> int:
        """The digit a model predicts."""
        return int(np.argmax(self.probabilities[model_id]))

    def confidence(self, model_id: int) -> float:
        """The probability a model gives its predicted digit."""
        return float(np.max(self.probabilities[model_id]))


def load_classifiers(
    model_ids: Iterable[int] | None = None, root: Path | None = None
) -> tuple[dict[int, DenseNetwork], dict[int, str]]:
    """The classifiers that load, and for each one that does not, why (with the retrain command)."""
    ids = list(MODEL_IDS) if model_ids is None else [get_spec(m).id for m in model_ids]
    classifiers, errors = {}, {}
    for model_id in ids:
        try:
            classifiers[model_id] = load_classifier(model_id, root)
        except saved_models.SavedModelError as error:
            errors[model_id] = str(error)
    return classifiers, errors


def classify_with(
    image: np.ndarray, classifiers: Mapping[int, DenseNetwork], errors: Mapping[int, str] | None = None
) -> Classification:
    """Preprocess one raw image and run already-loaded classifiers on it."""
    steps = preprocess_steps(image)
    if steps is None:
        return Classification(image=None, steps=None, errors=dict(errors or {}))
    batch = steps.centred[None]
    probabilities = {model_id: network.predict_proba(batch)[0] for model_id, network in classifiers.items()}
    return Classification(
        image=steps.centred, steps=steps, probabilities=probabilities, errors=dict(errors or {})
    )


def classify(
    image: np.ndarray, model_ids: Iterable[int] | None = None, root: Path | None = None
) -> Classification:
    """Preprocess one raw image (canvas or upload) and run the requested models (all when None)."""
    classifiers, errors = load_classifiers(model_ids, root)
    return classify_with(image, classifiers, errors)
