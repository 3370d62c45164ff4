"""Every committed model reloads, meets its accuracy target, and its published numbers match the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitdraw import saved_models
from digitdraw.evaluate import loss_and_accuracy
from digitdraw.inference import load_classifier
from digitdraw.models import MODEL_IDS, get_spec
from digitdraw.preprocess import fingerprint
from digitdraw.train import prepare_images

# The MNIST test accuracy each model must reach (issue: core).
TEST_ACCURACY_TARGETS = {1: 0.950, 2: 0.958, 3: 0.977, 4: 0.980, 5: 0.980}


@pytest.fixture(scope="module")
def prepared_test_set(mnist):
    _, (x_test, y_test) = mnist
    return prepare_images(x_test), y_test


@pytest.fixture(scope="module")
def keras_models():
    import keras

    return {
        m: keras.saving.load_model(saved_models.model_dir(m) / saved_models.MODEL_FILE) for m in MODEL_IDS
    }


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_committed_model_loads_and_describes_itself(model_id):
    saved = saved_models.load(model_id)
    metrics = saved.metrics
    assert metrics["model_id"] == model_id
    assert metrics["architecture"] == get_spec(model_id).architecture
    assert metrics["parameters"] == get_spec(model_id).parameter_count
    assert metrics["preprocess_fingerprint"] == fingerprint(), (
        "preprocessing gives other images than the model was trained on; retrain it"
    )
    assert len(saved.history["epoch"]) == metrics["epochs_run"]


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_published_test_accuracy_equals_a_fresh_keras_evaluation(model_id, keras_models, prepared_test_set):
    images, labels = prepared_test_set
    probabilities = keras_models[model_id].predict(images, batch_size=2000, verbose=0)
    _, accuracy = loss_and_accuracy(probabilities, labels)
    published = saved_models.load(model_id).metrics["accuracy"]["test"]
    assert accuracy == pytest.approx(published, abs=1e-4)
    assert published >= TEST_ACCURACY_TARGETS[model_id]


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_fast_forward_pass_equals_keras_on_the_saved_model(model_id, keras_models, prepared_test_set):
    images = prepared_test_set[0][:2000]
    expected = keras_models[model_id].predict(images, batch_size=2000, verbose=0)
    actual = load_classifier(model_id).predict_proba(images)
    np.testing.assert_allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_confusion_matrix_agrees_with_the_published_accuracy(model_id):
    metrics = json.loads((saved_models.model_dir(model_id) / saved_models.METRICS_FILE).read_text())
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 10000
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["accuracy"]["test"])
