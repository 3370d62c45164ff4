"""Augmentation: affine maps about the centre, stroke width against OpenCV, and a seed that fixes it all."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from digitdraw.learning.augment import (
    ELASTIC_SHARE,
    THICKER_PIXELS,
    WIDER_OR_NARROWER,
    AugmentConfig,
    augment,
    change_stroke_width,
    elastic_displacements,
    elastic_distort,
    random_affine,
    random_affine_matrices,
    random_elastic,
    random_stroke_width,
    smooth_fields,
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


def test_thicker_changes_match_opencv_with_squares_of_side_two_and_three(digits):
    always_thick = AugmentConfig(thicken_probability=1.0, thin_probability=0.0, thickness_pixels=2)
    always_thin = AugmentConfig(thicken_probability=0.0, thin_probability=1.0, thickness_pixels=2)
    thick = random_stroke_width(digits, np.random.default_rng(0), always_thick)
    thin = random_stroke_width(digits, np.random.default_rng(0), always_thin)
    sides = {2: 0, 3: 0}
    for index in range(0, 300, 7):
        for changed, operation in ((thick, cv2.dilate), (thin, cv2.erode)):
            matches = [
                side
                for side in sides
                if np.allclose(changed[index], operation(digits[index], np.ones((side, side), np.uint8)))
            ]
            assert matches, f"image {index} is neither 2x2 nor 3x3 {operation.__name__}"
            sides[matches[0]] += 1
    assert sides[2] > 10 and sides[3] > 10, "both amounts are drawn"


def test_change_stroke_width_of_a_batch_is_opencv_on_each_image(digits):
    for pixels in (-3, -1, 1, 3):
        side = abs(pixels) + 1
        operation = cv2.dilate if pixels > 0 else cv2.erode
        batch = change_stroke_width(digits[:20], pixels)
        for index in range(20):
            np.testing.assert_array_equal(
                batch[index], operation(digits[index], np.ones((side, side), np.uint8))
            )


def test_smoothing_a_batch_of_fields_is_opencv_blurring_each_alone():
    fields = np.random.default_rng(0).uniform(-1, 1, (12, 28, 28)).astype(np.float32)
    for sigma in (4.0, 2.5):
        expected = [
            cv2.GaussianBlur(field, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT) for field in fields
        ]
        np.testing.assert_allclose(smooth_fields(fields, sigma), np.stack(expected), atol=1e-6)


def test_elastic_distortion_moves_pixels_by_the_displacement(digits):
    assert np.array_equal(elastic_distort(digits[:5], np.zeros((5, 2, 28, 28), np.float32)), digits[:5])
    # A constant field of (+2, -1) reads each pixel from 2 right and 1 up: a shift left by 2 and down by 1.
    shift = np.zeros((5, 2, 28, 28), np.float32)
    shift[:, 0], shift[:, 1] = 2.0, -1.0
    moved = elastic_distort(digits[:5], shift)
    translation = np.float32([[1, 0, -2], [0, 1, 1]])
    for index in range(5):
        np.testing.assert_allclose(
            moved[index], cv2.warpAffine(digits[index], translation, (28, 28)), atol=1e-6
        )


def test_elastic_fields_are_smooth_scaled_and_fixed_by_the_seed():
    config = AugmentConfig(elastic_alpha=34.0, elastic_sigma=4.0)
    fields = elastic_displacements(200, np.random.default_rng(3), config)
    assert fields.shape == (200, 2, 28, 28) and fields.dtype == np.float32
    assert np.array_equal(fields, elastic_displacements(200, np.random.default_rng(3), config))
    # Smooth: neighbouring pixels move almost alike, far less than the field's own spread.
    assert np.abs(np.diff(fields, axis=-1)).mean() < 0.2 * fields.std()
    assert 0.5 < fields.std() < 3.0, "Simard's alpha 34 and sigma 4 move strokes by a pixel or two"
    doubled = elastic_displacements(200, np.random.default_rng(3), replace(config, elastic_alpha=68.0))
    np.testing.assert_allclose(doubled, 2 * fields, rtol=1e-6)


def test_the_study_s_config_draws_no_elastic_numbers_and_the_ablation_s_bends_half(digits):
    rng = np.random.default_rng(1)
    assert random_elastic(digits, rng, AugmentConfig()) is digits
    assert np.array_equal(rng.uniform(size=3), np.random.default_rng(1).uniform(size=3))
    elastic = AugmentConfig(elastic_probability=ELASTIC_SHARE, thickness_pixels=THICKER_PIXELS)
    bent = random_elastic(digits, np.random.default_rng(1), elastic)
    changed = np.abs(bent - digits).reshape(len(digits), -1).max(axis=1) > 1e-6
    assert 0.35 < changed.mean() < 0.65
    improved = augment(digits, np.random.default_rng(2), elastic)
    assert np.array_equal(improved, augment(digits, np.random.default_rng(2), elastic))
    assert improved.min() >= 0.0 and improved.max() <= 1.0 and improved.dtype == np.float32


def _ink_width_and_height(image: np.ndarray) -> tuple[int, int]:
    rows, columns = np.nonzero(image > 0.3)
    return columns.max() - columns.min() + 1, rows.max() - rows.min() + 1


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_a_width_scale_stretches_a_digit_sideways_and_keeps_its_height(digits, factor):
    config = replace(STILL, width_scale=(factor, factor))
    checked = 0
    for digit in digits[:40]:
        width, height = _ink_width_and_height(digit)
        if factor * width > 20:  # Stretched about the centre, it could leave the image.
            continue
        checked += 1
        stretched = random_affine(digit[None], np.random.default_rng(0), config)[0]
        new_width, new_height = _ink_width_and_height(stretched)
        assert abs(new_width - factor * width) <= 2 and abs(new_height - height) <= 1
    assert checked >= 10


def test_the_study_s_maps_draw_no_width_numbers_and_the_ablation_s_stay_in_its_range(digits):
    config, rng = AugmentConfig(), np.random.default_rng(3)
    study = random_affine_matrices(40, rng, config)
    # The maps as they were built before widths existed, from the same draws in the same order.
    reference = np.random.default_rng(3)
    angle = np.deg2rad(reference.uniform(-config.rotation_degrees, config.rotation_degrees, 40))
    shear = reference.uniform(-config.shear, config.shear, 40)
    scale = reference.uniform(*config.scale, 40)
    shift = reference.uniform(-config.shift_pixels, config.shift_pixels, (40, 2))
    linear = scale[:, None, None] * np.stack(
        [
            np.cos(angle),
            np.cos(angle) * shear - np.sin(angle),
            np.sin(angle),
            np.sin(angle) * shear + np.cos(angle),
        ],
        axis=1,
    ).reshape(40, 2, 2)
    np.testing.assert_allclose(study[:, :, :2], linear, rtol=0, atol=1e-12)
    np.testing.assert_allclose(study[:, :, 2], 13.5 + shift - linear @ np.full(2, 13.5), rtol=0, atol=1e-12)
    assert np.array_equal(rng.uniform(size=3), reference.uniform(size=3)), "the study's maps drew widths"
    still = replace(STILL, width_scale=WIDER_OR_NARROWER)
    widths = random_affine_matrices(2000, np.random.default_rng(4), still)[:, 0, 0]
    low, high = WIDER_OR_NARROWER
    assert low <= widths.min() < 0.82 and 1.22 < widths.max() <= high
    # Drawn evenly on a log scale: as many digits made wider as narrower.
    assert 0.45 < (widths > 1).mean() < 0.55


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"width_scale": (1.2, 0.9)}, "width_scale"),
        ({"width_scale": (0.0, 1.0)}, "width_scale"),
        ({"thickness_pixels": 0}, "thickness_pixels"),
        ({"elastic_probability": 1.5}, "elastic_probability"),
        ({"thicken_probability": 0.7, "thin_probability": 0.5}, "add up"),
        ({"elastic_sigma": 0.0}, "elastic_sigma"),
    ],
)
def test_bad_augmentation_settings_are_value_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig(**settings)
