"""Augmentation: affine maps about the centre, stroke width against OpenCV, and a seed that fixes it all."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digitdraw.augment import (
    AugmentConfig,
    augment,
    random_affine,
    random_affine_matrices,
    random_stroke_width,
)

STILL = AugmentConfig(
    rotation_degrees=0, shear=0, scale=(1, 1), shift_pixels=0, thicken_probability=0, thin_probability=0
)


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist[1][0][:300].astype(np.float32) / 255.0


def test_maps_turn_about_the_centre_and_the_still_config_changes_nothing(digits):
    matrices = random_affine_matrices(50, np.random.default_rng(0), AugmentConfig(shift_pixels=0))
    centre = np.array([13.5, 13.5, 1.0])
    np.testing.assert_allclose(matrices @ centre, np.tile([13.5, 13.5], (50, 1)), atol=1e-9)
    np.testing.assert_allclose(augment(digits, np.random.default_rng(0), STILL), digits, atol=1e-6)


def test_a_map_matches_the_rotation_opencv_builds(digits):
    config = AugmentConfig(rotation_degrees=0, shear=0, scale=(1, 1), shift_pixels=0)
    rotation = cv2.getRotationMatrix2D((13.5, 13.5), 0, 1.0)
    np.testing.assert_allclose(random_affine_matrices(3, np.random.default_rng(0), config)[0], rotation)
    moved = random_affine(digits[:5], np.random.default_rng(0), config)
    np.testing.assert_allclose(moved, digits[:5], atol=1e-6)


def test_stroke_width_changes_match_opencv_dilation_and_erosion(digits):
    always_thick = AugmentConfig(thicken_probability=1.0, thin_probability=0.0)
    always_thin = AugmentConfig(thicken_probability=0.0, thin_probability=1.0)
    kernel = np.ones((2, 2), np.uint8)
    thick = random_stroke_width(digits, np.random.default_rng(0), always_thick)
    thin = random_stroke_width(digits, np.random.default_rng(0), always_thin)
    for index in range(0, 300, 37):
        np.testing.assert_allclose(thick[index], cv2.dilate(digits[index], kernel))
        np.testing.assert_allclose(thin[index], cv2.erode(digits[index], kernel))


def test_a_seed_fixes_the_augmentation_and_values_stay_in_range(digits):
    first = augment(digits, np.random.default_rng(5))
    second = augment(digits, np.random.default_rng(5))
    assert np.array_equal(first, second)
    assert first.shape == digits.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert not np.array_equal(first, augment(digits, np.random.default_rng(6)))


def test_the_wrong_shape_is_a_value_error():
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        augment(np.zeros((4, 32, 32), np.float32), np.random.default_rng(0))
