"""What would flip it: the edited image stays in [0, 1], the network answers the target, and the saved
Keras model, given the same edited image, answers the same."""

from __future__ import annotations

import numpy as np
import pytest

from digitdraw.explaining import counterfactual
from digitdraw.serving.inference import classify_batch, load_classifier
from digitdraw.serving.networks import MODEL_IDS, Architecture, Layer, Network
from digitdraw.serving.saved_models import MODEL_FILE, model_dir


@pytest.fixture(scope="module")
def digits():
    from digitdraw.learning.data import load_mnist

    (_, _), (images, labels) = load_mnist()
    return classify_batch(images[:3], []).images, labels[:3]  # A 7, a 2 and a 1.


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_edited_image_is_read_as_the_target_by_numpy_and_by_keras(model_id, digits):
    import keras

    images, labels = digits
    network = load_classifier(model_id)
    keras_model = keras.saving.load_model(model_dir(model_id) / MODEL_FILE)
    for image, label in zip(images, labels):
        target = (int(label) + 3) % 10
        result = counterfactual.flip(network, image, target)
        assert result.succeeded and int(np.argmax(result.probabilities)) == target
        assert result.edited.min() >= 0.0 and result.edited.max() <= 1.0
        assert result.edited.shape == (28, 28) and result.edited.dtype == np.float32
        np.testing.assert_array_equal(result.original, image)
        # Small: far less than redrawing the digit (a digit's own L2 norm is about 9).
        assert 0 < result.size < result.input_size == pytest.approx(np.linalg.norm(image))
        assert result.largest_change == pytest.approx(np.abs(result.edited - image).max())
        keras_answer = int(np.argmax(keras_model.predict(result.edited[None], verbose=0)[0]))
        assert keras_answer == target


def test_shrinking_keeps_the_flip_but_no_shorter_change_would(digits):
    images, _ = digits
    network = load_classifier(2)
    result = counterfactual.flip(network, images[1], 8)
    lead = counterfactual._lead(network.logits(result.edited[None]), 8)[0]
    assert lead >= counterfactual.DEFAULT_MARGIN
    almost = result.original + np.float32(0.98) * result.change
    assert counterfactual._lead(network.logits(almost[None]), 8)[0] < counterfactual.DEFAULT_MARGIN


def test_asking_for_the_answer_it_already_gives_changes_nothing(digits):
    images, labels = digits
    result = counterfactual.flip(load_classifier(4), images[0], int(labels[0]))
    assert result.succeeded and result.steps == 0 and result.size == 0.0


def test_no_steps_allowed_means_no_flip(digits):
    images, _ = digits
    result = counterfactual.flip(load_classifier(1), images[0], 0, max_steps=0)
    assert not result.succeeded and result.size == 0.0


def _output_layer_only(biases: list[float], weight: float = 0.0) -> Network:
    """A network with no hidden layer: every logit is ``weight`` times the ink plus its bias."""
    architecture = Architecture((Layer("dense", 10, "softmax"),))
    return Network(architecture, [np.full((784, 10), weight, np.float32)], [np.array(biases, np.float32)])


def test_the_search_says_why_it_stopped(digits):
    images, _ = digits
    done = counterfactual.flip(load_classifier(2), images[0], 3)
    assert done.succeeded and done.stopped == counterfactual.REACHED and done.reads_target
    # Every logit moves with the ink alike: no pixel can make 3 lead, whatever the steps allowed.
    flat = counterfactual.flip(_output_layer_only([0.0] * 10, weight=0.1), images[0], 3)
    assert not flat.succeeded and flat.stopped == counterfactual.NO_GRADIENT and flat.steps == 0
    # Out of steps with 3 on top already, though by less than the margin: it reads 3, unshrunk.
    close = counterfactual.flip(
        _output_layer_only([0, 0, 0, 0.1, 0, 0, 0, 0, 0, 0]), images[0], 3, max_steps=0
    )
    assert not close.succeeded and close.stopped == counterfactual.STEP_LIMIT and close.reads_target
    far = counterfactual.flip(load_classifier(1), images[0], 0, max_steps=0)
    assert far.stopped == counterfactual.STEP_LIMIT and not far.reads_target


@pytest.mark.parametrize(
    ("image", "target", "message"),
    [
        (np.zeros((27, 28)), 1, "shape"),
        (np.full((28, 28), 2.0), 1, "\\[0, 1\\]"),
        (np.zeros((28, 28)), 10, "target digit 0-9"),
    ],
)
def test_bad_requests_are_value_errors(image, target, message):
    with pytest.raises(ValueError, match=message):
        counterfactual.flip(load_classifier(3), image, target)
