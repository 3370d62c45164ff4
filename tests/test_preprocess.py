"""to_mnist: blank gives None, drawings end up centred in the 20x20 box, polarity does not matter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from drawings import blank_canvas, draw_digit

from digitdraw.serving.preprocess import BOX_SIZE, IMAGE_SIZE, PREPROCESSING_STEPS, preprocess_steps, to_mnist


def _ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    return cv2.boundingRect((image > 0.1).astype(np.uint8))


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    moments = cv2.moments(image)
    return moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]


def test_a_blank_image_gives_none():
    assert to_mnist(blank_canvas()) is None
    assert to_mnist(np.full((280, 280, 3), 255, np.uint8)) is None  # White paper.
    assert to_mnist(np.zeros((50, 40), np.uint8)) is None  # Black field.
    assert preprocess_steps(blank_canvas()) is None


@pytest.mark.parametrize(
    "drawing",
    [
        draw_digit(7),
        draw_digit(7, offset=(-80, -60), scale=0.35),  # Tiny and off-centre.
        draw_digit(7, scale=1.35, stroke=10),  # Huge with a thin brush.
        draw_digit(7, scale=0.5, stroke=35),  # Small with a thick brush.
        draw_digit(0, offset=(70, 40), scale=0.4, stroke=3),  # A hairline in a corner.
        draw_digit(1, offset=(-90, 0), scale=0.6),
    ],
    ids=["plain", "tiny-off-centre", "huge-thin", "small-thick", "hairline-corner", "one-at-the-edge"],
)
def test_any_drawing_ends_up_centred_and_filling_the_box(drawing):
    image = to_mnist(drawing)
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.9
    _, _, width, height = _ink_box(image)
    assert BOX_SIZE - 1 <= max(width, height) <= BOX_SIZE + 1
    centre_x, centre_y = _centre_of_mass(image)
    assert abs(centre_x - 13.5) <= 1.0 and abs(centre_y - 13.5) <= 1.0


def test_stroke_width_is_normalised_whatever_the_brush():
    widths = [preprocess_steps(draw_digit(7, stroke=stroke)).centred.sum() for stroke in (8, 18, 35)]
    # The ink mass of the model input barely depends on the brush: within 25%.
    assert max(widths) / min(widths) < 1.25


def test_polarity_and_transparency_variants_give_the_same_image():
    transparent = draw_digit(4)
    alpha = transparent[:, :, 3]
    black_on_white = np.dstack([255 - alpha] * 3 + [np.full_like(alpha, 255)])
    white_on_black = np.dstack([alpha] * 3)
    gray_dark_on_light = 255 - alpha
    white_ink_transparent = transparent.copy()
    white_ink_transparent[:, :, :3] = 255
    reference = to_mnist(transparent)
    for variant in (
        black_on_white,
        white_on_black,
        gray_dark_on_light,
        white_ink_transparent,
        alpha[:, :, None],
    ):
        np.testing.assert_allclose(to_mnist(variant), reference, atol=0.02)


def test_intermediate_steps_are_exposed():
    steps = preprocess_steps(draw_digit(7))
    assert steps.ink.shape == (280, 280)
    assert steps.resized.shape[0] == BOX_SIZE or steps.resized.shape[1] == BOX_SIZE
    assert steps.centred.shape == (28, 28)
    assert steps.stroke_width > 0
    for array in (steps.ink, steps.cropped, steps.resized, steps.centred):
        assert array.dtype == np.float32 and array.min() >= 0 and array.max() <= 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((28, 28), np.int64), "dtype"),
        (np.zeros((28, 28, 2), np.uint8), "channels"),
        (np.zeros(784, np.uint8), "2-D"),
        (np.zeros((2, 28, 28, 4), np.uint8), "2-D"),
        (np.zeros((0, 28), np.uint8), "non-empty"),
        (np.full((28, 28), np.nan, np.float32), "finite"),
        (np.full((28, 28), 3.0), r"\[0, 1\]"),
        ([[0, 1], [1, 0]], "numpy array"),
    ],
)
def test_input_that_is_not_an_image_is_a_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        to_mnist(bad)


def test_float_and_bool_images_are_accepted():
    alpha = draw_digit(1)[:, :, 3]
    reference = to_mnist(alpha)
    np.testing.assert_allclose(to_mnist(alpha.astype(np.float32) / 255), reference, atol=0.02)
    assert to_mnist(alpha > 127) is not None


def _slanted_stroke(width: int = 12, top_left: tuple[int, int] = (40, 40), size: int = 200) -> np.ndarray:
    """A slanted line on a white 280x280 canvas (black ink), starting at ``top_left``."""
    canvas = np.full((280, 280), 255, np.uint8)
    x, y = top_left
    cv2.line(canvas, (x + size // 3, y), (x, y + size), 0, width, cv2.LINE_AA)
    return canvas


@pytest.mark.parametrize("digit", [0, 1, 4, 7])
def test_all_steps_named_is_the_default_bit_for_bit(digit):
    canvas = draw_digit(digit)
    np.testing.assert_array_equal(to_mnist(canvas, PREPROCESSING_STEPS), to_mnist(canvas))
    np.testing.assert_array_equal(to_mnist(canvas, set(PREPROCESSING_STEPS)), to_mnist(canvas))


def test_without_crop_and_centring_a_digit_stays_where_it_was_drawn():
    corner = _slanted_stroke(top_left=(10, 10), size=90)  # In the canvas's top-left third.
    x, y, width, height = _ink_box(to_mnist(corner, ("stroke", "deskew", "scale")))
    assert x + width <= IMAGE_SIZE // 2 and y + height <= IMAGE_SIZE // 2
    assert _centre_of_mass(to_mnist(corner)) == pytest.approx((13.5, 13.5), abs=1.0)


# Without crop, stroke normalisation is left out: it widens strokes to MNIST's width for a digit that
# fills the image, which grows a smaller digit's ink box by a pixel or two.
@pytest.mark.parametrize(
    "steps", [(), ("deskew",), ("deskew", "centre"), ("crop", "stroke", "deskew", "centre")]
)
def test_without_scaling_a_digit_keeps_its_size_relative_to_the_whole_image(steps):
    canvas = np.full((280, 280), 255, np.uint8)
    cv2.circle(canvas, (140, 140), 100, 0, 10, cv2.LINE_AA)  # About 210 pixels high, edge to edge.
    ink_height = _ink_box(255 - canvas)[3]
    expected = ink_height / canvas.shape[0] * IMAGE_SIZE
    assert abs(_ink_box(to_mnist(canvas, steps))[3] - expected) <= 1


def test_without_scaling_a_small_digit_stays_small_and_without_centring_its_box_is_centred():
    small = _slanted_stroke(size=60)  # About a fifth of the canvas high.
    assert _ink_box(to_mnist(small, ("crop", "stroke", "deskew", "centre")))[3] <= 9  # 60/280 of 28, and ink.
    assert _ink_box(to_mnist(small))[3] == BOX_SIZE
    x, y, width, height = _ink_box(to_mnist(_slanted_stroke(), ("crop", "stroke", "deskew", "scale")))
    assert x + (width - 1) / 2 == pytest.approx(13.5, abs=1.0)
    assert y + (height - 1) / 2 == pytest.approx(13.5, abs=1.0)


def test_without_deskewing_a_slanted_stroke_stays_slanted():
    slanted = _slanted_stroke()
    upright_width = _ink_box(to_mnist(slanted))[2]
    assert upright_width < _ink_box(to_mnist(slanted, ("crop", "stroke", "scale", "centre")))[2]


def test_without_stroke_normalisation_a_thick_brush_stays_thick():
    thick = _slanted_stroke(width=60)
    assert to_mnist(thick, ("crop", "deskew", "scale", "centre")).sum() > 1.2 * to_mnist(thick).sum()


def test_an_unknown_step_is_a_value_error():
    with pytest.raises(ValueError, match="preprocessing steps among"):
        to_mnist(draw_digit(1), ("crop", "blur"))
