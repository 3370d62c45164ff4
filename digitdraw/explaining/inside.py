"""Inside the networks: each layer's activations for one drawing, which units carried the answer,
which units are saturated or dead, and what each first-layer unit looks for.

All of it is NumPy on the saved weights, so the app never needs TensorFlow;
the tests check the activations against Keras and the gradients against
finite differences. A unit's contribution to a class is its activation times
the gradient of that class's logit with respect to it: for the last hidden
layer that is exactly the activation times the unit's outgoing weight, and
further back it is the first-order share, which is cheap and exact for the
linear part but only approximate through the nonlinearities (layer-wise
relevance propagation would conserve totals, at the cost of a second set of
rules per activation).

``input_gradients`` is the backward pass to the pixels alone, for a batch of
images and any combination of logits per image; attribution and the
counterfactual search build on it, and the tests check it against finite
differences.

In a convolutional network a layer's "unit" is a feature map, one filter slid
over the whole image: its activations stay maps (height, width, filters), but
contributions, dead units and the damage lab count one number per map (the
sum over its positions), and the first layer's weights are the 3x3 filters.
The backward pass goes through a max pool to each window's largest input and
through a convolution by one matrix product per kernel position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitdraw.serving.networks import Layer, Network, check_class, conv_padding, convolve, erf

# The default layers, which the study's CNN uses.
CONV_LAYER, POOL_LAYER = Layer("conv", 1, "relu"), Layer("pool")

# A sigmoid unit below or above these is saturated: its gradient is under 5% of its largest.
SATURATED_BELOW, SATURATED_ABOVE = 0.05, 0.95


@dataclass(frozen=True)
class Inside:
    """One drawing through one network: hidden activations, logits, and who carried the answer."""

    hidden: list[np.ndarray]  # Per hidden layer: a vector, or channels-last feature maps for conv and pool.
    logits: np.ndarray  # The output layer before softmax.
    probabilities: np.ndarray
    target: int  # The class the contributions are for (the answer, unless asked otherwise).
    # Per hidden layer, per unit (per feature map, summed over its positions, for conv and pool):
    # activation x d(logit of target)/d(activation).
    contributions: list[np.ndarray]
    input_gradient: np.ndarray  # d(logit of target)/d(pixel), 28x28.

    @property
    def answer(self) -> int:
        """The digit the network reads."""
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        """The probability the network gives its answer."""
        return float(self.probabilities.max())

    def top_units(self, layer: int, count: int = 3) -> list[int]:
        """The units of a hidden layer that pushed hardest towards the target, strongest first."""
        order = np.argsort(-self.contributions[layer])
        return [int(unit) for unit in order[:count] if self.contributions[layer][unit] > 0]


def _derivative(layer: Layer, output: np.ndarray, pre_activation: np.ndarray | None = None) -> np.ndarray:
    """A layer's activation's derivative, from its output (the value the forward pass already has), or for
    GELU, whose derivative its output does not determine, from its input (``pre_activation``)."""
    activation = layer.activation
    if activation == "sigmoid":
        return output * (1.0 - output)
    if activation == "relu":
        return (output > 0).astype(output.dtype)
    if activation == "leaky_relu":
        # A positive slope keeps the sign, so the output tells which side of zero the input was on.
        return np.where(output > 0, 1.0, layer.negative_slope).astype(output.dtype)
    if activation == "linear":
        return np.ones_like(output)
    if activation == "tanh":
        return 1.0 - output**2
    if activation == "gelu" and pre_activation is not None:
        # d/dx x * Phi(x) = Phi(x) + x * phi(x), Phi and phi the standard normal's CDF and density.
        x = pre_activation
        return 0.5 * (1.0 + erf(x / np.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    raise ValueError(f"no derivative for activation {activation!r} in a hidden layer")


def _window_slices(layer: Layer, height: int, width: int):
    """For each kernel position (row, column), the slice of a (padded) input that it read at every output
    position, as (row, column, (slice of rows, slice of columns))."""
    stride_rows, stride_columns = layer.strides
    for row in range(layer.kernel[0]):
        for column in range(layer.kernel[1]):
            rows = slice(row, row + stride_rows * (height - 1) + 1, stride_rows)
            columns = slice(column, column + stride_columns * (width - 1) + 1, stride_columns)
            yield row, column, (slice(None), rows, columns)


def _pool_backward(maps: np.ndarray, gradient: np.ndarray, layer: Layer = POOL_LAYER) -> np.ndarray:
    """Back through a pool: a max pool sends each window's gradient to its largest input (the first of
    equals, as TensorFlow does), an average pool shares it equally; nothing goes to a dropped last row or
    column. Overlapping windows add up."""
    height, width = gradient.shape[1:3]
    result = np.zeros(maps.shape, gradient.dtype)
    positions = list(_window_slices(layer, height, width))
    if layer.pooling == "average":
        share = gradient / (layer.kernel[0] * layer.kernel[1])
        for _, _, where in positions:
            result[where] += share
        return result
    largest = np.stack([maps[where] for _, _, where in positions]).argmax(axis=0)
    for index, (_, _, where) in enumerate(positions):
        result[where] += np.where(largest == index, gradient, 0)
    return result


def _conv_backward(
    gradient: np.ndarray, kernel: np.ndarray, input_shape: tuple[int, ...], layer: Layer = CONV_LAYER
) -> np.ndarray:
    """Back through a convolution to its input: each kernel position sends the output's gradient back to
    the input pixels it read, one matrix product per position; the padding's share is dropped."""
    count, height, width, _ = input_shape
    pads = [
        conv_padding(size, k, s, layer.padding)
        for size, k, s in zip((height, width), layer.kernel, layer.strides)
    ]
    padded = (count, height + sum(pads[0]), width + sum(pads[1]), input_shape[-1])
    result = np.zeros(padded, gradient.dtype)
    for row, column, where in _window_slices(layer, *gradient.shape[1:3]):
        result[where] += gradient @ kernel[row, column].T
    return result[:, pads[0][0] : pads[0][0] + height, pads[1][0] : pads[1][0] + width]


def _backward(
    network: Network, images: np.ndarray, hidden: list[np.ndarray], directions: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Back from ``directions . logits`` (directions (N, 10)) through the layers: its gradient with respect
    to each hidden layer's activations (each in that layer's shape, first layer first) and to the pixels
    (N, 784)."""
    architecture = network.architecture
    layers = architecture.layers
    first = architecture.scaled(images.reshape(len(images), *architecture.shapes[0]))
    inputs = [first, *hidden[:-1]]
    gradient = directions @ network.weights[-1].T
    per_layer = []
    for index in range(len(hidden) - 1, -1, -1):
        gradient = gradient.reshape(hidden[index].shape)
        per_layer.append(gradient)
        layer, received = layers[index], inputs[index]
        if layer.kind == "pool":
            gradient = _pool_backward(received, gradient, layer)
            continue
        kernel, bias = (
            network.weights[network.parameter_index[index]],
            network.biases[network.parameter_index[index]],
        )
        # Only GELU needs the layer's input to differentiate; the others use the output they gave.
        pre_activation = None
        if layer.activation == "gelu":
            pre_activation = (
                convolve(received, kernel, bias, layer.strides, layer.padding)
                if layer.kind == "conv"
                else received.reshape(len(received), -1) @ kernel + bias
            )
        local = gradient * _derivative(layer, hidden[index], pre_activation)
        conv = layer.kind == "conv"
        gradient = _conv_backward(local, kernel, received.shape, layer) if conv else local @ kernel.T
    per_layer.reverse()
    # The first layer read scale * pixel + offset: the chain rule's last factor is the scale.
    gradient = gradient.reshape(len(images), -1) * np.asarray(architecture.input_scale, gradient.dtype)
    return per_layer, gradient


def unit_totals(values: np.ndarray) -> np.ndarray:
    """One number per unit from one image's layer values: a dense layer's as they are, a feature map's
    summed over its positions (a convolution's "unit" is a whole map, one filter)."""
    values = np.asarray(values)
    return values if values.ndim == 1 else values.reshape(-1, values.shape[-1]).sum(axis=0)


def look_inside(network: Network, image: np.ndarray, target: int | None = None) -> Inside:
    """Run one preprocessed 28x28 image through a network, keeping what each layer did."""
    image = network.check_image(image)
    outputs = network.layer_outputs(image[None])
    hidden, probabilities = outputs[:-1], outputs[-1][0]
    target = int(np.argmax(probabilities)) if target is None else check_class(target)
    direction = np.zeros((1, probabilities.size), np.float32)
    direction[0, target] = 1.0
    gradients, input_gradient = _backward(network, image[None], hidden, direction)
    return Inside(
        hidden=[activations[0] for activations in hidden],
        logits=network.logits(image[None])[0],
        probabilities=probabilities,
        target=target,
        contributions=[unit_totals(activations[0] * grad[0]) for activations, grad in zip(hidden, gradients)],
        input_gradient=input_gradient.reshape(image.shape),
    )


def input_gradients(network: Network, images: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """For each image, the gradient of ``direction . logits`` with respect to its pixels, in one batch.

    ``directions`` is (N, 10): a one-hot row asks for one class's logit, a row with +1 and -1 for the
    difference of two classes' logits. Returns (N, 28, 28).
    """
    images = np.asarray(images, dtype=np.float32)
    directions = np.asarray(directions, dtype=np.float32)
    if images.ndim != 3 or images.shape[1:] != network.architecture.input_shape:
        raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
    if directions.shape != (len(images), network.architecture.layers[-1].units):
        raise ValueError(f"expected one direction over the classes per image, got {directions.shape}")
    _, gradient = _backward(network, images, network.layer_outputs(images)[:-1], directions)
    return gradient.reshape(images.shape)


def activation_scales(network: Network, hidden: list[np.ndarray]) -> list[float]:
    """The top of each hidden layer's colour scale for these activations: 1 for a sigmoid layer (its
    outputs are on 0..1 already); for every other layer the network's largest such activation, shared,
    so that their units compare across layers (its largest size, for layers that go below zero)."""
    kinds = [layer.activation for layer in network.architecture.layers[:-1]]
    unbounded = [float(np.abs(a).max()) for a, kind in zip(hidden, kinds) if kind != "sigmoid"]
    shared = max(unbounded, default=1.0) or 1.0
    return [1.0 if kind == "sigmoid" else shared for kind in kinds]


def saturated_or_dead(activations: np.ndarray, activation: str) -> np.ndarray:
    """Which units of a layer have stopped responding on this input: sigmoid units pinned near 0 or 1
    (their gradient almost gone), ReLU units at exactly 0. A boolean per unit."""
    activations = np.asarray(activations)
    if activation == "sigmoid":
        return (activations < SATURATED_BELOW) | (activations > SATURATED_ABOVE)
    if activation == "relu":
        return activations <= 0
    raise ValueError(f"saturation is defined for sigmoid and relu layers, not {activation!r}")


def never_active(network: Network, images: np.ndarray, batch: int = 500) -> list[np.ndarray]:
    """Per hidden layer, the units (feature maps, for conv and pool) that are 0 on every one of these
    images, everywhere (dead ReLU units)."""
    alive = [np.zeros(shape[-1], bool) for shape in network.architecture.shapes[1:-1]]
    for start in range(0, len(images), batch):
        for index, output in enumerate(network.layer_outputs(images[start : start + batch])[:-1]):
            alive[index] |= (output > 0).reshape(-1, output.shape[-1]).any(axis=0)
    return [~units for units in alive]


def first_layer_weights(network: Network) -> np.ndarray:
    """Each first-layer unit's incoming weights as an image: shape (units, 28, 28) for a dense layer,
    (filters, 3, 3) for a convolution."""
    kernel = network.weights[0]
    if network.architecture.layers[0].kind == "conv":
        return kernel[:, :, 0, :].transpose(2, 0, 1)
    return kernel.T.reshape(kernel.shape[1], *network.architecture.input_shape)


# The diverging scale of every signed picture: #2166AC (blue) at -1, white at 0, #B2182B (red) at +1.
NEGATIVE_RGB, ZERO_RGB, POSITIVE_RGB = (33, 102, 172), (255, 255, 255), (178, 24, 43)


def diverging_colours(values: np.ndarray) -> np.ndarray:
    """Values on a -1..1 scale (clipped) as RGB floats 0-255: blue below zero, white at zero, red above."""
    values = np.clip(np.asarray(values, dtype=np.float32), -1.0, 1.0)[..., None]
    red, blue, white = (np.array(colour, np.float32) for colour in (POSITIVE_RGB, NEGATIVE_RGB, ZERO_RGB))
    return white + values.clip(0, 1) * (red - white) + (-values).clip(0, 1) * (blue - white)


def diverging_tiles(images: np.ndarray, columns: int, tile: int = 56, gap: int = 4) -> np.ndarray:
    """Images on one shared, symmetric scale, as a grid of RGB tiles: blue below zero, white at zero,
    red above (uint8, the background white). Shared so that tiles compare with each other."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3 or len(images) == 0 or columns < 1:
        raise ValueError(f"expected a non-empty stack of 2-D images and columns >= 1, got {images.shape}")
    scale = float(np.abs(images).max()) or 1.0
    colours = diverging_colours(images / scale)
    rows = -(-len(images) // columns)
    height, width = images.shape[1:]
    factor = max(1, tile // max(height, width))
    cell_h, cell_w = height * factor, width * factor
    grid = np.full((rows * (cell_h + gap) - gap, columns * (cell_w + gap) - gap, 3), 255, np.uint8)
    for index, colour in enumerate(colours):
        top, left = (index // columns) * (cell_h + gap), (index % columns) * (cell_w + gap)
        enlarged = np.kron(colour, np.ones((factor, factor, 1)))
        grid[top : top + cell_h, left : left + cell_w] = np.rint(enlarged).astype(np.uint8)
    return grid
