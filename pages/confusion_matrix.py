"""Where each model goes wrong on the 10,000 MNIST test images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from digitdraw.learning import evaluate
from digitdraw.serving.saved_models import Metrics
from digitdraw.ui import app, charts

GALLERY_SIZE = 24


def per_class_table(metrics: Metrics) -> pd.DataFrame:
    """Precision, recall, F1 and support per digit."""
    scores = metrics.per_class
    return pd.DataFrame(
        {
            "digit": list(range(10)),
            "precision": scores.precision,
            "recall": scores.recall,
            "F1": scores.f1,
            "test images": scores.support,
        }
    )


def _cell_clicked() -> None:
    """A click on a cell of the heatmap picks that cell in the pickers below it."""
    points = st.session_state.heatmap.selection.points
    if points:
        st.session_state.cell_true = int(points[0]["y"])
        st.session_state.cell_pred = int(points[0]["x"])


def _cell_tapped() -> None:
    """A tap on a cell of the phone's table picks that cell in the pickers below it."""
    cells = st.session_state.heatmap_cells.selection.cells
    if cells:
        row, column = cells[0]
        st.session_state.cell_true = int(row)
        st.session_state.cell_pred = int(column)


def matrix_ui(matrix: np.ndarray, normalise: bool) -> None:
    """The matrix, a click or a tap on whose cells shows their test images: a heatmap, and on a phone a
    table. A chart that heard taps would take a phone's swipe for itself (Streamlit makes a selectable
    chart drag), while a table's cells take a tap and leave the swipe to the page."""
    if not app.on_phone():
        app.chart_ui(charts.confusion_heatmap(matrix, normalise), key="heatmap", on_click=_cell_clicked)
        st.caption("Click a cell to see its test images below.")
        return
    columns = {str(digit): st.column_config.TextColumn(str(digit), width=32) for digit in range(10)}
    st.dataframe(
        charts.confusion_table(matrix, normalise),
        key="heatmap_cells",
        on_select=_cell_tapped,
        selection_mode="single-cell",
        column_config={"_index": st.column_config.TextColumn("", width=20), **columns},
    )
    share = " Each cell is the percent of its row's true digit." if normalise else ""
    st.caption(f"Tap a cell to see its test images below.{share}")


def cell_picker_ui(matrix: np.ndarray) -> tuple[int, int]:
    """Two pickers for a confusion-matrix cell, defaulting to the most confused pair."""
    pairs = evaluate.most_confused_pairs(matrix, count=1)
    default_true, default_predicted = pairs[0][:2] if pairs else (0, 0)
    # Defaults through the session, which a click on the heatmap (_cell_clicked) also sets.
    st.session_state.setdefault("cell_true", default_true)
    st.session_state.setdefault("cell_pred", default_predicted)
    true_column, predicted_column = st.columns(2)
    true_digit = true_column.selectbox("True digit", range(10), key="cell_true")
    predicted = predicted_column.selectbox("Predicted as", range(10), key="cell_pred")
    return true_digit, predicted


def gallery_ui(metrics: Metrics, true_digit: int, predicted: int) -> None:
    """The test images that fell into one cell of the matrix."""
    test_set = app.mnist_test_set()
    if test_set is None:
        st.info("The MNIST test images are not installed, so the gallery is unavailable (run `make run`).")
        return
    images, labels = test_set
    predictions = metrics.test_predictions
    if len(predictions) != len(labels):  # Measured on part of the test set only (a quick test run).
        st.info(
            f"This model was measured on {len(predictions):,} test images, not all {len(labels):,}, so its "
            "cells cannot be matched to the images."
        )
        return
    indices = evaluate.images_in_cell(labels, predictions, true_digit, predicted)
    st.caption(
        f"{len(indices)} test images are {true_digit}s read as {predicted}; showing up to {GALLERY_SIZE}."
    )
    if len(indices):
        shown = indices[:GALLERY_SIZE]
        st.image(
            [255 - images[index] for index in shown],
            caption=[f"#{index}" for index in shown],
            width=84,
        )


app.page_ui()
st.title("Confusion matrix")
st.caption("Rows are the true digit, columns the model's answer; the diagonal holds the correct answers.")
controls, toggle = st.columns([3, 1], vertical_alignment="bottom")
with controls:
    model_id = app.model_picker_ui("Model", key="confusion_model")
normalise = toggle.toggle("Share of each true digit", value=False, key="confusion_normalise")
model = app.require_model_ui(model_id)

if model is not None:
    matrix = np.array(model.metrics.confusion_matrix)
    heatmap, details = st.columns([1.3, 1], gap="large")
    with heatmap:
        matrix_ui(matrix, normalise)
    with details:
        st.subheader("Most confused pairs")
        for true_digit, predicted, count in evaluate.most_confused_pairs(matrix, count=5):
            st.markdown(f"- **{true_digit}** read as **{predicted}**: {count} images")
        accuracy = model.metrics.accuracy["test"]
        errors = int(matrix.sum() - np.trace(matrix))
        st.metric(
            "Test accuracy", app.percent(accuracy), f"{errors} errors", delta_color="off", delta_arrow="off"
        )
    st.subheader("Per digit")
    bars = {
        name: st.column_config.ProgressColumn(name, format="percent", min_value=0.0, max_value=1.0)
        for name in ("precision", "recall", "F1")
    }
    app.narrow_table_ui(
        per_class_table(model.metrics),
        ["digit", "recall", "F1"],
        lambda table: st.dataframe(table, hide_index=True, column_config=bars),
    )
    st.subheader("Test images in one cell")
    true_digit, predicted = cell_picker_ui(matrix)
    gallery_ui(model.metrics, true_digit, predicted)
