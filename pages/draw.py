"""Draw a digit; every model classifies it as soon as the stroke ends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas

import digitdraw
from digitdraw.preprocess import CANVAS_SIZE
from digitdraw.ui import app, charts


def canvas_ui() -> np.ndarray | None:
    """The drawing canvas with its brush and Clear controls; returns the RGBA image."""
    if "canvas_generation" not in st.session_state:
        st.session_state.canvas_generation = 0
    stroke_width = st.slider("Brush size", min_value=6, max_value=40, value=20, key="stroke_width")
    result = st_canvas(
        stroke_width=stroke_width,
        stroke_color="#111111",
        background_color="#FFFFFF",
        height=CANVAS_SIZE,
        width=CANVAS_SIZE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"canvas_{st.session_state.canvas_generation}",
    )
    # A callback runs before the next rerun, so the canvas is then mounted
    # under a new key: a fresh, empty canvas that cannot bring the drawing back.
    st.button("Clear the canvas", icon=":material/ink_eraser:", on_click=_clear_canvas, key="clear")
    return result.image_data


def _clear_canvas() -> None:
    st.session_state.canvas_generation += 1


def prediction_ui(result: digitdraw.Classification, model_id: int) -> None:
    """The chosen model's digit, its confidence and all ten probabilities."""
    if model_id in result.errors:
        app.model_error_ui(model_id, result.errors[model_id])
        return
    digit, confidence = result.digit(model_id), result.confidence(model_id)
    st.metric(
        f"Model {model_id} reads",
        digit,
        f"{confidence:.1%} confident",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    if confidence < 0.6:
        st.caption("Not sure: a larger, clearer digit usually helps.")
    st.plotly_chart(
        charts.probability_bars(result.probabilities[model_id]),
        config={"displayModeBar": False},
        key="probabilities",
    )


def all_models_ui(result: digitdraw.Classification, chosen: int) -> None:
    """Every model's answer for the same drawing, showing where they disagree."""
    answers = {model_id: result.digit(model_id) for model_id in result.probabilities}
    if len(set(answers.values())) > 1:
        st.warning("The models disagree on this drawing.", icon=":material/call_split:")
    elif answers:
        st.success(
            f"All {len(answers)} models read a **{next(iter(answers.values()))}**.", icon=":material/check:"
        )
    table = pd.DataFrame(
        {
            "Model": [app.model_label(m) + ("  ◀" if m == chosen else "") for m in digitdraw.MODEL_IDS],
            "Reads": [str(answers[m]) if m in answers else "unavailable" for m in digitdraw.MODEL_IDS],
            "Confidence": [result.confidence(m) if m in answers else None for m in digitdraw.MODEL_IDS],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "Confidence": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
        },
        key="all_models",
    )


def model_input_ui(result: digitdraw.Classification) -> None:
    """What the model sees: the 28x28 input, enlarged, and the steps that made it."""
    steps = result.steps
    st.image(
        charts.pixel_grid(result.image), caption="The 28×28 input, one square per pixel", width=CANVAS_SIZE
    )
    columns = st.columns(4)
    for column, (image, caption) in zip(
        columns,
        (
            (steps.ink, "1. Your ink"),
            (steps.cropped, "2. Cropped, even, upright"),
            (steps.resized, "3. Fit in 20×20"),
            (steps.centred, "4. Centred in 28×28"),
        ),
    ):
        column.image(charts.display_image(image), caption=caption, width="stretch")


st.title("Draw a digit")
st.caption(
    "Draw one digit, 0 to 9, as large as you like. Each network of the study reads it the moment you "
    "lift the pen; pick a model to see its full answer."
)
left, right = st.columns([1, 1.25], gap="large")
with left:
    image = canvas_ui()
with right:
    model_id = app.model_picker_ui("Model", key="draw_model")

result = app.classify_drawing(image)

if result is None or result.is_blank:
    right.info("Draw a digit on the canvas to see what the models think it is.", icon=":material/draw:")
else:
    with right:
        prediction_ui(result, model_id)
        st.subheader("Every model's answer")
        all_models_ui(result, model_id)
    with left:
        st.subheader("What the model sees")
        model_input_ui(result)
