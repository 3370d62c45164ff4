"""The figures and display images the pages show, checked without a browser."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest

from digitdraw.models import REGISTRY
from digitdraw.saved_models import History
from digitdraw.ui import charts
from digitdraw.ui.charts import ACCENT


def test_probability_bars_highlight_the_predicted_digit():
    probabilities = np.full(10, 0.02)
    probabilities[7] = 0.82
    chart = charts.probability_bars(probabilities, title="Model 4 <sigmoid>")
    bars = re.findall(r'title="digit (\d): ([\d.]+)%" style="[^"]*height:([\d.]+)px;background:(#\w+)', chart)
    assert [int(digit) for digit, *_ in bars] == list(range(10))
    assert [float(percent) for _, percent, _, _ in bars] == [2.0] * 7 + [82.0] + [2.0] * 2
    heights = [float(height) for _, _, height, _ in bars]
    assert heights[7] == pytest.approx(0.82 / 0.02 * heights[0])
    assert [digit for digit, _, _, colour in bars if colour == ACCENT] == ["7"]
    assert "Model 4 &lt;sigmoid&gt;" in chart and "<sigmoid>" not in chart  # Titles are escaped.
    assert "7: 82%" in chart  # Screen readers get every probability.
    assert chart.count("<div") == chart.count("</div>")


def test_the_normalised_heatmap_shows_shares_of_each_true_digit():
    matrix = np.diag(np.arange(1, 11) * 10)
    matrix[3, 5] = 10  # 10 of the 40 threes read as five.
    heatmap = charts.confusion_heatmap(matrix, normalise=True).data[0]
    shares = np.asarray(heatmap.customdata)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert shares[3, 5] == 0.2 and heatmap.text[3][5] == "20.0%"
    counts = charts.confusion_heatmap(matrix, normalise=False).data[0]
    assert counts.text[3][5] == "10" and counts.text[0][1] == ""


def test_training_curves_have_one_line_per_split_and_the_study_reference(tmp_path):
    history = History(
        epoch=[1, 2, 3],
        train={"accuracy": [0.9, 0.95, 0.97], "loss": [0.3, 0.2, 0.1]},
        validation={"accuracy": [0.89, 0.94, 0.95], "loss": [0.35, 0.25, 0.2]},
        test={"accuracy": [0.88, 0.93, 0.95], "loss": [0.36, 0.26, 0.21]},
        best_epoch=3,
    )
    figure = charts.training_curves(history, "accuracy", REGISTRY[4])
    assert [trace.name for trace in figure.data] == ["train", "validation", "test"]
    reference_lines = [shape for shape in figure.layout.shapes if shape.y0 == shape.y1]
    assert sorted(round(shape.y0, 4) for shape in reference_lines) == [0.9747, 0.9965]
    custom = charts.training_curves(history, "accuracy")
    assert not [shape for shape in custom.layout.shapes if shape.y0 == shape.y1], "no study to compare with"
    labels = {1: "Model 1", "my-net": "my-net"}
    overlay = charts.overlaid_curves({1: history, "my-net": history}, "loss", "test", labels)
    assert [trace.name for trace in overlay.data] == [
        "Model 1",
        "my-net",
    ] and overlay.layout.yaxis.type == "log"
    assert overlay.data[1].line.color in charts.CUSTOM_COLOURS


def test_pixel_grid_enlarges_every_pixel_into_a_square():
    image = np.zeros((28, 28), np.float32)
    image[10, 12] = 1.0
    grid = charts.pixel_grid(image, cell=10)
    assert grid.shape == (280, 280) and grid.dtype == np.uint8
    assert (grid[101:110, 121:130] == 255).all() and grid[0, 5] == 60


def test_display_images_are_squares_whatever_the_step_shape():
    for shape in ((160, 40), (20, 7), (280, 280)):
        square = charts.display_image(np.ones(shape, np.float32), size=140)
        assert square.shape == (140, 140) and square.max() == 255


def test_image_rows_carry_their_pictures_as_png_data_with_escaped_captions():
    square = np.zeros((28, 28), np.uint8)
    square[4:24, 10:18] = 255
    row = charts.image_row([(square, "1. Your <ink>"), (255 - square, "2. Inverted")], width=140)
    encoded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', row)
    assert len(encoded) == 2
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(encoded[0]), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(decoded, square)  # Lossless: the picture is exactly the step's image.
    assert "1. Your &lt;ink&gt;" in row and "<ink>" not in row
    with pytest.raises(ValueError, match="2-D uint8"):
        charts.image_row([(square.astype(np.float32), "float")], width=140)
