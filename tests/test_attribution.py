"""Attribution maps: gradient x input against finite differences, occlusion against a patch-by-patch
loop, an empty patch changing nothing, and the contrast of two classes."""

from __future__ import annotations

import float32
import numpy as np
import pytest
from test_inside import _random_network

from digitdraw.explaining import attribution, inside
from digitdraw.serving.inference import load_classifier


@pytest.fixture(scope="module")
def image():
    # A bar with soft edges, ink only in the middle columns, the rest empty.
    picture = np.zeros((28, 28), np.float32)
    picture[5:23, 11:16] = np.linspace(0.3, 1.0, 18)[:, None]
    return picture


def _logit(network, x, digit):
    return float(inside.look_inside(network, x, target=digit).logits[digit])


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
def test_batched_input_gradients_match_finite_differences(activation):
    network = _random_network(activation)
    rng = np.random.default_rng(3)
    images = rng.random((3, 28, 28), dtype=np.float32)
    directions = rng.normal(size=(3, 10)).astype(np.float32)
    gradients = inside.input_gradients(network, images, directions)
    step = 1e-2
    for row in range(3):

        def value(x, row=row):
            return float(inside.look_inside(network, x).logits @ directions[row])

        for pixel in rng.choice(784, size=8, replace=False):
            r, c = divmod(int(pixel), 28)
            up, down = images[row].copy(), images[row].copy()
            up[r, c] += step
            down[r, c] -= step
            numeric = (value(up) - value(down)) / (2 * step)
            assert gradients[row, r, c] == pytest.approx(numeric, rel=2e-2, abs=2e-3)


def test_gradient_times_input_is_pixel_times_finite_difference_gradient(image):
    network = load_classifier(3)
    target = 1
    attributed = attribution.gradient_times_input(network, image, target)
    assert np.all(attributed[image == 0] == 0)  # No ink, no gradient x input.
    step = 1e-2
    for r, c in [(10, 12), (20, 14), (6, 11)]:
        up, down = image.copy(), image.copy()
        up[r, c] += step
        down[r, c] -= step
        numeric = (_logit(network, up, target) - _logit(network, down, target)) / (2 * step)
        assert attributed[r, c] == pytest.approx(image[r, c] * numeric, rel=2e-2, abs=2e-4)


def test_why_x_rather_than_y_is_the_difference_of_the_two_maps(image):
    network = load_classifier(2)
    contrast = attribution.contrast_gradient_times_input(network, image, 1, 7)
    one, seven = (attribution.gradient_times_input(network, image, digit) for digit in (1, 7))
    # One backward pass against two, in float32: sums over each layer's outputs (fan-outs), relative to
    # the maps' size, tests/float32.py.
    terms = sum(network.architecture.sizes[1:])
    float32.assert_close(contrast, one - seven, terms, scale=max(np.abs(one).max(), np.abs(seven).max()))
    maps = attribution.occlusion(network, image)
    np.testing.assert_array_equal(attribution.contrast_occlusion(maps, 1, 7), maps[1] - maps[7])


def test_occluding_an_empty_area_leaves_the_probability_unchanged(image):
    for model_id in (1, 5):
        maps = attribution.occlusion(load_classifier(model_id), image)
        # Columns 0-3 are only ever covered by patches that start at column <= 3 and so end before
        # the ink at column 11: every patch covering them blanked nothing.
        assert np.all(maps[:, :, :4] == 0.0)
        assert np.abs(maps[:, :, 11:16]).max() > 0.01  # The ink itself matters.


def test_batched_occlusion_equals_one_forward_pass_per_patch(image):
    network = load_classifier(4)
    maps = attribution.occlusion(network, image, patch=7, stride=2)
    baseline = network.predict_proba(image[None])[0]
    total, count = np.zeros((10, 28, 28)), np.zeros((28, 28))
    starts = [*range(0, 22, 2), 21]  # The last patch moved in to cover the edge.
    corners = [(t, left) for t in starts for left in starts]
    for top, left in corners:
        occluded = image.copy()
        occluded[top : top + 7, left : left + 7] = 0
        fall = baseline - network.predict_proba(occluded[None])[0]
        total[:, top : top + 7, left : left + 7] += fall[:, None, None]
        count[top : top + 7, left : left + 7] += 1
    # A batch against one image at a time: float32 sums in another order, rtol(fan-ins) of 2 * max|logit|
    # per probability (tests/float32.py), twice that for a difference of two.
    logits = network.logits(image[None])
    terms = float32.chain_terms(network.architecture)[-1]
    float32.assert_close(maps, total / count, terms, scale=4 * np.abs(logits).max())


def test_a_stride_that_misses_the_edge_still_covers_it():
    batch, corners = attribution.occluded_images(np.ones((28, 28), np.float32), patch=7, stride=4)
    assert corners[-1] == (21, 21) and len(batch) == len(corners) == 7 * 7
    assert (batch.min(axis=0) == 0).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda n: attribution.gradient_times_input(n, np.zeros((28, 27)), 1), "shape"),
        (lambda n: attribution.gradient_times_input(n, np.zeros((28, 28)), 10), "class 0-9"),
        (lambda n: attribution.occlusion(n, np.zeros((28, 28)), patch=0), "patch"),
        (lambda n: attribution.contrast_occlusion(np.zeros((3, 28, 28)), 1, 2), "shape \\(10"),
        (lambda n: attribution.contrast_occlusion(np.zeros((10, 28, 28)), True, 2), "class 0-9"),
        (lambda n: attribution.contrast_occlusion(np.zeros((10, 28, 28)), 1, 2.5), "class 0-9"),
    ],
)
def test_bad_requests_are_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(load_classifier(1))
