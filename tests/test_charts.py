"""The figures and display images the pages show, checked without a browser."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest
from plotly.colors import sample_colorscale

from digitdraw.explaining import inside
from digitdraw.serving.networks import MODEL_IDS, REGISTRY
from digitdraw.serving.saved_models import History, ReliabilityRecord
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
    heatmap, cells = charts.confusion_heatmap(matrix, normalise=True).data
    # Each cell's share rides on the invisible point a click selects, which also gives its hover.
    shares = np.asarray(cells.customdata).reshape(10, 10)
    assert (cells.x[5], cells.y[5]) == ("5", "0") and heatmap.hoverinfo == "skip"
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
    with pytest.raises(ValueError, match="2-D or RGB uint8"):
        charts.image_row([(square.astype(np.float32), "float")], width=140)
    with pytest.raises(ValueError, match="2-D or RGB uint8"):
        charts.image_row([(np.zeros((4, 4, 4), np.uint8), "RGBA")], width=140)


def test_rgb_pictures_keep_their_colours_and_maps_sit_over_the_input():
    image = np.zeros((28, 28), np.float32)
    image[10:18, 12:16] = 1.0
    values = np.zeros((28, 28), np.float32)
    values[10, 12], values[0, 0] = 1.0, -1.0
    picture = charts.overlay(image, values, cell=2)
    assert picture.shape == (56, 56, 3) and picture.dtype == np.uint8
    assert picture[1, 1].tolist() == list(inside.NEGATIVE_RGB)  # Full blue over empty paper.
    assert picture[2, 2].tolist() == [255, 255, 255]  # Nothing on empty paper: white.
    ink_grey = 255 - charts.INK_GREY
    assert picture[2 * 11, 2 * 13].tolist() == [ink_grey] * 3  # Ink with no attribution: grey.
    assert picture[2 * 10, 2 * 12, 0] > picture[2 * 10, 2 * 12, 2]  # Red over ink stays red.
    row = charts.image_row([(picture, "map")], width=56)
    encoded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', row)[0]
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(encoded), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded[..., ::-1], picture)  # RGB in, the same RGB out of the PNG.
    with pytest.raises(ValueError, match="one 2-D shape"):
        charts.overlay(image, values[:5])
    assert charts.map_scale(np.zeros((3, 3))) == 1.0
    assert charts.map_scale(np.array([0.0, -2.0, *[1.0] * 40])) == pytest.approx(1.0)
    # A scale divides the map: the page passes raw maps and their scale, and does no arithmetic itself.
    np.testing.assert_array_equal(charts.overlay(image, 4 * values, cell=2, scale=4.0), picture)
    np.testing.assert_array_equal(
        charts.signed_picture(-3 * values, cell=2, scale=3.0), charts.signed_picture(-values, cell=2)
    )


def test_answer_tables_escape_what_they_show():
    table = charts.answer_table([("<b>Model</b>", ["7 (99%)"])], ["Model", "Reads"])
    assert "&lt;b&gt;Model&lt;/b&gt;" in table and "<b>" not in table and "7 (99%)" in table


def test_every_model_s_answer_shows_its_digit_and_confidence_and_escapes_names():
    table = charts.model_answers([("<b>net</b>", 7, 0.987), ("Model 2", None, None), ("Model 3", 1, 1.7)])
    assert "&lt;b&gt;net&lt;/b&gt;" in table and "<b>" not in table
    assert ">7</td>" in table and "98.7%" in table and "width:98.7%" in table
    assert "unavailable" in table and table.count("<tr>") == 4  # The header and three models.
    assert "width:100.0%" in table and "170" not in table  # A confidence is drawn within 0..1.


def test_the_stroke_timeline_can_carry_its_title():
    answers = [{1: (1, 0.4)}]
    assert ">Stroke <i>by</i> stroke<" not in charts.stroke_timeline(
        answers, 1, title="Stroke <i>by</i> stroke"
    )
    assert "Stroke &lt;i&gt;by" in charts.stroke_timeline(answers, 1, title="Stroke <i>by</i> stroke")
    assert charts.stroke_timeline([], 1, title="Stroke") == ""


def test_the_stroke_timeline_shows_the_latest_strokes_and_marks_the_chosen_model():
    answers = [{1: (1, 0.4), 2: (7, 0.9)}, {1: (7, 0.8), 2: (7, 0.95)}]
    table = charts.stroke_timeline(answers, chosen=2)
    assert "Model 2 ◀" in table and "Model 1</th>" in table
    assert table.count("<td") == 4 and 'title="95%"' in table
    assert charts.stroke_timeline([], chosen=1) == ""
    many = [{1: (digit % 10, 0.5)} for digit in range(30)]
    long = charts.stroke_timeline(many, chosen=1)
    assert long.count("<td") == charts.TIMELINE_STROKES and ">30</th>" in long and ">18</th>" not in long
    kept = charts.stroke_timeline(many[-3:], chosen=1, first_stroke=28)  # A caller keeping the latest only.
    assert ">28</th>" in kept and ">30</th>" in kept and ">1</th>" not in kept


def test_first_layer_units_carry_their_incoming_weights_for_the_hover_card():
    weights = np.zeros((4, 28, 28), np.float32)
    weights[2, 0, 0], weights[3, 5, 5] = 2.0, -1.0
    grid = charts.first_layer_grid(
        np.array([0.0, 0.5, 1.0, 0.25]), np.array([0.1, -0.2, 0.3, 0.0]), [2], 7, 1.0, weights
    )
    assert grid.count('class="dd-unit"') == 4 and grid.count("★") == 1
    assert "unit 2<br>activation 1.000<br>pushes 7 by +0.30" in grid
    assert (
        "repeat(2,minmax(0,30px))" in grid and "rgb(8,48,107)" in grid
    )  # The most active unit: darkest blue.
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', grid)
    third = cv2.imdecode(np.frombuffer(base64.b64decode(pngs[2]), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert third.shape == (112, 112, 3) and third[0, 0].tolist() == list(inside.POSITIVE_RGB)
    fourth = cv2.imdecode(np.frombuffer(base64.b64decode(pngs[3]), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    half_blue = np.rint(inside.diverging_colours(np.array(-0.5))).astype(int).tolist()
    assert fourth[4 * 5 + 1, 4 * 5 + 1].tolist() == half_blue  # One shared scale: -1 of 2 is half blue.
    with pytest.raises(ValueError, match="one weight picture"):
        charts.first_layer_grid(np.zeros(3), np.zeros(3), [], 1, 1.0, weights)


def test_the_reliability_diagram_leaves_empty_bins_out_and_sizes_markers_by_count():
    record = ReliabilityRecord(
        counts=[0, 10, 40], confidence=[None, 0.5, 0.9], accuracy=[None, 0.4, 0.95], ece=0.05
    )
    figure = charts.reliability_diagram({4: record}, "Reliability")
    diagonal, model, few = figure.data
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    # The bin of 40 on the model's line; the bin of 10, too few to trust, a faint marker of its own.
    assert list(model.x) == [0.9] and list(model.y) == [0.95] and model.mode == "lines+markers"
    assert list(few.x) == [0.5] and few.mode == "markers" and few.opacity < 1 and not few.showlegend
    assert few.marker.size[0] < model.marker.size[0]
    assert model.name == "Model 4 (ECE 5.00%)"


def test_the_reliability_diagram_draws_every_model_but_the_highlighted_one_faintly():
    record = ReliabilityRecord(confidence=[0.5, 0.9], accuracy=[0.5, 0.8], counts=[30, 90], ece=0.05)
    figure = charts.reliability_diagram({2: record, 4: record}, "Drawn digits", highlighted=4)
    opacities = {trace.legendgroup: trace.opacity for trace in figure.data[1:]}
    assert opacities == {"2": charts.FAINT, "4": 1.0}


def test_every_registry_model_has_a_colour_of_its_own_that_no_trained_network_gets():
    colours = [charts.model_colour(model_id) for model_id in MODEL_IDS]
    assert len(set(colours)) == len(MODEL_IDS)
    assert not set(colours) & set(charts.CUSTOM_COLOURS)
    # A reliability diagram draws each model in its colour, as every other chart does.
    record = ReliabilityRecord(confidence=[0.5, 0.9], accuracy=[0.5, 0.8], counts=[30, 90], ece=0.05)
    figure = charts.reliability_diagram({6: record, "my-net": record}, "Drawn digits")
    assert [trace.line.color for trace in figure.data[1:]] == [
        charts.model_colour(6),
        charts.model_colour("my-net"),
    ]


def test_a_box_at_the_top_edge_gets_its_number_above_it_in_a_white_band():
    image = np.full((100, 300), 255, np.uint8)
    image[0:60, 20:60] = 0  # A digit touching the top edge.
    plain = charts.boxed_picture(image, [])
    boxed = charts.boxed_picture(image, [(20, 0, 40, 60)])
    band = boxed.shape[0] - image.shape[0]
    assert plain.shape[:2] == image.shape and band > 0
    assert (boxed[:band, 70:] == 255).all(), "a white band, the number at the box's corner only"
    assert not (boxed[:band, 20:30] == 255).all(), "the number sits in the band, above the digit"
    np.testing.assert_array_equal(boxed[band + 10 : band + 50, 30:50], 0)  # The digit is not covered.


def test_zoomed_training_curves_fit_the_later_epochs():
    curves = {"loss": [1.0, 0.5, 0.3, 0.2], "accuracy": [0.5, 0.9, 0.96, 0.97]}
    history = History(epoch=[1, 2, 3, 4], train=curves, validation=curves, test=curves, best_epoch=4)
    whole = charts.training_curves(history, "accuracy")
    zoomed = charts.training_curves(history, "accuracy", zoomed=True)
    assert zoomed.layout.yaxis.range[0] > 0.9 > 0.5, "the axis starts near the later epochs' values"
    assert zoomed.layout.yaxis.range[1] < 1.0 and whole.layout.yaxis.range != zoomed.layout.yaxis.range


def test_the_phones_confusion_table_holds_each_cell_short_enough_for_its_column_and_shaded():
    matrix = np.diag(np.arange(1, 11) * 150)  # The last digit has 1,500 test images.
    matrix[3, 5] = 3
    counts = charts.confusion_table(matrix, normalise=False)
    assert counts.data.loc["3", "5"] == "3" and counts.data.loc["9", "9"] == "1.5k"
    assert counts.data.loc["0", "1"] == "", "an empty cell says nothing"
    shares = charts.confusion_table(matrix, normalise=True).data
    # 3 of 603 threes read as 5 is 0.5%; the rest of the row is 99.5%, which rounds to 100 in a narrow column.
    assert shares.loc["3", "5"] == "0.5" and shares.loc["3", "3"] == "100"


def test_the_phones_confusion_table_shades_cells_as_the_heatmap_does():
    matrix = np.diag(np.full(10, 100))
    matrix[7, 2] = 25
    styled = charts.confusion_table(matrix, normalise=False)
    styled._compute()
    css = {cell: dict(rules) for cell, rules in styled.ctx.items()}
    diagonal, confused, empty = css[(0, 0)], css[(7, 2)], css[(0, 1)]
    # The heatmap's square-root scale: 25 of a largest 100 is halfway along Plotly's "Blues".
    assert confused["background-color"] == sample_colorscale("Blues", [0.5])[0]
    assert diagonal["color"] == "white" and confused["color"] == "black" and empty["color"] == "black"
    assert diagonal["background-color"] != empty["background-color"]


def test_a_note_is_shaded_as_its_kind_and_refuses_an_unknown_one():
    assert charts.NOTE_SHADES["agree"] in charts.note("All 6 models read a <b>7</b>.", "agree")
    assert "<b>7</b>" in charts.note("All 6 models read a <b>7</b>.", "agree")
    with pytest.raises(ValueError, match="agree"):
        charts.note("text", "loud")


def test_a_heading_is_escaped():
    assert "Tom &amp; Jerry</h3>" in charts.section_heading("Tom & Jerry")


def test_the_doubtful_digit_is_boxed_in_its_own_colour():
    image = np.full((100, 200), 255, np.uint8)
    boxes = [(20, 30, 40, 50), (120, 30, 40, 50)]
    picture = charts.boxed_picture(image, boxes, doubtful=1)
    doubt, accent = np.array(charts.rgb(charts.DOUBTFUL)), np.array(charts.rgb(charts.ACCENT))
    band = picture.shape[0] - image.shape[0]
    assert (picture[band + 55, 120] == doubt).all() and (picture[band + 55, 20] == accent).all()


def test_a_colour_is_read_from_its_hex_and_a_bad_one_refused():
    assert charts.rgb("#D55E00") == (213, 94, 0)
    with pytest.raises(ValueError, match="RRGGBB"):
        charts.rgb("orange")


def test_marks_left_out_are_boxed_thinly_in_grey_without_a_number():
    image = np.full((100, 200), 255, np.uint8)
    picture = charts.boxed_picture(image, [(20, 30, 40, 50)], left_out=[(120, 30, 40, 50)])
    band = picture.shape[0] - image.shape[0]
    assert (picture[band + 55, 120] == charts.rgb(charts.MUTED)).all()
    assert (picture[band : band + 29, 120:160] == 255).all()  # No number above it.


def test_a_loss_axis_labels_every_tick_with_its_whole_value():
    assert charts.log_ticks([0.3, 0.02, None]) == [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5]
    assert charts.log_ticks([0.07, 0.14]) == [0.06, 0.07, 0.08, 0.09, 0.1, 0.2]  # Narrow: every digit.
    assert charts.log_ticks([0.045, 0.047]) == [0.04, 0.05]  # Narrower still: the ticks either side.
    assert charts.log_ticks([0.0, None]) == []
    assert charts.log_ticks([1e-7, 2.3]) == [10.0**power for power in range(-7, 2)]  # The powers alone.
    curves = {"accuracy": [0.9, 0.95, 0.97], "loss": [0.4, 0.15, 0.06]}
    history = History(epoch=[1, 2, 3], train=curves, validation=curves, test=curves, best_epoch=3)
    axis = charts.training_curves(history, "loss").layout.yaxis
    assert axis.type == "log" and list(axis.ticktext) == ["0.05", "0.1", "0.2", "0.3", "0.5"]
