"""Open a network trained elsewhere: a Keras digit classifier, or DigitDraw's own ``.npz`` export, checked,
converted to the saved-model format and measured like every network here.

A Keras file is a zip whose ``config.json`` names every layer. That list is
read first, with the file's sizes, and anything but the layers DigitDraw can
run in NumPy is refused with one sentence before Keras sees the file; Keras
then loads it in safe mode (no code from the file runs: a Lambda layer is
refused twice over). The layers become an ``Architecture`` on the way in:

- Dropout does nothing at inference and is dropped.
- A BatchNormalization is an affine map per channel, folded into the layer
  before it when that layer has no activation yet (also back across an average
  pool, or a max pool when every scale is positive, which a max commutes with),
  otherwise into the next weighted layer (through a Flatten or such a pool). An
  activation after one that cannot fold back is refused: it cannot be attached
  past it.
- An Activation, ReLU, LeakyReLU or Softmax layer becomes the activation of
  the weighted layer before it, when that one had none; a monotonic one may
  cross a max pool, which it commutes with.
- A Rescaling before the first weighted layer, and the scaling the model
  expects of its input (pixels 0 to 1, 0 to 255, or standardised with MNIST's
  mean and spread: the one whose answers on a few MNIST test digits have the
  lowest loss), become the architecture's input scale and offset.
- Ten outputs after a softmax are probabilities; ten without one are logits,
  which DigitDraw's softmax turns into probabilities.

The converted network is checked against Keras on MNIST test digits and a few
random images before anything is written (the tolerance of two float32 paths,
and the same answers), measured on MNIST and the drawn digits, and saved
atomically under ``custom/<name>/`` with no history (it was not trained here).
Limits, each checked before what it guards: the file's and its arrays' bytes,
ten million weights (those stored, and those its layers declare, which Keras
allocates before it reads any), twenty million multiply-adds a digit.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import time
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitdraw.learning import evaluate
from digitdraw.learning.config import TrainConfig
from digitdraw.serving import saved_models
from digitdraw.serving.files import DeclaredTooLarge, load_npz_bytes, sha256
from digitdraw.serving.networks import (
    NUM_CLASSES,
    Architecture,
    Layer,
    Network,
    check_custom_name,
)
from digitdraw.serving.preprocess import IMAGE_SIZE

# A file to open holds at most this much, zipped or not, and a network at most this many weights: the
# saved-model format's own limits, stated here because the file comes from anyone.
MAX_OPEN_FILE_BYTES = saved_models.MAX_MODEL_FILE_BYTES
MAX_OPEN_WEIGHTS = saved_models.MAX_WEIGHTS
# And it reads one digit in at most this many multiply-adds (the CNN beyond the study takes 0.7 million,
# the Keras example convnet 2.4 million): what the app and its measurement can afford per drawing.
MAX_MULTIPLY_ADDS = 20_000_000
# The Keras layers that can be opened, and those that only wrap or reshape.
WEIGHTED_LAYERS = ("Dense", "Conv2D")
POOL_LAYERS = {"MaxPooling2D": "max", "AveragePooling2D": "average"}
ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "Softmax")
PASSING_LAYERS = ("InputLayer", "Flatten", "Reshape", "Dropout", "BatchNormalization", "Rescaling")
CONTAINERS = ("Sequential", "Functional", "Model")
SUPPORTED_LAYERS = (*WEIGHTED_LAYERS, *POOL_LAYERS, *ACTIVATION_LAYERS, *PASSING_LAYERS)
SUPPORTED_TEXT = (
    "Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Reshape, Dropout, BatchNormalization, "
    "Rescaling, and ReLU, sigmoid, tanh, GELU, softmax and leaky ReLU activations"
)
KERAS_ACTIVATIONS = {
    "relu": "relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "gelu": "gelu",
    "softmax": "softmax",
    "linear": "linear",
    None: "linear",
}
# Keras's "leaky_relu" activation string has this slope.
KERAS_LEAKY_SLOPE = 0.2
MONOTONIC = ("relu", "leaky_relu", "sigmoid", "tanh", "linear")
# How a model may expect its input, as (scale, offset) on to_mnist's pixels (0 to 1): MNIST's own mean
# and spread for the standardised one, as the PyTorch and Keras tutorials use them.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
INPUT_SCALINGS = {
    "pixels 0 to 1": (1.0, 0.0),
    "pixels 0 to 255": (255.0, 0.0),
    "pixels standardised (mean 0.1307, spread 0.3081)": (1.0 / MNIST_STD, -MNIST_MEAN / MNIST_STD),
}
SCALING_SAMPLE = 500  # MNIST test digits that choose the input scaling.
# The training and validation splits are measured on their first images only, within a point or so: a
# network opened here was not trained on them (or not known to be), so their figures are no held-out
# test, and whole they would take most of the time opening a convolutional one takes. MNIST test and
# the drawn digits are measured whole, as for every network.
TRAIN_SAMPLE = 2_000
VALIDATION_SAMPLE = 2_000
CHECK_SAMPLE = 200  # MNIST test digits on which the converted network must equal Keras,
CHECK_NOISE = 20  # and random images.
# The inputs a model may read: the image, the image with one channel, or its pixels in a row.
INPUT_SHAPES = ((IMAGE_SIZE, IMAGE_SIZE), (IMAGE_SIZE, IMAGE_SIZE, 1), (IMAGE_SIZE * IMAGE_SIZE,))
EPS32 = float(np.finfo(np.float32).eps)


class OpenError(ValueError):
    """A file that cannot be opened as a network; the message is one sentence for a person."""


@dataclass
class Converted:
    """A network read from a file: its architecture and weights, and what reading it decided."""

    architecture: Architecture
    kernels: list[np.ndarray]
    biases: list[np.ndarray]
    output: saved_models.OpenedOutput
    notes: list[str] = field(default_factory=list)
    keras_model: object = None  # The Keras model it came from, for the check; None for an .npz.

    @property
    def network(self) -> Network:
        """The network as DigitDraw runs it."""
        return Network(self.architecture, self.kernels, self.biases)


def _read_file(path: Path) -> bytes:
    """A file's bytes, its size checked before it is read; OpenError otherwise."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise OpenError(f"{path.name} is not a file")
        if size > MAX_OPEN_FILE_BYTES:
            raise OpenError(
                f"{path.name} is {size:,} bytes; a network to open is at most {MAX_OPEN_FILE_BYTES:,}"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise OpenError(f"there is no file {path}") from None
    except OSError as error:
        raise OpenError(f"{path.name} cannot be read ({error.strerror})") from None


def _keras_layers(config: dict) -> list[dict]:
    """Every layer of a Keras model's config, nested models opened up, in order."""
    layers = []
    for layer in config.get("config", {}).get("layers", []):
        if not isinstance(layer, dict):
            raise OpenError("its config.json does not describe a Keras model's layers")
        if layer.get("class_name") in CONTAINERS:
            layers.extend(_keras_layers(layer))
        else:
            layers.append(layer)
    return layers


# What a damaged or crafted zip, JSON or HDF5 file can raise while it is read: each is the file's fault.
_UNREADABLE = (
    zipfile.BadZipFile,
    zlib.error,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    OSError,
    EOFError,
    RuntimeError,  # An encrypted zip member.
    NotImplementedError,  # A compression method zipfile does not have.
    RecursionError,  # JSON nested too deep.
)


def _check_keras_file(content: bytes, name: str) -> None:
    """Refuse, before Keras reads it, a file that is not a Keras 3 model of the supported layers, or that
    holds or unpacks to more than the limits."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = {info.filename: info.file_size for info in archive.infolist()}
            if "config.json" not in members or "model.weights.h5" not in members:
                raise OpenError(f"{name} is not a Keras 3 model file (no config.json and model.weights.h5)")
            unpacked = sum(members.values())
            if unpacked > MAX_OPEN_FILE_BYTES:
                raise OpenError(
                    f"{name} unpacks to {unpacked:,} bytes; a network to open holds at most "
                    f"{MAX_OPEN_FILE_BYTES:,}"
                )
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
        if not isinstance(config, dict) or config.get("class_name") not in CONTAINERS:
            raise OpenError(f"{name} does not hold a Keras model (Sequential or functional)")
        for layer in _keras_layers(config):
            kind = layer.get("class_name")
            if kind not in SUPPORTED_LAYERS:
                label = (
                    _clean(layer["config"].get("name", "?")) if isinstance(layer.get("config"), dict) else "?"
                )
                raise OpenError(
                    f"layer {label!r} is a {_clean(kind)}, which DigitDraw cannot run; it opens "
                    f"{SUPPORTED_TEXT}"
                )
        try:
            declared = declared_weights(config)
        except _Undeclared as error:
            raise OpenError(f"{name}'s config.json {error}") from None
        if declared > MAX_OPEN_WEIGHTS:
            raise OpenError(
                f"{name}'s layers declare {declared:,} weights; DigitDraw opens networks of at most "
                f"{MAX_OPEN_WEIGHTS:,}"
            )
    except OpenError:
        raise
    except _UNREADABLE:
        raise OpenError(f"{name} is not a Keras model file (.keras) that can be read") from None
    _check_weights(weights, name)


class _Undeclared(ValueError):
    """A config.json whose layers' sizes cannot be told before Keras builds them; the message follows
    "<file>'s config.json"."""


def _size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _shape(value: object, batch: bool = True) -> tuple[int, ...] | None:
    """A shape declared in a Keras config, without its batch axis (an unknown size counts as 1)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 8 or (batch and not value):
        raise _Undeclared("declares a shape that is not a list of sizes")
    sizes = [1 if size is None else size for size in (value[1:] if batch else value)]
    if not all(_size(size) for size in sizes):
        raise _Undeclared("declares a shape that is not a list of sizes")
    return tuple(sizes)


def _pair(value: object) -> tuple[int, int]:
    """A kernel's, stride's or pool's two sizes, as a Keras config gives them (one number or two)."""
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, list) else ()
    if len(pair) != 2 or not all(_size(v) for v in pair):
        raise _Undeclared("declares a kernel, stride or pool size that is not one or two sizes")
    return pair


def _spatial(size: int, window: int, stride: int, padding: object) -> int:
    return -(-size // stride) if padding == "same" else max(0, (size - window) // stride + 1)


def _input_shape(settings: dict) -> tuple[int, ...]:
    """The shape an InputLayer's config declares, under whichever key, without the batch axis."""
    for key, batch in (("batch_shape", True), ("batch_input_shape", True), ("shape", False)):
        if settings.get(key) is not None:
            return _shape(settings[key], batch)
    raise _Undeclared("declares an input without its shape")


def _inbound(layer: dict) -> set[str]:
    """The names of the layers a functional model's layer takes its inputs from."""
    names: set[str] = set()
    stack: list[object] = [layer.get("inbound_nodes", [])]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            history = item.get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                names.add(history[0])
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def _check_chain(config: dict) -> None:
    """Refuse a functional model whose layers do not run one after another, each on the one before."""
    if config.get("class_name") not in ("Functional", "Model"):
        return
    layers = config.get("config", {}).get("layers", [])
    for before, layer in itertools.pairwise(layers):
        name = before.get("config", {}).get("name") if isinstance(before.get("config"), dict) else None
        if _inbound(layer) != {name}:
            raise _Undeclared("declares layers that do not run one after another, each on the one before")
    for layer in layers:
        if isinstance(layer, dict) and layer.get("class_name") in CONTAINERS:
            _check_chain(layer)


def declared_weights(config: dict) -> int:
    """How many weights Keras allocates to build the model a config declares, before any weight is read.

    Keras builds every layer as its config says (a layer's ``build_config`` may declare an input of its
    own) and only then compares the stored weights: a file of a few kilobytes can declare a Dense layer
    of a billion weights. So the input must be a digit's size at most, the layers a chain, each on the
    one before (as DigitDraw runs them), in channels-last order, and their shapes are followed from the
    input; where a layer declares its own input, the larger of the two counts. ``_Undeclared`` where the
    sizes cannot be told.
    """
    _check_chain(config)
    shape: tuple[int, ...] | None = None
    total = 0
    for layer in _keras_layers(config):
        kind, settings = layer.get("class_name"), layer.get("config")
        settings = settings if isinstance(settings, dict) else {}
        built = layer.get("build_config")
        declared = _shape(built.get("input_shape")) if isinstance(built, dict) else None
        if kind == "InputLayer":
            shape = _input_shape(settings)
            if math.prod(shape) > IMAGE_SIZE * IMAGE_SIZE:
                raise _Undeclared(
                    f"declares an input of {math.prod(shape):,} values; a digit is {IMAGE_SIZE}x{IMAGE_SIZE}"
                )
            continue
        if shape is None:
            raise _Undeclared(f"declares a {_clean(kind)} layer before any input")
        if settings.get("data_format") not in (None, "channels_last"):
            raise _Undeclared(f"declares a {_clean(kind)} layer with its channels first")
        last = max(shape[-1], declared[-1] if declared else 1)
        if kind == "Dense":
            units = settings.get("units")
            if not _size(units):
                raise _Undeclared("declares a Dense layer without a number of units")
            total += last * units + units
            shape = (*shape[:-1], units)
        elif kind == "Conv2D":
            filters = settings.get("filters")
            if not _size(filters):
                raise _Undeclared("declares a Conv2D layer without a number of filters")
            kernel, strides = _pair(settings.get("kernel_size")), _pair(settings.get("strides", 1))
            total += kernel[0] * kernel[1] * last * filters + filters
            if len(shape) != 3:
                raise _Undeclared(
                    "declares a Conv2D layer on an input that is not height, width and channels"
                )
            padding = settings.get("padding")
            shape = (*(_spatial(shape[i], kernel[i], strides[i], padding) for i in range(2)), filters)
        elif kind in POOL_LAYERS:
            if len(shape) != 3:
                raise _Undeclared(
                    "declares a pooling layer on an input that is not height, width and channels"
                )
            pool = _pair(settings.get("pool_size", 2))
            strides = _pair(settings.get("strides") or pool)
            padding = settings.get("padding")
            shape = (*(_spatial(shape[i], pool[i], strides[i], padding) for i in range(2)), shape[2])
        elif kind == "Flatten":
            shape = (math.prod(shape),)
        elif kind == "Reshape":
            shape = _reshaped(shape, settings.get("target_shape"))
        elif kind == "BatchNormalization":
            if settings.get("axis", -1) not in (-1, [-1], len(shape), [len(shape)]):
                raise _Undeclared("declares a BatchNormalization over another axis than the last")
            total += 4 * last
    return total


def _reshaped(shape: tuple[int, ...], target: object) -> tuple[int, ...]:
    """The shape a Reshape layer makes of ``shape``; one size of its target may be -1, the rest."""
    if not isinstance(target, list) or not target or len(target) > 8:
        raise _Undeclared("declares a Reshape without a target shape")
    known = [size for size in target if size != -1]
    if len(target) - len(known) > 1 or not all(_size(size) for size in known):
        raise _Undeclared("declares a Reshape whose target shape is not a list of sizes")
    if len(known) == len(target):
        return tuple(known)
    rest, whole = math.prod(known), math.prod(shape)
    if whole % rest:
        raise _Undeclared("declares a Reshape whose target shape does not fit its input")
    return tuple(whole // rest if size == -1 else size for size in target)


def _check_weights(weights: bytes, name: str) -> None:
    """Refuse a weights file whose arrays, from the HDF5 metadata and before any is read, are more than the
    limits (the network's own weights, and all arrays' bytes), or are stored in a way Keras never writes
    them: outside the file, virtual, compressed or not at all (an array of "nothing" filled on reading)."""
    import h5py

    datasets = []
    try:
        with h5py.File(io.BytesIO(weights), "r") as handle:
            handle.visititems(
                lambda path, item: datasets.append((path, item)) if isinstance(item, h5py.Dataset) else None
            )
            weights_count, declared = 0, 0
            for path, item in datasets:
                if item.shape is None or item.dtype.subdtype is not None or item.dtype.kind not in "fiu":
                    raise OpenError(f"{name}'s weights hold an array that is not plain numbers")
                declared += item.size * item.dtype.itemsize
                if path.startswith("layers/"):  # Not the optimizer's state, which a trained file may hold.
                    weights_count += item.size
            if weights_count > MAX_OPEN_WEIGHTS:
                raise OpenError(
                    f"{name} holds {weights_count:,} weights; DigitDraw opens networks of at most "
                    f"{MAX_OPEN_WEIGHTS:,}"
                )
            if declared > MAX_OPEN_FILE_BYTES:
                raise OpenError(
                    f"{name}'s weights declare {declared:,} bytes; a network to open holds at most "
                    f"{MAX_OPEN_FILE_BYTES:,}"
                )
            for _, item in datasets:
                stored = item.id.get_storage_size()
                if (
                    item.external
                    or item.is_virtual
                    or item.compression
                    or stored < item.size * item.dtype.itemsize
                ):
                    raise OpenError(f"{name}'s weights are stored in a way Keras does not write them")
    except OpenError:
        raise
    except _UNREADABLE:
        raise OpenError(f"{name}'s weights cannot be read") from None


def _load_keras(content: bytes, name: str):
    """The Keras model in a file's bytes, loaded in safe mode, never compiled."""
    import tempfile

    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(content)
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as error:  # Whatever Keras objects to: the file is not one we can open.
            raise OpenError(f"Keras cannot load {name} in safe mode ({_keras_reason(error)})") from None


def _keras_reason(error: Exception) -> str:
    """What Keras objected to, in one short line: the first line that says why, not the count of objects
    that failed to load, and none of the weights it prints after it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith("A total of")] or lines
    if not reasons:
        return type(error).__name__
    return reasons[0].split(" Target variable:")[0][:200]


def _activation(layer) -> tuple[str, float | None]:
    """The activation of a Dense, Conv2D or activation layer, as a DigitDraw name and its slope if leaky."""
    kind = type(layer).__name__
    config = layer.get_config()
    if kind == "LeakyReLU":
        return "leaky_relu", float(config.get("negative_slope", config.get("alpha", 0.3)))
    if kind == "Softmax":
        return "softmax", None
    if kind == "ReLU":
        if config.get("max_value") is not None or config.get("threshold", 0.0) != 0.0:
            raise OpenError(
                f"layer {_label(layer)!r} is a ReLU with a ceiling or threshold, which DigitDraw cannot run"
            )
        slope = float(config.get("negative_slope", 0.0))
        return ("leaky_relu", slope) if slope else ("relu", None)
    name = config.get("activation")
    if isinstance(name, dict):  # A serialised activation object rather than its name.
        name = name.get("config", {}).get("name") or name.get("class_name")
    if name == "leaky_relu":
        return "leaky_relu", KERAS_LEAKY_SLOPE
    if name not in KERAS_ACTIVATIONS:
        raise OpenError(
            f"layer {_label(layer)!r} uses the activation {_clean(name)!r}; DigitDraw opens {SUPPORTED_TEXT}"
        )
    return KERAS_ACTIVATIONS[name], None


@dataclass
class _Emitted:
    """A layer converted so far, with its weights when it has some."""

    layer: Layer
    kernel: np.ndarray | None = None
    bias: np.ndarray | None = None


def _clean(text: object) -> str:
    """Text from a file as sentences and notes show it: characters other than letters, digits, dots,
    dashes and underscores (markup, a newline) become ``?``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "?", str(text))[:60]


def _label(layer) -> str:
    """A layer's name as sentences and notes show it (``_clean``)."""
    return _clean(layer.name)


def _form(shape: tuple) -> str:
    """What a layer's input is: the image (28x28), feature maps (height, width, channels) or a vector."""
    return {2: "image", 3: "maps"}.get(len(shape), "vector")


def convert_keras(model) -> Converted:
    """An Architecture and weights that compute what a loaded Keras model computes; OpenError for a model
    DigitDraw cannot run, saying which layer and why."""
    input_shape = (
        tuple(model.input_shape[1:]) if isinstance(getattr(model, "input_shape", None), tuple) else None
    )
    if input_shape not in INPUT_SHAPES:
        raise OpenError(
            f"the model reads inputs of shape {input_shape}; DigitDraw opens models of 28x28, 28x28x1 or "
            "784 inputs"
        )
    output_shape = tuple(model.output_shape[1:])
    if output_shape != (NUM_CLASSES,):
        raise OpenError(
            f"the model gives outputs of shape {output_shape}; a digit classifier gives {NUM_CLASSES}"
        )
    emitted: list[_Emitted] = []
    notes: list[str] = []
    scale, offset = 1.0, 0.0
    form = _form(input_shape)
    flattened = False  # Whether a Flatten came after the last weighted layer.
    # An affine map per channel (or per value) waiting to be folded into the next weighted layer.
    pending: tuple[np.ndarray, np.ndarray, str] | None = None
    for layer in _flat_layers(model):
        kind, name = type(layer).__name__, _label(layer)
        config = layer.get_config()
        weighted_before = any(e.kernel is not None for e in emitted)
        if kind == "InputLayer":
            continue
        if kind == "Dropout":
            notes.append(f"{name}: Dropout, which does nothing when reading, left out")
            continue
        if kind == "Rescaling":
            if weighted_before or pending is not None:
                raise OpenError(
                    f"layer {name!r} rescales after the first layer; DigitDraw opens a Rescaling only first"
                )
            factor, shift = np.asarray(config["scale"], np.float64), np.asarray(config["offset"], np.float64)
            if factor.size != 1 or shift.size != 1:
                raise OpenError(
                    f"layer {name!r} rescales each value differently; DigitDraw opens one scale for all"
                )
            scale, offset = scale * float(factor), offset * float(factor) + float(shift)
            notes.append(f"{name}: Rescaling, taken as the input's scaling")
            continue
        if kind == "Reshape":
            target = tuple(config["target_shape"])
            if weighted_before or target not in INPUT_SHAPES:
                raise OpenError(
                    f"layer {name!r} reshapes to {target}; DigitDraw opens a Reshape to 28x28x1 or 784 first"
                )
            form = _form(target)
            continue
        if kind == "Flatten":
            if config.get("data_format") not in (None, "channels_last"):
                raise OpenError(f"layer {name!r} flattens channels first; DigitDraw flattens channels last")
            if pending is not None and form == "maps":
                values, shift, where = pending
                positions = math.prod(layer.input.shape[1:-1])
                pending = (np.tile(values, positions), np.tile(shift, positions), where)
            form, flattened = "vector", True
            continue
        if kind == "BatchNormalization":
            factor, shift = _batch_norm(layer)
            if _fold_backward(emitted, factor, shift, flattened):
                notes.append(f"{name}: BatchNormalization, folded into the layer before")
            elif pending is not None:
                raise OpenError(f"layer {name!r} follows another BatchNormalization that could not be folded")
            else:
                pending = (factor, shift, name)
            continue
        if kind in POOL_LAYERS:
            if form != "maps":
                raise OpenError(
                    f"layer {name!r} pools what is not feature maps; DigitDraw opens pools of maps"
                )
            if config.get("padding", "valid") != "valid" or config.get("data_format") not in (
                None,
                "channels_last",
            ):
                raise OpenError(
                    f"layer {name!r} pools with padding or channels first; DigitDraw opens valid, "
                    "channels-last pools"
                )
            pooling = POOL_LAYERS[kind]
            if pending is not None and pooling == "max" and not (pending[0] > 0).all():
                raise OpenError(
                    f"layer {name!r} is a max pool after a BatchNormalization with a negative scale, which "
                    "cannot be folded"
                )
            size = tuple(config["pool_size"])
            strides = tuple(config["strides"]) if config.get("strides") else size
            emitted.append(_Emitted(Layer("pool", kernel=size, strides=strides, pooling=pooling)))
            continue
        if kind in ACTIVATION_LAYERS:
            activation, slope = _activation(layer)
            if pending is not None:
                raise OpenError(
                    f"layer {name!r} applies {activation} after a BatchNormalization that cannot be folded "
                    "into "
                    "the layer before it, an order DigitDraw cannot run"
                )
            _apply_activation(emitted, activation, slope, name)
            continue
        if kind in WEIGHTED_LAYERS:
            if form != ("vector" if kind == "Dense" else "maps"):
                needs = "a Flatten (or 784 inputs)" if kind == "Dense" else "28x28x1 maps"
                raise OpenError(f"layer {name!r} is a {kind} on {form}; DigitDraw needs {needs} before it")
            emitted.append(_weighted(layer, kind, pending))
            if pending is not None:
                notes.append(f"{pending[2]}: BatchNormalization, folded into the layer after")
            pending, flattened = None, False
            continue
        raise OpenError(f"layer {name!r} is a {kind}, which DigitDraw cannot run; it opens {SUPPORTED_TEXT}")
    if pending is not None:
        raise OpenError(
            f"layer {pending[2]!r}, a BatchNormalization, has no weighted layer to be folded into"
        )
    if not emitted or emitted[-1].kernel is None or emitted[-1].layer.kind != "dense":
        raise OpenError(f"the model does not end in a Dense layer of {NUM_CLASSES} outputs")
    last = emitted[-1]
    if last.layer.activation not in ("softmax", "linear"):
        raise OpenError(
            f"the model's last layer gives {last.layer.activation} outputs; DigitDraw opens classifiers "
            "whose ten outputs are softmax probabilities or logits"
        )
    output = "probabilities" if last.layer.activation == "softmax" else "logits"
    last.layer = Layer("dense", NUM_CLASSES, "softmax")
    try:
        architecture = Architecture(tuple(e.layer for e in emitted), input_scale=scale, input_offset=offset)
    except ValueError as error:
        raise OpenError(f"its layers do not make a network DigitDraw can run ({error})") from None
    weighted = [e for e in emitted if e.kernel is not None]
    return Converted(
        architecture,
        [e.kernel for e in weighted],
        [e.bias for e in weighted],
        output,
        notes,
        keras_model=model,
    )


def _fold_backward(emitted: list[_Emitted], factor: np.ndarray, shift: np.ndarray, flattened: bool) -> bool:
    """Fold a BatchNormalization into the last weighted layer when that layer has no activation yet, is
    as wide as the normalisation, and only pools it commutes with came after it (any average pool, a max
    pool when every scale is positive); whether it was folded."""
    if flattened:
        return False
    for candidate in reversed(emitted):
        if candidate.kernel is not None:
            if candidate.layer.activation != "linear" or candidate.kernel.shape[-1] != factor.size:
                return False
            candidate.kernel = (candidate.kernel * factor).astype(np.float32)
            candidate.bias = (candidate.bias * factor + shift).astype(np.float32)
            return True
        if candidate.layer.pooling == "max" and not (factor > 0).all():
            return False
    return False


def _flat_layers(model) -> list:
    """A model's layers in order, nested models opened up."""
    layers = []
    for layer in model.layers:
        layers.extend(_flat_layers(layer) if hasattr(layer, "layers") else [layer])
    return layers


def _batch_norm(layer) -> tuple[np.ndarray, np.ndarray]:
    """A BatchNormalization as inference runs it: x * factor + shift per channel (float64)."""
    config = layer.get_config()
    if config.get("axis", -1) not in (-1, [-1], [len(layer.input.shape) - 1], len(layer.input.shape) - 1):
        raise OpenError(
            f"layer {_label(layer)!r} normalises another axis than the channels; DigitDraw cannot fold it"
        )
    mean = np.asarray(layer.moving_mean, np.float64)
    variance = np.asarray(layer.moving_variance, np.float64)
    gamma = np.asarray(layer.gamma, np.float64) if layer.gamma is not None else np.ones_like(mean)
    beta = np.asarray(layer.beta, np.float64) if layer.beta is not None else np.zeros_like(mean)
    factor = gamma / np.sqrt(variance + float(config["epsilon"]))
    return factor, beta - mean * factor


def _apply_activation(emitted: list[_Emitted], activation: str, slope: float | None, name: str) -> None:
    """Give the last weighted layer an activation layer's function, when it had none and only max pools,
    which a monotonic function commutes with, came after it."""
    for index in range(len(emitted) - 1, -1, -1):
        candidate = emitted[index]
        if candidate.kernel is not None:
            if candidate.layer.activation != "linear":
                break
            later = emitted[index + 1 :]
            if later and activation not in MONOTONIC:
                break
            fields = {**candidate.layer.__dict__, "activation": activation, "negative_slope": slope}
            candidate.layer = Layer(**fields)
            return
        if candidate.layer.pooling != "max":
            break
    raise OpenError(
        f"layer {name!r} applies {activation} where DigitDraw cannot attach it to the layer before "
        "(that layer has an activation already, or an average pool comes between)"
    )


def _weighted(layer, kind: str, pending: tuple[np.ndarray, np.ndarray, str] | None) -> _Emitted:
    """A Dense or Conv2D layer with its kernel and bias (float32), a waiting BatchNormalization folded in."""
    config, name = layer.get_config(), _label(layer)
    activation, slope = _activation(layer)
    values = layer.get_weights()
    use_bias = config.get("use_bias", True)
    if len(values) != 1 + use_bias or any(np.asarray(value).dtype.kind != "f" for value in values):
        raise OpenError(f"layer {name!r} holds weights other than a float kernel and bias (quantized?)")
    kernel = np.asarray(values[0], np.float64)
    bias = np.asarray(values[1], np.float64) if use_bias else np.zeros(kernel.shape[-1])
    if kind == "Dense":
        built = Layer("dense", int(config["units"]), activation, negative_slope=slope)
    else:
        if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("groups", 1) != 1:
            raise OpenError(f"layer {name!r} is a dilated or grouped convolution, which DigitDraw cannot run")
        if config.get("data_format") not in (None, "channels_last"):
            raise OpenError(f"layer {name!r} reads channels first; DigitDraw runs channels-last convolutions")
        built = Layer(
            "conv",
            int(config["filters"]),
            activation,
            kernel=tuple(config["kernel_size"]),
            strides=tuple(config["strides"]),
            padding=config["padding"],
            negative_slope=slope,
        )
    if pending is not None:
        factor, shift, name = pending
        if kind == "Conv2D" and built.padding != "valid":
            raise OpenError(
                f"layer {name!r}, a BatchNormalization before a padded convolution, cannot be folded"
            )
        # The layer reads x * factor + shift: its kernel scales per input channel, its bias takes the shift.
        fan_in = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]) if kind == "Conv2D" else kernel[None]
        if fan_in.shape[1] != factor.size:
            raise OpenError(f"layer {name!r}, a BatchNormalization, does not match the layer after it")
        bias = bias + np.einsum("pio,i->o", fan_in, shift)
        kernel = (fan_in * factor[None, :, None]).reshape(kernel.shape)
    return _Emitted(built, kernel.astype(np.float32), bias.astype(np.float32))


def choose_input_scaling(
    converted: Converted, images: np.ndarray, labels: np.ndarray
) -> tuple[str, dict[str, float], dict[str, float]]:
    """Which input scaling suits these MNIST digits best, by the mean loss (negative log-likelihood) of
    its answers, and each scaling's accuracy and loss; the chosen one becomes part of the architecture
    (composed with any Rescaling the model has). The loss, not the accuracy, decides: a ReLU network
    reads digits almost alike at any scale, but only at its own does it give its usual confidence."""
    accuracies, losses = {}, {}
    base = converted.architecture
    for name, (scale, offset) in INPUT_SCALINGS.items():
        candidate = _rescaled(base, scale, offset)
        network = Network(candidate, converted.kernels, converted.biases)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            losses[name], accuracies[name] = evaluate.loss_and_accuracy(network.predict_proba(images), labels)
        if not np.isfinite(losses[name]):
            losses[name] = float("inf")
    best = min(losses, key=losses.get)  # The first of the best: pixels 0 to 1 on a tie.
    converted.architecture = _rescaled(base, *INPUT_SCALINGS[best])
    return best, accuracies, losses


def _rescaled(architecture: Architecture, scale: float, offset: float) -> Architecture:
    """The architecture reading ``scale * pixel + offset`` before its own scaling."""
    return Architecture(
        architecture.layers,
        architecture.input_shape,
        input_scale=architecture.input_scale * scale,
        input_offset=architecture.input_scale * offset + architecture.input_offset,
    )


def check_against_keras(converted: Converted, images: np.ndarray, scaling: str) -> None:
    """The converted network gives Keras's probabilities on these digits and on a few random images (which
    no confident answer saturates), scaled as the model expects, within two float32 paths' tolerance, and
    the same answer wherever the two best are further apart than that; OpenError otherwise."""
    model = converted.keras_model
    noise = np.random.default_rng(0).random((CHECK_NOISE, *images.shape[1:]), dtype=np.float32)
    images = np.concatenate([images, noise])
    scale, offset = INPUT_SCALINGS[scaling]
    inputs = (images * np.float32(scale) + np.float32(offset)).reshape(len(images), *model.input_shape[1:])
    expected = np.asarray(model.predict(inputs, verbose=0, batch_size=len(images)), np.float64)
    if converted.output == "logits":
        expected = np.exp(expected - expected.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
    network = converted.network
    actual = network.predict_proba(images)
    # Every layer's rounding adds up along the chain: its fan-in plus a few roundings per layer; a change
    # dz in the logits moves a probability by at most 2 max|dz|.
    terms = sum(int(np.prod(kernel.shape[:-1])) + 4 for kernel in converted.kernels)
    tolerance = terms * EPS32 * 2 * float(np.abs(network.logits(images)).max() + 1.0)
    worst = float(np.abs(actual - expected).max())
    top_two = np.sort(actual, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 2 * tolerance
    disagree = int((actual.argmax(axis=1) != expected.argmax(axis=1))[clear].sum())
    if not worst <= tolerance or disagree:
        raise OpenError(
            f"DigitDraw's reading of the model differs from Keras's by up to {worst:.2g} (more than "
            f"{tolerance:.2g}, answering {disagree} of {len(images)} images otherwise); its layers may not "
            "form a single chain"
        )


def read_npz_export(content: bytes, name: str) -> Converted:
    """A network from DigitDraw's own ``.npz`` export: its architecture (JSON) and its weights."""
    try:
        arrays = load_npz_bytes(content, MAX_OPEN_FILE_BYTES)
    except DeclaredTooLarge as error:
        raise OpenError(f"{name} {error}, what a network to open may hold") from None
    except _UNREADABLE:
        raise OpenError(f"{name} is not an array file (.npz) that can be read") from None
    try:
        architecture = saved_models.architecture_from_json(
            str(arrays.pop(saved_models.EXPORT_ARCHITECTURE_KEY))
        )
        count = len(architecture.weight_shapes)
        kernels = [arrays.pop(saved_models.EXPORT_KERNEL_KEY.format(i)) for i in range(count)]
        biases = [arrays.pop(saved_models.EXPORT_BIAS_KEY.format(i)) for i in range(count)]
    except (KeyError, ValueError) as error:
        raise OpenError(f"{name} is not a DigitDraw network export ({error})") from None
    if arrays:
        raise OpenError(
            f"{name} holds arrays a DigitDraw network export does not ({', '.join(sorted(arrays)[:3])})"
        )
    if architecture.parameter_count > MAX_OPEN_WEIGHTS:
        raise OpenError(
            f"{name} holds {architecture.parameter_count:,} weights; DigitDraw opens at most "
            f"{MAX_OPEN_WEIGHTS:,}"
        )
    if not all(a.dtype == np.float32 and np.isfinite(a).all() for a in (*kernels, *biases)):
        raise OpenError(f"{name} holds weights that are not finite float32 numbers")
    converted = Converted(
        architecture, kernels, biases, "probabilities", ["DigitDraw's own export, read as it is"]
    )
    try:
        _ = converted.network
    except ValueError as error:
        raise OpenError(f"{name}'s weights do not fit its architecture ({error})") from None
    return converted


def measured_sample(dataset):
    """The data an opened network is measured on: the first ``TRAIN_SAMPLE`` training and
    ``VALIDATION_SAMPLE`` validation images, MNIST test and the drawn digits; the ranges say which."""
    dataset = dataset.limited(TRAIN_SAMPLE)
    validation = dataset.ranges["validation"]
    stop = min(validation.stop, validation.start + VALIDATION_SAMPLE)
    return replace(
        dataset,
        x_validation=dataset.x_validation[: stop - validation.start],
        y_validation=dataset.y_validation[: stop - validation.start],
        ranges={**dataset.ranges, "validation": replace(validation, stop=stop)},
    )


def measure(network: Network, dataset) -> saved_models.Metrics:
    """A network's accuracy and loss on MNIST's splits and the drawn digits, and the test set in detail; each
    set is read once."""
    probabilities, scores = {}, {}
    for split in ("train", "validation", "test", "drawn"):
        images, labels = dataset.split(split)
        probabilities[split] = network.predict_proba(images)
        loss, accuracy = evaluate.loss_and_accuracy(probabilities[split], labels)
        scores[split] = {"loss": loss, "accuracy": accuracy}
    return saved_models.Metrics(
        accuracy={split: score["accuracy"] for split, score in scores.items()},
        loss={split: score["loss"] for split, score in scores.items()},
        **evaluate.labelled_set_report(None, None, dataset.y_test, probabilities["test"]),
    )


def open_network(
    path: Path,
    name: str,
    root: Path | None = None,
    dataset=None,
    report=lambda message: None,
) -> saved_models.SavedModel:
    """Open a ``.keras`` or DigitDraw ``.npz`` file as the network ``name`` under ``root/custom/``: checked,
    converted, compared with Keras, measured and saved; OpenError with one sentence if it cannot be, and
    then nothing is written. ``report`` hears each step in a few words."""
    from digitdraw.learning.train import data_record, library_versions, load_dataset

    started = time.perf_counter()
    name = check_custom_name(name)
    path = Path(path)
    directory = saved_models.model_dir(name, root)
    if directory.exists():
        raise OpenError(f"a network named {name!r} exists already; choose another name or remove it first")
    content = _read_file(path)
    file_name = path.name
    if _is_npz(content):
        file_format = "npz"
        converted = read_npz_export(content, file_name)
    else:
        file_format = "keras"
        report("checking the file's layers")
        _check_keras_file(content, file_name)
        report("loading it with Keras (safe mode)")
        model = _load_keras(content, file_name)
        try:
            converted = convert_keras(model)
        except OpenError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            raise OpenError(f"its layers cannot be read as a network DigitDraw runs ({reason})") from None
    if converted.architecture.multiply_adds > MAX_MULTIPLY_ADDS:
        raise OpenError(
            f"the network takes {converted.architecture.multiply_adds:,} multiply-adds a digit; DigitDraw "
            f"opens networks of at most {MAX_MULTIPLY_ADDS:,}"
        )
    report("reading MNIST")
    # Only the training images it measures are prepared when MNIST's preprocessed cache is not there yet.
    if dataset is None:
        dataset = load_dataset(TrainConfig(train_limit=TRAIN_SAMPLE))
    dataset = measured_sample(dataset)
    sample = slice(0, SCALING_SAMPLE)
    if file_format == "keras":
        scaling, accuracies, losses = choose_input_scaling(
            converted, dataset.x_test[sample], dataset.y_test[sample]
        )
        check_against_keras(converted, dataset.x_test[:CHECK_SAMPLE], scaling)
    else:
        architecture = converted.architecture
        scaling = (
            f"as the export records it ({architecture.input_scale:g} x pixel + {architecture.input_offset:g})"
        )
        accuracies, losses = {}, {}
    report(f"measuring it on MNIST ({scaling})")
    network = converted.network
    metrics = measure(network, dataset)
    card = saved_models.ModelCard(
        model_id=name,
        architecture=converted.architecture,
        parameters=converted.architecture.parameter_count,
        epochs_run=0,
        best_epoch=0,
        training_seconds=0.0,
        seed=0,
        config={},
        data=data_record(dataset),
        versions=library_versions(),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        opened=saved_models.OpenedRecord(
            file_name=re.sub(r"[^A-Za-z0-9._-]", "-", file_name)[:200],
            file_sha256=sha256(content),
            file_format=file_format,
            output=converted.output,
            input_scaling=scaling,
            scaling_accuracy=accuracies,
            scaling_loss={candidate: loss for candidate, loss in losses.items() if np.isfinite(loss)},
            notes=converted.notes,
            opened_seconds=round(time.perf_counter() - started, 2),
        ),
    )
    report("saving it")
    from digitdraw.learning.keras_models import build_keras_model

    keras_model = build_keras_model(converted.architecture, name=f"opened_{name.replace('-', '_')}")
    keras_model.set_weights([array for pair in zip(converted.kernels, converted.biases) for array in pair])
    try:
        saved_models.save(directory, keras_model, card, None, metrics, overwrite=False)
    except saved_models.SavedModelError as error:
        raise OpenError(str(error)) from None
    return saved_models.load(name, root)


def _is_npz(content: bytes) -> bool:
    """Whether a file is a zip of NumPy arrays (an .npz) rather than a Keras model (or neither)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = archive.namelist()
    except _UNREADABLE:
        return False
    return bool(names) and all(n.endswith(".npy") for n in names)
