"""Network architectures, the study's registry, the Keras builder, and a NumPy forward pass.

An ``Architecture`` is a list of layers (type, size, activation) on a 28x28
input: saved models store it, so any network the app runs describes itself,
whether it is one of the study's or not. The study's five networks are the
entries of ``REGISTRY``, the one place that names their layer sizes,
activations, the study's numbers and their folders.

Keras's ``model.predict`` costs tens of milliseconds a call because of its
graph machinery, while one of these networks is at most 100k multiply-adds.
``Network`` holds the same weights as plain float32 arrays and runs the
forward pass in NumPy, which is what the app uses; tests check that it
agrees with Keras on every saved model.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitdraw.preprocess import FIELD_SIZE

NUM_CLASSES = 10
SAVED_MODELS_ENV_VAR = "DIGITDRAW_SAVED_MODELS"
DEFAULT_SAVED_MODELS_DIR = Path(__file__).resolve().parent.parent / "saved_models"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Written through tanh, which cannot overflow, unlike exp(-x) for large -x.
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, to within 1.5e-7."""
    # NumPy has no erf, and SciPy is not a dependency: Abramowitz and Stegun's formula 7.1.26,
    # whose error (below 1.5e-7) is under float32's resolution of the values it feeds.
    sign = np.sign(x)
    magnitude = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * magnitude)
    polynomial = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - polynomial * np.exp(-magnitude * magnitude))


def _gelu(x: np.ndarray) -> np.ndarray:
    # Keras's default GELU (approximate=False): x times the normal distribution's CDF at x.
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _softmax(x: np.ndarray) -> np.ndarray:
    # Max-shifted, so that large logits cannot overflow exp.
    shifted = x - x.max(axis=-1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=-1, keepdims=True)
    return shifted


ACTIVATIONS = {"sigmoid": _sigmoid, "relu": _relu, "tanh": np.tanh, "gelu": _gelu, "softmax": _softmax}
ACTIVATION_LABELS = {
    "sigmoid": "sigmoid",
    "relu": "ReLU",
    "tanh": "tanh",
    "gelu": "GELU",
    "softmax": "softmax",
}
HIDDEN_ACTIVATIONS = ("sigmoid", "relu", "tanh", "gelu")
LAYER_KINDS = ("dense",)


@dataclass(frozen=True)
class Layer:
    """One layer: its type, how many units it has, and its activation."""

    kind: str
    units: int
    activation: str

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"expected a layer kind in {list(LAYER_KINDS)}, got {self.kind!r}")
        if isinstance(self.units, bool) or not isinstance(self.units, int) or self.units < 1:
            raise ValueError(f"expected a positive whole number of units, got {self.units!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"expected an activation in {sorted(ACTIVATIONS)}, got {self.activation!r}")


@dataclass(frozen=True)
class Architecture:
    """A feed-forward network on a 28x28 image: its layers in order, the last one the classifier."""

    layers: tuple[Layer, ...]
    input_shape: tuple[int, int] = (FIELD_SIZE, FIELD_SIZE)

    def __post_init__(self) -> None:
        # Stored as JSON lists; kept as tuples so that architectures compare and hash by value.
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if not self.layers:
            raise ValueError("expected at least one layer")
        last = self.layers[-1]
        if last.units != NUM_CLASSES or last.activation != "softmax":
            raise ValueError(f"expected a last layer of {NUM_CLASSES} softmax units, got {last}")
        if any(layer.activation == "softmax" for layer in self.layers[:-1]):
            raise ValueError("expected softmax only in the last layer")

    @classmethod
    def dense(cls, hidden_units: tuple[int, ...], activation: str) -> Architecture:
        """Hidden dense layers of one activation, then the 10-way softmax classifier."""
        hidden = [Layer("dense", units, activation) for units in hidden_units]
        return cls((*hidden, Layer("dense", NUM_CLASSES, "softmax")))

    @property
    def input_size(self) -> int:
        """Number of input values: 784 for a 28x28 image."""
        return self.input_shape[0] * self.input_shape[1]

    @property
    def sizes(self) -> tuple[int, ...]:
        """Every layer's width, input and output included, e.g. (784, 16, 16, 10)."""
        return (self.input_size, *(layer.units for layer in self.layers))

    @property
    def summary(self) -> str:
        """The architecture as the study wrote it, e.g. ``784-16-16-10``."""
        return "-".join(str(size) for size in self.sizes)

    @property
    def hidden_activation(self) -> str:
        """The hidden layers' activation, or ``mixed`` when they differ."""
        activations = {layer.activation for layer in self.layers[:-1]} or {"softmax"}
        return activations.pop() if len(activations) == 1 else "mixed"

    @property
    def parameter_count(self) -> int:
        """Weights plus biases of every layer."""
        return sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(self.sizes))

    @property
    def weight_shapes(self) -> list[tuple[int, int]]:
        """The kernel shape of every layer, in order."""
        return list(itertools.pairwise(self.sizes))


@dataclass(frozen=True)
class ModelSpec:
    """One network of the study: its id, architecture and the accuracies the study reported (in %)."""

    id: int
    architecture: Architecture
    study_train_accuracy: float | None
    study_validation_accuracy: float | None

    @property
    def activation(self) -> str:
        """The hidden layers' activation."""
        return self.architecture.hidden_activation

    @property
    def name(self) -> str:
        """A short human label, e.g. ``Model 2 · 784-16-16-10 · ReLU``."""
        return f"Model {self.id} · {self.architecture.summary} · {ACTIVATION_LABELS[self.activation]}"

    @property
    def directory_name(self) -> str:
        """The folder under ``saved_models/`` that holds this model's files."""
        return f"model_{self.id}"


REGISTRY: dict[int, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(1, Architecture.dense((16, 16), "sigmoid"), 96.35, 94.79),
        ModelSpec(2, Architecture.dense((16, 16), "relu"), 96.79, 95.14),
        ModelSpec(3, Architecture.dense((64, 64), "sigmoid"), 99.84, 97.29),
        ModelSpec(4, Architecture.dense((64, 64), "relu"), 99.65, 97.47),
        # The one-hidden-layer network of a second study, which gave no validation figure.
        ModelSpec(5, Architecture.dense((128,), "relu"), 99.26, None),
    )
}
MODEL_IDS: tuple[int, ...] = tuple(REGISTRY)

# A network someone trained is known by its name: a letter first, so that it can never be read as
# one of the study's ids, and nothing but letters, digits and dashes, so that it can never be a path.
CUSTOM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,39}")
CUSTOM_NAME_RULE = "1 to 40 letters, digits and dashes, starting with a letter"
CUSTOM_FOLDER = "custom"  # Under the saved-models root: custom/<name>/ holds one trained network.
ModelId = int | str


def check_custom_name(name: object) -> str:
    """Return a custom network's name if it is well formed, or raise ValueError saying what a name is."""
    if not isinstance(name, str) or not CUSTOM_NAME.fullmatch(name):
        raise ValueError(f"a network's name must be {CUSTOM_NAME_RULE}, got {name!r}")
    return name


def check_model_id(model_id: object) -> ModelId:
    """One of the study's ids (an int) or a custom network's name (a str); ValueError otherwise."""
    if isinstance(model_id, str):
        return check_custom_name(model_id)
    return get_spec(model_id).id


def is_custom(model_id: ModelId) -> bool:
    """True for a network someone trained, False for one of the study's."""
    return isinstance(model_id, str)


def get_spec(model_id: int) -> ModelSpec:
    """Return the registry entry for a model id, or raise ValueError naming the valid ids."""
    if isinstance(model_id, bool) or not isinstance(model_id, (int, np.integer)):
        raise ValueError(f"model id must be an integer in {list(MODEL_IDS)}, got {model_id!r}")
    try:
        return REGISTRY[int(model_id)]
    except KeyError:
        raise ValueError(f"unknown model id {model_id!r}; expected one of {list(MODEL_IDS)}") from None


def check_class(digit: object, name: str = "class") -> int:
    """Return a class index 0-9 as an int, or raise ValueError naming what was expected."""
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit < NUM_CLASSES:
        raise ValueError(f"expected a {name} 0-{NUM_CLASSES - 1}, got {digit!r}")
    return int(digit)


def saved_models_dir() -> Path:
    """The root of the saved models: ``$DIGITDRAW_SAVED_MODELS`` or the repository's folder."""
    override = os.environ.get(SAVED_MODELS_ENV_VAR)
    return Path(override).expanduser() if override else DEFAULT_SAVED_MODELS_DIR


def build_keras_model(architecture: Architecture, name: str = "network"):
    """Build the uncompiled Keras Sequential network that an architecture describes."""
    import keras

    layers = [keras.Input(shape=architecture.input_shape, name="image"), keras.layers.Flatten(name="flatten")]
    for index, layer in enumerate(architecture.layers, start=1):
        is_last = index == len(architecture.layers)
        layers.append(
            keras.layers.Dense(
                layer.units, activation=layer.activation, name="output" if is_last else f"hidden_{index}"
            )
        )
    return keras.Sequential(layers, name=name)


class Network:
    """A feed-forward classifier evaluated with NumPy, from an architecture and its weights."""

    def __init__(self, architecture: Architecture, weights: list[np.ndarray], biases: list[np.ndarray]):
        shapes = [np.shape(w) for w in weights]
        if shapes != architecture.weight_shapes:
            raise ValueError(f"expected kernels of shapes {architecture.weight_shapes}, got {shapes}")
        if [np.shape(b) for b in biases] != [(layer.units,) for layer in architecture.layers]:
            raise ValueError(f"expected one bias vector per layer, of sizes {architecture.sizes[1:]}")
        self.architecture = architecture
        self.weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        self.biases = [np.ascontiguousarray(b, dtype=np.float32) for b in biases]
        self._activations = [ACTIVATIONS[layer.activation] for layer in architecture.layers]

    @classmethod
    def from_keras(cls, model, architecture: Architecture) -> Network:
        """Copy the Dense kernels and biases out of a Keras model."""
        dense = [layer.get_weights() for layer in model.layers if layer.get_weights()]
        return cls(architecture, [kernel for kernel, _ in dense], [bias for _, bias in dense])

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, 10), for *preprocessed* images of shape (N, 28, 28) in [0, 1].

        The images must already be in the models' input format, as ``to_mnist``
        makes it: raw MNIST digits or canvas drawings give silently worse
        answers (Model 1 reads raw MNIST test digits 88.9% right, against 96.5%
        through ``to_mnist``). ``digitdraw.classify`` and ``classify_batch``
        take raw images and preprocess them.
        """
        return self.layer_outputs(images)[-1]

    def read(self, image: np.ndarray) -> tuple[int, float]:
        """The digit one preprocessed 28x28 image is read as, and the probability given to it."""
        probabilities = self.predict_proba(self.check_image(image)[None])[0]
        answer = int(np.argmax(probabilities))
        return answer, float(probabilities[answer])

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The output layer before softmax, shape (N, 10), for preprocessed images of shape (N, 28, 28)."""
        hidden = self.layer_outputs(images)[:-1]
        last_input = hidden[-1] if hidden else self._flat(images)
        return last_input @ self.weights[-1] + self.biases[-1]

    def check_image(self, image: object) -> np.ndarray:
        """One preprocessed image as float32, or ValueError when it is not of the network's input shape."""
        image = np.asarray(image, dtype=np.float32)
        if image.shape != self.architecture.input_shape:
            raise ValueError(
                f"expected one preprocessed image of shape {self.architecture.input_shape}, got {image.shape}"
            )
        return image

    def _flat(self, images: np.ndarray) -> np.ndarray:
        """A batch of images as float32 rows of pixels, or ValueError for anything else."""
        images = np.asarray(images)
        size = self.architecture.input_size
        if images.ndim < 2 or images.shape[0] == 0 or images[0].size != size:
            raise ValueError(f"expected a batch of shape (N, 28, 28) with N >= 1, got {images.shape}")
        return images.reshape(images.shape[0], size).astype(np.float32, copy=False)

    def layer_outputs(self, images: np.ndarray) -> list[np.ndarray]:
        """Every layer's activations for preprocessed images, in order; the last are the probabilities."""
        activations = self._flat(images)
        outputs = []
        for weights, biases, activation in zip(self.weights, self.biases, self._activations):
            activations = activation(activations @ weights + biases)
            outputs.append(activations)
        return outputs
