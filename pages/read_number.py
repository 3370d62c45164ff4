"""Read a number: from an uploaded photo, the camera or a wide drawing, every digit found and read.

The picture comes back with a numbered box around each digit, the number as
the chosen model reads it (and as every model does), whether it is sure of the
whole number (if not, the digit to check boxed in orange), and each digit as
the models saw it, 28x28. A digit read wrong can be kept with the right answer,
in the same drawings store the Draw page keeps drawings in.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import streamlit as st

import digitdraw
from digitdraw.serving.images import UPLOAD_TYPES
from digitdraw.serving.preprocess import IMAGE_SIZE
from digitdraw.ui import app, charts

SOURCES = {
    "Upload": ":material/upload:",
    "Camera": ":material/photo_camera:",
    "Draw": ":material/draw:",
}


def source_ui() -> np.ndarray | None:
    """The chosen source's image as an array; None while there is none."""
    source = st.segmented_control(
        "Read from",
        list(SOURCES),
        format_func=lambda name: f"{SOURCES[name]} {name}",
        default="Upload",
        key="read_source",
    )
    if source == "Camera":
        photo = st.camera_input("Take a photo of a number", key="read_camera")
        return app.image_file_ui(None if photo is None else photo.getvalue())
    if source == "Draw":
        return wide_canvas_ui()
    upload = st.file_uploader(
        "A photo or scan of a number: a page, a cheque, a form, a whiteboard",
        type=list(UPLOAD_TYPES),
        key="read_upload",
        max_upload_size=app.MAX_UPLOADED_IMAGE_MB,
    )
    return app.image_file_ui(None if upload is None else upload.getvalue())


def wide_canvas_ui() -> np.ndarray | None:
    """A canvas wider than tall for a number, with Clear; its RGBA image, or None while it is empty."""
    width, height = app.wide_canvas_size()
    # Also the room the canvas's toolbar takes above the canvas, clear of the buttons above it.
    st.caption("Write a number, digits side by side: it is read each time you lift the pen.")
    drawing = app.drawing_canvas_ui("wide_canvas", width, height, stroke_width=max(6, height // 16))
    app.clear_canvas_ui("wide_canvas")
    return None if drawing is None else drawing[0]


def number_ui(reading: digitdraw.NumberReading, model_id: int, doubtful: int | None) -> None:
    """The number as the chosen model reads it, whether it is sure of the whole number, and if not, which
    digit it doubts."""
    if model_id in reading.errors:
        app.model_error_ui(model_id, reading.errors[model_id])
        return
    if model_id not in reading.probabilities:  # A network that arrived after this picture was read.
        st.info(
            f"{app.model_label(model_id)} arrived after this picture was read: upload it again, "
            "or choose another model."
        )
        return
    digits = f"{len(reading)} digit{'s' * (len(reading) != 1)}"
    st.metric(
        f"{app.model_name(model_id)} reads",
        reading.text(model_id),
        f"{digits}, sure" if reading.is_sure(model_id) else f"{digits}, not sure",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    if doubtful is not None:
        other = reading.second_opinion(model_id)
        guess, confidence = reading.digits(model_id)[doubtful], reading.confidences(model_id)[doubtful]
        other_guess = reading.digits(other)[doubtful] if other is not None else guess
        second = (
            f"; {app.model_name(other)} reads it as {app.article(other_guess)} {other_guess}"
            if other_guess != guess
            else ""
        )
        tall = (
            ", and it stands much taller than the others: it may be a line, not a digit"
            if doubtful in reading.tall_ones(model_id)
            else ""
        )
        st.warning(
            f"Not sure of this number: check digit {doubtful + 1} (boxed in orange), read as "
            f"{app.article(guess)} {guess} at {confidence:.0%}{second}{tall}.",
            icon=":material/help:",
        )


def left_out_ui(reading: digitdraw.NumberReading) -> None:
    """What the grey boxes on the picture are, when there are any."""
    if reading.left_out:
        count = len(reading.left_out)
        what = "1 mark not read as a digit" if count == 1 else f"{count} marks not read as digits"
        st.caption(
            f"Grey box{'es' * (count != 1)}: {what}, lying along the picture's edge (a table, a frame) or "
            "too short beside the digits."
        )


def straightened_ui(reading: digitdraw.NumberReading, image: np.ndarray, doubtful: int | None) -> None:
    """The slanted line turned level, as its digits were cut from it, when it was."""
    straightening = reading.straightening
    if straightening is None or round(abs(straightening.degrees)) == 0:
        return  # A page turned by a fraction of a degree to lay its rules level looks as it was.
    turn = "anticlockwise" if straightening.degrees > 0 else "clockwise"
    line, boxes = straightening.line(image)
    st.image(
        charts.boxed_picture(line, boxes, doubtful=doubtful),
        caption=f"The line straightened: turned {abs(straightening.degrees):.0f}° {turn}, so that its digits "
        "stand upright, before they were cut apart and read.",
        width="stretch",
    )


def every_model_ui(reading: digitdraw.NumberReading, chosen: int) -> None:
    """Every model's number side by side."""
    answers = {m: reading.text(m) for m in reading.probabilities}
    models = [*reading.probabilities, *reading.errors]
    # Short names: the table shares a narrow column with the answer, and the picker below names each fully.
    table = pd.DataFrame(
        {
            "Model": [app.model_name(m) + ("  ◀" if m == chosen else "") for m in models],
            "Reads": [answers.get(m, "unavailable") for m in models],
        }
    )
    st.dataframe(table, hide_index=True, key="read_every_model")


def digits_ui(reading: digitdraw.NumberReading, model_id: int, doubtful: int | None) -> None:
    """Each digit as the models saw it (28x28), numbered as its box, with the chosen model's answer."""
    if model_id not in reading.probabilities:
        return
    cell = app.STEP_IMAGE_WIDTH // IMAGE_SIZE
    pictures = [
        (
            charts.pixel_grid(image, cell=cell),
            f"{number}: {digit} ({confidence:.0%})" + (", doubtful" if number - 1 == doubtful else ""),
        )
        for number, (image, digit, confidence) in enumerate(
            zip(reading.images, reading.digits(model_id), reading.confidences(model_id), strict=True), start=1
        )
    ]
    st.html(charts.image_row(pictures, app.STEP_IMAGE_WIDTH))


def keep_ui(reading: digitdraw.NumberReading, image: np.ndarray, model_id: int) -> None:
    """Pick a digit, say what it really is, and keep it in the drawings store, as on the Draw page."""
    state = st.session_state
    state.setdefault("read_kept", {})  # (image digest, digit index) -> (id in the store, label).
    digest = hashlib.sha256(image.tobytes()).hexdigest()[:16]
    guesses = reading.digits(model_id) if model_id in reading.probabilities else [None] * len(reading)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        index = st.selectbox(
            "Digit",
            range(len(reading)),
            format_func=lambda i: f"{i + 1}: read as {guesses[i]}",
            key=f"read_pick_{digest}",
        )
        guess = guesses[index] if guesses[index] is not None else 0
        label = st.selectbox("It is a", range(10), index=guess, key=f"read_label_{digest}_{index}")
        keep = st.button("Keep this digit", icon=":material/bookmark_add:", key=f"read_keep_{digest}")
    if keep:
        png = charts.region_png(image, reading.boxes[index])
        drawing_id = app.keep_drawing(reading.classification(index), label, png)
        if drawing_id is not None:
            state.read_kept[(digest, index)] = (drawing_id, label)
    if (digest, index) in state.read_kept:
        kept_as = state.read_kept[(digest, index)][1]
        st.markdown(
            f":material/check_circle: Digit {index + 1} is kept as {app.article(kept_as)} **{kept_as}**. "
            "Thank you!"
        )
    st.caption(
        "Keeping stores this digit's picture, what the models saw, your answer and every model's, with an "
        "anonymous id for this browser, as the Draw page does. Nothing is kept unless you tap Keep."
    )


app.page_ui()
st.title("Read a number")
app.loaded_models()
image = source_ui()
if image is None:
    st.info(
        "Upload a photo of a number, take one with the camera, or draw one: every digit is found and "
        "read, on paper that is lit unevenly, ruled or photographed at any size.",
        icon=":material/pin:",
    )
else:
    reading = digitdraw.read_digits(image)
    if not len(reading):
        st.info("No digits here. Digits darker (or lighter) than the paper, each at least a ninetieth of "
                "the picture's longer side tall, are found.", icon=":material/search_off:")  # fmt: skip
        st.image(charts.boxed_picture(image, [], left_out=reading.left_out), width="content")
        left_out_ui(reading)
    else:
        left, right = st.columns([1.6, 1], gap="medium")
        picture = left.empty()  # Drawn once the model is picked: its doubtful digit is boxed in orange.
        with right:
            # The answer first, the picker under it: on a phone the number shows right below the picture.
            answer = st.container()
            model_id = app.model_picker_ui("Model", key="read_model")
        doubtful = reading.doubtful_digit(model_id) if model_id in reading.probabilities else None
        with picture.container():
            st.image(
                charts.boxed_picture(image, reading.boxes, doubtful=doubtful, left_out=reading.left_out),
                width="stretch",
            )
            left_out_ui(reading)
            straightened_ui(reading, image, doubtful)
        with right, answer:
            number_ui(reading, model_id, doubtful)
            every_model_ui(reading, model_id)
        st.subheader("Each digit as the models see it")
        digits_ui(reading, model_id, doubtful)
        st.subheader("Read wrong? Keep the right answer")
        keep_ui(reading, image, model_id)
app.canvas_toolbar_ui()
app.remember_browser_ui()
