"""The non-digits made from MNIST for the learned digit score: every kind, reproducible, never blank,
and really broken (no longer the digit it was made from)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitdraw.learning import negatives
from digitdraw.learning.data import load_mnist


@pytest.fixture(scope="module")
def mnist_sample():
    (images, labels), _ = load_mnist()
    return images[:600], labels[:600]


def test_every_kind_is_made_in_turn_and_the_same_seed_gives_the_same_images(mnist_sample):
    images, labels = mnist_sample
    made, kinds = negatives.mnist_non_digits(images, labels, 60, seed=3)
    assert made.shape == (60, 28, 28) and made.dtype == np.uint8
    assert list(kinds[: len(negatives.NEGATIVE_KINDS)]) == list(negatives.NEGATIVE_KINDS)
    assert all((image >= negatives.INK_LEVEL).any() for image in made)
    again, _ = negatives.mnist_non_digits(images, labels, 60, seed=3)
    np.testing.assert_array_equal(made, again)
    other, _ = negatives.mnist_non_digits(images, labels, 60, seed=4)
    assert not np.array_equal(made, other)


def test_no_broken_digit_is_an_unchanged_training_digit(mnist_sample):
    images, labels = mnist_sample
    made, kinds = negatives.mnist_non_digits(images, labels, 120, seed=0)
    for image, kind in zip(made, kinds):
        assert not any(np.array_equal(image, source) for source in images), kind


def test_a_cut_keeps_one_side_of_a_line_and_removes_a_real_share_of_the_ink(mnist_sample):
    images, _ = mnist_sample
    rng = np.random.default_rng(0)
    for digit in images[:50]:
        cut = negatives._cut(digit, rng)
        kept = cut > 0
        assert np.array_equal(cut[kept], digit[kept])  # Pixels are kept or removed, never changed.
        ink, left = (digit >= negatives.INK_LEVEL).sum(), (cut >= negatives.INK_LEVEL).sum()
        assert left == 0 or negatives.MIN_INK_LEFT * ink <= left <= (1 - negatives.MIN_INK_LEFT) * ink


def test_only_digits_that_stop_being_digits_are_turned(mnist_sample):
    images, labels = mnist_sample
    made, kinds = negatives.mnist_non_digits(images, labels, 600, seed=1)
    for image in made[kinds == "turned"]:
        sources = [
            label
            for source, label in zip(images, labels)
            if any(np.array_equal(image, view) for view in (np.rot90(source, k) for k in (1, 2, 3)))
            or np.array_equal(image, source[:, ::-1])
            or np.array_equal(image, source[::-1])
        ]
        assert sources and set(sources) <= set(negatives.TURNABLE_DIGITS)


def test_bad_input_is_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="shape"):
        negatives.mnist_non_digits(np.zeros((5, 8, 8), np.uint8), np.zeros(5), 3, seed=0)
    with pytest.raises(ValueError, match="positive count"):
        negatives.mnist_non_digits(np.zeros((5, 28, 28), np.uint8), np.zeros(5), 0, seed=0)
    # Blank images have nothing to break: refused, where the loop would otherwise look for ink forever.
    with pytest.raises(ValueError, match="only blank images"):
        negatives.mnist_non_digits(np.zeros((5, 28, 28), np.uint8), np.zeros(5), 3, seed=0)


def test_an_erased_digit_keeps_only_some_of_its_own_pixels(mnist_sample):
    images, _ = mnist_sample
    rng = np.random.default_rng(2)
    for digit in images[:50]:
        erased = negatives._erased(digit, rng)
        kept = erased > 0
        assert np.array_equal(erased[kept], digit[kept])  # Pixels are kept or removed, never changed.
        ink, left = (digit >= negatives.INK_LEVEL).sum(), (erased >= negatives.INK_LEVEL).sum()
        assert 1 <= left < 0.75 * ink


def test_a_stroke_fragment_is_a_thin_piece_lying_on_the_digit(mnist_sample):
    images, _ = mnist_sample
    rng = np.random.default_rng(3)
    for digit in images[:30]:
        fragment = negatives._stroke_fragment(digit, rng)
        ink = fragment >= negatives.INK_LEVEL
        assert ink.any() and ink.sum() < (digit >= negatives.INK_LEVEL).sum()
        # Redrawn along the digit's own skeleton: every bit of its ink is within 3 pixels of the digit's.
        near = cv2.dilate((digit > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert near[ink].all()


def test_varied_digits_are_reproducible_thickened_or_coarse_and_keep_their_labels(mnist_sample):
    images, labels = mnist_sample
    made, made_labels = negatives.varied_digits(images, labels, 40, seed=5)
    again, _ = negatives.varied_digits(images, labels, 40, seed=5)
    assert made.shape == (40, 28, 28) and made.dtype == np.uint8
    np.testing.assert_array_equal(made, again)
    for index, (image, label) in enumerate(zip(made, made_labels)):
        sources = [i for i, source in enumerate(images) if labels[i] == label]
        if negatives.VARIED_KINDS[index % 2] == "thickened":
            # A dilation of one digit of that label: it covers the digit, with more ink.
            matches = [
                i for i in sources if (image >= images[i]).all() and (image > 0).sum() > (images[i] > 0).sum()
            ]
            assert matches
        else:
            assert (image[:2] == 0).all() and (image[:, :2] == 0).all() and image.max() > 100
    with pytest.raises(ValueError, match="shape"):
        negatives.varied_digits(np.zeros((5, 8, 8), np.uint8), np.zeros(5), 3, seed=0)
    with pytest.raises(ValueError, match="positive count"):
        negatives.varied_digits(images, labels, 0, seed=0)
