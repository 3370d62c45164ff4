"""AppTest for the Read a number page: an upload, a camera photo and a wide drawing are read, a bad file
is one calm sentence, an image without digits says so, and a corrected digit is kept in the store."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import streamlit as st
from drawings import canvas_value, clear_marker_of, draw_digit
from PIL import Image
from streamlit.testing.v1 import AppTest

import digitdraw
from digitdraw.drawings import store

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "read_number.py")


def _number(*digits: int) -> np.ndarray:
    """A wide RGBA drawing of the digits, black ink on a transparent background."""
    return np.concatenate([draw_digit(d) for d in digits], axis=1)


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


# Every test keeps what it keeps in a store of its own (tests/conftest.py), never in the working tree.
pytestmark = pytest.mark.usefixtures("drawings_store")


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def inputs(monkeypatch):
    """Stand-ins for what needs a browser: the file uploader, the camera and the canvas component."""
    state = SimpleNamespace(upload=None, camera=None, canvas=None, sent=None, canvas_calls=[], marker=None)

    def file(data):
        return None if data is None else SimpleNamespace(getvalue=lambda: data, name="number.png")

    monkeypatch.setattr(st, "file_uploader", lambda *args, **kwargs: file(state.upload))
    monkeypatch.setattr(st, "camera_input", lambda *args, **kwargs: file(state.camera))

    def fake_st_canvas(**kwargs):
        state.canvas_calls.append(kwargs)
        # Like the component: a drawing it has not sent before is reported, and calls on_change; a new
        # session (its server restarted) is handed the drawing the canvas holds, without a callback.
        report = state.canvas is not state.sent
        if report or kwargs["key"] not in st.session_state:
            state.sent = state.canvas
            # Marked with the Clears of the drawing it was given, or of an earlier one (a stale report).
            marker = state.marker or clear_marker_of(kwargs["initial_drawing"])
            st.session_state[kwargs["key"]] = canvas_value(
                state.canvas, kwargs["width"], kwargs["height"], marker
            )
            if report:
                kwargs["on_change"]()

    module = ModuleType("streamlit_drawable_canvas")
    module.st_canvas = fake_st_canvas
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", module)
    return state


def _run(app: AppTest | None = None) -> AppTest:
    app = app or AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_before_any_image_the_page_says_what_to_do(inputs):
    app = _run()
    assert app.title[0].value == "Read a number"
    assert "Upload a photo of a number" in app.info[0].value and not app.metric


def test_an_uploaded_photo_is_read_with_every_models_number_and_each_digit(inputs):
    inputs.upload = _png(255 - _number(4, 0, 7)[:, :, 3])  # Dark ink on white paper.
    app = _run()
    assert app.metric[0].label == "Model 4 reads" and app.metric[0].value == "407"
    table = app.dataframe[0].value
    assert list(table["Reads"]) == ["407"] * len(digitdraw.MODEL_IDS)
    pictures = "".join(h.proto.body for h in app.get("html"))
    assert pictures.count("<figure") == 3 and "1: 4 (" in pictures and "3: 7 (" in pictures
    app.selectbox(key="read_model").set_value(2).run()
    assert app.metric[0].label == "Model 2 reads" and app.metric[0].value == "407"


def test_a_number_read_surely_says_so_and_an_unsure_one_boxes_its_doubtful_digit(inputs, monkeypatch):
    from digitdraw.reading import read

    inputs.upload = _png(255 - _number(4, 0, 7)[:, :, 3])
    app = _run()
    assert app.metric[0].delta == "3 digits, sure" and not app.warning
    monkeypatch.setattr(read, "SURE_NUMBER", 1.01)  # No number is that sure.
    app.run()
    assert app.metric[0].delta == "3 digits, not sure"
    assert "Not sure of this number: check digit" in app.warning[0].value
    pictures = "".join(h.proto.body for h in app.get("html"))
    assert len(re.findall(r"<figcaption[^>]*>[^<]*, doubtful", pictures)) == 1


def test_a_1_taller_than_the_other_digits_is_named_as_maybe_a_line(inputs):
    photo = np.pad(255 - _number(4, 0, 7)[:, :, 3], 60, constant_values=255)
    photo[40:-70, 345:357] = 0  # A line between the 4 and the 0, far taller than the digits.
    inputs.upload = _png(photo)
    app = _run()
    assert app.metric[0].value == "4107" and app.metric[0].delta == "4 digits, not sure"
    warning = app.warning[0].value
    assert "check digit 2 (boxed in orange), read as a 1 at " in warning
    assert warning.endswith(", and it stands much taller than the others: it may be a line, not a digit.")


def test_marks_not_read_as_digits_are_explained_under_the_picture(inputs):
    photo = 255 - _number(4, 0, 7)[:, :, 3]
    photo[:, -12:] = 20  # A dark table edge.
    inputs.upload = _png(photo)
    app = _run()
    assert app.metric[0].value == "407"
    captions = [caption.value for caption in app.caption]
    assert any("Grey box: 1 mark not read as a digit, lying along" in caption for caption in captions)


def test_a_number_written_at_a_slant_is_shown_straightened(inputs):
    import cv2

    from digitdraw.reading import read

    level = np.pad(255 - _number(4, 0, 7, 1)[:, :, 3], 40, constant_values=255)
    matrix, size = read.turning(level.shape, -18.0)  # The line falls to the right by 18 degrees.
    inputs.upload = _png(cv2.warpAffine(level, matrix, size, borderValue=255))
    app = _run()
    assert app.metric[0].value == "4071"
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert any(re.fullmatch(r"The line straightened: turned 1[5-9]° anticlockwise, .*", c) for c in captions)


def test_a_level_number_is_shown_once(inputs):
    inputs.upload = _png(255 - _number(4, 0, 7)[:, :, 3])
    app = _run()
    assert len(app.get("image")) == 1


def test_a_camera_photo_is_read(inputs):
    inputs.camera = _png(np.dstack([255 - _number(1, 7)[:, :, 3]] * 3))
    app = _run()
    app.button_group(key="read_source").set_value("Camera").run()
    assert app.metric[0].value == "17"


def test_a_wide_drawing_is_read_on_a_canvas_wider_than_tall(inputs):
    inputs.canvas = _number(7, 1, 0, 4)
    app = _run()
    app.button_group(key="read_source").set_value("Draw").run()
    assert app.metric[0].value == "7104"
    call = inputs.canvas_calls[-1]
    assert call["width"] > call["height"] and call["return_image_data"] is True
    # Clear empties the canvas in place; the old number is gone before the canvas reports back.
    app.button(key="wide_canvas_clear").click().run()
    assert inputs.canvas_calls[-1]["initial_drawing"] != call["initial_drawing"]
    assert not app.metric and "Upload a photo of a number" in app.info[0].value
    inputs.canvas = _number(1, 7)
    app.run()
    assert app.metric[0].value == "17"


def test_an_empty_canvas_asks_for_a_number(inputs):
    inputs.canvas = np.zeros((280, 840, 4), np.uint8)
    app = _run()
    app.button_group(key="read_source").set_value("Draw").run()
    assert not app.metric and "Upload a photo of a number" in app.info[0].value


def test_a_damaged_file_is_one_calm_sentence(inputs):
    inputs.upload = _png(255 - _number(4, 0)[:, :, 3])[:500]
    app = _run()
    assert len(app.error) == 1 and "That file cannot be read" in app.error[0].value
    assert "truncated" in app.error[0].value and not app.metric


def test_a_picture_without_digits_says_so(inputs):
    inputs.upload = _png(np.full((300, 500), 235, np.uint8))
    app = _run()
    assert "No digits here" in app.info[0].value and not app.metric


def test_a_corrected_digit_is_kept_in_the_drawings_store(inputs, drawings_store):
    inputs.upload = _png(255 - _number(4, 0, 7)[:, :, 3])
    app = _run()
    [pick] = [s for s in app.selectbox if s.label == "Digit"]
    pick.set_value(1).run()
    [label] = [s for s in app.selectbox if s.label == "It is a"]
    assert label.value == 0  # The model's answer is offered first.
    label.set_value(6).run()
    [keep] = [b for b in app.button if b.label == "Keep this digit"]
    keep.click().run()
    assert not app.exception
    assert "Digit 2 is kept as a **6**" in "".join(m.value for m in app.markdown)
    [kept] = store.open_store(drawings_store).drawings()
    assert kept.label == 6 and kept.canvas_png.startswith(b"\x89PNG")
    reading = digitdraw.read_digits(255 - _number(4, 0, 7)[:, :, 3])
    assert np.allclose(kept.model_input, reading.images[1])
    assert set(kept.probabilities) == set(digitdraw.MODEL_IDS)
