"""The digit scores, against references: pair counting for AUROC, an explicit Gaussian density for the
class density, matrix inverses for Mahalanobis, Keras for the logits; and the evaluation sets."""

from __future__ import annotations

import itertools

import float32
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from digitdraw.learning import evalsets
from digitdraw.learning.digit_score import (
    COVARIANCE_RIDGE,
    Gaussian,
    auroc,
    blur_some,
    fit_density,
    fit_detector,
    fit_learned_score,
    threshold_for_keep,
)
from digitdraw.serving import digit_score
from digitdraw.serving.inference import load_saved_model
from digitdraw.serving.networks import MODEL_IDS, NUM_CLASSES
from digitdraw.serving.preprocess import CANVAS_SIZE, to_mnist


def brute_force_auroc(digits: np.ndarray, others: np.ndarray) -> float:
    """Every (digit, non-digit) pair: 1 if the digit scores higher, a half for a tie."""
    wins = sum(1.0 if d > o else 0.5 if d == o else 0.0 for d, o in itertools.product(digits, others))
    return wins / (len(digits) * len(others))


@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=30),
    st.lists(st.integers(-5, 5), min_size=1, max_size=30),
)
@example([1, 1, 1], [1, 1])
def test_auroc_counts_pairs_with_ties_as_half(digits, others):
    digits, others = np.array(digits, float), np.array(others, float)
    assert auroc(digits, others) == pytest.approx(brute_force_auroc(digits, others))


def test_auroc_is_one_for_perfect_separation_and_refuses_empty_sets():
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        auroc(np.array([]), np.array([1.0]))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.floats(0.5, 1.0))
def test_the_threshold_keeps_at_least_the_share_asked_for(scores, keep):
    scores = np.array(scores)
    threshold = threshold_for_keep(scores, keep)
    assert np.mean(scores >= threshold) >= keep - 1e-12
    assert threshold in scores


def test_a_share_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_for_keep(np.ones(3), 1.5)


def gaussian_log_density(x: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """The multivariate normal log-density, written out with slogdet and solve."""
    _, log_det = np.linalg.slogdet(covariance)
    centred = x - mean
    quadratic = np.einsum("nd,nd->n", centred, np.linalg.solve(covariance, centred.T).T)
    return -0.5 * (quadratic + log_det + len(mean) * np.log(2 * np.pi))


def test_the_class_density_is_probabilistic_pca_s_gaussian():
    rng = np.random.default_rng(0)
    size, components = 784, 3
    images = rng.normal(0.3, 0.1, (600, size)) + rng.normal(0, 1, (600, components)) @ rng.normal(
        0, 0.5, (components, size)
    )
    labels = np.arange(600) % NUM_CLASSES
    density = fit_density(images.reshape(-1, 28, 28), labels, components, clusters=2)
    assert len(density.means) == 2 * NUM_CLASSES
    probe = rng.normal(0.3, 0.3, (5, size))
    expected = []
    for style in range(len(density.means)):
        basis = density.bases[style].astype(np.float64)
        covariance = basis.T @ np.diag(density.variances[style].astype(np.float64)) @ basis + density.noise[
            style
        ] * (np.eye(size) - basis.T @ basis)
        expected.append(gaussian_log_density(probe, density.means[style].astype(np.float64), covariance))
    constant = 0.5 * size * np.log(2 * np.pi)
    got = density.log_likelihood(probe.reshape(-1, 28, 28))
    np.testing.assert_allclose(got - constant, np.max(expected, axis=0), rtol=1e-4)


def test_the_density_round_trips_through_its_arrays_and_refuses_wrong_shapes():
    rng = np.random.default_rng(1)
    density = fit_density(rng.random((200, 28, 28)), np.arange(200) % 10, 4, clusters=1)
    again = digit_score.ClassDensity.from_arrays(density.arrays())
    probe = rng.random((3, 28, 28))
    np.testing.assert_array_equal(again.log_likelihood(probe), density.log_likelihood(probe))
    broken = {**density.arrays(), "variances": density.variances[:, :2]}
    with pytest.raises(ValueError, match="shapes"):
        digit_score.ClassDensity.from_arrays(broken)
    with pytest.raises(ValueError, match="noise"):
        digit_score.ClassDensity.from_arrays({k: v for k, v in density.arrays().items() if k != "noise"})


def test_each_digit_s_styles_are_its_clusters():
    # Every digit's images are two tight groups, far apart: k-means must find them, one style each.
    rng = np.random.default_rng(4)
    labels = np.arange(400) % NUM_CLASSES
    group = (np.arange(400) // NUM_CLASSES) % 2
    images = rng.normal(0, 0.01, (400, 784)) + group[:, None] * 1.0 + labels[:, None] * 0.05
    density = fit_density(images.reshape(-1, 28, 28), labels, 2, clusters=2)
    centres = np.sort(density.means.mean(axis=1).reshape(NUM_CLASSES, 2), axis=1)
    np.testing.assert_allclose(
        centres, np.stack([labels[:10] * 0.05, 1 + labels[:10] * 0.05], axis=1), atol=0.01
    )
    with pytest.raises(ValueError, match="styles"):
        fit_density(images[:40].reshape(-1, 28, 28), labels[:40], 2, clusters=3)


def test_mahalanobis_distances_match_an_explicit_inverse():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(500, 6))
    labels = np.arange(500) % NUM_CLASSES
    gaussian = Gaussian.fit(features, labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(NUM_CLASSES)])
    centred = features - means[labels]
    inverse = np.linalg.inv(np.cov(centred.T, bias=True) + COVARIANCE_RIDGE * np.eye(6))
    probe = rng.normal(size=(4, 6))
    expected = [[(p - m) @ inverse @ (p - m) for m in means] for p in probe]
    np.testing.assert_allclose(gaussian.distances(probe), expected, rtol=1e-8)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_logits_give_keras_s_probabilities_and_the_energy_is_their_log_sum_exp(model_id):
    import keras

    saved = load_saved_model(model_id)
    images = np.random.default_rng(model_id).random((16, 28, 28)).astype(np.float32)
    logits, features = digit_score.logits_and_features(saved.network, images)
    keras_model = keras.saving.load_model(saved.directory / "model.keras")
    # Keras's float32 path against ours: rtol(fan-ins along the way), tests/float32.py.
    terms = float32.chain_terms(saved.network.architecture)[-1]
    float32.assert_probabilities_close(
        digit_score.softmax(logits), keras_model.predict(images, verbose=0), logits, terms
    )
    assert features.shape == (16, saved.card.architecture.layers[-2].units)
    density = fit_density(images.repeat(5, 0), np.arange(80) % 10, 2, clusters=1)
    detector = digit_score.Detector(density, {})
    energy = detector.scores(saved.network, images, ("energy",))["energy"]
    np.testing.assert_allclose(energy, np.log(np.exp(logits).sum(axis=1)), rtol=1e-9)


def test_the_combined_score_adds_the_standardised_parts():
    saved = load_saved_model(4)
    rng = np.random.default_rng(3)
    images = rng.random((60, 28, 28)).astype(np.float32)
    density = fit_density(images, np.arange(60) % 10, 2, clusters=1)
    detector = fit_detector(saved.network, images, np.arange(60) % 10, images[:20], density=density)
    scores = detector.scores(saved.network, images[:20], ("energy", "density", "combined"))
    # Standardised on these same 20 images, the parts have mean 0, so their sum does too.
    assert scores["combined"].mean() == pytest.approx(0.0, abs=1e-9)
    expected = sum(detector.scales[p](scores[p]) for p in digit_score.SUMS["combined"])
    np.testing.assert_allclose(scores["combined"], expected)
    # The Mahalanobis distance is measured by experiments/novelty.py, never served.
    with pytest.raises(ValueError, match="methods among"):
        detector.scores(saved.network, images, ("mahalanobis",))
    with pytest.raises(ValueError, match="methods among"):
        detector.scores(saved.network, images, ("guesswork",))


def test_non_digits_are_canvases_of_every_kind_and_the_same_seed_gives_the_same_set():
    mnist_like = np.zeros((3, 28, 28), np.uint8)
    mnist_like[:, 6:22, 12:16] = 255
    canvases, kinds = evalsets.non_digits(2, mnist_like, seed=5)
    again, _ = evalsets.non_digits(2, mnist_like, seed=5)
    assert list(kinds) == [kind for kind in evalsets.NON_DIGIT_KINDS for _ in range(2)]
    assert all(c.shape == (CANVAS_SIZE, CANVAS_SIZE, 4) and c[:, :, 3].any() for c in canvases)
    assert all(np.array_equal(a, b) for a, b in zip(canvases, again))
    assert all(to_mnist(c) is not None for c in canvases)


def test_no_glyph_that_reads_as_a_digit_is_drawn_as_a_non_digit():
    assert not set(evalsets.GLYPHS) & set("OoIl1Zz2Ss5B8gq9" + "0123456789")
    assert set(evalsets.GLYPHS) & set("AEFHKMNPRTUVWXYaefhkmnrtuvwxy+=#%&@?")


def test_scanned_digits_are_read_from_the_file_and_are_light_on_dark(tmp_path):
    rows = [[*(np.arange(64) % 17), 3], [*([0] * 64), 7]]
    path = tmp_path / "digits.csv.gz"
    import gzip

    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(",".join(str(v) for v in row) for row in rows))
    images, labels = evalsets.scanned_digits(path, upscale=2)
    assert images.shape == (2, 20, 20) and images.dtype == np.uint8
    assert list(labels) == [3, 7]
    assert images[1].max() == 0 and images[0].max() > 200
    assert (images[:, :2] == 0).all()  # The margin of background.


def test_the_learned_score_s_numpy_pass_is_keras_s_and_it_learns_to_separate():
    import keras

    rng = np.random.default_rng(4)
    # Digits: bright upper halves; non-digits: bright lower halves. Easy, so a few epochs separate them.
    digits = np.zeros((200, 28, 28), np.float32)
    digits[:, :14] = rng.random((200, 14, 28))
    others = np.zeros((200, 28, 28), np.float32)
    others[:, 14:] = rng.random((200, 14, 28))
    learned = fit_learned_score(digits, others, filters=(4, 6), hidden_units=8, epochs=20, seed=0)
    assert (learned(digits) > 0).mean() > 0.95 and (learned(others) < 0).mean() > 0.95
    assert [kernel.shape for kernel, _ in learned.convolutions] == [(3, 3, 1, 4), (3, 3, 4, 6)]

    # The same network built in Keras, independently of the fit, with the fitted weights.
    reference = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Reshape((28, 28, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(6, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    reference.set_weights(
        [
            *(array for pair in learned.convolutions for array in pair),
            learned.hidden_weights,
            learned.hidden_biases,
            learned.output_weights[:, None],
            learned.output_bias[None],
        ]
    )
    probe = rng.random((10, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(learned(probe), reference.predict(probe, verbose=0)[:, 0], atol=1e-4)

    again = digit_score.LearnedScore.from_arrays(learned.arrays())
    np.testing.assert_array_equal(again(probe), learned(probe))
    with pytest.raises(ValueError, match="learned_output_bias"):
        digit_score.LearnedScore.from_arrays(
            {k: v for k, v in learned.arrays().items() if k != "learned_output_bias"}
        )
    with pytest.raises(ValueError, match="learned_conv1_biases"):
        digit_score.LearnedScore.from_arrays(
            {k: v for k, v in learned.arrays().items() if k != "learned_conv1_biases"}
        )
    with pytest.raises(ValueError, match="shapes"):
        digit_score.LearnedScore(
            learned.hidden_weights, learned.hidden_biases[:3], learned.output_weights, 0.0
        )
    with pytest.raises(ValueError, match="convolution 1"):
        wrong = (learned.convolutions[0], (learned.convolutions[1][0][:, :, :2], learned.convolutions[1][1]))
        digit_score.LearnedScore(*list(learned.arrays().values())[:4], convolutions=wrong)
    with pytest.raises(ValueError, match="one image size"):
        fit_learned_score(digits, others[:, :10])


def test_a_learned_score_without_convolutions_is_a_dense_784_h_1_network():
    rng = np.random.default_rng(6)
    arrays = dict(
        zip(
            digit_score.LEARNED_ARRAYS,
            (rng.normal(size=(784, 5)), rng.normal(size=5), rng.normal(size=5), np.float32(0.3)),
        )
    )
    learned = digit_score.LearnedScore.from_arrays(arrays)
    assert learned.convolutions == ()
    probe = rng.random((4, 28, 28))
    hidden = np.maximum(
        probe.reshape(4, -1) @ arrays["learned_hidden_weights"] + arrays["learned_hidden_biases"], 0
    )
    expected = hidden @ arrays["learned_output_weights"] + 0.3
    np.testing.assert_allclose(learned(probe), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="784 values"):
        learned(rng.random((2, 20, 20)))


def test_blurring_some_images_blurs_about_that_share_and_keeps_each_peak():
    rng = np.random.default_rng(7)
    images = np.zeros((400, 28, 28), np.float32)
    images[:, 10:18, 13:15] = 1.0
    blurred = blur_some(images, 0.3, rng)
    changed = np.array([not np.array_equal(a, b) for a, b in zip(images, blurred)])
    assert 0.2 < changed.mean() < 0.4
    np.testing.assert_allclose(blurred.max(axis=(1, 2)), 1.0, rtol=1e-6)
    assert (blurred[changed][:, 10:18, 12] > 0).all()  # Ink spread beyond the stroke.
    np.testing.assert_array_equal(images[:, 10:18, 12], 0)  # The input is left as it was.


def test_a_detector_with_a_learned_score_adds_it_standardised_and_one_without_refuses_it():
    saved = load_saved_model(4)
    rng = np.random.default_rng(5)
    images = rng.random((60, 28, 28)).astype(np.float32)
    density = fit_density(images, np.arange(60) % 10, 2, clusters=1)
    learned = digit_score.LearnedScore(
        rng.normal(size=(784, 4)), rng.normal(size=4), rng.normal(size=4), np.float32(0.5)
    )
    detector = fit_detector(saved.network, images, np.arange(60) % 10, images[:20], density, learned=learned)
    # Fitted without a committee member, it can compute every method but the committee's.
    assert detector.methods == tuple(m for m in digit_score.METHODS if m not in digit_score.COMMITTEE_METHODS)
    scores = detector.scores(saved.network, images[:20], ("learned", "density", "energy", "learned_combined"))
    np.testing.assert_allclose(scores["learned"], learned(images[:20]))
    expected = sum(detector.scales[p](scores[p]) for p in digit_score.SUMS["learned_combined"])
    np.testing.assert_allclose(scores["learned_combined"], expected)
    assert scores["learned_combined"].mean() == pytest.approx(0.0, abs=1e-9)

    without = digit_score.Detector(density, detector.scales)
    assert "learned" not in without.methods and "combined" in without.methods
    with pytest.raises(ValueError, match="learned score"):
        without.scores(saved.network, images, ("learned_combined",))


def test_scores_that_ignore_the_model_are_computed_once_per_batch_and_are_the_same(monkeypatch):
    rng = np.random.default_rng(8)
    images = rng.random((60, 28, 28)).astype(np.float32)
    density = fit_density(images, np.arange(60) % 10, 2, clusters=1)
    learned = digit_score.LearnedScore(
        rng.normal(size=(784, 4)), rng.normal(size=4), rng.normal(size=4), np.float32(0.5)
    )
    networks = {model_id: load_saved_model(model_id).network for model_id in (2, 6)}
    detectors = {
        model_id: fit_detector(network, images, np.arange(60) % 10, images[:20], density, learned=learned)
        for model_id, network in networks.items()
    }
    methods = ("learned_combined", "learned_density", "combined")
    alone = {m: detectors[m].scores(networks[m], images[:7], methods) for m in networks}
    calls = []
    for cls, name in ((digit_score.ClassDensity, "log_likelihood"), (digit_score.LearnedScore, "__call__")):
        original = getattr(cls, name)
        monkeypatch.setattr(
            cls, name, lambda self, x, original=original, name=name: calls.append(name) or original(self, x)
        )
    shared = {}
    together = {m: detectors[m].scores(networks[m], images[:7], methods, shared=shared) for m in networks}
    for model_id in networks:
        for method in methods:
            np.testing.assert_array_equal(together[model_id][method], alone[model_id][method])
    assert sorted(calls) == ["__call__", "log_likelihood"]  # Once each, for both models.
    assert list(shared) == [detectors[2].input_key] == [detectors[6].input_key]
    # A detector with other arrays has another key, so it never reads another's scores.
    other = digit_score.Detector(fit_density(images, np.arange(60) % 10, 3, clusters=1), {}, learned)
    assert other.input_key != detectors[2].input_key


def test_the_committee_score_adds_the_member_s_energy_standardised_as_by_hand():
    own, member = load_saved_model(4).network, load_saved_model(6).network
    rng = np.random.default_rng(9)
    images = rng.random((60, 28, 28)).astype(np.float32)
    density = fit_density(images, np.arange(60) % 10, 2, clusters=1)
    learned = digit_score.LearnedScore(
        rng.normal(size=(784, 4)), rng.normal(size=4), rng.normal(size=4), np.float32(0.5)
    )
    validation, probe = images[:30], images[30:]
    detector = fit_detector(
        own,
        images,
        np.arange(60) % 10,
        validation,
        density,
        learned=learned,
        committee=member,
    )
    assert "learned_committee" in detector.methods and digit_score.COMMITTEE_METHODS == ("learned_committee",)
    # By hand: the member's log-sum-exp of its logits, standardised by its mean and spread on validation.
    member_logits = digit_score.logits_and_features(member, images)[0]
    energy = np.log(np.exp(member_logits).sum(axis=1))
    # The member's float32 logits for 30 images and for 60 may be summed in another order (BLAS blocks by
    # batch size): they agree to rtol(fan-ins) of the logits' size, tests/float32.py; so do the energies.
    terms = float32.chain_terms(member.architecture)[-1]
    tolerance = float32.rtol(terms) * np.abs(member_logits).max()
    scale = detector.scales[digit_score.COMMITTEE_PART]
    assert scale.mean == pytest.approx(energy[:30].mean(), abs=tolerance)
    assert scale.scale == pytest.approx(energy[:30].std(), abs=tolerance)  # std(x + d) - std(x) <= max|d|.
    committee = digit_score.committee_energy(member, probe)
    np.testing.assert_allclose(committee, energy[30:], rtol=0, atol=tolerance)
    scores = detector.scores(own, probe, ("learned", "density", "learned_committee"), committee=committee)
    expected = (
        (scores["learned"] - detector.scales["learned"].mean) / detector.scales["learned"].scale
        + (scores["density"] - detector.scales["density"].mean) / detector.scales["density"].scale
        + (energy[30:] - energy[:30].mean()) / energy[:30].std()
    )
    # (e - m) / s with e, m, s each off by up to `tolerance`: off by 2 * tolerance / s * (1 + |e - m| / s) at
    # most; twice that is allowed.
    spread = energy[:30].std()
    standardised = 4 * tolerance / spread * (1 + np.abs(energy[30:] - energy[:30].mean()).max() / spread)
    np.testing.assert_allclose(scores["learned_committee"], expected, rtol=1e-9, atol=standardised)
    # The model's own energy plays no part: another network with the same member scores the same.
    other = digit_score.Detector(density, detector.scales, learned=learned)
    np.testing.assert_array_equal(
        other.scores(load_saved_model(2).network, probe, ("learned_committee",), committee=committee)[
            "learned_committee"
        ],
        scores["learned_committee"],
    )
    with pytest.raises(ValueError, match="committee member"):
        detector.scores(own, probe, ("learned_committee",))
    without = fit_detector(own, images, np.arange(60) % 10, validation, density, learned=learned)
    assert "learned_committee" not in without.methods
    with pytest.raises(ValueError, match="committee member"):
        without.scores(own, probe, ("learned_committee",), committee=committee)
