"""The registry matches the study's table, and the NumPy forward pass matches Keras."""

from __future__ import annotations

import numpy as np
import pytest

from digitdraw.models import MODEL_IDS, REGISTRY, DenseNetwork, build_keras_model, get_spec

STUDY_TABLE = {
    1: ((784, 16, 16, 10), "sigmoid", 96.35, 94.79),
    2: ((784, 16, 16, 10), "relu", 96.79, 95.14),
    3: ((784, 64, 64, 10), "sigmoid", 99.84, 97.29),
    4: ((784, 64, 64, 10), "relu", 99.65, 97.47),
    5: ((784, 128, 10), "relu", 99.26, None),
}


def test_the_registry_reproduces_the_study_table():
    assert MODEL_IDS == (1, 2, 3, 4, 5)
    for model_id, (sizes, activation, train_accuracy, validation_accuracy) in STUDY_TABLE.items():
        spec = REGISTRY[model_id]
        assert spec.layer_sizes == sizes
        assert spec.activation == activation
        assert spec.study_train_accuracy == train_accuracy
        assert spec.study_validation_accuracy == validation_accuracy
        assert spec.architecture == "-".join(map(str, sizes))


@pytest.mark.parametrize(
    ("model_id", "parameters"), [(1, 13002), (2, 13002), (3, 55050), (4, 55050), (5, 101770)]
)
def test_parameter_counts_match_the_arithmetic_and_keras(model_id, parameters):
    spec = REGISTRY[model_id]
    assert spec.parameter_count == parameters
    assert build_keras_model(spec).count_params() == parameters


@pytest.mark.parametrize("bad", [0, 6, -1, "4", 4.0, None, True])
def test_an_unknown_model_id_is_a_value_error_naming_the_valid_ones(bad):
    with pytest.raises(ValueError, match=r"\[1, 2, 3, 4, 5\]"):
        get_spec(bad)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_numpy_forward_pass_equals_keras_on_random_weights(model_id):
    spec = REGISTRY[model_id]
    model = build_keras_model(spec)  # Keras initialises random weights.
    images = np.random.default_rng(model_id).uniform(size=(64, 28, 28)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    actual = DenseNetwork.from_keras(model, spec.activation).predict_proba(images)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, atol=1e-5)


def test_the_forward_pass_rejects_images_of_the_wrong_size():
    network = DenseNetwork.from_keras(build_keras_model(REGISTRY[1]), "sigmoid")
    for bad in (np.zeros((2, 27, 27), np.float32), np.zeros((0, 28, 28), np.float32), np.zeros(784)):
        with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
            network.predict_proba(bad)


def test_mismatched_layers_are_rejected():
    with pytest.raises(ValueError):
        DenseNetwork([np.zeros((784, 16)), np.zeros((32, 10))], [np.zeros(16), np.zeros(10)], "relu")
    with pytest.raises(ValueError, match="activation"):
        DenseNetwork([np.zeros((784, 10))], [np.zeros(10)], "tanh")
