"""Inside the networks: activations against Keras, gradients against finite differences, and the
saturation, dead-unit and weight-picture helpers on cases whose answers are known."""

from __future__ import annotations

import float32
import numpy as np
import pytest

from digitdraw.explaining import inside
from digitdraw.serving.inference import load_classifier
from digitdraw.serving.networks import MODEL_IDS, Architecture, Layer, Network
from digitdraw.serving.saved_models import MODEL_FILE, model_dir


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.random((6, 28, 28), dtype=np.float32)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_layer_equals_keras_on_the_saved_model(model_id, images):
    import keras

    model = keras.saving.load_model(model_dir(model_id) / MODEL_FILE)
    # Every layer but those that only reshape: dense, convolutions and pools.
    shaping = (keras.layers.Flatten, keras.layers.Reshape)
    layers = [layer for layer in model.layers if not isinstance(layer, shaping)]
    probe = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in layers])
    expected = probe.predict(images, verbose=0)
    network = load_classifier(model_id)
    actual = network.layer_outputs(images)
    assert len(actual) == len(expected)
    # Two float32 paths: each layer within rtol(fan-ins so far) of its own size (tests/float32.py).
    terms = float32.chain_terms(network.architecture)
    for ours, theirs, n in zip(actual[:-1], expected[:-1], terms):
        float32.assert_close(ours, theirs, n)
    float32.assert_probabilities_close(actual[-1], expected[-1], network.logits(images), terms[-1])


def _random_network(activation: str, seed: int = 1) -> Network:
    architecture = Architecture.dense((12, 7), activation)
    rng = np.random.default_rng(seed)
    shapes = architecture.weight_shapes
    weights = [rng.normal(0, 0.3, shape) for shape in shapes]
    biases = [rng.normal(0, 0.1, shape[1]) for shape in shapes]
    return Network(architecture, weights, biases)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh", "gelu"])
def test_gradients_match_finite_differences(activation, images):
    network = _random_network(activation)
    image = images[0]
    seen = inside.look_inside(network, image, target=3)

    def logit(x: np.ndarray) -> float:
        return float(inside.look_inside(network, x, target=3).logits[3])

    rng = np.random.default_rng(2)
    step = 1e-2
    for pixel in rng.choice(784, size=12, replace=False):
        row, column = divmod(int(pixel), 28)
        up, down = image.copy(), image.copy()
        up[row, column] += step
        down[row, column] -= step
        numeric = (logit(up) - logit(down)) / (2 * step)
        assert seen.input_gradient[row, column] == pytest.approx(numeric, rel=2e-2, abs=2e-3)


def test_the_last_layer_s_contribution_is_activation_times_outgoing_weight(images):
    network = load_classifier(4)
    seen = inside.look_inside(network, images[1])
    expected = seen.hidden[-1] * network.weights[-1][:, seen.answer]
    np.testing.assert_allclose(seen.contributions[-1], expected, rtol=1e-6)
    np.testing.assert_allclose(seen.probabilities, network.predict_proba(images[1:2])[0], atol=1e-7)
    softmax = np.exp(seen.logits - seen.logits.max())
    np.testing.assert_allclose(softmax / softmax.sum(), seen.probabilities, atol=1e-6)
    top = seen.top_units(-1, count=3)
    assert top == sorted(top, key=lambda unit: -seen.contributions[-1][unit])
    assert all(seen.contributions[-1][unit] > 0 for unit in top)


def test_contributions_are_for_the_class_asked_about(images):
    network = load_classifier(1)
    other = (inside.look_inside(network, images[2]).answer + 1) % 10
    seen = inside.look_inside(network, images[2], target=other)
    np.testing.assert_allclose(
        seen.contributions[-1], seen.hidden[-1] * network.weights[-1][:, other], rtol=1e-6
    )


@pytest.mark.parametrize(
    ("image", "target", "message"),
    [(np.zeros((28, 27)), None, "shape \\(28, 28\\)"), (np.zeros((28, 28)), 10, "class 0-9")],
)
def test_bad_requests_are_value_errors(image, target, message):
    with pytest.raises(ValueError, match=message):
        inside.look_inside(load_classifier(2), image, target)


def test_saturated_sigmoid_and_silent_relu_units():
    sigmoid = inside.saturated_or_dead(np.array([0.01, 0.05, 0.5, 0.95, 0.99]), "sigmoid")
    assert sigmoid.tolist() == [True, False, False, False, True]
    relu = inside.saturated_or_dead(np.array([0.0, 0.3, 0.0, 2.0]), "relu")
    assert relu.tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="sigmoid and relu"):
        inside.saturated_or_dead(np.zeros(3), "softmax")


def test_a_unit_no_image_can_wake_is_found_dead(images):
    network = _random_network("relu")
    network.biases[0][5] = -1000.0  # No image in [0, 1] can lift unit 5 above zero.
    dead = inside.never_active(network, images, batch=4)
    assert dead[0][5] and len(dead) == 2 and dead[0].shape == (12,)
    assert not dead[0].all()


def test_first_layer_weights_are_each_unit_s_incoming_weights_as_an_image():
    network = load_classifier(1)
    pictures = inside.first_layer_weights(network)
    assert pictures.shape == (16, 28, 28)
    np.testing.assert_array_equal(pictures[3].reshape(-1), network.weights[0][:, 3])


def test_diverging_tiles_share_one_scale_white_at_zero():
    images = np.zeros((3, 2, 2), np.float32)
    images[0, 0, 0], images[1, 1, 1] = 2.0, -2.0
    grid = inside.diverging_tiles(images, columns=2, tile=4, gap=1)
    assert grid.shape == (2 * 4 + 1, 2 * 4 + 1, 3)
    assert grid[0, 0].tolist() == [178, 24, 43]  # The largest positive weight: full red.
    assert grid[3, 5 + 3].tolist() == [33, 102, 172]  # The most negative: full blue.
    assert grid[0, 3].tolist() == [255, 255, 255]  # Zero: white.
    with pytest.raises(ValueError):
        inside.diverging_tiles(np.zeros((0, 2, 2)), columns=2)


def test_a_network_without_hidden_layers_has_its_kernel_column_as_gradient(images):
    """look_inside, input_gradients and the benchmark's finite differences share one backward pass and one
    logits function, which must work with no hidden layer: then d(logit)/d(pixel) is the kernel's column."""
    from benchmarks.inside import finite_difference_gradient

    architecture = Architecture((Layer("dense", 10, "softmax"),))
    rng = np.random.default_rng(5)
    network = Network(architecture, [rng.normal(0, 0.1, (784, 10))], [rng.normal(0, 0.1, 10)])
    column = network.weights[0][:, 4].reshape(28, 28)
    seen = inside.look_inside(network, images[0], target=4)
    assert seen.hidden == [] and seen.contributions == []
    np.testing.assert_allclose(seen.input_gradient, column, rtol=1e-6)
    direction = np.eye(10, dtype=np.float32)[[4]]
    np.testing.assert_allclose(inside.input_gradients(network, images[:1], direction)[0], column, rtol=1e-6)
    np.testing.assert_allclose(finite_difference_gradient(network, images[0], 4), column, atol=1e-3)


def test_activation_scales_are_one_for_sigmoid_and_the_largest_activation_shared_otherwise():
    architecture = Architecture(
        (
            Layer("dense", 3, "sigmoid"),
            Layer("dense", 2, "relu"),
            Layer("dense", 2, "tanh"),
            Layer("dense", 10, "softmax"),
        )
    )
    network = Network(
        architecture,
        [np.zeros(shape) for shape in architecture.weight_shapes],
        [np.zeros(n) for n in (3, 2, 2, 10)],
    )
    hidden = [np.array([0.2, 0.9, 0.1]), np.array([0.0, 4.0]), np.array([0.5, -0.7])]
    assert inside.activation_scales(network, hidden) == [1.0, 4.0, 4.0]
    assert inside.activation_scales(network, [hidden[0], np.zeros(2), np.zeros(2)]) == [1.0, 1.0, 1.0]
    seen = inside.look_inside(load_classifier(1), np.zeros((28, 28)))
    assert seen.confidence == pytest.approx(seen.probabilities[seen.answer])


def _float64_network(architecture: Architecture, seed: int) -> Network:
    """Random weights whose precision stays float64 (the forward pass takes float32 images, then keeps
    the precision of its weights), so that finite differences are not float32 rounding."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.5, shape) for shape in architecture.weight_shapes]
    biases = [rng.normal(0, 0.1, shape[-1]) for shape in architecture.weight_shapes]
    network = Network(architecture, weights, biases)
    network.weights, network.biases = weights, biases
    return network


def _random_cnn(activation: str, seed: int = 1) -> Network:
    """A tiny CNN whose weights stay float64, so that finite differences are not float32 rounding (the
    forward pass takes float32 images, then keeps the precision of its weights)."""
    architecture = Architecture(
        (
            Layer("conv", 3, activation),
            Layer("pool"),
            Layer("conv", 4, activation),
            Layer("pool"),
            Layer("dense", 6, activation),
            Layer("dense", 10, "softmax"),
        )
    )
    return _float64_network(architecture, seed)


def _assert_gradients_are_finite_differences(network, batch, directions, pixels: int, seed: int) -> None:
    """``input_gradients`` of float64 images equals central differences at a few random pixels of each."""
    gradients = inside.input_gradients(network, batch, directions)
    rng = np.random.default_rng(seed)
    # Small, so that no 2x2 pool changes its largest input within the step (at 1e-3 one does, for tanh);
    # the pixels are float32, whose rounding then costs at most 3e-4 of the difference.
    step = 1e-4
    for row in range(len(batch)):
        for pixel in rng.choice(784, size=pixels, replace=False):
            r, c = divmod(int(pixel), 28)
            up, down = batch[row].copy(), batch[row].copy()
            up[r, c] += step
            down[r, c] -= step
            change = network.logits(np.stack([up, down])) @ directions[row]
            numeric = (change[0] - change[1]) / (2 * step)
            assert gradients[row, r, c] == pytest.approx(numeric, rel=2e-3, abs=1e-5)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh", "gelu"])
def test_gradients_through_convolutions_and_pools_match_finite_differences(activation, images):
    network = _random_cnn(activation)
    batch = images[:3].astype(np.float64)
    directions = np.random.default_rng(4).normal(size=(3, 10))
    _assert_gradients_are_finite_differences(network, batch, directions, pixels=10, seed=2)


def test_a_max_pool_sends_each_window_s_gradient_to_its_largest_input():
    from digitdraw.explaining.inside import _pool_backward

    maps = np.array([[1.0, 5.0, 2.0], [3.0, 4.0, 9.0], [7.0, 0.0, 8.0]], np.float32)[None, :, :, None]
    gradient = _pool_backward(maps, np.full((1, 1, 1, 1), 2.0, np.float32))
    expected = np.zeros((3, 3), np.float32)
    expected[0, 1] = 2.0  # The 5 of the window [[1, 5], [3, 4]]; the odd last row and column get nothing.
    np.testing.assert_array_equal(gradient[0, :, :, 0], expected)


def test_a_feature_map_is_one_unit_summed_over_its_positions(images):
    network = _random_cnn("relu")
    seen = inside.look_inside(network, images[0], target=2)
    outputs = network.layer_outputs(images[:1])
    assert [h.shape for h in seen.hidden] == [o.shape[1:] for o in outputs[:-1]]
    assert [c.shape for c in seen.contributions] == [(3,), (3,), (4,), (4,), (6,)]
    # The last hidden layer is dense: activation times outgoing weight, as for the study's networks.
    np.testing.assert_allclose(seen.contributions[-1], seen.hidden[-1] * network.weights[-1][:, 2], rtol=1e-9)
    # A pool passes each map's contribution on whole: the largest inputs carry all of the gradient.
    np.testing.assert_allclose(seen.contributions[0], seen.contributions[1], rtol=1e-9, atol=1e-12)
    top = seen.top_units(2)
    assert all(0 <= unit < 4 for unit in top)


def test_a_filter_no_image_can_wake_is_found_dead_and_its_kernel_is_a_3x3_picture(images):
    network = _random_cnn("relu")
    network.biases[0][1] = -1000.0
    dead = inside.never_active(network, images, batch=4)
    assert [d.shape for d in dead] == [(3,), (3,), (4,), (4,), (6,)]
    assert dead[0][1] and dead[1][1] and not dead[0][0]
    pictures = inside.first_layer_weights(network)
    assert pictures.shape == (3, 3, 3)
    np.testing.assert_array_equal(pictures[2], network.weights[0][:, :, 0, 2])


def _random_opened_kinds(seed: int = 3) -> Network:
    """A tiny network of every layer option a network opened from a file may have (strides, same
    padding, non-square kernels, average and overlapping max pools, leaky ReLU, linear, an input scale),
    float64 like ``_random_cnn``."""
    architecture = Architecture(
        (
            Layer("conv", 3, "leaky_relu", kernel=(5, 5), strides=(2, 2), padding="same", negative_slope=0.1),
            Layer("pool", kernel=(2, 2), pooling="average"),
            Layer("conv", 4, "linear", kernel=(3, 2), strides=(1, 2)),
            Layer("pool", kernel=(3, 3), strides=(2, 1)),
            Layer("dense", 6, "gelu"),
            Layer("dense", 10, "softmax"),
        ),
        input_scale=3.2,
        input_offset=-0.4,
    )
    return _float64_network(architecture, seed)


def test_gradients_through_every_opened_layer_option_match_finite_differences(images):
    network = _random_opened_kinds()
    assert [shape[:2] for shape in network.architecture.shapes[1:5]] == [(14, 14), (7, 7), (5, 3), (2, 1)]
    batch = images[:2].astype(np.float64)
    directions = np.random.default_rng(5).normal(size=(2, 10))
    _assert_gradients_are_finite_differences(network, batch, directions, pixels=12, seed=6)


def test_every_opened_layer_option_equals_keras_layer_by_layer(images):
    import keras

    from digitdraw.learning.keras_models import build_keras_model

    network = _random_opened_kinds()
    model = build_keras_model(network.architecture)
    model.set_weights([array for pair in zip(network.weights, network.biases) for array in pair])
    float_network = Network(network.architecture, network.weights, network.biases)  # float32, as served.
    # Every layer with an output of its own: not those that only reshape or scale the input, nor the
    # convolution before the LeakyReLU layer that Keras needs for its slope.
    skipped = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Rescaling)
    kept = [layer for layer in model.layers if not isinstance(layer, skipped) and layer.name != "conv_1"]
    outputs = [layer.output for layer in kept]
    expected = keras.Model(model.inputs, outputs).predict(images, verbose=0)
    actual = float_network.layer_outputs(images)
    terms = float32.chain_terms(network.architecture)
    for ours, theirs, n in zip(actual[:-1], expected[:-1], terms):
        float32.assert_close(ours, theirs, n)
    float32.assert_probabilities_close(actual[-1], expected[-1], float_network.logits(images), terms[-1])
