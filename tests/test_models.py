"""The registry matches the study's table, architectures check themselves, and the NumPy forward pass
matches Keras."""

from __future__ import annotations

import float32
import numpy as np
import pytest

from digitdraw.learning.keras_models import build_keras_model
from digitdraw.serving.networks import (
    BEYOND_STUDY,
    MODEL_IDS,
    REGISTRY,
    STUDY_MODEL_IDS,
    Architecture,
    Layer,
    Network,
    check_class,
    get_spec,
)

STUDY_TABLE = {
    1: ((784, 16, 16, 10), "sigmoid", 96.35, 94.79),
    2: ((784, 16, 16, 10), "relu", 96.79, 95.14),
    3: ((784, 64, 64, 10), "sigmoid", 99.84, 97.29),
    4: ((784, 64, 64, 10), "relu", 99.65, 97.47),
    5: ((784, 128, 10), "relu", 99.26, None),
}


def test_the_registry_reproduces_the_study_table():
    assert STUDY_MODEL_IDS == (1, 2, 3, 4, 5)
    for model_id, (sizes, activation, train_accuracy, validation_accuracy) in STUDY_TABLE.items():
        spec = REGISTRY[model_id]
        assert spec.architecture.sizes == sizes
        assert spec.activation == activation
        assert spec.study_train_accuracy == train_accuracy
        assert spec.study_validation_accuracy == validation_accuracy
        assert spec.architecture.summary == "-".join(map(str, sizes))
        assert spec.in_study and BEYOND_STUDY not in spec.name


def test_the_cnn_beyond_the_study_is_marked_and_described():
    spec = REGISTRY[6]
    assert MODEL_IDS == (1, 2, 3, 4, 5, 6) and not spec.in_study
    assert spec.study_train_accuracy is None and spec.study_validation_accuracy is None
    assert spec.name == "Model 6 · 784-conv16-pool-conv32-pool-64-10 · ReLU · beyond the study"
    architecture = spec.architecture
    assert architecture.is_convolutional and architecture.hidden_activation == "relu"
    # Valid 3x3 convolutions take a pixel off each side; 2x2 pools halve, dropping an odd row.
    assert architecture.shapes == (
        (28, 28, 1),
        (26, 26, 16),
        (13, 13, 16),
        (11, 11, 32),
        (5, 5, 32),
        (64,),
        (10,),
    )
    assert architecture.sizes == (784, 10816, 2704, 3872, 800, 64, 10)
    assert architecture.weight_shapes == [(3, 3, 1, 16), (3, 3, 16, 32), (800, 64), (64, 10)]


@pytest.mark.parametrize(
    ("model_id", "parameters"),
    [
        (1, 13002),
        (2, 13002),
        (3, 55050),
        (4, 55050),
        (5, 101770),
        (6, 16 * 10 + 32 * 145 + 800 * 64 + 64 + 650),
    ],
)
def test_parameter_counts_match_the_arithmetic_and_keras(model_id, parameters):
    architecture = REGISTRY[model_id].architecture
    assert architecture.parameter_count == parameters
    assert build_keras_model(architecture).count_params() == parameters


@pytest.mark.parametrize("bad", [0, 7, -1, "4", 4.0, None, True])
def test_an_unknown_model_id_is_a_value_error_naming_the_valid_ones(bad):
    with pytest.raises(ValueError, match=r"\[1, 2, 3, 4, 5, 6\]"):
        get_spec(bad)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_numpy_forward_pass_equals_keras_on_random_weights(model_id):
    architecture = REGISTRY[model_id].architecture
    model = build_keras_model(architecture)  # Keras initialises random weights.
    images = np.random.default_rng(model_id).uniform(size=(64, 28, 28)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    network = Network.from_keras(model, architecture)
    actual = network.predict_proba(images)
    # Two float32 paths through every layer: rtol(fan-ins along the way), tests/float32.py.
    terms = float32.chain_terms(architecture)[-1]
    float32.assert_probabilities_close(actual, expected, network.logits(images), terms)
    float32.assert_close(actual.sum(axis=1), np.ones(len(images)), terms=10)  # A float32 sum of 10.


def test_the_forward_pass_rejects_images_of_the_wrong_size():
    architecture = REGISTRY[1].architecture
    network = Network.from_keras(build_keras_model(architecture), architecture)
    for bad in (np.zeros((2, 27, 27), np.float32), np.zeros((0, 28, 28), np.float32), np.zeros(784)):
        with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
            network.predict_proba(bad)


def test_weights_that_do_not_fit_the_architecture_are_rejected():
    architecture = Architecture.dense((16,), "relu")
    with pytest.raises(ValueError, match="expected kernels of shapes"):
        Network(architecture, [np.zeros((784, 32)), np.zeros((32, 10))], [np.zeros(32), np.zeros(10)])
    with pytest.raises(ValueError, match="bias"):
        Network(architecture, [np.zeros((784, 16)), np.zeros((16, 10))], [np.zeros(16), np.zeros(9)])


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ((), "at least one layer"),
        ((Layer("dense", 16, "relu"),), "10 softmax units"),
        ((Layer("dense", 10, "softmax"), Layer("dense", 10, "softmax")), "softmax only in the last"),
        ((Layer("conv", 4, "relu"),), "10 softmax units"),
        (
            (Layer("dense", 8, "relu"), Layer("conv", 4, "relu"), Layer("dense", 10, "softmax")),
            "before any dense",
        ),
        ((*[Layer("conv", 2, "relu")] * 14, Layer("dense", 10, "softmax")), "leaves nothing"),
        ((*[Layer("pool")] * 5, Layer("dense", 10, "softmax")), "leaves nothing"),
    ],
)
def test_an_architecture_checks_itself(layers, message):
    with pytest.raises(ValueError, match=message):
        Architecture(layers)


@pytest.mark.parametrize(
    ("kind", "units", "activation", "message"),
    [
        ("lstm", 16, "relu", "layer kind"),
        ("conv", 0, "relu", "positive whole number"),
        ("conv", 16, None, "activation"),
        ("pool", 2, None, "pool layer without units"),
        ("pool", None, "relu", "pool layer without units"),
        ("dense", 0, "relu", "positive whole number"),
        ("dense", 2.5, "relu", "positive whole number"),
        ("dense", 16, "swish", "activation"),
    ],
)
def test_a_layer_checks_itself(kind, units, activation, message):
    with pytest.raises(ValueError, match=message):
        Layer(kind, units, activation)


def test_a_tanh_network_beyond_the_study_matches_keras():
    # The saved format describes any architecture the app can run, not only the study's.
    architecture = Architecture.dense((32, 8, 12), "tanh")
    model = build_keras_model(architecture)
    images = np.random.default_rng(7).uniform(size=(16, 28, 28)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    network = Network.from_keras(model, architecture)
    # Two float32 paths: rtol(fan-ins along the way), tests/float32.py.
    terms = float32.chain_terms(architecture)[-1]
    float32.assert_probabilities_close(network.predict_proba(images), expected, network.logits(images), terms)
    assert architecture.summary == "784-32-8-12-10" and architecture.hidden_activation == "tanh"


def test_gelu_equals_keras_default_gelu():
    import keras

    from digitdraw.serving.networks import ACTIVATIONS

    x = np.concatenate([np.linspace(-12, 12, 4001), [-1e4, -50.0, 0.0, 50.0, 1e4]]).astype(np.float32)
    expected = keras.ops.convert_to_numpy(keras.activations.gelu(x))  # approximate=False: the erf form
    np.testing.assert_allclose(ACTIVATIONS["gelu"](x), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("hidden", "activation"), [((32, 32), "tanh"), ((8, 4, 8), "gelu")])
def test_the_numpy_forward_pass_equals_keras_for_tanh_and_gelu_networks(hidden, activation):
    architecture = Architecture.dense(hidden, activation)
    model = build_keras_model(architecture)
    images = np.random.default_rng(7).uniform(size=(64, 28, 28)).astype(np.float32)
    network = Network.from_keras(model, architecture)
    # Two float32 paths: rtol(fan-ins along the way), tests/float32.py.
    float32.assert_probabilities_close(
        network.predict_proba(images),
        model.predict(images, verbose=0),
        network.logits(images),
        float32.chain_terms(architecture)[-1],
    )


@pytest.mark.parametrize("name", ["my-net", "A", "net-2-b", "x" * 40])
def test_a_custom_name_is_a_model_id_of_its_own(name):
    from digitdraw.serving.networks import check_model_id, is_custom

    assert check_model_id(name) == name and is_custom(name)
    assert check_model_id(4) == 4 and not is_custom(4)


@pytest.mark.parametrize("bad", ["", "4", "-net", "my net", "a/b", "..", "../x", "net.keras", "x" * 41, "né"])
def test_a_name_that_could_be_a_path_or_an_id_is_refused(bad):
    from digitdraw.serving.networks import check_model_id

    with pytest.raises(ValueError, match="letters, digits and dashes"):
        check_model_id(bad)


@pytest.mark.parametrize(
    ("text", "like"),
    [
        ("teacher net", "teacher-net"),
        ("  my net!! ", "my-net"),
        ("2nd try", "nd-try"),
        ("né", "ne"),
        ("Ünïcode näme", "Unicode-name"),
        ("x" * 41, "x" * 40),
        ("a" + "-" * 39 + "b", "a-b"),
        ("my-net", "my-net"),
        ("--- 42", None),
        ("", None),
    ],
)
def test_a_name_close_to_a_refused_one_is_a_name(text, like):
    from digitdraw.serving.networks import check_custom_name, custom_name_like

    assert custom_name_like(text) == like
    if like is not None:
        assert check_custom_name(like) == like


@pytest.mark.parametrize("hidden", [(16, 16), (8,), ()])
def test_logits_are_the_output_layer_before_softmax_and_keras_agrees(hidden):
    import keras

    architecture = Architecture.dense(hidden, "relu")
    model = build_keras_model(architecture)
    images = np.random.default_rng(3).uniform(size=(8, 28, 28)).astype(np.float32)
    # What Keras feeds its output layer, through that layer's own kernel and bias: no softmax.
    before_softmax = keras.Model(model.inputs, model.layers[-1].input)
    kernel, bias = model.layers[-1].get_weights()
    expected = before_softmax.predict(images, verbose=0) @ kernel + bias
    network = Network.from_keras(model, architecture)
    # Float32 logits by two paths: rtol(fan-ins along the way), tests/float32.py.
    float32.assert_close(network.logits(images), expected, float32.chain_terms(architecture)[-1])
    answer, confidence = network.read(images[0])
    probabilities = network.predict_proba(images[:1])[0]
    assert answer == int(np.argmax(probabilities)) and confidence == pytest.approx(probabilities.max())


def test_one_image_and_one_class_are_checked_in_one_place():
    network = Network.from_keras(build_keras_model(REGISTRY[1].architecture), REGISTRY[1].architecture)
    assert network.check_image(np.zeros((28, 28), np.uint8)).dtype == np.float32
    with pytest.raises(ValueError, match=r"shape \(28, 28\)"):
        network.check_image(np.zeros((1, 28, 28)))
    assert check_class(np.int64(3)) == 3
    for bad in (True, 10, -1, 2.0, "3"):
        with pytest.raises(ValueError, match="digit 0-9"):
            check_class(bad, "digit")


def _tiny_cnn(activation: str) -> Architecture:
    return Architecture(
        (
            Layer("conv", 3, activation),
            Layer("pool"),
            Layer("conv", 5, activation),
            Layer("conv", 4, activation),
            Layer("pool"),
            Layer("dense", 6, activation),
            Layer("dense", 10, "softmax"),
        )
    )


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "gelu"])
def test_the_numpy_convolutions_and_pools_equal_keras_layer_by_layer(activation):
    import keras

    architecture = _tiny_cnn(activation)
    model = build_keras_model(architecture)
    assert model.count_params() == architecture.parameter_count
    # Weights and biases of a size that takes every activation out of its linear middle.
    rng = np.random.default_rng(11)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    images = rng.uniform(size=(33, 28, 28)).astype(np.float32)
    layers = [
        layer for layer in model.layers if not isinstance(layer, (keras.layers.Reshape, keras.layers.Flatten))
    ]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    expected = probe.predict(images, verbose=0)
    network = Network.from_keras(model, architecture)
    actual = network.layer_outputs(images)
    assert [a.shape[1:] for a in actual] == list(architecture.shapes[1:])
    # Two float32 paths: each layer within rtol(fan-ins so far) of its own size (tests/float32.py).
    terms = float32.chain_terms(architecture)
    for ours, theirs, n in zip(actual[:-1], expected[:-1], terms):
        float32.assert_close(ours, theirs, n)
    float32.assert_probabilities_close(actual[-1], expected[-1], network.logits(images), terms[-1])
    # The chunked pass that evaluation uses gives the same answers for more images than one chunk.
    many = rng.uniform(size=(1_100, 28, 28)).astype(np.float32)
    float32.assert_probabilities_close(
        network.predict_proba(many), model.predict(many, verbose=0), network.logits(many), terms[-1]
    )


def test_an_odd_map_loses_its_last_row_and_column_to_the_pool_as_in_keras():
    from digitdraw.serving.networks import max_pool

    maps = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3)
    pooled = max_pool(maps)
    assert pooled.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(pooled[:, 1, 1], maps[:, 3, 3])  # The largest of rows 2-3, columns 2-3.
