"""The Keras side of a network: the Sequential model an ``Architecture`` describes, for training and export.

Serving never builds one: it reads the trained weights into NumPy
(``digitdraw.serving.networks.Network``), and a test checks that both give
the same outputs. The layer names here are what the saved ``.keras`` file
holds, and what ``digitdraw.serving.saved_models.read_weights`` finds. A
leaky ReLU is a layer of its own after the one it follows, because Keras's
string activation cannot carry its slope; an input scale is a Rescaling layer
first, so that a saved file gives, on ``to_mnist``'s images, what DigitDraw gives.
"""

from __future__ import annotations

from digitdraw.serving.networks import Architecture


def build_keras_model(architecture: Architecture, name: str = "network", output_logits: bool = False):
    """Build the uncompiled Keras Sequential network that an architecture describes; with
    ``output_logits``, its output layer gives logits (no softmax), for a loss that needs them."""
    import keras

    layers = [keras.Input(shape=architecture.input_shape, name="image")]
    if architecture.is_scaled:
        layers.append(
            keras.layers.Rescaling(architecture.input_scale, architecture.input_offset, name="input_scaling")
        )
    if architecture.is_convolutional:
        layers.append(keras.layers.Reshape((*architecture.input_shape, 1), name="channels"))
    flat = not architecture.is_convolutional
    if flat:
        layers.append(keras.layers.Flatten(name="flatten"))
    for index, layer in enumerate(architecture.layers, start=1):
        is_last = index == len(architecture.layers)
        activation = None if (is_last and output_logits) else layer.activation
        leaky = activation == "leaky_relu"
        if leaky or activation == "linear":
            activation = None
        if layer.kind == "conv":
            layers.append(
                keras.layers.Conv2D(
                    layer.units,
                    layer.kernel,
                    strides=layer.strides,
                    padding=layer.padding,
                    activation=activation,
                    name=f"conv_{index}",
                )
            )
        elif layer.kind == "pool":
            pooling = keras.layers.MaxPooling2D if layer.pooling == "max" else keras.layers.AveragePooling2D
            layers.append(pooling(layer.kernel, strides=layer.strides, name=f"pool_{index}"))
        else:
            if not flat:
                layers.append(keras.layers.Flatten(name="flatten"))
                flat = True
            layers.append(
                keras.layers.Dense(
                    layer.units, activation=activation, name="output" if is_last else f"hidden_{index}"
                )
            )
        if leaky:
            layers.append(keras.layers.LeakyReLU(layer.negative_slope, name=f"leaky_relu_{index}"))
    return keras.Sequential(layers, name=name)
