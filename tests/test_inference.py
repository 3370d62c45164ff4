"""classify and load_classifier: the public inference API, drawn digits, and a broken model kept apart."""

from __future__ import annotations

import shutil

import float32
import numpy as np
import pytest
from drawings import blank_canvas, draw_digit

import digitdraw
from digitdraw.serving import digit_score
from digitdraw.serving.inference import MODEL_CACHE, load_models
from digitdraw.serving.networks import saved_models_dir
from digitdraw.serving.saved_models import model_dir


def test_the_public_api_names_exist():
    assert digitdraw.MODEL_IDS == (1, 2, 3, 4, 5, 6)
    for name in digitdraw.__all__:
        assert getattr(digitdraw, name) is not None, name


@pytest.mark.parametrize("model_id", digitdraw.MODEL_IDS)
def test_predict_proba_returns_rows_that_sum_to_one(model_id):
    images = np.random.default_rng(0).uniform(size=(5, 28, 28)).astype(np.float32)
    probabilities = digitdraw.load_classifier(model_id).predict_proba(images)
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_a_blank_canvas_gives_no_prediction():
    result = digitdraw.classify(blank_canvas())
    assert result.is_blank and result.probabilities == {}


@pytest.mark.parametrize("digit", [0, 1, 4, 7])
@pytest.mark.parametrize("stroke", [12, 25])
def test_digits_drawn_with_opencv_are_recognised_by_model_4(digit, stroke):
    result = digitdraw.classify(draw_digit(digit, stroke=stroke), model_ids=[4])
    assert result.digit(4) == digit, result.probabilities[4].round(3)


def test_all_models_answer_when_none_are_named():
    result = digitdraw.classify(draw_digit(7))
    assert sorted(result.probabilities) == list(digitdraw.MODEL_IDS)
    assert result.image.shape == (28, 28)
    assert 0.0 < result.confidence(4) <= 1.0


def test_an_unknown_model_id_is_a_value_error():
    with pytest.raises(ValueError, match="expected one of"):
        digitdraw.classify(draw_digit(7), model_ids=[9])


def test_a_missing_model_is_reported_and_the_others_keep_answering(tmp_path):
    root = tmp_path / "saved_models"
    shutil.copytree(saved_models_dir(), root)
    shutil.rmtree(model_dir(3, root))
    result = digitdraw.classify(draw_digit(1), root=root)
    assert 3 in result.errors and "python -m digitdraw train --model 3" in result.errors[3]
    assert sorted(result.probabilities) == [1, 2, 4, 5, 6]
    assert result.digit(4) == 1


def test_models_are_read_once_and_again_only_when_their_files_change(tmp_path):
    root = tmp_path / "saved_models"
    shutil.copytree(saved_models_dir(), root)
    digitdraw.classify(draw_digit(7), root=root)
    loads = MODEL_CACHE.loads
    for _ in range(3):
        digitdraw.classify(draw_digit(7), root=root)
    assert MODEL_CACHE.loads == loads, "nothing changed, so nothing is read again"
    (model_dir(2, root) / "history.json").touch()
    digitdraw.classify(draw_digit(7), root=root)
    assert MODEL_CACHE.loads == loads + 1, "only the model whose file changed is read again"


def test_classify_batch_takes_images_of_any_size_and_marks_blank_ones():
    images = [draw_digit(7), blank_canvas(), draw_digit(1, stroke=12)[:200, :200], draw_digit(0)]
    batch = digitdraw.classify_batch(images, model_ids=[4, 2])
    assert batch.blank.tolist() == [False, True, False, False]
    assert batch.digits(4).tolist() == [7, -1, 1, 0]
    assert sorted(batch.probabilities) == [2, 4] and batch.probabilities[4].shape == (4, 10)
    assert np.isnan(batch.probabilities[4][1]).all() and not batch.images[1].any()
    # Row by row, the same answers as classify.
    network = digitdraw.load_classifier(4)
    logits, terms = network.logits(batch.images), float32.chain_terms(network.architecture)[-1]
    for index in (0, 2, 3):
        single = digitdraw.classify(images[index], model_ids=[4])
        # A batch against one image: BLAS may sum in another order; rtol(fan-ins), tests/float32.py
        # (model 4's temperature, 1.2, only shrinks the logits' difference).
        float32.assert_probabilities_close(
            batch.probabilities[4][index], single.probabilities[4], logits[index], terms
        )
        np.testing.assert_array_equal(batch.images[index], single.image)


def test_classify_batch_refuses_an_empty_batch_and_bad_images():
    with pytest.raises(ValueError, match="at least one image"):
        digitdraw.classify_batch([])
    with pytest.raises(ValueError, match="expected"):
        digitdraw.classify_batch([np.zeros((28, 28, 7), np.uint8)])


def test_every_model_s_digit_score_is_its_own_detector_s_though_the_input_parts_are_shared():
    # classify and classify_batch compute the density and the learned score once for all models;
    # each answer must still be what that model's detector gives on its own.
    drawings = [draw_digit(4), draw_digit(0, stroke=30)]
    result = digitdraw.classify(drawings[0])
    batch = digitdraw.classify_batch(drawings)
    models, _ = load_models()
    assert result.digit_scores.keys() == {m for m, model in models.items() if model.calibration}
    for model_id, score in result.digit_scores.items():
        model = models[model_id]
        method = model.calibration.novelty.method
        detector = digit_score.detector_for(model)
        # A committee method's member energy is computed here apart, from the member's own network.
        member = model.calibration.novelty.committee
        energies = [
            digit_score.committee_energy(models[member.model_id].network, images) if member else None
            for images in (result.image[None], batch.images)
        ]
        assert (
            score
            == detector.scores(model.network, result.image[None], (method,), committee=energies[0])[method][0]
        )
        alone = detector.scores(model.network, batch.images, (method,), committee=energies[1])[method]
        np.testing.assert_array_equal(batch.digit_scores[model_id], alone)


def test_prepared_digit_scores_leave_the_first_drawing_nothing_to_build(monkeypatch):
    from digitdraw.serving import inference

    models, _ = load_models()
    monkeypatch.setattr(inference, "_DETECTORS", {})
    inference.prepare_digit_scores(models.values())
    calibrated = [model for model in models.values() if model.calibration is not None]
    assert calibrated and len(inference._DETECTORS) == len(calibrated)
    built = []
    monkeypatch.setattr(digit_score, "detector_for", lambda model: built.append(model))
    result = digitdraw.classify(draw_digit(7))
    assert not built, "the first drawing built a detector the page had prepared"
    assert all(result.digit_score(model.card.model_id) is not None for model in calibrated)
