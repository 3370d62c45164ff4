"""The model registry, the Keras builder, and a NumPy forward pass for inference.

Every fact about a model (its layer sizes, its activation, the study's
numbers, where its files live) is written once, in ``REGISTRY``; training, the
app and the tests all read it from here.

Keras's ``model.predict`` costs tens of milliseconds a call because of its
graph machinery, while one of these networks is at most 100k multiply-adds.
``DenseNetwork`` holds the same weights as plain float32 arrays and runs the
forward pass in NumPy, which is what the app uses; a test checks that it
agrees with Keras on every saved model.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INPUT_SIZE = 28 * 28
NUM_CLASSES = 10
SAVED_MODELS_ENV_VAR = "DIGITDRAW_SAVED_MODELS"
DEFAULT_SAVED_MODELS_DIR = Path(__file__).resolve().parent.parent / "saved_models"


@dataclass(frozen=True)
class ModelSpec:
    """One network of the study: its architecture and the numbers the study reported."""

    id: int
    hidden_layers: tuple[int, ...]
    activation: str
    study_train_accuracy: float | None
    study_validation_accuracy: float | None
    source: str

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """All layer widths, input and output included, e.g. (784, 16, 16, 10)."""
        return (INPUT_SIZE, *self.hidden_layers, NUM_CLASSES)

    @property
    def architecture(self) -> str:
        """The architecture as the study wrote it, e.g. ``784-16-16-10``."""
        return "-".join(str(size) for size in self.layer_sizes)

    @property
    def name(self) -> str:
        """A short human label, e.g. ``Model 2 · 784-16-16-10 · ReLU``."""
        pretty = {"relu": "ReLU", "sigmoid": "sigmoid"}[self.activation]
        return f"Model {self.id} · {self.architecture} · {pretty}"

    @property
    def directory_name(self) -> str:
        """The folder under ``saved_models/`` that holds this model's files."""
        return f"model_{self.id}"

    @property
    def parameter_count(self) -> int:
        """Weights plus biases of every Dense layer."""
        sizes = self.layer_sizes
        return sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(sizes))


REGISTRY: dict[int, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(1, (16, 16), "sigmoid", 96.35, 94.79, "four-network study"),
        ModelSpec(2, (16, 16), "relu", 96.79, 95.14, "four-network study"),
        ModelSpec(3, (64, 64), "sigmoid", 99.84, 97.29, "four-network study"),
        ModelSpec(4, (64, 64), "relu", 99.65, 97.47, "four-network study"),
        ModelSpec(5, (128,), "relu", 99.26, None, "one-hidden-layer study"),
    )
}
MODEL_IDS: tuple[int, ...] = tuple(REGISTRY)


def get_spec(model_id: int) -> ModelSpec:
    """Return the registry entry for a model id, or raise ValueError naming the valid ids."""
    if isinstance(model_id, bool) or not isinstance(model_id, (int, np.integer)):
        raise ValueError(f"model id must be an integer in {list(MODEL_IDS)}, got {model_id!r}")
    try:
        return REGISTRY[int(model_id)]
    except KeyError:
        raise ValueError(f"unknown model id {model_id!r}; expected one of {list(MODEL_IDS)}") from None


def saved_models_dir() -> Path:
    """The root of the saved models: ``$DIGITDRAW_SAVED_MODELS`` or the repository's folder."""
    override = os.environ.get(SAVED_MODELS_ENV_VAR)
    return Path(override).expanduser() if override else DEFAULT_SAVED_MODELS_DIR


def build_keras_model(spec: ModelSpec):
    """Build the uncompiled Keras Sequential network that a spec describes."""
    import keras

    layers = [keras.Input(shape=(28, 28), name="image"), keras.layers.Flatten(name="flatten")]
    for index, width in enumerate(spec.hidden_layers, start=1):
        layers.append(keras.layers.Dense(width, activation=spec.activation, name=f"hidden_{index}"))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax", name="output"))
    return keras.Sequential(layers, name=spec.directory_name)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Written through tanh, which cannot overflow, unlike exp(-x) for large -x.
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


_ACTIVATIONS = {"sigmoid": _sigmoid, "relu": _relu}


class DenseNetwork:
    """A fully connected softmax classifier evaluated with NumPy."""

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], activation: str):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if len(weights) != len(biases) or not weights:
            raise ValueError("expected one bias vector per weight matrix, and at least one layer")
        self.weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        self.biases = [np.ascontiguousarray(b, dtype=np.float32) for b in biases]
        self.activation = activation
        self._hidden = _ACTIVATIONS[activation]
        for w, b, w_next in zip(self.weights, self.biases, [*self.weights[1:], None]):
            if w.ndim != 2 or b.shape != (w.shape[1],):
                raise ValueError(f"layer of shape {w.shape} has a bias of shape {b.shape}")
            if w_next is not None and w_next.shape[0] != w.shape[1]:
                raise ValueError(f"layer of shape {w.shape} cannot feed one of shape {w_next.shape}")

    @classmethod
    def from_keras(cls, model, activation: str) -> DenseNetwork:
        """Copy the Dense kernels and biases out of a Keras model."""
        dense = [layer for layer in model.layers if layer.get_weights()]
        return cls([d.get_weights()[0] for d in dense], [d.get_weights()[1] for d in dense], activation)

    @property
    def input_size(self) -> int:
        """Number of inputs the first layer takes (784 for MNIST)."""
        return self.weights[0].shape[0]

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, 10), for images of shape (N, 28, 28) in [0, 1]."""
        images = np.asarray(images)
        if images.ndim < 2 or images.shape[0] == 0 or images[0].size != self.input_size:
            raise ValueError(f"expected a batch of shape (N, 28, 28) with N >= 1, got {images.shape}")
        activations = images.reshape(images.shape[0], -1).astype(np.float32, copy=False)
        last = len(self.weights) - 1
        for index, (w, b) in enumerate(zip(self.weights, self.biases)):
            activations = activations @ w + b
            if index < last:
                activations = self._hidden(activations)
        # A max-shifted softmax, so that large logits cannot overflow exp.
        activations = activations - activations.max(axis=1, keepdims=True)
        np.exp(activations, out=activations)
        activations /= activations.sum(axis=1, keepdims=True)
        return activations
