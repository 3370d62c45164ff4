"""The damage lab: no damage changes nothing, a switched-off unit is a unit held at zero, pruning and
noise are what they say, the saved model is untouched, and accuracy agrees with the saved metrics."""

from __future__ import annotations

import hashlib

import float32
import numpy as np
import pytest
from test_inside import _random_network

from digitdraw.explaining import damage
from digitdraw.serving.inference import load_classifier, load_saved_model
from digitdraw.serving.saved_models import MODEL_FILE, model_dir


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(4).random((20, 28, 28), dtype=np.float32)


def test_no_damage_gives_the_same_answers(images):
    network = load_classifier(4)
    same = damage.damaged(network, damage.Damage())
    np.testing.assert_array_equal(same.predict_proba(images), network.predict_proba(images))


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_a_switched_off_unit_behaves_as_a_unit_held_at_zero(activation, images):
    network = _random_network(activation)
    broken = damage.damaged(network, damage.Damage(switched_off={0: (2, 5), 1: (0,)}))
    # Reference: the forward pass by hand, with those units' outputs set to zero.
    x = images.reshape(len(images), -1)
    first = network.layer_outputs(images)[0].copy()
    first[:, [2, 5]] = 0
    second = 1 / (1 + np.exp(-(first @ network.weights[1] + network.biases[1])))
    if activation == "relu":
        second = np.maximum(first @ network.weights[1] + network.biases[1], 0)
    second[:, 0] = 0
    logits = second @ network.weights[2] + network.biases[2]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    # The same sums by two float32 paths: rtol(fan-ins along the way), tests/float32.py.
    terms = float32.chain_terms(network.architecture)[-1]
    float32.assert_probabilities_close(broken.predict_proba(x.reshape(images.shape)), expected, logits, terms)


def test_a_random_share_switches_off_that_share_of_every_layer_the_same_way_each_time():
    network = load_classifier(3)
    setting = damage.Damage(random_share=0.25, seed=7)
    masks = damage.switched_off_units(network, setting)
    assert [int(mask.sum()) for mask in masks] == [16, 16]
    assert all((a == b).all() for a, b in zip(masks, damage.switched_off_units(network, setting)))
    other = damage.switched_off_units(network, damage.Damage(random_share=0.25, seed=8))
    assert any((a != b).any() for a, b in zip(masks, other))


def test_pruning_zeroes_the_smallest_weights_and_keeps_the_rest():
    network = load_classifier(1)
    pruned = damage.damaged(network, damage.Damage(prune=0.5))
    for before, after in zip(network.weights, pruned.weights):
        zeroed = after == 0
        assert zeroed.sum() == round(0.5 * before.size)
        assert np.abs(before[zeroed]).max() <= np.abs(before[~zeroed]).min()
        np.testing.assert_array_equal(after[~zeroed], before[~zeroed])


@pytest.mark.parametrize("prune", [0.3, 0.9])
def test_pruned_weights_stay_zero_when_noise_is_added_too(prune):
    network = load_classifier(1)
    both = damage.damaged(network, damage.Damage(noise=1.0, prune=prune, seed=2))
    for before, after in zip(network.weights, both.weights):
        assert (after == 0).sum() == round(prune * before.size)


def test_noise_is_relative_to_each_kernel_and_seeded():
    network = load_classifier(5)
    noisy = damage.damaged(network, damage.Damage(noise=0.5, seed=1))
    for before, after in zip(network.weights, noisy.weights):
        assert (after - before).std() == pytest.approx(0.5 * before.std(), rel=0.05)
    again = damage.damaged(network, damage.Damage(noise=0.5, seed=1))
    np.testing.assert_array_equal(noisy.weights[0], again.weights[0])


def test_damage_leaves_the_saved_model_and_the_loaded_network_untouched():
    path = model_dir(2) / MODEL_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    network = load_classifier(2)
    kept = [w.copy() for w in network.weights]
    damage.damaged(network, damage.Damage(switched_off={0: (1,)}, random_share=0.5, noise=1.0, prune=0.9))
    assert all((a == b).all() for a, b in zip(kept, load_classifier(2).weights))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_accuracy_on_the_whole_test_set_is_the_saved_test_accuracy(classified_test_set):
    # The session's MNIST test set, preprocessed once (tests/conftest.py), as classify_batch does.
    batch, labels = classified_test_set
    inputs = batch.images
    model = load_saved_model(1)
    # Keras (float32) measured the saved figure; another BLAS may read a near-tie image the other way: at
    # most one of 10,000 (as in test_saved_models; seen with OPENBLAS_CORETYPE=Prescott).
    accuracy = damage.accuracy(model.network, inputs, labels)
    assert abs(accuracy - model.metrics.accuracy["test"]) * len(labels) <= 1 + 1e-9
    sample, sample_labels = damage.fixed_sample(inputs, labels)
    assert len(sample) == damage.TEST_SAMPLE_SIZE
    again, _ = damage.fixed_sample(inputs, labels)
    np.testing.assert_array_equal(sample, again)
    wrecked = damage.damaged(model.network, damage.Damage(random_share=1.0))
    assert damage.accuracy(wrecked, sample, sample_labels) < 0.2  # Nothing left to read with.


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: damage.Damage(prune=1.5), "prune between 0 and 1"),
        (lambda: damage.Damage(noise=-1), "noise >= 0"),
        (
            lambda: damage.switched_off_units(load_classifier(1), damage.Damage(switched_off={2: (0,)})),
            "layer",
        ),
        (
            lambda: damage.switched_off_units(load_classifier(1), damage.Damage(switched_off={0: (16,)})),
            "0-15",
        ),
        (lambda: damage.fixed_sample(np.zeros((3, 28, 28)), np.zeros(3), size=4), "sample size"),
    ],
)
def test_bad_settings_are_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_switched_off_feature_map_behaves_as_a_map_held_at_zero(images):
    from test_inside import _random_cnn

    network = _random_cnn("relu")
    assert damage.switchable_layers(network) == [0, 2, 4] and damage.hidden_units(network) == [3, 3, 4, 4, 6]
    broken = damage.damaged(network, damage.Damage(switched_off={0: (1,), 2: (0, 3)}))
    # Reference: the forward pass layer by layer, those maps' outputs set to zero.
    from digitdraw.serving.networks import convolve, max_pool

    maps = np.maximum(convolve(images[..., None], network.weights[0], network.biases[0]), 0)
    maps[..., 1] = 0
    maps = np.maximum(convolve(max_pool(maps), network.weights[1], network.biases[1]), 0)
    maps[..., [0, 3]] = 0
    flat = max_pool(maps).reshape(len(images), -1)
    hidden = np.maximum(flat @ network.weights[2] + network.biases[2], 0)
    expected = hidden @ network.weights[3] + network.biases[3]
    np.testing.assert_allclose(
        broken.logits(images), expected, rtol=1e-5, atol=1e-5
    )  # Float32 against float64.
    masks = damage.switched_off_units(network, damage.Damage(random_share=0.5, seed=3))
    assert [int(mask.sum()) for mask in masks] == [2, 0, 2, 0, 3]  # A pool has no units of its own.
    with pytest.raises(ValueError, match="units of its own"):
        damage.damaged(network, damage.Damage(switched_off={1: (0,)}))
