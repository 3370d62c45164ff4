"""Property and fuzz tests: whatever array arrives, to_mnist and classify answer or raise ValueError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import digitdraw

# How many examples, and whether they are random, is set by the profile (tests/conftest.py):
# fixed examples for `make test`, many random ones for `make fuzz`.

DTYPES = st.sampled_from(
    [np.uint8, np.bool_, np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64,
     np.uint16, np.uint32, np.complex64]
)  # fmt: skip
SHAPES = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40),
    st.tuples(st.integers(1, 3), st.integers(1, 300)),  # 1xN strips and their transposes below
    st.tuples(st.integers(1, 300), st.integers(1, 3)),
    st.tuples(st.integers(1, 60), st.integers(1, 60), st.sampled_from([1, 2, 3, 4, 5])),
)


def _check_result(image) -> None:
    """A valid answer: None (blank) or a (28, 28) float32 image in [0, 1]."""
    if image is None:
        return
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0


def _to_mnist_or_value_error(array):
    try:
        return digitdraw.to_mnist(array)
    except ValueError as error:
        assert str(error).startswith("expected"), str(error)  # The message says what was expected.
        return None


@given(hnp.arrays(DTYPES, SHAPES, elements=None))
# OpenCV reads a column of at most four values as a Scalar; these shapes once crashed ink detection.
@example(np.zeros((4, 1, 3)))
@example(np.zeros((4, 1), np.uint8))
@example(np.zeros((4, 1, 1), np.float32))
@example(np.zeros((4, 1, 4), np.uint8))
@example(np.full((4, 1), 200, np.uint8))
def test_any_array_gives_a_valid_image_or_a_value_error(array):
    _check_result(_to_mnist_or_value_error(array))


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 50), st.integers(1, 50)),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
    )
)
def test_floats_with_nan_and_infinity_are_refused_or_handled(array):
    _check_result(_to_mnist_or_value_error(array))


@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 80), st.integers(1, 80), st.sampled_from([3, 4]))))
def test_classify_answers_every_model_or_reports_blank(array):
    result = digitdraw.classify(array)
    if result.is_blank:
        assert result.probabilities == {}
    else:
        assert sorted(result.probabilities) == list(digitdraw.MODEL_IDS)
        for probabilities in result.probabilities.values():
            assert probabilities.shape == (10,) and np.isfinite(probabilities).all()
            assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((280, 280, 4), np.uint8),  # All zero: blank.
        np.full((280, 280), 255, np.uint8),  # All ink.
        np.full((280, 280, 4), 255, np.uint8),  # All opaque white.
        np.pad(np.full((1, 1), 255, np.uint8), 100),  # A single pixel.
        np.full((1, 500), 255, np.uint8),  # A 1xN strip.
        np.full((500, 1), 255, np.uint8),
        np.full((1, 1), 255, np.uint8),
        np.eye(300, dtype=np.uint8) * 255,
    ],
    ids=["zeros", "all-ink", "opaque-white", "single-pixel", "strip-1xN", "strip-Nx1", "1x1", "diagonal"],
)
def test_edge_cases_give_a_valid_result(array):
    _check_result(digitdraw.to_mnist(array))
    result = digitdraw.classify(array)
    assert result.is_blank or len(result.probabilities) == len(digitdraw.MODEL_IDS)


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_a_very_large_image_is_handled(channels):
    shape = (8000, 8000) if channels is None else (8000, 8000, channels)
    array = np.zeros(shape, np.uint8)
    if channels == 3:
        array[:] = 255
        array[1000:7000, 3800:4200] = 0  # A dark bar on white paper.
    elif channels == 4:
        array[1000:7000, 3800:4200, 3] = 255  # Ink on a transparent canvas.
    else:
        array[1000:7000, 3800:4200] = 255
    image = digitdraw.to_mnist(array)
    _check_result(image)
    assert image is not None and image.max() > 0.9
    assert digitdraw.classify(array, model_ids=[4]).digit(4) == 1


@pytest.mark.parametrize(
    "bad", [np.full((28, 28), np.nan), np.full((28, 28), np.inf), np.full((28, 28), -np.inf)]
)
def test_nan_and_infinity_are_value_errors(bad):
    with pytest.raises(ValueError, match="finite"):
        digitdraw.classify(bad)


TINY_SHAPES = [
    (height, width, *channels)
    for height in range(1, 7)
    for width in range(1, 7)
    for channels in ((), (1,), (3,), (4,))
]


@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.bool_])
def test_every_tiny_shape_is_handled(dtype):
    """Every image up to 6x6, in every channel layout, blank, uniform or with one pixel of ink."""
    for shape in TINY_SHAPES:
        for fill in ("blank", "uniform", "one-pixel"):
            array = np.zeros(shape, dtype)
            if fill == "uniform":
                array[...] = 1
            elif fill == "one-pixel":
                array[shape[0] // 2, shape[1] // 2] = 1
            if dtype == np.uint8:
                array = array * np.uint8(255)
            _check_result(digitdraw.to_mnist(array))
