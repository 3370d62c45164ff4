"""classify and load_classifier: the public inference API, drawn digits, and a broken model kept apart."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from drawings import blank_canvas, draw_digit

import digitdraw
from digitdraw.models import saved_models_dir
from digitdraw.saved_models import model_dir


def test_the_public_api_names_exist():
    assert digitdraw.MODEL_IDS == (1, 2, 3, 4, 5)
    assert callable(digitdraw.load_classifier) and callable(digitdraw.classify)


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
    assert sorted(result.probabilities) == [1, 2, 4, 5]
    assert result.digit(4) == 1
