"""Network architectures, the study's registry, the Keras builder, and a NumPy forward pass.

An ``Architecture`` is a list of layers (type, size, activation) on a 28x28
input: saved models store it, so any network the app runs describes itself,
whether it is one of the study's or not. The study's five networks, and
model 6, a small CNN beyond the study (marked ``in_study=False``), are the
entries of ``REGISTRY``, the one place that names their layer sizes,
activations, the study's numbers and their folders.

Keras's ``model.predict`` costs tens of milliseconds a call because of its
graph machinery, while one of the study's networks is at most 100k
multiply-adds (the CNN about 700k). ``Network`` holds the same weights as
plain float32 arrays and runs the forward pass in NumPy, which is what the
app uses; tests check that it agrees with Keras on every saved model. A
convolution gathers every 3x3 patch once (im2col, through a strided view)
and multiplies them by the kernel in one matrix product, which BLAS does far
faster than a loop over positions; the patches cost 9x the map's memory, so
big batches go through in chunks.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitdraw.serving.preprocess import IMAGE_SIZE

NUM_CLASSES = 10
SAVED_MODELS_ENV_VAR = "DIGITDRAW_SAVED_MODELS"
# The checkout: the folder holding the digitdraw package, streamlit_app.py, saved_models/ and data/.
CHECKOUT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_SAVED_MODELS_DIR = CHECKOUT_DIR / "saved_models"


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


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from float32 logits, exactly as ``Network.predict_proba`` computes them."""
    return _softmax(np.asarray(logits, np.float32))


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def leaky_relu(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """x where it is positive, ``negative_slope`` times x elsewhere."""
    return np.where(x > 0, x, x * np.asarray(negative_slope, x.dtype))


# Every activation a layer may have. ``leaky_relu`` also needs its layer's ``negative_slope``, and
# ``linear`` (none) comes from networks opened from a file, whose layers may leave it to a later one.
ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "relu": _relu,
    "tanh": np.tanh,
    "gelu": _gelu,
    "softmax": _softmax,
    "leaky_relu": leaky_relu,
    "linear": _identity,
}
ACTIVATION_LABELS = {
    "sigmoid": "sigmoid",
    "relu": "ReLU",
    "tanh": "tanh",
    "gelu": "GELU",
    "softmax": "softmax",
    "leaky_relu": "leaky ReLU",
    "linear": "linear",
    "mixed": "mixed",
}
# The activations a network designed on the Train page (or with ``train --hidden``) may use.
HIDDEN_ACTIVATIONS = ("sigmoid", "relu", "tanh", "gelu")
BEYOND_STUDY = "beyond the study"  # How a registry network that the study did not have is marked.
# "dense": fully connected, on the flattened output of what came before. "conv": a convolution
# (Keras's cross-correlation) of ``units`` filters, by default 3x3, stride 1, "valid" padding (no zeros
# added: to_mnist leaves a blank 4-pixel border, so padding would only add work, and the smaller maps keep
# a small CNN under 100k weights); "same" pads with zeros as TensorFlow does, more after than before when
# the total is odd. "pool": max or average pooling, by default 2x2 with stride 2, dropping an incomplete
# last window as Keras does; it has no units and no activation. Convolutions and pools come before the
# first dense layer.
LAYER_KINDS = ("dense", "conv", "pool")
SPATIAL_KINDS = ("conv", "pool")
PADDINGS = ("valid", "same")
POOLINGS = ("max", "average")
CONV_KERNEL = 3
POOL_SIZE = 2
# An input scale or offset beyond this is no pixel scaling: 255 (pixels 0 to 255) is the largest in use.
MAX_INPUT_SCALING = 1e4


def conv_padding(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """Zeros added before and after one axis of a map by a convolution, as TensorFlow pads: none for
    "valid"; for "same", enough that the output has ceil(size / stride) positions, the odd one after."""
    if padding == "valid":
        return 0, 0
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pair(value: object, name: str) -> tuple[int, int]:
    """A (height, width) pair of positive whole numbers from two numbers; ValueError otherwise."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"expected a {name} of two whole numbers (height, width), got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in value):
        raise ValueError(f"expected a {name} of positive whole numbers, got {value!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class Layer:
    """One layer: its type, how many units (filters, for a convolution) it has, and its activation.

    A convolution also has its ``kernel`` size, ``strides`` and ``padding``; a pool its window
    (``kernel``), ``strides`` and ``pooling`` (max or average), and neither units nor activation. A
    leaky ReLU layer has its ``negative_slope``. What is not given takes the defaults above, so the
    study's layers need only kind, units and activation.
    """

    kind: str
    units: int | None = None
    activation: str | None = None
    kernel: tuple[int, int] | None = None
    strides: tuple[int, int] | None = None
    padding: str = "valid"
    pooling: str | None = None
    negative_slope: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"expected a layer kind in {list(LAYER_KINDS)}, got {self.kind!r}")
        if self.kind == "dense" and (self.kernel, self.strides, self.pooling, self.padding) != (
            None,
            None,
            None,
            "valid",
        ):
            raise ValueError(
                f"expected a dense layer without kernel, strides, padding or pooling, got {self}"
            )
        if self.kind in SPATIAL_KINDS:
            default = (CONV_KERNEL, CONV_KERNEL) if self.kind == "conv" else (POOL_SIZE, POOL_SIZE)
            kernel = _pair(self.kernel if self.kernel is not None else default, "kernel size")
            strides = (1, 1) if self.kind == "conv" else kernel
            object.__setattr__(self, "kernel", kernel)
            object.__setattr__(self, "strides", _pair(self.strides or strides, "stride"))
        if self.kind == "pool":
            object.__setattr__(self, "pooling", self.pooling or "max")
            if self.pooling not in POOLINGS or self.padding != "valid":
                raise ValueError(
                    f"expected a pool of {' or '.join(POOLINGS)} pooling with valid padding, got {self}"
                )
            if self.units is not None or self.activation is not None or self.negative_slope is not None:
                raise ValueError(f"expected a pool layer without units or activation, got {self}")
            return
        if self.pooling is not None:
            raise ValueError(f"expected pooling only on a pool layer, got {self}")
        if self.padding not in PADDINGS:
            raise ValueError(f"expected a padding in {list(PADDINGS)}, got {self.padding!r}")
        if isinstance(self.units, bool) or not isinstance(self.units, int) or self.units < 1:
            raise ValueError(f"expected a positive whole number of units, got {self.units!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"expected an activation in {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if (self.activation == "leaky_relu") != (self.negative_slope is not None):
            raise ValueError(f"expected a negative slope exactly for a leaky ReLU layer, got {self}")
        if self.negative_slope is not None and not 0.0 <= self.negative_slope < 1.0:
            raise ValueError(f"expected a leaky ReLU's negative slope in [0, 1), got {self.negative_slope!r}")

    @property
    def has_weights(self) -> bool:
        """Whether the layer has a kernel and biases (dense and conv do, a pool does not)."""
        return self.kind != "pool"

    def activate(self, values: np.ndarray) -> np.ndarray:
        """The layer's activation applied to its pre-activation values."""
        if self.activation == "leaky_relu":
            return leaky_relu(values, self.negative_slope)
        return ACTIVATIONS[self.activation](values)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one image's output of this layer, given one image's input shape."""
        if self.kind == "dense":
            return (self.units,)
        if len(input_shape) != 3:
            raise ValueError(f"expected a {self.kind} layer before any dense layer, got it after one")
        height, width, channels = input_shape
        size = []
        for extent, kernel, stride in zip((height, width), self.kernel, self.strides):
            padded = extent + sum(conv_padding(extent, kernel, stride, self.padding))
            size.append((padded - kernel) // stride + 1 if padded >= kernel else 0)
        shape = (*size, self.units if self.kind == "conv" else channels)
        if min(shape[:2]) < 1:
            raise ValueError(f"a {self.kind} layer on a {height}x{width} map leaves nothing")
        return shape

    @property
    def label(self) -> str:
        """The layer in an architecture's summary: ``16`` for dense, ``conv16``, ``pool``; a kernel,
        stride, padding or pooling other than the default is added, e.g. ``conv32/5x5s2same``, ``avgpool``."""
        if self.kind == "dense":
            return f"{self.units}"
        name = (
            f"conv{self.units}" if self.kind == "conv" else ("pool" if self.pooling == "max" else "avgpool")
        )
        default = (CONV_KERNEL,) * 2 if self.kind == "conv" else (POOL_SIZE,) * 2
        default_strides = (1, 1) if self.kind == "conv" else self.kernel
        extra = "" if self.kernel == default else f"{self.kernel[0]}x{self.kernel[1]}"
        if self.strides != default_strides:
            extra += f"s{self.strides[0]}" if self.strides[0] == self.strides[1] else f"s{self.strides}"
        if self.padding == "same":
            extra += "same"
        return f"{name}/{extra}" if extra else name


@dataclass(frozen=True)
class Architecture:
    """A feed-forward network on a 28x28 image: its layers in order, the last one the classifier.

    The first layer reads ``input_scale * pixel + input_offset``, the pixels as ``to_mnist`` gives them (0
    to 1): 1 and 0 for every network trained here; a network opened from a file may expect 0 to 255 or
    standardised pixels instead.
    """

    layers: tuple[Layer, ...]
    input_shape: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)
    input_scale: float = 1.0
    input_offset: float = 0.0

    def __post_init__(self) -> None:
        # Stored as JSON lists; kept as tuples so that architectures compare and hash by value.
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if self.input_shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected an input of {IMAGE_SIZE}x{IMAGE_SIZE} pixels, got {self.input_shape}")
        scaling = (self.input_scale, self.input_offset)
        if not all(isinstance(v, (int, float)) and abs(v) <= MAX_INPUT_SCALING for v in scaling):
            raise ValueError(
                f"expected an input scale and offset within ±{MAX_INPUT_SCALING:g}, got {scaling}"
            )
        if self.input_scale == 0:
            raise ValueError("expected a non-zero input scale")
        if not self.layers:
            raise ValueError("expected at least one layer")
        last = self.layers[-1]
        if last.kind != "dense" or last.units != NUM_CLASSES or last.activation != "softmax":
            raise ValueError(f"expected a last layer of {NUM_CLASSES} softmax units, got {last}")
        if any(layer.activation == "softmax" for layer in self.layers[:-1]):
            raise ValueError("expected softmax only in the last layer")
        # Raises ValueError for a convolution after a dense layer, or one that leaves nothing.
        _ = self.shapes

    @classmethod
    def dense(cls, hidden_units: tuple[int, ...], activation: str) -> Architecture:
        """Hidden dense layers of one activation, then the 10-way softmax classifier."""
        hidden = [Layer("dense", units, activation) for units in hidden_units]
        return cls((*hidden, Layer("dense", NUM_CLASSES, "softmax")))

    @classmethod
    def convolutional(
        cls, filters: tuple[int, ...], dense_units: tuple[int, ...], activation: str
    ) -> Architecture:
        """Blocks of a 3x3 convolution then a 2x2 max pool, one per entry of ``filters``, then hidden dense
        layers, all of one activation, then the 10-way softmax classifier."""
        blocks = [layer for units in filters for layer in (Layer("conv", units, activation), Layer("pool"))]
        hidden = [Layer("dense", units, activation) for units in dense_units]
        return cls((*blocks, *hidden, Layer("dense", NUM_CLASSES, "softmax")))

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds to read one image: every dense and conv output value's fan-in, summed."""
        outputs = [shape for layer, shape in zip(self.layers, self.shapes[1:]) if layer.has_weights]
        return sum(
            int(np.prod(kernel[:-1])) * int(np.prod(shape))
            for kernel, shape in zip(self.weight_shapes, outputs)
        )

    @property
    def largest_patches(self) -> int:
        """The most values a convolution of this network gathers into patches (im2col) for one image."""
        sizes = [
            int(np.prod(shape[:2])) * int(np.prod(kernel[:-1]))
            for layer, kernel, shape in zip(
                (layer for layer in self.layers if layer.has_weights),
                self.weight_shapes,
                [shape for layer, shape in zip(self.layers, self.shapes[1:]) if layer.has_weights],
            )
            if layer.kind == "conv"
        ]
        return max(sizes, default=0)

    @property
    def is_scaled(self) -> bool:
        """Whether the first layer reads the pixels other than as ``to_mnist`` gives them."""
        return (self.input_scale, self.input_offset) != (1.0, 0.0)

    def scaled(self, images: np.ndarray) -> np.ndarray:
        """Preprocessed images as the first layer reads them (the same array when not scaled)."""
        if not self.is_scaled:
            return images
        return images * np.float32(self.input_scale) + np.float32(self.input_offset)

    @property
    def is_convolutional(self) -> bool:
        """Whether the network has convolutions (and so feature maps rather than a vector per layer)."""
        return any(layer.kind in SPATIAL_KINDS for layer in self.layers)

    @property
    def input_size(self) -> int:
        """Number of input values: 784 for a 28x28 image."""
        return self.input_shape[0] * self.input_shape[1]

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """One image's shape at the input and after every layer, e.g. ((28, 28, 1), (26, 26, 16), ...);
        a dense network's input is (784,), what its first layer reads."""
        shape = (*self.input_shape, 1) if self.is_convolutional else (self.input_size,)
        shapes = [shape]
        for layer in self.layers:
            shape = layer.output_shape(shape)
            shapes.append(shape)
        return tuple(shapes)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Every layer's number of values, input and output included, e.g. (784, 16, 16, 10)."""
        return tuple(int(np.prod(shape)) for shape in self.shapes)

    @property
    def summary(self) -> str:
        """The architecture as the study wrote it, e.g. ``784-16-16-10``, or ``784-conv16-pool-...-10``."""
        return "-".join([str(self.input_size), *(layer.label for layer in self.layers)])

    @property
    def hidden_activation(self) -> str:
        """The hidden layers' activation, or ``mixed`` when they differ."""
        activations = {layer.activation for layer in self.layers[:-1] if layer.has_weights} or {"softmax"}
        return activations.pop() if len(activations) == 1 else "mixed"

    @property
    def parameter_count(self) -> int:
        """Weights plus biases of every layer."""
        return sum(int(np.prod(kernel)) + kernel[-1] for kernel in self.weight_shapes)

    @property
    def weight_shapes(self) -> list[tuple[int, ...]]:
        """The kernel shape of every layer that has one, in order: (fan in, units) for dense,
        (3, 3, channels in, filters) for a convolution, as Keras stores them."""
        shapes = []
        for layer, before in zip(self.layers, self.shapes):
            if layer.kind == "dense":
                shapes.append((int(np.prod(before)), layer.units))
            elif layer.kind == "conv":
                shapes.append((*layer.kernel, before[-1], layer.units))
        return shapes


@dataclass(frozen=True)
class ModelSpec:
    """One network of the registry: its id, architecture and the accuracies the study reported (in %).

    ``in_study`` is False for a network this project added beyond the study, which has no study figures.
    """

    id: int
    architecture: Architecture
    study_train_accuracy: float | None
    study_validation_accuracy: float | None
    in_study: bool = True

    @property
    def activation(self) -> str:
        """The hidden layers' activation."""
        return self.architecture.hidden_activation

    @property
    def name(self) -> str:
        """A short human label, e.g. ``Model 2 · 784-16-16-10 · ReLU``; ``· beyond the study`` for one
        that is not the study's."""
        label = f"Model {self.id} · {self.architecture.summary} · {ACTIVATION_LABELS[self.activation]}"
        return label if self.in_study else f"{label} · {BEYOND_STUDY}"

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
        # Not the study's: a small convolutional network (56,714 weights), to show what convolutions add.
        ModelSpec(6, Architecture.convolutional((16, 32), (64,), "relu"), None, None, in_study=False),
    )
}
MODEL_IDS: tuple[int, ...] = tuple(REGISTRY)
# The study's five networks; the registry's others were added beyond it.
STUDY_MODEL_IDS: tuple[int, ...] = tuple(spec.id for spec in REGISTRY.values() if spec.in_study)

# A network someone trained is known by its name: a letter first, so that it can never be read as
# one of the study's ids, and nothing but letters, digits and dashes, so that it can never be a path.
CUSTOM_NAME_LENGTH = 40
CUSTOM_NAME = re.compile(rf"[A-Za-z][A-Za-z0-9-]{{0,{CUSTOM_NAME_LENGTH - 1}}}")
CUSTOM_NAME_RULE = f"1 to {CUSTOM_NAME_LENGTH} letters, digits and dashes, starting with a letter"
CUSTOM_FOLDER = "custom"  # Under the saved-models root: custom/<name>/ holds one trained network.
ModelId = int | str


def check_custom_name(name: object) -> str:
    """Return a custom network's name if it is well formed, or raise ValueError saying what a name is."""
    if not isinstance(name, str) or not CUSTOM_NAME.fullmatch(name):
        raise ValueError(f"a network's name must be {CUSTOM_NAME_RULE}, got {name!r}")
    return name


def custom_name_like(text: str) -> str | None:
    """A well-formed network name close to ``text`` (accents dropped, each run of other characters a
    dash, what precedes the first letter dropped, cut to length), or None when ``text`` has no letter."""
    name = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9]+", "-", name)
    name = re.sub(r"^[^A-Za-z]+", "", name)[:CUSTOM_NAME_LENGTH].strip("-")
    return name if CUSTOM_NAME.fullmatch(name) else None


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


# Images per step of a batched forward pass through a convolutional network: a convolution's patches
# take 26*26*9 floats an image in model 6, so 10,000 at once would be hundreds of megabytes; a network
# with larger patches (an opened one) takes fewer images a step, its patches within PATCH_BUDGET_BYTES.
CONV_CHUNK = 500
PATCH_BUDGET_BYTES = 128 * 2**20


def conv_patches(maps: np.ndarray, kernel: tuple[int, int] = (CONV_KERNEL, CONV_KERNEL)) -> np.ndarray:
    """Every kernel-sized patch of channels-last maps (N, H, W, C): a view (N, H', W', kh, kw, C), no copy."""
    windows = np.lib.stride_tricks.sliding_window_view(maps, kernel, axis=(1, 2))
    return windows.transpose(0, 1, 2, 4, 5, 3)  # (N, H', W', C, kh, kw) -> Keras's kernel order.


def pad_maps(maps: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], padding: str) -> np.ndarray:
    """Maps (N, H, W, C) with the zeros a convolution's padding adds (the same array for "valid")."""
    if padding == "valid":
        return maps
    pads = [conv_padding(maps.shape[axis], kernel[axis - 1], strides[axis - 1], padding) for axis in (1, 2)]
    return np.pad(maps, ((0, 0), *pads, (0, 0)))


def convolve(
    maps: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
) -> np.ndarray:
    """A convolution (Keras's cross-correlation) of maps (N, H, W, C) with a kernel (kh, kw, C, F): the
    patches gathered once (im2col) and one matrix product."""
    size = kernel.shape[:2]
    patches = conv_patches(pad_maps(maps, size, strides, padding), size)[:, :: strides[0], :: strides[1]]
    count, height, width = patches.shape[:3]
    columns = patches.reshape(count * height * width, -1)  # Copies the view into the im2col matrix.
    return (columns @ kernel.reshape(-1, kernel.shape[-1]) + bias).reshape(count, height, width, -1)


def max_pool(maps: np.ndarray) -> np.ndarray:
    """2x2 max pooling, stride 2, of maps (N, H, W, C); an odd last row or column is dropped, as in Keras."""
    height, width = maps.shape[1] // POOL_SIZE * POOL_SIZE, maps.shape[2] // POOL_SIZE * POOL_SIZE
    # The larger of the four strided corners of every window: three elementwise maxima, several times
    # faster than a max over the axes of a reshaped (non-contiguous) view.
    top = np.maximum(maps[:, 0:height:2, 0:width:2], maps[:, 0:height:2, 1:width:2])
    bottom = np.maximum(maps[:, 1:height:2, 0:width:2], maps[:, 1:height:2, 1:width:2])
    return np.maximum(top, bottom, out=top)


def pool(maps: np.ndarray, layer: Layer) -> np.ndarray:
    """A pool layer's output for maps (N, H, W, C): max or average over each window; an incomplete last
    window is dropped, as in Keras."""
    if layer.pooling == "max" and layer.kernel == layer.strides == (POOL_SIZE, POOL_SIZE):
        return max_pool(maps)
    windows = np.lib.stride_tricks.sliding_window_view(maps, layer.kernel, axis=(1, 2))
    windows = windows[:, :: layer.strides[0], :: layer.strides[1]]
    return windows.max(axis=(-2, -1)) if layer.pooling == "max" else windows.mean(axis=(-2, -1))


class Network:
    """A feed-forward classifier evaluated with NumPy, from an architecture and its weights.

    ``weights`` and ``biases`` hold one array per layer that has weights (dense and conv, not pool), in
    order, shaped as Keras stores them. ``layer_outputs`` gives each layer's output in its own shape:
    (N, units) for a dense layer, channels-last maps (N, height, width, filters) for conv and pool.
    """

    def __init__(self, architecture: Architecture, weights: list[np.ndarray], biases: list[np.ndarray]):
        shapes = [tuple(np.shape(w)) for w in weights]
        if shapes != architecture.weight_shapes:
            raise ValueError(f"expected kernels of shapes {architecture.weight_shapes}, got {shapes}")
        units = [(layer.units,) for layer in architecture.layers if layer.has_weights]
        if [np.shape(b) for b in biases] != units:
            raise ValueError(f"expected one bias vector per layer with weights, of sizes {units}")
        self.architecture = architecture
        self.weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        self.biases = [np.ascontiguousarray(b, dtype=np.float32) for b in biases]
        # Which entry of weights and biases each layer uses; None for a pool.
        indices = iter(range(len(self.weights)))
        self.parameter_index = [next(indices) if layer.has_weights else None for layer in architecture.layers]

    @classmethod
    def from_keras(cls, model, architecture: Architecture) -> Network:
        """Copy the Dense and Conv2D kernels and biases out of a Keras model."""
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
        return probabilities(self.logits(images))

    def read(self, image: np.ndarray) -> tuple[int, float]:
        """The digit one preprocessed 28x28 image is read as, and the probability given to it."""
        probabilities = self.predict_proba(self.check_image(image)[None])[0]
        answer = int(np.argmax(probabilities))
        return answer, float(probabilities[answer])

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The output layer before softmax, shape (N, 10), for preprocessed images of shape (N, 28, 28)."""
        return self.features_and_logits(images)[1]

    def features_and_logits(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What the output layer reads, flattened to (N, d), and its logits (N, 10); in chunks for a
        convolutional network, so that a whole test set never holds every feature map at once."""
        images = self._batch(images)
        step = max(len(images), 1)
        if self.architecture.is_convolutional:
            patch_bytes = 4 * self.architecture.largest_patches
            step = max(1, min(CONV_CHUNK, PATCH_BUDGET_BYTES // patch_bytes))
        features, logits = [], []
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            # With no hidden layer, the output layer reads the pixels themselves.
            *_, read, chunk_logits = [chunk, *self._forward(chunk, last_activation=False)]
            features.append(read.reshape(len(read), -1))
            logits.append(chunk_logits)
        if len(features) == 1:
            return features[0], logits[0]
        return np.concatenate(features), np.concatenate(logits)

    def check_image(self, image: object) -> np.ndarray:
        """One preprocessed image as float32, or ValueError when it is not of the network's input shape."""
        image = np.asarray(image, dtype=np.float32)
        if image.shape != self.architecture.input_shape:
            raise ValueError(
                f"expected one preprocessed image of shape {self.architecture.input_shape}, got {image.shape}"
            )
        return image

    def _batch(self, images: np.ndarray) -> np.ndarray:
        """A batch of images as float32, or ValueError for anything else."""
        images = np.asarray(images)
        if images.ndim < 2 or images.shape[0] == 0 or images[0].size != self.architecture.input_size:
            raise ValueError(f"expected a batch of shape (N, 28, 28) with N >= 1, got {images.shape}")
        return images.astype(np.float32, copy=False)

    def layer_outputs(self, images: np.ndarray) -> list[np.ndarray]:
        """Every layer's activations for preprocessed images, in order; the last are the probabilities."""
        return self._forward(self._batch(images), last_activation=True)

    def _forward(self, images: np.ndarray, last_activation: bool) -> list[np.ndarray]:
        """Every layer's output; the last one before softmax unless ``last_activation``."""
        activations = self.architecture.scaled(images.reshape(len(images), *self.architecture.shapes[0]))
        outputs = []
        last = len(self.architecture.layers) - 1
        for index, layer in enumerate(self.architecture.layers):
            parameters = self.parameter_index[index]
            if layer.kind == "pool":
                activations = pool(activations, layer)
            else:
                weights, biases = self.weights[parameters], self.biases[parameters]
                if layer.kind == "conv":
                    activations = convolve(activations, weights, biases, layer.strides, layer.padding)
                else:
                    activations = activations.reshape(len(activations), -1) @ weights + biases
                if index < last or last_activation:
                    activations = layer.activate(activations)
            outputs.append(activations)
        return outputs
