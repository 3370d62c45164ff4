"""The Keras side of a network: the Sequential model an ``Architecture`` describes, for training.

Serving never builds one: it reads the trained weights into NumPy
(``digitdraw.serving.networks.Network``), and a test checks that both give
the same outputs. The layer names here are what the saved ``.keras`` file
holds, and what ``digitdraw.serving.saved_models.read_weights`` finds.
"""

from __future__ import annotations

from digitdraw.serving.networks import CONV_KERNEL, POOL_SIZE, Architecture


def build_keras_model(architecture: Architecture, name: str = "network", output_logits: bool = False):
    """Build the uncompiled Keras Sequential network that an architecture describes; with
    ``output_logits``, its output layer gives logits (no softmax), for a loss that needs them."""
    import keras

    layers = [keras.Input(shape=architecture.input_shape, name="image")]
    if architecture.is_convolutional:
        layers.append(keras.layers.Reshape((*architecture.input_shape, 1), name="channels"))
    flat = not architecture.is_convolutional
    if flat:
        layers.append(keras.layers.Flatten(name="flatten"))
    for index, layer in enumerate(architecture.layers, start=1):
        is_last = index == len(architecture.layers)
        if layer.kind == "conv":
            layers.append(
                keras.layers.Conv2D(
                    layer.units, CONV_KERNEL, activation=layer.activation, name=f"conv_{index}"
                )
            )
        elif layer.kind == "pool":
            layers.append(keras.layers.MaxPooling2D(POOL_SIZE, name=f"pool_{index}"))
        else:
            if not flat:
                layers.append(keras.layers.Flatten(name="flatten"))
                flat = True
            activation = None if is_last and output_logits else layer.activation
            layers.append(
                keras.layers.Dense(
                    layer.units, activation=activation, name="output" if is_last else f"hidden_{index}"
                )
            )
    return keras.Sequential(layers, name=name)
