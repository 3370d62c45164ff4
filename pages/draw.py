"""Draw a digit; every model classifies it as soon as the stroke ends.

The drawing area is one fragment: a stroke or Clear reruns the canvas and the
answers only, not the app around them. The model picker and the brush size sit
above it, outside the fragment, so a stroke does not rerun them either. Clear
and the chosen model's answer sit right under the canvas, so that on a phone
the drawing, Clear and the answer share the first screen. A stroke's run sends
that answer first and pauses a moment before the rest (``app.answer_head_start``),
so that the browser shows the answer before it draws everything else; a run that
changes no drawing (a keep, another model) does not pause.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

import digitdraw
from digitdraw.serving.networks import MODEL_IDS, ModelId
from digitdraw.serving.preprocess import CANVAS_SIZE
from digitdraw.ui import app, charts

# Wide enough for the longest registry model's name ("Model 6 · 784-conv16-pool-...").
MODEL_PICKER_WIDTH = 420
# The brush's width in pixels of a CANVAS_SIZE canvas (smaller canvases scale it): its range, and where it
# starts, a stroke about as wide as an MNIST digit's.
BRUSH_WIDTHS = (6, 40)
DEFAULT_BRUSH_WIDTH = 20


def canvas_ui(brush: int) -> tuple[np.ndarray | None, bytes | None]:
    """The drawing canvas, sized for this browser, with this brush; its RGBA image and PNG, or Nones
    while it is empty or just cleared."""
    size = app.canvas_size()
    drawing = app.drawing_canvas_ui("canvas", size, size, round(brush * size / CANVAS_SIZE))
    return drawing or (None, None)


def _digest(result: digitdraw.Classification) -> str:
    """What identifies a drawing across runs: a hash of the model input it makes."""
    return hashlib.sha256(result.image.tobytes()).hexdigest()


def _forget_strokes() -> None:
    """Start a fresh stroke timeline: after Clear, or whenever the canvas is blank (its Reset or Undo)."""
    st.session_state.stroke_answers = []
    st.session_state.stroke_count = 0
    st.session_state.pop("stroke_digest", None)


def controls_ui() -> tuple[ModelId, int]:
    """The model picker and the brush size, on the page above the canvas; returns the chosen model id and
    the brush's width. Both last through a visit to another page.

    They sit outside the drawing fragment: a stroke does not rerun them (they were a quarter of a
    stroke's server time), and picking another model or brush reruns the page, which is rare. On a
    phone the picker takes the row's width, its label folded away, so that the canvas, Clear and the
    answer still share the first screen.
    """
    phone = app.on_phone()
    with st.container(horizontal=True, vertical_alignment="bottom"):
        # Each option says "Model 4 · 784-64-64-10 · ReLU"; a label above it would only cost a line.
        model_id = app.model_picker_ui(
            "Model",
            key="draw_model",
            label_visibility="collapsed",
            width="stretch" if phone else MODEL_PICKER_WIDTH,
        )
        with st.popover("Brush", icon=":material/brush:"):
            low, high = BRUSH_WIDTHS
            brush = st.slider(
                "Brush size",
                min_value=low,
                max_value=high,
                value=DEFAULT_BRUSH_WIDTH,
                key="stroke_width",
                persist_state="session",
            )
    return model_id, brush


def answer_ui(result: digitdraw.Classification | None, model_id: ModelId) -> None:
    """The chosen model's digit and confidence, or a prompt while nothing is drawn."""
    if result is None or result.is_blank:
        # Short: it shares a row with Clear under the canvas (what the models do is said beside it).
        st.info("Draw a digit on the canvas, 0 to 9, any size.", icon=":material/draw:")
    elif model_id in result.errors:
        app.model_error_ui(model_id, result.errors[model_id])
    elif model_id not in result.probabilities:  # A network that arrived after this drawing was read.
        st.info(f"{app.model_label(model_id)} is new: draw again to see its answer.", icon=":material/draw:")
    elif not result.is_digit(model_id):
        # Short beside Clear; what it means follows under them, at the column's width (not_a_digit_ui).
        st.warning("**That doesn't look like a digit.**", icon=":material/help:")
    else:
        confidence = result.confidence(model_id)
        st.metric(
            f"{app.model_name(model_id)} reads",
            result.digit(model_id),
            f"{confidence:.1%} confident",
            delta_color="off",
            delta_arrow="off",
            border=True,
            help=(
                f"Calibrated; the network's own figure is {result.raw_probabilities[model_id].max():.1%}."
                if result.digit_score(model_id) is not None
                else None
            ),
        )
        if confidence < 0.6:
            # The study's networks read clear digits surely; a network of one's own may be unsure of any.
            st.caption(
                f"{app.model_name(model_id)} is not sure of this one."
                + ("" if isinstance(model_id, str) else " A larger, clearer digit usually helps.")
            )


def not_a_digit_ui(result: digitdraw.Classification, model_id: ModelId) -> None:
    """What "That doesn't look like a digit" means, under the answer and Clear, where it has room."""
    if model_id in result.probabilities and not result.is_digit(model_id):
        guess = result.digit(model_id)
        st.caption(
            f"{app.model_name(model_id)} would guess {app.article(guess)} {guess}, but this drawing looks "
            "less like a digit than almost every real drawn digit does. Draw one digit, 0 to 9."
        )


def keep_ui(result: digitdraw.Classification, model_id: ModelId, canvas_png: bytes | None) -> None:
    """Right, or the digit it really is: one tap keeps the drawing, and only that tap does."""
    state = st.session_state
    state.setdefault("kept", {})  # Drawing digest -> (id in the store, label).
    digest = _digest(result)
    if "kept_looked_up" not in state:
        # A session's first drawing may be one this browser kept in a session now gone (its app replica
        # stopped, and the canvas still holds the drawing): the store says so, once, rather than offer
        # to keep it twice. Later drawings are new, or kept in this session.
        state.kept_looked_up = True
        found = app.kept_before(result)
        if found is not None:
            state.kept[digest] = found
    # One slot that shows either the choices or what was kept, replaced in place within a run.
    slot = st.empty()
    if digest in state.kept:
        if not _kept_ui(slot, *state.kept[digest]):
            return
        app.forget_drawing(state.kept.pop(digest)[0])
    guess = result.digit(model_id) if model_id in result.probabilities else None
    with slot.container():
        # A drawing the model does not take for a digit offers no "Right": there is no answer to confirm.
        flagged = guess is not None and not result.is_digit(model_id)
        right = (
            guess is not None
            and not flagged
            and st.button(
                f"Right, it is {app.article(guess)} {guess}",
                icon=":material/check:",
                key="keep_right",
                # A phone has no Enter key to press: its hint would only crowd the button.
                shortcut=None if app.on_phone() else "Enter",
            )
        )
        # One widget for the ten digits, not ten buttons: each widget costs every stroke's rerun time.
        st.pills(
            "A digit after all? It is a" if flagged else "Not right? It is a",
            range(10),
            key="keep_as",
            on_change=_correction_picked,
        )
        label = state.pop("keep_label", None)
        st.caption(
            "Keeping stores this drawing, what the models saw, your answer and every model's, with an "
            "anonymous id for this browser. Nothing is kept unless you tap"
            + ("." if app.on_phone() else " (or press Enter for Right).")
        )
    chosen = guess if right else label
    if chosen is not None:
        drawing_id = app.keep_drawing(result, chosen, canvas_png)
        if drawing_id is not None:
            state.kept[digest] = (drawing_id, chosen)
            _kept_ui(slot, drawing_id, chosen)


def _correction_picked() -> None:
    """Take the digit the user picked once, and let the pills forget it: a pick keeps one drawing."""
    st.session_state.keep_label = st.session_state.keep_as
    st.session_state.keep_as = None


def _kept_ui(slot, drawing_id: int, label: int) -> bool:
    """Show that the drawing is kept, with Undo; returns True when Undo was pressed."""
    with slot.container(horizontal=True, vertical_alignment="center"):
        st.markdown(f":material/check_circle: Kept as {app.article(label)} **{label}**. Thank you!")
        return st.button("Undo", key=f"undo_keep_{drawing_id}")


def probabilities_html(result: digitdraw.Classification, model_id: ModelId) -> str:
    """All ten probabilities of the chosen model, as HTML (empty for a model without an answer)."""
    if model_id not in result.probabilities:
        return ""
    title = f"{app.model_name(model_id)}, digit by digit"
    if not result.is_digit(model_id):
        title = f"{app.model_name(model_id)}'s guesses, for something that does not look like a digit"
    return charts.probability_bars(result.probabilities[model_id], title)


def answers_html(result: digitdraw.Classification, model_id: ModelId) -> str:
    """Beside the canvas: the chosen model's ten probabilities, then every model's answer, as HTML."""
    return probabilities_html(result, model_id) + all_models_html(result, model_id)


def all_models_html(result: digitdraw.Classification, chosen: ModelId) -> str:
    """Every model's answer for the same drawing, showing where they disagree, and how each model's
    answer went stroke by stroke, as HTML."""
    answers = {model_id: result.digit(model_id) for model_id in result.probabilities}
    agreement = ""
    if len(set(answers.values())) > 1:
        agreement = charts.note("The models disagree on this drawing.", "disagree")
    elif answers and chosen in answers and not result.is_digit(chosen):
        # They agree on a guess, for a drawing the chosen model takes for no digit: no green "read" here.
        agreed = answers[chosen]
        agreement = charts.note(
            f"All {len(answers)} models would guess {app.article(agreed)} <b>{agreed}</b>, for a drawing "
            "that does not look like a digit.",
            "disagree",
        )
    elif answers:
        agreed = next(iter(answers.values()))
        agreement = charts.note(
            f"All {len(answers)} models read {app.article(agreed)} <b>{agreed}</b>.", "agree"
        )
    rows = [
        (
            app.model_label(m) + ("  ◀" if m == chosen else ""),
            answers.get(m),
            result.confidence(m) if m in answers else None,
        )
        for m in app.model_ids()
    ]
    timeline = timeline_html(result, chosen, f"Stroke by stroke (the latest {charts.TIMELINE_STROKES})")
    return charts.section_heading("Every model's answer") + agreement + charts.model_answers(rows) + timeline


def timeline_html(result: digitdraw.Classification, model_id: ModelId, title: str) -> str:
    """Every model's answer after each of the latest strokes of this drawing (a blank canvas starts a new
    one), as plain HTML."""
    state = st.session_state
    state.setdefault("stroke_answers", [])
    state.setdefault("stroke_count", len(state.stroke_answers))
    digest = _digest(result)
    # A rerun without a new stroke (another model picked, a keep button) adds nothing.
    if state.get("stroke_digest") != digest:
        state.stroke_digest = digest
        state.stroke_count += 1
        # Only the strokes the timeline shows are kept, so a long drawing does not grow the session.
        latest = {m: (result.digit(m), result.confidence(m)) for m in result.probabilities}
        state.stroke_answers = [*state.stroke_answers, latest][-charts.TIMELINE_STROKES :]
    first_stroke = state.stroke_count - len(state.stroke_answers) + 1
    return charts.stroke_timeline(state.stroke_answers, model_id, first_stroke, title)


def model_input_html(result: digitdraw.Classification) -> str:
    """What the model sees: the steps from the drawing to the 28x28 input, left to right, as HTML."""
    steps, width = result.steps, app.STEP_IMAGE_WIDTH
    pictures = [
        (charts.display_image(steps.ink, width), "1. Your ink"),
        # Cropped tight, the strokes touch the picture's edge and look cut off: shown with a margin of a
        # stroke's width (the models' input is the same either way).
        (
            charts.display_image(np.pad(steps.cropped, round(steps.stroke_width)), width),
            "2. Cropped, even, upright",
        ),
        (charts.display_image(np.pad(steps.resized, 2), width), "3. Fit in 20×20"),
        (charts.display_image(steps.centred, width), "4. Centred in 28×28"),
        (
            charts.pixel_grid(result.image, cell=width // result.image.shape[0]),
            "The model's input, pixel by pixel",
        ),
    ]
    return charts.section_heading("What the model sees") + charts.image_row(pictures, width)


@st.fragment
def drawing_ui(model_id: ModelId, brush: int) -> None:
    """The canvas, Clear and every answer: the part of the page a stroke changes. A stroke reruns it with
    the model and brush of the page's last run: changing either reruns the page."""
    left, right = st.columns([1, 1.25], gap="large")
    with left:
        image, canvas_png = canvas_ui(brush)
        result = app.classify_drawing(image)
        app.remember_drawing(result, image)
        # Side by side, so that on a phone the canvas, Clear and the answer share the first screen.
        with st.container(horizontal=True, vertical_alignment="center"):
            with st.container():  # The answer and its "not sure" note, one above the other.
                answer_ui(result, model_id)
            # Clear also forgets the drawing's answers.
            app.clear_canvas_ui("canvas", then=_forget_strokes)
        if result is not None and not result.is_blank:
            if _digest(result) != st.session_state.get("stroke_digest"):
                # A new drawing's answer goes out on its own, and is on screen before the rest of the run
                # arrives. A keep, an undo or another model changes no drawing, and waits for nothing.
                app.answer_head_start()
            not_a_digit_ui(result, model_id)
            keep_ui(result, model_id, canvas_png)
    if result is None or result.is_blank:
        _forget_strokes()
        trained = len(app.model_ids()) - len(MODEL_IDS)
        right.caption(
            f"{len(MODEL_IDS)} networks read your drawing the moment you lift the pen: the study's two "
            "sizes (16 and 64 hidden units per layer) and two activations (sigmoid and ReLU), one wide "
            "layer of 128, and a small convolutional network beyond the study"
            + (f"; beside them, the {trained} trained on the Train page." if trained else ".")
        )
        return
    # Each element a stroke sends costs the browser its own render and the server its own message: the
    # answers beside the canvas are one piece of HTML, and the pictures under it another
    # (docs/performance.md).
    with right:
        st.html(answers_html(result, model_id))
    st.html(model_input_html(result))
    app.page_link_ui("pages/inside.py", "Look inside the networks with this drawing", ":material/neurology:")


app.page_ui()
st.title("Draw a digit")
# Ready the models with the page, not with the first stroke; later calls only check their files.
app.prepare_models()
chosen_model, chosen_brush = controls_ui()
# Room above the canvas for the canvas's own toolbar, which would otherwise cover the controls.
st.space("small")
drawing_ui(chosen_model, chosen_brush)
app.canvas_toolbar_ui()
app.preload_first_answer_ui()
app.remember_browser_ui()
