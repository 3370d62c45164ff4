"""Temperature scaling and calibration error against references (a brute-force grid, a hand-computed
ECE, the softmax written out), and the calibration file: fitted, written, loaded, refused when stale,
applied by classify without changing any answer."""

from __future__ import annotations

import json
import shutil

import float32
import numpy as np
import pytest
from drawings import draw_digit
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from digitdraw.cli import main
from digitdraw.learning import calibration, evalsets, negatives
from digitdraw.learning.data import load_mnist, split_ranges
from digitdraw.learning.digit_score import (
    KEEP_RATE,
    fit_density,
    fit_detector,
    fit_learned_score,
    threshold_for_keep,
)
from digitdraw.learning.drawn import drawn_evaluation_set
from digitdraw.learning.train import Dataset, prepare_images
from digitdraw.serving import digit_score, inference, saved_models
from digitdraw.serving.networks import DEFAULT_SAVED_MODELS_DIR, MODEL_IDS
from digitdraw.serving.preprocess import to_mnist


def test_ece_matches_a_hand_computation():
    # Confidences 0.9 (right), 0.9 (wrong), 0.55 (right), 0.65 (right) in 5 bins of 0.2:
    # (0.8, 1]: accuracy 0.5, confidence 0.9, gap 0.4, two predictions; (0.4, 0.6]: gap 0.45;
    # (0.6, 0.8]: gap 0.35. ECE = (2 * 0.4 + 0.45 + 0.35) / 4 = 0.4.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.45, 0.55], [0.65, 0.35]])
    labels = np.array([0, 1, 1, 0])
    bins = calibration.reliability(probabilities, labels, bins=5)
    assert calibration.expected_calibration_error(probabilities, labels, bins=5) == pytest.approx(0.4)
    assert list(bins.counts) == [0, 0, 1, 1, 2]
    np.testing.assert_allclose(bins.accuracy[2:], [1.0, 1.0, 0.5])
    np.testing.assert_allclose(bins.confidence[2:], [0.55, 0.65, 0.9])
    assert np.isnan(bins.accuracy[0])


def test_a_confidence_on_a_bin_edge_belongs_to_the_lower_bin():
    bins = calibration.reliability(np.array([[0.6, 0.4], [1.0, 0.0]]), np.array([0, 0]), bins=5)
    assert list(bins.counts) == [0, 0, 1, 0, 1]


def test_a_perfectly_calibrated_set_has_no_error_and_bad_input_is_refused():
    # Of four predictions at 75%, three are right.
    probabilities = np.tile([0.75, 0.25], (4, 1))
    assert calibration.expected_calibration_error(probabilities, np.array([0, 0, 0, 1])) == pytest.approx(0)
    with pytest.raises(ValueError, match="N labels"):
        calibration.reliability(probabilities, np.array([0, 1]))


def test_the_negative_log_likelihood_is_the_softmax_written_out():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = np.array([0, 1])
    temperature = 1.7
    exp = np.exp(logits / temperature)
    expected = -np.mean(np.log(exp[[0, 1], labels] / exp.sum(axis=1)))
    assert calibration.negative_log_likelihood(logits, labels, temperature) == pytest.approx(expected)


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_grid_s_best(true_temperature):
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 3, (2000, 10))
    probabilities = digit_score.softmax(logits, true_temperature)
    labels = np.array([rng.choice(10, p=row) for row in probabilities])
    grid = np.linspace(0.2, 6.0, 5801)
    losses = [calibration.negative_log_likelihood(logits, labels, t) for t in grid]
    best = grid[int(np.argmin(losses))]
    fitted = calibration.fit_temperature(logits, labels)
    assert fitted == pytest.approx(best, abs=2e-3)
    assert calibration.negative_log_likelihood(logits, labels, fitted) <= min(losses) + 1e-9


@given(
    hnp.arrays(np.float64, (5, 10), elements=st.floats(-30, 30)),
    st.floats(0.05, 20),
)
def test_temperature_never_changes_which_digit_wins(logits, temperature):
    scaled = digit_score.softmax(logits, temperature)
    assert np.allclose(scaled.sum(axis=1), 1.0)
    raw = digit_score.softmax(logits)
    # Ties aside, the winner is the same.
    top = np.sort(logits, axis=1)
    distinct = top[:, -1] - top[:, -2] > 1e-9
    assert (scaled.argmax(axis=1) == raw.argmax(axis=1))[distinct].all()


@pytest.fixture(scope="module")
def small_fitting() -> calibration.FittingData:
    """A few hundred MNIST images per split, preprocessed like the real fitting data."""
    (x_all, y_all), (x_test, y_test) = load_mnist()
    x_drawn, y_drawn = drawn_evaluation_set(x_test[:300], y_test[:300], 40, seed=0)
    x_reference, _ = drawn_evaluation_set(x_all[-300:], y_all[-300:], 40, seed=1)
    scanned, y_scanned = evalsets.scanned_digits()
    canvases, y_hershey = evalsets.hershey_digits(30, seed=evalsets.HERSHEY_SEED)
    hershey = (np.stack([to_mnist(canvas) for canvas in canvases]), y_hershey)
    dataset = Dataset(
        x_train=prepare_images(x_all[:1500]),
        y_train=y_all[:1500],
        x_validation=prepare_images(x_all[-200:]),
        y_validation=y_all[-200:],
        x_test=prepare_images(x_test[:200]),
        y_test=y_test[:200],
        x_drawn=x_drawn,
        y_drawn=y_drawn,
        checksum="a few hundred MNIST images",
        ranges=split_ranges(200, 1500),
    )
    return calibration.FittingData(
        dataset=dataset,
        x_reference=x_reference,
        raw_test=(x_test, y_test),
        x_tuning_non_digits=np.stack(
            [to_mnist(c) for c in evalsets.non_digits(4, x_test, evalsets.TUNING_SEED)[0]]
        ),
        x_drawn_training=drawn_evaluation_set(x_all[:300], y_all[:300], 40, seed=2)[0],
        x_varied_training=prepare_images(negatives.varied_digits(x_all[:300], y_all[:300], 40, seed=2)[0]),
        x_non_digit_training=prepare_images(
            negatives.mnist_non_digits(x_all[:300], y_all[:300], 300, seed=2)[0]
        ),
        other_hands={"scanned": (prepare_images(scanned[:60]), y_scanned[:60]), "hershey": hershey},
    )


@pytest.fixture
def uncalibrated(models_copy):
    """The committed models, copied, without their calibration files."""
    for model_id in MODEL_IDS:
        for name in saved_models.OPTIONAL_FILES:
            (saved_models.model_dir(model_id, models_copy) / name).unlink(missing_ok=True)
    return models_copy


def test_a_model_never_calibrated_answers_with_its_raw_probabilities(uncalibrated):
    result = inference.classify(draw_digit(7), root=uncalibrated)
    assert result.digit_scores == {} and result.is_digit(4)
    for model_id in MODEL_IDS:
        np.testing.assert_array_equal(result.probabilities[model_id], result.raw_probabilities[model_id])


def test_calibrate_writes_a_file_that_classify_applies(uncalibrated, small_fitting, monkeypatch, capsys):
    monkeypatch.setattr(calibration, "fitting_data", lambda: small_fitting)
    assert main(["calibrate", "--model", "2", "4", "--root", str(uncalibrated)]) == 0
    assert "model 4: temperature" in capsys.readouterr().out
    saved = saved_models.load(4, uncalibrated)
    record = saved.calibration
    assert record is not None and saved_models.load(3, uncalibrated).calibration is None
    # The stored temperature is the fit on the validation images, and the threshold keeps 97%.
    logits = digit_score.logits_and_features(saved.network, small_fitting.dataset.x_validation)[0]
    assert record.temperature == pytest.approx(
        calibration.fit_temperature(logits, small_fitting.dataset.y_validation)
    )
    detector = digit_score.detector_for(saved)
    # The learned score is saved beside the density, and every candidate, learned ones too, was tried.
    assert detector.learned is not None and set(digit_score.LEARNED_ARRAYS) <= set(saved.novelty_arrays)
    method = record.novelty.method
    reference, threshold, _ = inference.digit_scores(saved, small_fitting.x_reference, root=uncalibrated)
    assert threshold == record.novelty.threshold
    assert np.mean(reference >= record.novelty.threshold) >= KEEP_RATE
    # The method chosen is the candidate that flagged most tuning non-digits; every candidate was tried,
    # the committee's too (model 6 loads), and only a committee method keeps a committee record.
    assert record.novelty.tuning_flagged[method] == max(record.novelty.tuning_flagged.values())
    assert set(record.novelty.tuning_flagged) == set(digit_score.CANDIDATE_METHODS)
    assert (record.novelty.committee is not None) == (method in digit_score.COMMITTEE_METHODS)
    assert sum(record.reliability["test"]["raw"].counts) == 200
    # Digits by other hands are measured as the app answers: the accuracy, and the share of them the
    # digit score turns away (with the committee member's energy, as classify computes it).
    for name, (images, labels) in small_fitting.other_hands.items():
        figure = record.reliability[name]["raw"]
        assert sum(figure.counts) == len(labels)
        right = np.mean(saved.network.predict_proba(images).argmax(axis=1) == labels)
        assert figure.share_right() == pytest.approx(right)
        scores, threshold, _ = inference.digit_scores(saved, images, root=uncalibrated)
        assert record.novelty.turned_away[name] == pytest.approx(np.mean(scores < threshold))
    assert set(record.novelty.turned_away) == {"test", "drawn", "scanned", "hershey"}

    drawing = draw_digit(4)
    result = inference.classify(drawing, root=uncalibrated)
    image_logits = digit_score.logits_and_features(saved.network, result.image[None])[0]
    np.testing.assert_allclose(
        result.probabilities[4], digit_score.softmax(image_logits, record.temperature)[0], rtol=1e-5
    )
    np.testing.assert_allclose(
        result.raw_probabilities[4], saved.network.predict_proba(result.image[None])[0]
    )
    assert result.probabilities[4].argmax() == result.raw_probabilities[4].argmax()
    expected_score = inference.digit_scores(saved, result.image[None], root=uncalibrated)[0][0]
    assert result.digit_score(4) == pytest.approx(expected_score)
    assert result.is_digit(4) == (expected_score >= record.novelty.threshold)
    batch = inference.classify_batch([drawing, np.zeros((50, 50))], [4], root=uncalibrated)
    assert batch.digit_scores[4][0] == pytest.approx(expected_score) and np.isnan(batch.digit_scores[4][1])


def test_a_stale_or_damaged_calibration_names_the_command_that_refits_it(uncalibrated, small_fitting):
    saved = saved_models.load(4, uncalibrated)
    record, arrays = calibration.fit_model(
        saved, small_fitting, fit_density(small_fitting.dataset.x_train, small_fitting.dataset.y_train, 3)
    )
    stale = record.model_copy(update={"model_sha256": "0" * 64})
    with pytest.raises(ValueError, match="expected a calibration for the weights"):
        saved_models.write_calibration(saved.directory, stale, arrays)
    saved_models.write_calibration(saved.directory, record, arrays)
    assert saved_models.load(4, uncalibrated).novelty_arrays.keys() == arrays.keys()
    path = saved.directory / saved_models.CALIBRATION_FILE
    path.write_text(path.read_text().replace(saved.card.model_sha256, "0" * 64))
    with pytest.raises(saved_models.SavedModelError, match="calibrate --model 4"):
        saved_models.load(4, uncalibrated)
    saved_models.write_calibration(saved.directory, record, arrays)
    (saved.directory / saved_models.NOVELTY_FILE).write_bytes(b"not an array file")
    with pytest.raises(saved_models.SavedModelError, match=r"different novelty\.npz"):
        saved_models.load(4, uncalibrated)
    (saved.directory / saved_models.NOVELTY_FILE).unlink()
    with pytest.raises(saved_models.SavedModelError, match=r"novelty\.npz is missing"):
        saved_models.load(4, uncalibrated)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_committed_model_is_calibrated_for_its_weights(model_id):
    saved = saved_models.load(model_id)
    assert saved.calibration is not None and saved.calibration.novelty.method in digit_score.CANDIDATE_METHODS
    assert sum(saved.calibration.reliability["test"]["raw"].counts) == 10_000
    assert sum(saved.calibration.reliability["drawn"]["raw"].counts) == saved.card.data.drawn_size
    assert digit_score.detector_for(saved) is not None


def test_calibrate_refuses_an_unknown_model(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--model", "99"])
    assert "model must be" in capsys.readouterr().err


def test_a_committee_method_uses_the_member_s_energy_and_falls_back_when_the_member_is_missing(
    uncalibrated, small_fitting, monkeypatch
):
    # Offered only the density beside it, model 4 takes the committee method on these tuning images.
    monkeypatch.setattr(digit_score, "CANDIDATE_METHODS", ("density", "learned_committee"))
    saved, member = saved_models.load(4, uncalibrated), saved_models.load(6, uncalibrated)
    density = fit_density(small_fitting.dataset.x_train, small_fitting.dataset.y_train, 3)
    digits = small_fitting.dataset.x_train[:300]
    learned = fit_learned_score(digits, small_fitting.x_non_digit_training, epochs=1)
    record, arrays = calibration.fit_model(saved, small_fitting, density, learned, member)
    committee = record.novelty.committee
    assert record.novelty.method == "learned_committee"
    assert (committee.model_id, committee.model_sha256) == (6, member.card.model_sha256)
    detector = fit_detector(
        saved.network,
        small_fitting.dataset.x_train,
        small_fitting.dataset.y_train,
        small_fitting.dataset.x_validation,
        density,
        learned=learned,
        committee=member.network,
    )
    own = detector.scores(saved.network, small_fitting.x_reference, ("density",))["density"]
    assert committee.fallback_method == "density"
    assert committee.fallback_threshold == threshold_for_keep(own)
    # The member itself is never its own committee.
    assert calibration.fit_model(member, small_fitting, density, learned, member)[0].novelty.committee is None
    saved_models.write_calibration(saved.directory, record, arrays)
    saved = saved_models.load(4, uncalibrated)

    drawings = [draw_digit(4), draw_digit(7, stroke=30)]
    images = np.stack([to_mnist(d) for d in drawings])
    energy = np.log(np.exp(digit_score.logits_and_features(member.network, images)[0]).sum(axis=1))
    by_hand = detector.scores(saved.network, images, ("learned_committee",), committee=energy)
    alone = inference.classify_batch(drawings, [4], root=uncalibrated)  # The member loaded for model 4.
    together = inference.classify_batch(drawings, root=uncalibrated)  # Its forward pass shared.
    # The member's float32 logits for another batch may be summed in another order: within rtol(fan-ins)
    # of their size (tests/float32.py), an energy as much, its standardised part that over the spread.
    logits = digit_score.logits_and_features(member.network, images)[0]
    terms = float32.chain_terms(member.network.architecture)[-1]
    tolerance = (
        2 * float32.rtol(terms) * np.abs(logits).max() / detector.scales[digit_score.COMMITTEE_PART].scale
    )
    for batch in (alone, together):
        np.testing.assert_allclose(
            batch.digit_scores[4], by_hand["learned_committee"], rtol=1e-6, atol=tolerance
        )
        assert batch.digit_thresholds[4] == record.novelty.threshold
    np.testing.assert_array_equal(alone.digit_scores[4], together.digit_scores[4])
    one = inference.classify(drawings[0], root=uncalibrated)
    assert one.digit_score(4) == pytest.approx(by_hand["learned_committee"][0], abs=tolerance)

    # With a member retrained since (other weights), or without the member, model 4 answers with its
    # own method and that method's threshold.
    fallback = detector.scores(saved.network, images, ("density",))["density"]
    retrained = committee.model_copy(update={"model_sha256": "0" * 64})
    stale = record.model_copy(update={"novelty": record.novelty.model_copy(update={"committee": retrained})})
    saved_models.write_calibration(saved.directory, stale, arrays)
    np.testing.assert_allclose(
        inference.classify_batch(drawings, root=uncalibrated).digit_scores[4], fallback, rtol=1e-6
    )
    (saved_models.model_dir(6, uncalibrated) / "model.keras").unlink()
    for batch in (
        inference.classify_batch(drawings, [4], root=uncalibrated),
        inference.classify_batch(drawings, root=uncalibrated),
    ):
        np.testing.assert_allclose(batch.digit_scores[4], fallback, rtol=1e-6)
        assert batch.digit_thresholds[4] == committee.fallback_threshold
    assert 6 in inference.classify(drawings[0], root=uncalibrated).errors


def test_a_calibration_whose_method_reads_no_other_model_has_no_committee_record(uncalibrated):
    path = saved_models.model_dir(4, uncalibrated) / saved_models.CALIBRATION_FILE
    committed = saved_models.model_dir(4, DEFAULT_SAVED_MODELS_DIR)
    shutil.copy(committed / saved_models.CALIBRATION_FILE, path)
    shutil.copy(committed / saved_models.NOVELTY_FILE, path.parent)
    payload = json.loads(path.read_text())
    payload["novelty"].pop("committee", None)
    payload["novelty"].update(method="learned_combined")
    path.write_text(json.dumps(payload))
    saved = saved_models.load(4, uncalibrated)
    assert (
        saved.calibration.novelty.committee is None and saved.calibration.novelty.method == "learned_combined"
    )
    result = inference.classify(draw_digit(4), [4], root=uncalibrated)
    assert result.digit_thresholds[4] == saved.calibration.novelty.threshold
