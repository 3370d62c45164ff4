"""Every committed model reloads, meets its accuracy target, describes itself in the current format, and its
published numbers match a fresh evaluation, by Keras and by ``classify_batch`` on raw MNIST."""

from __future__ import annotations

import json
import shutil

import float32
import numpy as np
import pytest

from digitdraw.cli import main
from digitdraw.learning.evaluate import loss_and_accuracy
from digitdraw.serving import saved_models
from digitdraw.serving.inference import load_classifier
from digitdraw.serving.networks import MODEL_IDS, get_spec, saved_models_dir
from digitdraw.serving.preprocess import fingerprint

# The MNIST test accuracy each model must reach (issue: core).
TEST_ACCURACY_TARGETS = {1: 0.950, 2: 0.958, 3: 0.977, 4: 0.980, 5: 0.980, 6: 0.993}  # 6: issue 15.


@pytest.fixture(scope="module")
def keras_models():
    import keras

    return {
        m: keras.saving.load_model(saved_models.model_dir(m) / saved_models.MODEL_FILE) for m in MODEL_IDS
    }


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_committed_model_loads_and_describes_itself(model_id):
    saved = saved_models.load(model_id)
    card = saved.card
    assert card.format_version == saved_models.FORMAT_VERSION
    assert card.model_id == model_id
    assert card.architecture == get_spec(model_id).architecture
    assert card.parameters == get_spec(model_id).architecture.parameter_count
    assert card.data.preprocess_fingerprint == fingerprint(), (
        "preprocessing gives other images than the model was trained on; retrain it"
    )
    assert set(card.data.splits) == {"train", "validation", "test"}
    assert len(saved.history.epoch) == card.epochs_run


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_published_test_accuracy_equals_a_fresh_keras_evaluation(model_id, keras_models, classified_test_set):
    batch, labels = classified_test_set
    probabilities = keras_models[model_id].predict(batch.images, batch_size=2000, verbose=0)
    _, accuracy = loss_and_accuracy(probabilities, labels)
    published = saved_models.load(model_id).metrics.accuracy["test"]
    # Keras (float32) and the NumPy pass may differ on an image at a near-tie: at most one of 10,000.
    assert abs(accuracy - published) * len(labels) <= 1 + 1e-9
    assert published >= TEST_ACCURACY_TARGETS[model_id]


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_classify_batch_on_raw_mnist_reproduces_the_published_accuracy(model_id, classified_test_set):
    batch, labels = classified_test_set
    assert not batch.blank.any()
    published = saved_models.load(model_id).metrics.accuracy["test"]
    assert np.mean(batch.digits(model_id) == labels) == pytest.approx(published, abs=1e-4)


def test_raw_images_straight_into_predict_proba_score_worse(mnist, classified_test_set):
    # The trap classify_batch exists for: predict_proba expects preprocessed images.
    _, (x_test, y_test) = mnist
    raw = load_classifier(1).predict_proba(x_test.astype(np.float32) / 255.0).argmax(axis=1)
    batch, _ = classified_test_set
    assert np.mean(raw == y_test) < np.mean(batch.digits(1) == y_test) - 0.03


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_fast_forward_pass_equals_keras_on_the_saved_model(model_id, keras_models, classified_test_set):
    images = classified_test_set[0].images[:2000]
    expected = keras_models[model_id].predict(images, batch_size=2000, verbose=0)
    network = load_classifier(model_id)
    # Two float32 paths: rtol(fan-ins along the way), tests/float32.py.
    terms = float32.chain_terms(network.architecture)[-1]
    float32.assert_probabilities_close(network.predict_proba(images), expected, network.logits(images), terms)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_the_confusion_matrix_agrees_with_the_published_accuracy(model_id):
    metrics = json.loads((saved_models.model_dir(model_id) / saved_models.METRICS_FILE).read_text())
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 10000
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["accuracy"]["test"])


@pytest.fixture
def model_1_copy(tmp_path):
    root = tmp_path / "saved_models"
    shutil.copytree(saved_models.model_dir(1), saved_models.model_dir(1, root))
    return root


@pytest.mark.parametrize(
    "file_name", [saved_models.CARD_FILE, saved_models.HISTORY_FILE, saved_models.METRICS_FILE]
)
@pytest.mark.parametrize(
    "version", [None, 1, saved_models.UPGRADABLE_VERSION, saved_models.FORMAT_VERSION + 1]
)
def test_another_format_version_is_refused_naming_both_versions_and_what_rewrites_it(
    file_name, version, model_1_copy
):
    path = saved_models.model_dir(1, model_1_copy) / file_name
    payload = json.loads(path.read_text())
    if version is None:
        del payload["format_version"]  # How format 1 was written.
    else:
        payload["format_version"] = version
    path.write_text(json.dumps(payload))
    with pytest.raises(saved_models.SavedModelError) as error:
        saved_models.load(1, model_1_copy)
    message = str(error.value)
    assert (
        f"is in saved-model format {version}, and this version of DigitDraw reads format "
        f"{saved_models.FORMAT_VERSION}" in message
    )
    upgrade = "rewrite it with `python -m digitdraw models upgrade`"
    assert (upgrade in message) == (version == saved_models.UPGRADABLE_VERSION)


def _as_format(directory, version: int, drop_from_calibration: str | None = None) -> None:
    """Write every JSON file of a model folder back as another format version."""
    for name in saved_models.SCHEMAS:
        path = directory / name
        payload = json.loads(path.read_text()) | {"format_version": version}
        if name == saved_models.CALIBRATION_FILE and drop_from_calibration:
            del payload["novelty"][drop_from_calibration]
        path.write_text(json.dumps(payload))


def test_models_upgrade_rewrites_the_previous_format_and_the_model_loads_as_before(model_1_copy, capsys):
    directory = saved_models.model_dir(1, model_1_copy)
    before = saved_models.load(1, model_1_copy)
    _as_format(directory, saved_models.UPGRADABLE_VERSION)
    assert main(["models", "upgrade", "--root", str(model_1_copy)]) == 0
    assert (
        "rewrote model.json, history.json, metrics.json, calibration.json (format "
        f"{saved_models.FORMAT_VERSION})" in capsys.readouterr().out
    )
    after = saved_models.load(1, model_1_copy)
    assert (after.card, after.metrics, after.calibration) == (before.card, before.metrics, before.calibration)
    assert main(["models", "upgrade", "--root", str(model_1_copy)]) == 0
    assert "already current" in capsys.readouterr().out


def test_a_folder_that_format_3_cannot_hold_is_left_whole_with_the_command_that_refits_it(
    model_1_copy, capsys
):
    directory = saved_models.model_dir(1, model_1_copy)
    _as_format(directory, saved_models.UPGRADABLE_VERSION, drop_from_calibration="turned_away")
    files = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert main(["models", "upgrade", "--root", str(model_1_copy)]) == 1
    assert "refit it with `python -m digitdraw calibrate`" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == files


def test_a_folder_older_than_the_previous_format_is_not_upgraded(model_1_copy, capsys):
    _as_format(saved_models.model_dir(1, model_1_copy), 1)
    assert main(["models", "upgrade", "--root", str(model_1_copy)]) == 1
    assert "cannot be upgraded; retrain the model" in capsys.readouterr().err


def test_an_unknown_key_is_refused_rather_than_ignored(model_1_copy):
    path = saved_models.model_dir(1, model_1_copy) / saved_models.METRICS_FILE
    payload = json.loads(path.read_text())
    payload["acuracy"] = payload["accuracy"]  # A misspelt key must not pass unnoticed.
    path.write_text(json.dumps(payload))
    with pytest.raises(saved_models.SavedModelError, match="acuracy"):
        saved_models.load(1, model_1_copy)


def test_a_metrics_file_written_before_the_kept_drawings_record_loads_without_it(model_1_copy):
    path = saved_models.model_dir(1, model_1_copy) / saved_models.METRICS_FILE
    payload = json.loads(path.read_text())
    del payload["kept_drawings"]  # As every metrics.json was written before training on kept drawings.
    path.write_text(json.dumps(payload))
    loaded = saved_models.load(1, model_1_copy)
    assert loaded.metrics.kept_drawings is None
    assert loaded.metrics.accuracy == saved_models.load(1).metrics.accuracy


def test_every_key_of_the_format_is_a_schema_field():
    # The schema is the documentation: every field carries a type, and the committed files use no other key.
    for model_id in MODEL_IDS:
        folder = saved_models.model_dir(model_id)
        for name, schema in (
            (saved_models.CARD_FILE, saved_models.ModelCard),
            (saved_models.HISTORY_FILE, saved_models.History),
            (saved_models.METRICS_FILE, saved_models.Metrics),
        ):
            keys = set(json.loads((folder / name).read_text()))
            assert keys == set(schema.model_fields), (model_id, name)


def test_the_saved_models_root_holds_only_the_study_models():
    assert sorted(p.name for p in saved_models_dir().iterdir() if p.is_dir()) == [
        get_spec(m).directory_name for m in MODEL_IDS
    ]
