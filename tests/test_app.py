"""AppTest for every page: each renders without an exception, and the draw page's logic works
with a canvas image injected in place of the browser-only canvas component."""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import cv2
import numpy as np
import pytest
import streamlit as st
from drawings import blank_canvas, canvas_value, clear_marker_of, draw_digit
from saved import save_constant_model
from streamlit.testing.v1 import AppTest

from digitdraw.drawings import store
from digitdraw.serving import saved_models
from digitdraw.serving.networks import SAVED_MODELS_ENV_VAR, saved_models_dir
from digitdraw.serving.preprocess import CANVAS_SIZE
from digitdraw.serving.saved_models import OPTIONAL_FILES, model_dir
from digitdraw.ui import app as ui_app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "pages/draw.py",
    "pages/training_curves.py",
    "pages/confusion_matrix.py",
    "pages/compare.py",
    "pages/your_drawings.py",
    "pages/inside.py",
    "pages/read_number.py",
    "pages/train.py",
]
TIMEOUT = 60

# Every test keeps what it keeps in a store of its own (tests/conftest.py), never in the working tree.
pytestmark = pytest.mark.usefixtures("drawings_store")


@pytest.fixture(scope="session")
def mnist_test_inputs():
    """The 10,000 MNIST test images as the models see them: the app's own ``mnist_test_inputs``, called
    once for the session (it preprocesses them all, about 5 s)."""
    return ui_app.mnist_test_inputs()


@pytest.fixture(autouse=True)
def preprocessed_mnist_once(monkeypatch, mnist_test_inputs):
    """``app.mnist_test_inputs`` depends on the MNIST files alone, so every test reads the session's copy
    of its answer instead of preprocessing 10,000 images again after ``fresh_caches``; without the data
    (``mnist_test_set`` None) it still gives None."""
    monkeypatch.setattr(
        ui_app, "mnist_test_inputs", lambda: None if ui_app.mnist_test_set() is None else mnist_test_inputs
    )


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts with empty Streamlit caches, as a new server would."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def canvas(monkeypatch):
    """Stand in for the canvas component, which needs a browser: it returns ``canvas.image``.

    The real package registers its frontend when imported, which only works
    inside a running server, so the whole module is replaced.
    """
    state = SimpleNamespace(image=None, calls=[], sent=None, marker=None, remount=False)

    def fake_st_canvas(**kwargs):
        state.calls.append(kwargs)
        # Like the component: a drawing it has not sent before is reported, and calls on_change; a new
        # session (its server restarted) is handed the drawing the canvas holds, without a callback.
        if state.remount:  # Mounted afresh (back from another page): its value is its initial drawing.
            state.remount, state.sent = False, state.image
            st.session_state[kwargs["key"]] = {"drawing": {"raw": kwargs["initial_drawing"], "data": None}}
            return
        report = state.image is not state.sent
        if report or kwargs["key"] not in st.session_state:
            state.sent = state.image
            # Marked with the Clears of the drawing it was given, or of an earlier one (a stale report).
            marker = state.marker or clear_marker_of(kwargs["initial_drawing"])
            st.session_state[kwargs["key"]] = canvas_value(
                state.image, kwargs["width"], kwargs["height"], marker
            )
            if report:
                kwargs["on_change"]()

    module = ModuleType("streamlit_drawable_canvas")
    module.st_canvas = fake_st_canvas
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", module)
    return state


def _run(path: str) -> AppTest:
    app = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def _text(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption]
    parts += [str(m.value) + " " + str(m.label) for m in app.metric]
    parts += [e.value for e in app.error] + [i.value for i in app.info] + [s.value for s in app.success]
    parts += [w.value for w in app.warning]
    return "\n".join(parts)


def test_the_entry_point_renders_the_draw_page(canvas):
    app = _run("streamlit_app.py")
    assert app.title[0].value == "Draw a digit"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_an_exception(page, canvas):
    app = _run(page)
    assert app.title, f"{page} shows a title"


def test_a_blank_canvas_shows_a_friendly_prompt_and_no_prediction(canvas):
    canvas.image = blank_canvas()
    app = _run("pages/draw.py")
    assert "Draw a digit on the canvas" in app.info[0].value
    assert not app.metric and not app.error


def test_before_any_drawing_the_page_prompts_too(canvas):
    canvas.image = None
    app = _run("pages/draw.py")
    assert app.info and not app.metric
    # The registry's networks, counted as the sentence names them (networks people train come beside them).
    assert any(caption.value.startswith("6 networks read your drawing") for caption in app.caption)


def test_a_drawn_seven_is_read_as_seven_and_every_model_answers(canvas):
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    assert app.metric[0].label == "Model 4 reads" and app.metric[0].value == "7"
    models, _ = ui_app.loaded_models()
    html = _html(app)
    assert len(models) == 6 and all(ui_app.model_label(model_id) in html for model_id in models)
    assert f"{ui_app.model_label(4)}  ◀" in html  # The chosen model is marked.
    assert canvas.calls[-1]["return_image_data"] is True


def test_switching_models_changes_the_model_that_answers(canvas):
    canvas.image = draw_digit(1)
    app = _run("pages/draw.py")
    app.selectbox(key="draw_model").set_value(2).run()
    assert not app.exception
    assert app.metric[0].label == "Model 2 reads" and app.metric[0].value == "1"


def test_the_brush_starts_at_its_default_width(canvas):
    app = _run("pages/draw.py")
    assert app.slider(key="stroke_width").value == 20
    canvas.image = draw_digit(1)
    app.run()
    assert canvas.calls[-1]["stroke_width"] == round(20 * canvas.calls[-1]["width"] / CANVAS_SIZE)


def test_the_model_and_the_brush_chosen_last_through_a_visit_to_another_page(canvas):
    canvas.image = draw_digit(1)
    app = _run("streamlit_app.py")  # The app's navigation, whose pages the test switches between.
    app.selectbox(key="draw_model").set_value(6)
    app.slider(key="stroke_width").set_value(30).run()
    app.switch_page("pages/inside.py").run()
    assert not app.exception
    app.switch_page("pages/draw.py").run()
    assert app.selectbox(key="draw_model").value == 6 and app.slider(key="stroke_width").value == 30
    assert app.metric[0].label == "Model 6 reads"


def test_clear_empties_the_canvas_in_place_and_the_next_drawing_is_read(canvas):
    canvas.image = draw_digit(0)
    app = _run("pages/draw.py")
    first = canvas.calls[-1]
    # The component still holds the old drawing until the emptied canvas reports back,
    # yet the answer goes at once; the canvas is not remounted under a new key.
    app.button(key="canvas_clear").click().run()
    assert canvas.calls[-1]["key"] == first["key"]
    assert canvas.calls[-1]["initial_drawing"] != first["initial_drawing"]
    assert app.info and not app.metric
    cleared = canvas.calls[-1]["initial_drawing"]
    app.run()  # A rerun before the next stroke neither brings the old drawing back nor clears again.
    assert canvas.calls[-1]["initial_drawing"] == cleared
    assert app.info and not app.metric
    canvas.image = draw_digit(7)
    app.run()
    assert app.metric[0].value == "7"


def test_a_drawing_is_given_back_and_read_after_a_visit_to_another_page(canvas):
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    assert app.metric[0].value == "7"
    del app.session_state["canvas"]  # The canvas's value, which Streamlit forgets on a page without it.
    canvas.remount = True
    app.run()
    restored = canvas.calls[-1]["initial_drawing"]["objects"]
    assert restored == app.session_state["canvas_strokes"], "the canvas is given its strokes back"
    assert app.metric[0].value == "7", "and they are read before the remounted canvas reports"
    canvas.image = draw_digit(1)  # Its next report is recorded as ever.
    app.run()
    assert app.metric[0].value == "1"


def test_a_report_sent_before_clear_that_comes_after_it_does_not_bring_the_drawing_back(canvas):
    canvas.image = draw_digit(4)
    app = _run("pages/draw.py")
    assert app.metric[0].value == "4"
    before_clear = clear_marker_of(canvas.calls[-1]["initial_drawing"])
    app.button(key="canvas_clear").click().run()
    # A stroke's report, sent before the Clear reached the canvas, comes in after it: it is stale (marked
    # with the Clears before), and the page stays empty, whether the drawing was recorded before or not.
    canvas.image, canvas.marker = draw_digit(7), before_clear
    app.run()
    assert app.info and not app.metric
    assert "canvas_strokes" not in app.session_state, "nothing to restore after a visit to another page"
    canvas.image, canvas.marker = None, None  # The emptied canvas reports back...
    app.run()
    assert app.info and not app.metric
    canvas.image = draw_digit(4)  # ...and the same 4 drawn again afterwards is read.
    app.run()
    assert app.metric[0].value == "4"


def _report_on_another_page() -> None:
    """A script that is not the Draw page, run when a canvas report comes with a visit to another page:
    Streamlit calls the canvas's callback first, which is what this script does."""
    import streamlit as st

    from digitdraw.ui import app

    st.session_state.setdefault("canvas_clears", 0)
    if "report" in st.session_state:
        st.session_state["canvas"] = st.session_state.pop("report")
        app._canvas_reported("canvas", 280, 280)


def test_a_canvas_report_that_comes_with_a_visit_to_another_page_is_recorded():
    script = AppTest.from_function(_report_on_another_page, default_timeout=TIMEOUT)
    script.run()
    marker = ui_app.clear_marker(0)
    script.session_state["report"] = canvas_value(draw_digit(7), 280, 280, marker)
    script.run()
    image, png = script.session_state["canvas_last"]
    assert image.shape == (280, 280, 4) and png.startswith(b"\x89PNG")
    assert ui_app.clears_marked(script.session_state["canvas_strokes"]) == 0
    script.session_state["report"] = canvas_value(None, 280, 280, marker)  # Emptied, then the page left.
    script.run()
    assert "canvas_strokes" not in script.session_state and "canvas_last" not in script.session_state


_MARK = {"type": "Rect", "left": -10, "top": -10, "width": 1, "height": 1, "visible": False}


@pytest.mark.parametrize(
    "value",
    [
        None,
        "a drawing",
        0,
        [],
        {"drawing": None},
        {"drawing": []},
        {"drawing": {"raw": None}},
        {"drawing": {"raw": {"objects": "strokes"}, "data": None}},
        {"drawing": {"raw": {"objects": [{"path": []}]}, "data": None}},  # No mark of its Clears.
        {"drawing": {"raw": {"objects": [_MARK, {"path": []}]}, "data": None}},
        {"drawing": {"raw": {"objects": [_MARK, {"path": []}]}, "data": "data:image/png;base64,@@@"}},
        {"drawing": {"raw": {"objects": [_MARK] * 5_000}, "data": None}},
    ],
    ids=[
        "none", "text", "number", "list", "drawing none", "drawing list", "raw none", "strokes not a list",
        "no mark", "no picture", "not base64", "too many strokes",
    ],
)  # fmt: skip
def test_a_canvas_report_that_is_not_the_canvas_s_is_a_value_error(value):
    with pytest.raises(ValueError, match="expected"):
        ui_app.canvas_report(value, 280, 280)


def test_a_hostile_canvas_report_is_ignored_without_an_exception():
    script = AppTest.from_function(_report_on_another_page, default_timeout=TIMEOUT)
    for value in (
        None,
        0,
        [],
        {"drawing": None},
        {"drawing": {"raw": [], "data": 3}},
        {"drawing": {"data": {}}},
        {"drawing": {"raw": {"objects": [{**_MARK, "left": float("nan")}]}, "data": None}},
    ):
        script.session_state["report"] = value
        script.run()
        assert not script.exception, value
        assert "canvas_strokes" not in script.session_state


@pytest.mark.parametrize("left", [float("nan"), float("inf"), -1e300, -9, "-10", None])
def test_a_clear_marker_that_is_not_the_canvas_s_marks_nothing(left):
    assert ui_app.clears_marked([{**_MARK, "left": left}]) is None
    assert ui_app.clears_marked([{**_MARK, "left": -13}]) == 3


def test_a_canvas_report_s_picture_must_be_the_canvas_s_size():
    value = canvas_value(draw_digit(7), 280, 280, ui_app.clear_marker(0))
    objects, (image, png) = ui_app.canvas_report(value, 280, 280)
    assert len(objects) == 2 and image.shape == (280, 280, 4) and png.startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="320x320"):
        ui_app.canvas_report(value, 320, 320)
    limit = ui_app.MAX_CANVAS_REPORT_CHARACTERS
    too_long = {"drawing": {**value["drawing"], "data": "data:image/png;base64," + "A" * limit}}
    with pytest.raises(ValueError, match=f"at most {limit:,} characters"):  # Refused before decoding.
        ui_app.canvas_report(too_long, 280, 280)
    with pytest.raises(ValueError, match="at most"):  # Larger than the canvas: refused from the header.
        ui_app.canvas_report(value, 200, 200)
    empty = canvas_value(None, 280, 280, ui_app.clear_marker(3))
    assert ui_app.canvas_report(empty, 280, 280) == ([ui_app.clear_marker(3)], None)
    assert ui_app.clears_marked(ui_app.empty_drawing(3)["objects"]) == 3


def _run_fragments_only(app: AppTest, monkeypatch) -> AppTest:
    """Rerun only the page's fragments, as the server does when a widget inside one changes (a stroke
    on the canvas): AppTest's own runs are whole-script runs, so its rerun request names the fragments."""
    from streamlit.testing.v1 import local_script_runner

    fragment_ids = list(app._fragment_storage._fragments)
    assert fragment_ids, "the page registered no fragment"
    monkeypatch.setattr(
        local_script_runner,
        "RerunData",
        functools.partial(local_script_runner.RerunData, fragment_id_queue=fragment_ids),
    )
    try:
        return app.run()
    finally:
        monkeypatch.undo()


def test_a_stroke_reruns_the_drawing_area_only(canvas, monkeypatch):
    page_runs = []  # Called once per run of the whole page, below the drawing area.
    monkeypatch.setattr(ui_app, "canvas_toolbar_ui", lambda: page_runs.append(1))
    canvas.image = draw_digit(1)
    app = _run("pages/draw.py")
    assert app.metric[0].value == "1" and len(page_runs) == 1
    canvas.image = draw_digit(7)  # The next stroke turns the 1 into a 7.
    app = _run_fragments_only(app, monkeypatch)
    assert not app.exception, [e.message for e in app.exception]
    assert app.metric[0].value == "7" and len(app.session_state["stroke_answers"]) == 2
    assert len(page_runs) == 1, "the stroke reran the page around the drawing area"
    assert not app.title, "the stroke sent the page's title again"  # Only the drawing area was sent.
    assert not app.selectbox and not app.slider, "the stroke reran the model picker and the brush"


def test_a_stroke_sends_its_answers_and_pictures_as_two_pieces_of_html(canvas, monkeypatch):
    # Each element a stroke sends costs a render in the browser: beside the canvas the ten
    # probabilities, every model's answer and the timeline are one element, the pictures another.
    canvas.image = draw_digit(1)
    app = _run("pages/draw.py")
    canvas.image = draw_digit(7)
    app = _run_fragments_only(app, monkeypatch)
    sent = [element.proto.body for element in app.get("html") if "<script" not in element.proto.body]
    assert len(sent) == 2, "the stroke sent more (or fewer) pieces of HTML than the answers and the pictures"
    answers, pictures = sent
    for part in (
        "Model 4, digit by digit",
        "Every model's answer",
        "All 6 models read a <b>7</b>",
        "Stroke by",
    ):
        assert part in answers
    assert "What the model sees" in pictures and pictures.count("<img") == 5
    assert not app.subheader and not app.success and not app.warning


class _Paused(Exception):
    """Raised where the Draw page pauses after its answer, so that a test sees what went out before."""


def _stop_at_the_pause() -> None:
    raise _Paused("paused")


def test_a_stroke_sends_its_answer_before_the_pause_and_the_rest_after_it(canvas, monkeypatch):
    # The browser draws together whatever reached it together: the answer must be made, and the run
    # pause, before the keep controls and the HTML are made.
    monkeypatch.setattr(ui_app, "answer_head_start", _stop_at_the_pause)
    canvas.image = draw_digit(7)
    app = AppTest.from_file(str(ROOT / "pages/draw.py"), default_timeout=TIMEOUT).run()
    assert len(app.exception) == 1 and "raise _Paused" in app.exception[0].stack_trace[-1]
    assert app.metric[0].value == "7", "the answer was not made before the pause"
    made_before = [element.proto.body for element in app.get("html") if "<script" not in element.proto.body]
    assert not made_before and not app.get("button_group"), "the rest of the run was made before the pause"


def test_only_a_new_drawing_pauses_a_keep_or_another_model_does_not(canvas, monkeypatch, drawings_store):
    pauses = []
    monkeypatch.setattr(ui_app, "answer_head_start", lambda: pauses.append(1))
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    assert len(pauses) == 1
    app.button(key="keep_right").click().run()
    assert "Kept as a **7**" in _text(app) and len(pauses) == 1, "keeping the drawing paused"
    app.selectbox(key="draw_model").set_value(2).run()
    assert app.metric[0].label == "Model 2 reads" and len(pauses) == 1, "another model paused"
    canvas.image = draw_digit(1)
    app.run()
    assert app.metric[0].value == "1" and len(pauses) == 2


def test_a_blank_canvas_does_not_pause(canvas, monkeypatch):
    monkeypatch.setattr(ui_app, "answer_head_start", _stop_at_the_pause)
    canvas.image = blank_canvas()
    app = _run("pages/draw.py")
    assert "Draw a digit on the canvas" in app.info[0].value


def test_the_draw_page_loads_the_code_of_what_a_first_stroke_shows_with_the_page(canvas, monkeypatch):
    files = ui_app.element_scripts(ui_app.FIRST_ANSWER_ELEMENTS)
    # One file per kind in the installed Streamlit: an upgrade that renames them fails here, not silently.
    assert sorted(name.split(".")[0] for name in files) == sorted(ui_app.FIRST_ANSWER_ELEMENTS)
    assert all((ui_app.STREAMLIT_SCRIPTS / name).is_file() for name in files)
    app = _run("pages/draw.py")
    preloads = [element for element in app.get("html") if "Metric." in element.proto.body]
    assert len(preloads) == 1 and all(name in preloads[0].proto.body for name in files)
    canvas.image = draw_digit(1)
    app = _run_fragments_only(app, monkeypatch)
    assert app.metric[0].value == "1"
    assert not [element for element in app.get("html") if "Metric." in element.proto.body], "sent again"


@pytest.mark.parametrize("phone", [False, True])
def test_the_model_picker_stands_above_the_canvas_on_a_laptop_and_on_a_phone(canvas, monkeypatch, phone):
    monkeypatch.setattr(ui_app, "on_phone", lambda: phone)
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    assert "draw_model" in [box.key for box in app.main.selectbox] and not app.sidebar.selectbox
    assert canvas.calls[-1]["width"] == (ui_app.PHONE_CANVAS_SIZE if phone else CANVAS_SIZE)
    app.selectbox(key="draw_model").set_value(5).run()  # Either way it chooses the model that answers.
    assert app.metric[0].label == "Model 5 reads" and app.metric[0].value == "7"


@pytest.mark.parametrize(
    ("user_agent", "phone"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1", True),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126.0 Mobile Safari/537.36", True),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) Version/17.0 Safari/605.1.15", False),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36", False),
        ("", False),
    ],
)
def test_phones_are_told_from_laptops_and_tablets_by_their_user_agent(user_agent, phone):
    assert ui_app.is_phone_agent(user_agent) is phone
    assert ui_app.PHONE_CANVAS_SIZE > CANVAS_SIZE  # A phone's canvas fills the width of its screen.


@pytest.fixture
def models_without_3(tmp_path, monkeypatch):
    root = tmp_path / "saved_models"
    shutil.copytree(saved_models_dir(), root)
    shutil.rmtree(model_dir(3, root))
    monkeypatch.setenv(SAVED_MODELS_ENV_VAR, str(root))
    return root


def test_a_missing_model_is_explained_and_the_others_keep_working(canvas, models_without_3):
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    assert app.metric[0].value == "7"  # Model 4 still answers.
    app.selectbox(key="draw_model").set_value(3).run()
    assert not app.exception
    assert "python -m digitdraw train --model 3" in app.error[0].value
    assert f"{ui_app.model_label(3)}  ◀</td><td" in _html(app) and "unavailable" in _html(app)


@pytest.mark.parametrize(
    "page", ["pages/training_curves.py", "pages/confusion_matrix.py", "pages/compare.py"]
)
def test_the_side_pages_explain_a_missing_model(page, canvas, models_without_3):
    app = _run(page)
    picker = {"pages/training_curves.py": "curves_model", "pages/confusion_matrix.py": "confusion_model"}
    if page in picker:
        app.selectbox(key=picker[page]).set_value(3).run()
    assert not app.exception
    assert any("--model 3" in error.value for error in app.error)


def test_training_curves_give_the_kept_epoch_s_figures_and_overlay_all_models(canvas):
    app = _run("pages/training_curves.py")
    accuracy = saved_models.load(4).metrics.accuracy
    figures = {metric.label: metric.value for metric in app.metric}
    assert figures == {
        "Training, epoch kept": f"{accuracy['train']:.2%}",
        "Validation, epoch kept": f"{accuracy['validation']:.2%}",
        "MNIST test, epoch kept": f"{accuracy['test']:.2%}",
        "Drawn, epoch kept": f"{accuracy['drawn']:.2%}",
    }
    assert app.segmented_control(key="curves_split").disabled
    app.segmented_control(key="curves_view").set_value("All models").run()
    assert not app.exception and not app.segmented_control(key="curves_split").disabled


def test_the_confusion_matrix_gallery_shows_the_chosen_cell(canvas):
    app = _run("pages/confusion_matrix.py")
    app.toggle(key="confusion_normalise").set_value(True).run()
    app.selectbox(key="cell_true").set_value(4).run()
    app.selectbox(key="cell_pred").set_value(9).run()
    assert not app.exception
    assert any("4s read as 9" in caption.value for caption in app.caption)


def test_the_dashboard_reproduces_the_study_table(canvas):
    app = _run("pages/compare.py")
    table = app.table[0].value
    assert list(table["Model"]) == ["1", "2", "3", "4", "5", "6 (beyond the study)"]
    assert list(table["Validation: study"]) == ["94.79%", "95.14%", "97.29%", "97.47%", "–", "–"]
    assert list(table["Train: study"]) == ["96.35%", "96.79%", "99.84%", "99.65%", "99.26%", "–"]
    (costs,) = [frame.value for frame in app.table if "Parameters" in frame.value]
    assert list(costs["Parameters"]) == ["13,002", "13,002", "55,050", "55,050", "101,770", "56,714"]
    # The study's models were trained by the improved recipe, with the study's measured beside them.
    (recipes,) = [frame.value for frame in app.table if "Test: baseline" in frame.value]
    assert set(recipes["Recipe"]) == {"improved"} and set(recipes["Baseline recipe"]) == {"study"}


# The one cache rule (digitdraw/serving/inference.py): a model's files changing on disk while the app runs is
# seen by the next rerun, with no restart and no cache to clear.


def _reads(app: AppTest) -> dict[str, str]:
    """Each model's answer in the Draw page's table of every model's answer (its rows start with a cell)."""
    rows = re.findall(r"<tr><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td>", _html(app))
    return {model.split(" ·")[0]: reads for model, reads in rows}


def test_a_model_replaced_while_the_app_runs_answers_on_the_next_rerun(canvas, models_copy):
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    app.selectbox(key="draw_model").set_value(1).run()
    assert app.metric[0].value == "7"
    save_constant_model(1, digit=3, root=models_copy)  # A retrained model 1 that reads everything as 3.
    app.run()
    assert not app.exception
    assert app.metric[0].label == "Model 1 reads" and app.metric[0].value == "3"
    assert _reads(app)["Model 1"] == "3" and _reads(app)["Model 4"] == "7"


def test_a_model_deleted_while_the_app_runs_is_unavailable_and_the_others_answer(canvas, models_copy):
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    assert _reads(app)["Model 3"] == "7"
    shutil.rmtree(model_dir(3, models_copy))
    app.run()
    assert _reads(app)["Model 3"] == "unavailable"
    assert app.metric[0].value == "7"  # Model 4 still answers.
    app.selectbox(key="draw_model").set_value(3).run()
    assert "no saved model" in app.error[0].value and "--model 3" in app.error[0].value


def test_a_model_added_while_the_app_runs_appears(canvas, models_copy, tmp_path):
    shutil.move(model_dir(5, models_copy), tmp_path / "aside")
    canvas.image = draw_digit(1)
    app = _run("pages/draw.py")
    assert _reads(app)["Model 5"] == "unavailable"
    shutil.move(tmp_path / "aside", model_dir(5, models_copy))
    app.run()
    assert _reads(app)["Model 5"] == "1"


def test_the_compare_page_shows_a_replaced_model_s_figures(canvas, models_copy):
    app = _run("pages/compare.py")
    assert app.table[0].value["Test (MNIST)"][0] != "10.00%"
    save_constant_model(1, digit=3, root=models_copy)  # Its metrics say 10% everywhere.
    app.run()
    assert app.table[0].value["Test (MNIST)"][0] == "10.00%"


def test_right_keeps_the_drawing_with_the_models_answer_and_undo_takes_it_back(canvas, drawings_store):
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    app.button(key="keep_right").click().run()
    assert not app.exception
    (kept,) = store.Store(drawings_store).drawings()
    assert kept.label == 7 and set(kept.probabilities) == {1, 2, 3, 4, 5, 6}
    assert kept.canvas_png.startswith(b"\x89PNG") and len(kept.session_id) == 32
    assert "Kept as a **7**" in _text(app)
    app.button(key=f"undo_keep_{kept.id}").click().run()
    assert store.Store(drawings_store).count() == 0
    assert app.button(key="keep_right")  # It can be kept again.


def test_a_new_session_shown_a_drawing_this_browser_kept_says_so_instead_of_keeping_it_twice(
    canvas, drawings_store
):
    # One session keeps a 7; the next (its app replica stopped, the canvas still holding the drawing)
    # shows the same drawing, from the same browser.
    canvas.image = draw_digit(7)
    first = _run("pages/draw.py")
    first.button(key="keep_right").click().run()
    (kept,) = store.Store(drawings_store).drawings()
    second = AppTest.from_file(str(ROOT / "pages/draw.py"), default_timeout=TIMEOUT)
    second.session_state.browser_id = first.session_state.browser_id  # The browser's cookie.
    second.run()
    assert "Kept as a **7**" in _text(second)
    assert [b.key for b in second.button if "keep" in b.key] == [f"undo_keep_{kept.id}"], "Undo, no Right"
    another_browser = _run("pages/draw.py")
    assert "keep_right" in [b.key for b in another_browser.button], "another browser's is its own to keep"
    assert store.Store(drawings_store).count() == 1


def test_a_correction_keeps_the_digit_the_user_picked(canvas, drawings_store):
    canvas.image = draw_digit(1)
    app = _run("pages/draw.py")
    app.button_group(key="keep_as").set_value(4).run()  # "Not right? It is a 4".
    assert not app.exception
    assert [d.label for d in store.Store(drawings_store).drawings()] == [4]
    app.run()  # Reruns do not keep it twice.
    assert store.Store(drawings_store).count() == 1
    (kept,) = store.Store(drawings_store).drawings()
    app.button(key=f"undo_keep_{kept.id}").click().run()
    assert store.Store(drawings_store).count() == 0
    assert app.button_group(key="keep_as").value is None  # The digits offer themselves afresh.


def test_nothing_is_kept_without_a_tap(canvas, drawings_store):
    canvas.image = draw_digit(0)
    app = _run("pages/draw.py")
    app.selectbox(key="draw_model").set_value(2).run()
    assert store.Store(drawings_store).count() == 0


def test_a_store_that_cannot_be_written_warns_once_and_drawing_goes_on(canvas, tmp_path, monkeypatch):
    path = tmp_path / "read-only.sqlite"
    store.Store(f"sqlite:///{path}").close()
    monkeypatch.setenv(store.DATABASE_URL_ENV_VAR, f"sqlite:///file:{path}?mode=ro&uri=true")
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    app.button(key="keep_right").click().run()
    assert not app.exception
    assert len(app.warning) == 1 and "cannot be kept right now" in app.warning[0].value
    assert app.metric[0].value == "7"  # The answer is still there.


MINE = "ab" * 16


@pytest.fixture
def kept_drawings(drawings_store):
    """Four drawings kept by this browser (one labelled wrongly on purpose) and two by another."""
    from digitdraw.drawings import collect

    canvases = np.stack([draw_digit(digit) for digit in (0, 1, 7, 4, 7, 0)])
    mine = collect.from_arrays(canvases[:4], np.array([0, 1, 7, 9]), session_id=MINE)
    theirs = collect.from_arrays(canvases[4:], np.array([7, 0]), session_id="cd" * 16)
    store.Store(drawings_store).save_many(mine + theirs)
    return drawings_store


def _your_drawings(session_id: str = MINE) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages/your_drawings.py"), default_timeout=TIMEOUT)
    app.session_state["browser_id"] = session_id
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_your_drawings_prompts_when_nothing_is_kept():
    app = _your_drawings()
    assert "No drawings kept yet" in app.info[0].value


def test_your_drawings_compares_each_model_on_kept_drawings_with_mnist(kept_drawings):
    app = _your_drawings()
    assert app.metric[0].value == "4"
    table = app.dataframe[0].value
    assert len(table) == 6 and set(table.columns) >= {"Your drawings", "MNIST test", "Gap (points)"}
    # The 4 labelled 9 is read wrong by every model: at most 3 of 4 right.
    assert (table["Your drawings"] <= 0.75).all() and (table["MNIST test"] > 0.95).all()
    assert "1 of 4 read wrong" in _text(app)
    # Every model reads the same three of four: the best is a tie, and says so rather than pick one.
    assert list(table["Your drawings"]) == [0.75] * 6
    assert app.metric[2].value == "6 models tie" and app.metric[2].delta == "75.0%"
    # Four drawings: 1.96 * 0.5 / sqrt(4) is 49 points either way.
    assert "On 4 drawings an accuracy can be off by up to 49 points either way" in _text(app)
    assert len(app.get("download_button")) == 2
    app.segmented_control(key="whose").set_value("everyone").run()
    assert app.metric[0].value == "6"
    assert "Accuracy: everyone's drawings against MNIST" in [header.value for header in app.subheader]
    assert "Everyone's drawings" in app.dataframe[0].value.columns


def test_your_drawings_counts_every_drawing_and_measures_the_newest_sample(drawings_store, mnist):
    from digitdraw.drawings import collect

    (x, y), _ = mnist
    kept = store.Store(drawings_store)
    count = 2_100  # More than the page's sample of 2,000.
    collect.import_arrays(kept, x[:count], y[:count], MINE)
    app = _your_drawings()
    assert app.metric[0].value == "2,100" and app.metric[1].value == "10 of 10"
    assert "Every model answers the newest 2,000 of 2,100 drawings now" in _text(app)
    assert "can be off by up to" not in _text(app), "2,000 drawings measure an accuracy to within 2.2 points"
    newest = kept.drawings(MINE, newest=2_000)
    assert [d.id for d in newest] == sorted(d.id for d in kept.drawings(MINE))[-2_000:]
    assert kept.digits_kept(MINE) == {digit: int((y[:count] == digit).sum()) for digit in range(10)}


def test_delete_all_of_mine_leaves_the_others(kept_drawings):
    app = _your_drawings()
    app.button(key="delete_all_mine").click().run()
    assert not app.exception
    kept = store.Store(kept_drawings)
    assert kept.count(MINE) == 0 and kept.count() == 2


def test_your_drawings_with_the_store_down_warns_calmly(monkeypatch):
    monkeypatch.setenv(store.DATABASE_URL_ENV_VAR, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = _your_drawings()
    assert len(app.warning) == 1 and "cannot be kept right now" in app.warning[0].value


def test_your_drawings_explains_a_missing_model_and_scores_the_others(kept_drawings, models_without_3):
    app = _your_drawings()
    assert any("--model 3" in error.value for error in app.error)
    assert len(app.dataframe[0].value) == 5


def test_inside_shows_the_drawing_from_the_draw_page_through_two_networks_side_by_side(canvas):
    canvas.image = draw_digit(7)
    draw = _run("pages/draw.py")
    app = AppTest.from_file(str(ROOT / "pages/inside.py"), default_timeout=TIMEOUT)
    app.session_state[ui_app.CURRENT_DRAWING_KEY] = draw.session_state[ui_app.CURRENT_DRAWING_KEY]
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    text = _text(app)
    assert "Model 1 · 784-16-16-10 · sigmoid** reads **7**" in text
    assert "Model 2 · 784-16-16-10 · ReLU** reads **7**" in text
    assert "saturated (below 0.05 or above 0.95)" in text and "silent (0) on this input" in text
    assert "dead on all 10,000 MNIST digits" in text
    # Each network's first hidden layer as HTML (hover shows a unit's weights), its second as plotly.
    assert len(app.get("plotly_chart")) == 2
    assert _html(app).count('class="dd-unit"') == 16 + 16
    app.segmented_control(key="inside_pair").set_value("64 units: sigmoid vs ReLU").run()
    assert not app.exception and "Model 3 · 784-64-64-10 · sigmoid** reads **7**" in _text(app)


def test_inside_without_a_drawing_looks_at_an_mnist_test_digit(canvas):
    app = _run("pages/inside.py")
    assert app.number_input(key="inside_index").value == 0
    assert "reads **7**" in _text(app)  # MNIST's first test image is a 7.


def _inside_with_a_seven(canvas, view: str) -> AppTest:
    """The Inside page on the Draw page's drawn 7, showing one view."""
    canvas.image = draw_digit(7)
    draw = _run("pages/draw.py")
    app = AppTest.from_file(str(ROOT / "pages/inside.py"), default_timeout=TIMEOUT)
    for key in (ui_app.CURRENT_DRAWING_KEY, ui_app.CURRENT_CANVAS_KEY):
        app.session_state[key] = draw.session_state[key]
    app.run()
    app.segmented_control(key="inside_view").set_value(view).run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def _html(app: AppTest) -> str:
    return "\n".join(element.proto.body for element in app.get("html"))


def test_why_this_digit_shows_every_served_model_s_map_and_a_contrast(canvas):
    app = _inside_with_a_seven(canvas, "Why this digit")
    models, _ = ui_app.loaded_models()
    html = _html(app)
    assert html.count("data:image/png") == 1 + len(models)  # The input, then one map per model.
    for model_id in models:
        assert f"Model {model_id} reads 7: why 7" in html
    app.selectbox(key="why_other").set_value(1).run()
    app.segmented_control(key="why_method").set_value("Occlusion").run()
    assert not app.exception and "why 7 not 1" in _html(app)
    assert "7×7 patch" in _text(app)


def test_the_inside_page_s_text_follows_the_constants_it_describes(canvas, monkeypatch):
    from digitdraw.explaining import attribution, damage

    monkeypatch.setattr(attribution, "OCCLUSION_PATCH", 5)
    monkeypatch.setattr(attribution, "OCCLUSION_STRIDE", 3)
    monkeypatch.setattr(damage, "TEST_SAMPLE_SIZE", 1234)
    app = _inside_with_a_seven(canvas, "Why this digit")
    app.segmented_control(key="why_method").set_value("Occlusion").run()
    assert "5×5 patch" in _text(app) and "3 pixels apart" in _text(app)
    app.segmented_control(key="inside_view").set_value("Damage lab").run()
    assert not app.exception and "fixed sample of 1,234 MNIST test digits" in _text(app)


def test_what_would_flip_it_edits_the_input_until_the_chosen_model_reads_the_target(canvas):
    app = _inside_with_a_seven(canvas, "What would flip it")
    app.selectbox(key="flip_model").set_value(2).run()
    app.selectbox(key="flip_target").set_value(3).run()
    assert not app.exception, [e.message for e in app.exception]
    assert "Model 2 reads the edited image as **3**" in _text(app)
    html = _html(app)
    assert "Edited" in html and "The change" in html
    models, _ = ui_app.loaded_models()
    assert all(ui_app.model_label(model_id) in html for model_id in models)  # Every model's reading.
    app.selectbox(key="flip_target").set_value(7).run()
    assert "already reads a 7" in _text(app)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_steps": 0}, "No change within 0 steps, the most the search takes, made Model 2 read a 3"),
        ({"margin": 1000.0}, "Model 2 reads the edited image as a 3 (100%), but not by the clear lead"),
    ],
)
def test_what_would_flip_it_says_why_a_search_fell_short(canvas, monkeypatch, settings, message):
    from digitdraw.explaining import counterfactual

    monkeypatch.setattr(counterfactual, "flip", functools.partial(counterfactual.flip, **settings))
    app = _inside_with_a_seven(canvas, "What would flip it")
    app.selectbox(key="flip_model").set_value(2).run()
    app.selectbox(key="flip_target").set_value(3).run()
    assert not app.exception, [e.message for e in app.exception]
    assert message in _text(app)


def test_the_damage_lab_measures_accuracy_and_changes_nothing_on_disk(canvas):
    weights = model_dir(4) / "model.keras"
    before = weights.read_bytes()
    app = _inside_with_a_seven(canvas, "Damage lab")
    app.selectbox(key="damage_model").set_value(4).run()
    intact = {m.label: m.value for m in app.metric}
    assert intact["Intact: MNIST sample"] == intact["Damaged: MNIST sample"]
    assert intact["Damaged: this input"] == "7"
    app.slider(key="damage_share").set_value(1.0).run()
    assert not app.exception, [e.message for e in app.exception]
    wrecked = {m.label: m.value for m in app.metric}
    assert float(wrecked["Damaged: MNIST sample"].rstrip("%")) < 20  # No hidden unit left.
    app.slider(key="damage_share").set_value(0.0).run()
    app.multiselect(key="damage_units_4_0").set_value([0, 1, 2]).run()
    app.slider(key="damage_prune").set_value(0.5).run()
    assert not app.exception
    assert weights.read_bytes() == before


def test_preprocessing_switches_show_every_model_s_answer_with_steps_left_out(canvas):
    app = _inside_with_a_seven(canvas, "Preprocessing")
    models, _ = ui_app.loaded_models()
    html = _html(app)
    assert html.count("data:image/png") == 7  # All steps, your choice, and each of five left out.
    assert all(f"Model {model_id}" in html for model_id in models)
    assert "No deskew" in html and "7 (" in html
    assert _picture(app, "Your choice") == _picture(app, "All steps")
    app.get("button_group")[-1].set_value(["crop", "stroke"]).run()
    assert not app.exception, [e.message for e in app.exception]
    assert _picture(app, "Your choice") != _picture(app, "All steps")


def _picture(app: AppTest, caption: str) -> str:
    """The PNG data of the picture captioned so in the page's HTML."""
    return re.search(rf'src="data:image/png;base64,([^"]+)" alt="{caption}"', _html(app)).group(1)


def test_preprocessing_switches_on_an_mnist_digit_use_the_raw_digit(canvas):
    from digitdraw.learning.data import load_mnist
    from digitdraw.serving.preprocess import IMAGE_SIZE, to_mnist
    from digitdraw.ui import charts

    app = _run("pages/inside.py")
    app.segmented_control(key="inside_view").set_value("Preprocessing").run()
    assert not app.exception, [e.message for e in app.exception]
    raw = load_mnist()[1][0][0]  # The page's first MNIST test digit, as MNIST has it.
    # Left out of the picture's input if the page used the digit as the models see it: no crop, from raw.
    no_crop = to_mnist(raw, ("stroke", "deskew", "scale", "centre"))
    expected = charts.image_row([(charts.pixel_grid(no_crop, cell=4), "No crop to the ink")], 4 * IMAGE_SIZE)
    assert re.search(r"base64,([^\"]+)", expected).group(1) == _picture(app, "No crop to the ink")


def test_the_stroke_timeline_keeps_every_model_s_answer_per_stroke_until_clear(canvas):
    canvas.image = draw_digit(1)
    app = _run("pages/draw.py")
    canvas.image = draw_digit(7)  # The next stroke turns the 1 into a 7.
    app.run()
    app.selectbox(key="draw_model").set_value(2).run()  # A rerun without a stroke adds nothing.
    strokes = app.session_state["stroke_answers"]
    models, _ = ui_app.loaded_models()
    assert len(strokes) == 2 and set(strokes[0]) == set(models)
    assert strokes[0][4][0] == 1 and strokes[1][4][0] == 7
    html = _html(app)
    assert "Stroke" in html and "Model 2 ◀" in html
    app.button(key="canvas_clear").click().run()
    assert app.session_state["stroke_answers"] == []
    canvas.image = draw_digit(0)
    app.run()
    assert len(app.session_state["stroke_answers"]) == 1


def test_a_blank_canvas_between_two_drawings_starts_a_fresh_timeline(canvas):
    """The canvas's own Reset (or Undo to nothing) sends a blank image, not Clear: the timeline restarts."""
    canvas.image = draw_digit(1)
    app = _run("pages/draw.py")
    canvas.image = draw_digit(7)
    app.run()
    assert len(app.session_state["stroke_answers"]) == 2
    canvas.image = blank_canvas()
    app.run()
    assert app.session_state["stroke_answers"] == [] and "stroke_digest" not in app.session_state
    canvas.image = draw_digit(1)  # The same drawing as the first stroke before: a new timeline all the same.
    app.run()
    assert len(app.session_state["stroke_answers"]) == 1 and ">1</th>" in _html(app)


def test_the_stroke_timeline_keeps_only_the_strokes_it_shows(canvas):
    from digitdraw.ui.charts import TIMELINE_STROKES

    canvas.image = draw_digit(1)
    app = _run("pages/draw.py")
    for stroke in range(TIMELINE_STROKES + 3):
        canvas.image = draw_digit(7)
        # A blot in a new place each time: every stroke makes a model input of its own.
        canvas.image[:20, 15 * stroke : 15 * stroke + 20] = (0, 0, 0, 255)
        app.run()
    assert len(app.session_state["stroke_answers"]) == TIMELINE_STROKES
    html = _html(app)
    assert f">{TIMELINE_STROKES + 4}</th>" in html and ">4</th>" not in html
    assert f"the latest {TIMELINE_STROKES}" in html


def test_any_two_served_models_can_be_compared_layer_by_layer(canvas):
    app = _inside_with_a_seven(canvas, "Layer by layer")
    app.segmented_control(key="inside_pair").set_value("Any two").run()
    app.selectbox(key="inside_left").set_value(5).run()
    assert not app.exception, [e.message for e in app.exception]
    text = _text(app)
    assert "Model 5 · 784-128-10 · ReLU** reads **7**" in text and "Model 2 · 784-16-16-10 · ReLU" in text
    assert _html(app).count('class="dd-unit"') == 128 + 16
    app.selectbox(key="inside_right").set_value(5).run()  # The same model twice is shown once.
    assert not app.exception and _html(app).count('class="dd-unit"') == 128


def test_any_two_lists_every_model_in_order_and_keeps_each_model_s_weights_under_it(canvas, models_without_3):
    app = _inside_with_a_seven(canvas, "Layer by layer")
    app.segmented_control(key="inside_pair").set_value("Any two").run()
    options = app.selectbox(key="inside_left").options
    assert options == [ui_app.model_label(model_id) for model_id in (1, 2, 3, 4, 5, 6)]  # 3 fails to load.
    app.selectbox(key="inside_left").set_value(3).run()
    app.selectbox(key="inside_right").set_value(4).run()
    assert not app.exception, [e.message for e in app.exception]
    assert "python -m digitdraw train --model 3" in _text(app)
    # The weights' row: nothing under the model that did not load, Model 4's under Model 4.
    left, right = app.columns[-2:]
    assert not left.children
    assert [child.proto.imgs[0].caption[:14] for child in right.children.values()] == ["Model 4: units"]


def test_why_a_digit_rather_than_itself_is_a_note_not_a_blank_map(canvas):
    app = _inside_with_a_seven(canvas, "Why this digit")
    app.selectbox(key="why_other").set_value(7).run()  # Every model reads the drawn 7 as a 7.
    assert not app.exception, [e.message for e in app.exception]
    assert _html(app).count("data:image/png") == 1  # The input alone.
    assert "why 7 rather than 7 has no answer" in _text(app)


def test_the_damage_lab_scores_the_intact_model_once(canvas, monkeypatch):
    from digitdraw.explaining import damage

    calls = []
    real = damage.accuracy
    monkeypatch.setattr(damage, "accuracy", lambda *args: calls.append(args[0]) or real(*args))
    app = _inside_with_a_seven(canvas, "Damage lab")
    app.slider(key="damage_noise").set_value(0.5).run()
    app.slider(key="damage_prune").set_value(0.2).run()
    assert not app.exception, [e.message for e in app.exception]
    assert len(calls) == 1 + 3  # The intact model once, then the damaged one on each run.
    assert app.slider(key="damage_share").label == "Units off at random (share)"


@pytest.fixture
def unusual_models(monkeypatch):
    """Models 4 and 5 served with architectures outside the study: a tanh layer of 8 units, and no
    hidden layer at all; the Inside page works from each model's own layer description."""
    import dataclasses

    from digitdraw.serving import inference
    from digitdraw.serving.networks import Architecture, Layer, Network

    real = inference.load_models

    def unusual(seed: int, architecture: Architecture) -> Network:
        rng = np.random.default_rng(seed)
        shapes = architecture.weight_shapes
        return Network(
            architecture, [rng.normal(0, 0.1, s) for s in shapes], [np.zeros(s[1]) for s in shapes]
        )

    def load_models(model_ids=None, root=None):
        models, errors = real(model_ids, root)
        for model_id, architecture in (
            (4, Architecture.dense((8,), "tanh")),
            (5, Architecture((Layer("dense", 10, "softmax"),))),
        ):
            if model_id in models:
                card = models[model_id].card.model_copy(update={"architecture": architecture})
                models[model_id] = dataclasses.replace(
                    models[model_id], card=card, network=unusual(model_id, architecture)
                )
        return models, errors

    monkeypatch.setattr(inference, "load_models", load_models)


@pytest.mark.parametrize(
    "view", ["Layer by layer", "Why this digit", "What would flip it", "Damage lab", "Preprocessing"]
)
def test_inside_views_work_for_architectures_outside_the_study(canvas, unusual_models, view):
    app = _inside_with_a_seven(canvas, view)
    if view == "Layer by layer":
        app.segmented_control(key="inside_pair").set_value("Any two").run()
        app.selectbox(key="inside_left").set_value(4).run()
        app.selectbox(key="inside_right").set_value(5).run()
        text = _text(app)
        assert "No hidden layers" in text and "Hidden layer 1: 8 units" in text
    elif view == "What would flip it":
        app.selectbox(key="flip_model").set_value(5).run()
    elif view == "Damage lab":
        app.selectbox(key="damage_model").set_value(4).run()
        app.multiselect(key="damage_units_4_0").set_value([0, 1]).run()
    elif view == "Preprocessing":
        assert "Model 4" in _html(app) and "Model 5" in _html(app)
    assert not app.exception, [e.message for e in app.exception]


def _symbol_canvas(text: str) -> np.ndarray:
    """A symbol drawn in a Hershey font with a brush-wide stroke, as the canvas returns it."""
    mask = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
    cv2.putText(mask, text, (60, 220), cv2.FONT_HERSHEY_SIMPLEX, 7, 255, 20, cv2.LINE_AA)
    image = blank_canvas()
    image[:, :, 3] = mask
    return image


def test_a_symbol_is_not_read_as_a_confident_digit(canvas):
    canvas.image = _symbol_canvas("#")
    app = _run("pages/draw.py")
    assert "That doesn't look like a digit" in app.warning[0].value
    assert "would guess a" in _text(
        app
    ) and "guesses, for something that does not look like a digit" in _html(app)
    assert not app.metric  # No digit and percentage under the canvas.
    assert "models read" not in _html(app)  # Nor a green note that every model read it.
    # Nothing to confirm, but the digits stay: the model may be wrong that it is no digit.
    assert not any(button.label.startswith("Right") for button in app.button)
    assert app.button_group(key="keep_as").label == "A digit after all? It is a"
    canvas.image = draw_digit(7)
    app.run()
    assert app.metric[0].value == "7" and "raw" not in app.metric[0].label
    assert "Right, it is a 7" in [button.label for button in app.button]
    assert not any("look like a digit" in w.value for w in app.warning)


def test_models_agreeing_on_a_guess_for_no_digit_do_not_say_they_read_it(canvas):
    canvas.image = _symbol_canvas("X")  # Every model guesses 8; model 4 takes it for no digit.
    app = _run("pages/draw.py")
    assert "That doesn't look like a digit" in app.warning[0].value
    assert "would guess an 8, but" in _text(app)
    assert "would guess an <b>8</b>, for a drawing that does not look like a digit" in _html(app)
    assert "models read" not in _html(app)


def test_the_compare_page_shows_calibration_raw_and_calibrated(canvas):
    app = _run("pages/compare.py")
    assert "How honest is the confidence?" in [s.value for s in app.subheader]
    (table,) = [frame.value for frame in app.dataframe if "Temperature" in frame.value]
    assert list(table["Model"]) == [1, 2, 3, 4, 5, 6]
    figures = saved_models.load(4).calibration.reliability
    assert table["MNIST test: ECE raw"][3] == f"{figures['test']['raw'].ece:.2%}"
    assert table["Drawn digits: ECE calibrated"][3] == f"{figures['drawn']['calibrated'].ece:.2%}"
    chart = app.get("plotly_chart")[-1]
    assert "drawn digits, raw confidence" in chart.proto.spec
    app.segmented_control(key="calibration_version").set_value("calibrated").run()
    assert "drawn digits, calibrated confidence" in app.get("plotly_chart")[-1].proto.spec


def test_the_compare_page_shows_every_model_on_digits_by_other_hands(canvas):
    app = _run("pages/compare.py")
    assert "On digits by other hands" in [s.value for s in app.subheader]
    (table,) = [frame.value for frame in app.table if "Hershey fonts" in frame.value]
    assert list(table["Model"]) == ["1", "2", "3", "4", "5", "6 (beyond the study)"]
    record = saved_models.load(2).calibration
    assert table["Scanned"][1] == f"{record.reliability['scanned']['raw'].share_right():.2%}"
    assert table["Hershey fonts"][1] == f"{record.reliability['hershey']['raw'].share_right():.2%}"
    assert table["Drawn"][1] == f"{saved_models.load(2).metrics.accuracy['drawn']:.2%}"
    turned_away = record.novelty.turned_away
    shares = (100 * turned_away[name] for name in ("drawn", "scanned", "hershey"))
    assert table["Turned away (drawn / scanned / Hershey)"][1] == " / ".join(f"{s:.1f}" for s in shares) + "%"
    assert (
        "Models 1, 2, 3, 4 and 5 judge whether a drawing is a digit by model 6's score (a committee), so "
        "they turn away the same drawings as model 6."
    ) in _text(app)
    assert app.segmented_control(key="calibration_set").options == ["MNIST", "Drawn", "Scanned", "Hershey"]
    app.segmented_control(key="calibration_set").set_value("hershey").run()
    assert "Reliability on Hershey fonts, raw confidence" in app.get("plotly_chart")[-1].proto.spec


def test_a_calibration_file_without_every_set_measured_is_refused_with_the_command_that_refits_it(
    models_copy,
):
    path = model_dir(2, models_copy) / saved_models.CALIBRATION_FILE
    payload = json.loads(path.read_text())
    del payload["reliability"]["hershey"]
    path.write_text(json.dumps(payload))
    with pytest.raises(saved_models.SavedModelError, match="reliability must cover the sets") as error:
        saved_models.load(2, models_copy)
    assert "refit it with `python -m digitdraw calibrate --model 2`" in str(error.value)
    app = _run("pages/compare.py")
    assert not app.exception
    assert app.segmented_control(key="calibration_set").options == ["MNIST", "Drawn", "Scanned", "Hershey"]


def _set_baseline(model_id: int, root: Path, baseline: dict | None) -> None:
    path = model_dir(model_id, root) / saved_models.METRICS_FILE
    metrics = json.loads(path.read_text())
    metrics["baseline"] = baseline
    path.write_text(json.dumps(metrics))


def test_the_compare_page_reports_both_recipes_where_a_baseline_was_measured(canvas, models_copy):
    for model_id in (1, 2, 3, 4, 5):
        _set_baseline(model_id, models_copy, None)
    app = _run("pages/compare.py")
    assert "Two training recipes" not in [s.value for s in app.subheader]
    figures = dict.fromkeys(("train", "validation", "test"), 0.5) | {"drawn": 0.25}
    _set_baseline(
        2, models_copy, {"recipe": "study", "accuracy": figures, "epochs_run": 3, "training_seconds": 1}
    )
    app.run()
    assert not app.exception
    assert "Two training recipes" in [s.value for s in app.subheader]
    (table,) = [frame.value for frame in app.table if "Test: baseline" in frame.value]
    assert list(table["Model"]) == ["2"] and list(table["Baseline recipe"]) == ["study"]
    assert table["Test: baseline"][0] == "50.00%" and table["Drawn: baseline"][0] == "25.00%"
    saved = saved_models.load(2, models_copy)
    assert table["Recipe"][0] == saved.card.config.get("recipe", "study")
    assert table["Test (MNIST)"][0] == f"{saved.metrics.accuracy['test']:.2%}"


def test_the_compare_page_says_how_to_calibrate_uncalibrated_models(canvas, models_copy):
    for model_id in (1, 2, 3, 4, 5, 6):
        for name in OPTIONAL_FILES:
            (model_dir(model_id, models_copy) / name).unlink()
    app = _run("pages/compare.py")
    assert any("python -m digitdraw calibrate" in i.value for i in app.info)


# Networks people train (saved_models/custom/<name>/) appear wherever the study's do, on the next rerun.


def test_a_trained_network_appears_on_every_page_and_goes_when_deleted(canvas, models_copy):
    from digitdraw.serving.networks import Architecture
    from digitdraw.serving.saved_models import delete_custom

    canvas.image = draw_digit(7)
    draw = _run("pages/draw.py")
    assert "my-net" not in draw.selectbox(key="draw_model").options
    save_constant_model("my-net", digit=2, root=models_copy, architecture=Architecture.dense((8,), "gelu"))
    draw.run()
    assert "my-net · 784-8-10 · GELU" in draw.selectbox(key="draw_model").options
    assert _reads(draw)["my-net"] == "2" and _reads(draw)["Model 4"] == "7"
    assert "Calibrated" in draw.metric[0].proto.help  # Model 4 is calibrated ...
    draw.selectbox(key="draw_model").set_value("my-net").run()
    assert not draw.exception and draw.metric[0].value == "2" and draw.metric[0].label == "my-net reads"
    assert not draw.metric[0].proto.help  # ... a network trained here is not, and does not say so.

    curves = _run("pages/training_curves.py")
    curves.selectbox(key="curves_model").set_value("my-net").run()
    assert not curves.exception and not curves.error
    # Its made-up metrics (one image per digit) have no MNIST test gallery to show: the picker only.
    assert (
        "my-net · 784-8-10 · GELU"
        in _run("pages/confusion_matrix.py").selectbox(key="confusion_model").options
    )
    curves = _run("pages/training_curves.py")
    curves.segmented_control(key="curves_view").set_value("All models").run()
    assert not curves.exception
    compare = _run("pages/compare.py")
    assert "my-net" in list(compare.table[0].value["Model"])
    inside = _run("pages/inside.py")
    inside.segmented_control(key="inside_pair").set_value("Any two").run()
    inside.selectbox(key="inside_left").set_value("my-net").run()
    assert not inside.exception and "my-net · 784-8-10 · GELU** reads **2**" in _text(inside)

    delete_custom("my-net", models_copy)
    # A session whose chosen network was deleted (here or in another session) falls back to a study model.
    again = AppTest.from_file(str(ROOT / "pages/draw.py"), default_timeout=TIMEOUT)
    again.session_state["draw_model"] = "my-net"
    again.run()
    assert not again.exception
    assert "my-net" not in " ".join(again.selectbox(key="draw_model").options)
    assert again.metric[0].label == "Model 4 reads" and again.metric[0].value == "7"


# The Train page queues jobs and reads their progress; a stand-in worker here claims and reports.


def _train_page() -> AppTest:
    return _run("pages/train.py")


def _queue(drawings_store):
    from digitdraw.jobs.queue import JobQueue

    return JobQueue(drawings_store)


def test_start_queues_the_designed_network(drawings_store, models_copy):
    app = _train_page()
    assert "No jobs yet: design a network, then press Start." in _text(app)
    app.text_input(key="train_name").input("my-net")
    app.segmented_control(key="train_layers").set_value(1)
    app.number_input(key="train_units_0").set_value(32)
    app.segmented_control(key="train_activation").set_value("tanh")
    app.slider(key="train_epochs").set_value(3)
    app.button(key="train_start").click().run()
    assert not app.exception and not app.error
    (job,) = _queue(drawings_store).jobs()
    assert (job.name, job.settings.hidden, job.settings.activation, job.settings.epochs) == (
        "my-net",
        (32,),
        "tanh",
        3,
    )
    assert job.state == "queued" and "Waiting for a worker" in app.get("progress")[0].proto.text
    assert "my-net" in _text(app) and "784-32-10 · tanh · Adam, rate 0.001" in _text(app)
    assert job.settings.kept_repeats is None, "MNIST alone unless asked"


def test_a_job_left_queued_with_nothing_running_says_how_to_start_a_worker(drawings_store, models_copy):
    import datetime

    from sqlalchemy import update

    from digitdraw.jobs.queue import JobRow

    app = _train_page()
    app.text_input(key="train_name").set_value("lonely-net")
    app.button(key="train_start").click().run()
    queue = _queue(drawings_store)
    assert app.get("progress")[0].proto.text == "Waiting for a worker"
    # Under a minute, in seconds: a whole minute rounded down would say "for 0 min".
    forty_seconds_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=40)
    with queue._engine.begin() as connection:
        connection.execute(update(JobRow).values(created_at=forty_seconds_ago))
    app.run()
    assert re.match(r"Waiting for a worker for 4\d s: none", app.get("progress")[0].proto.text)
    two_minutes_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
    with queue._engine.begin() as connection:
        connection.execute(update(JobRow).values(created_at=two_minutes_ago))
    app.run()
    waiting = app.get("progress")[0].proto.text
    assert waiting == (
        "Waiting for a worker for 2 min: none seems to be running. `make run` starts one beside the app, "
        "and `python -m digitdraw worker` starts one on its own."
    )
    # With another job running (a worker busy with it), the queued one only waits its turn.
    app.text_input(key="train_name").set_value("busy-net")
    app.button(key="train_start").click().run()
    queue.claim("host-a:1")
    with queue._engine.begin() as connection:
        connection.execute(update(JobRow).values(created_at=two_minutes_ago))
    app.run()
    assert [bar.proto.text for bar in app.get("progress")].count("Waiting for a worker") == 1


def test_start_without_a_name_asks_for_one(drawings_store, models_copy):
    app = _train_page()
    app.button(key="train_start").click().run()
    assert [error.value for error in app.error] == [
        "Give the network a name first: 1 to 40 letters, digits and dashes, starting with a letter."
    ]
    assert _queue(drawings_store).jobs() == []


def test_a_name_that_is_no_name_is_refused_with_one_that_would_do(drawings_store, models_copy):
    app = _train_page()
    app.text_input(key="train_name").set_value("teacher net")
    app.button(key="train_start").click().run()
    assert [error.value for error in app.error] == [
        "A network's name is 1 to 40 letters, digits and dashes, starting with a letter: "
        "`teacher-net` would do."
    ]
    assert _queue(drawings_store).jobs() == []


def _keep_drawings(url: str, count: int) -> list[str]:
    """Keep ``count`` distinct drawings (one dot each, in its own place); their digests, which the Train
    page counts the parts by."""
    images = np.zeros((count, 28, 28), np.float32)
    images[np.arange(count), np.arange(count) // 28, np.arange(count) % 28] = 1.0
    kept = store.Store(url)
    try:
        kept.save_many(
            store.NewDrawing(
                label=index % 10, model_input=image, probabilities={}, model_sha256={}, session_id=MINE
            )
            for index, image in enumerate(images)
        )
    finally:
        kept.close()
    return [store.input_digest(image) for image in images]


def test_learning_from_the_kept_drawings_waits_calmly_for_enough_of_them(drawings_store, models_copy):
    from digitdraw.learning.kept_split import MIN_PER_PART, part_sizes

    sizes = part_sizes(_keep_drawings(drawings_store, 12))
    assert (sizes.training, sizes.held_out) == (12, 0)  # Ten held out, at a fifth of new drawings: 50 more.
    app = _train_page()
    option = app.checkbox(key="train_kept")
    assert option.disabled and option.value is False
    assert (
        f"Not yet: 12 drawings are kept ({sizes.training} to learn from, {sizes.held_out} held out to "
        f"measure it), and each part needs at least {MIN_PER_PART}: keep about 50 more."
    ) in [caption.value for caption in app.caption]
    # Even asked for (a session that chose it before drawings were deleted), too few are not used.
    app.session_state["train_kept"] = True
    app.text_input(key="train_name").input("my-net")
    app.button(key="train_start").click().run()
    assert not app.exception and not app.error
    (job,) = _queue(drawings_store).jobs()
    assert job.settings.kept_repeats is None
    assert all(widget.key != "train_kept_repeats" for widget in app.number_input)


def test_the_choice_to_learn_from_the_kept_drawings_travels_with_the_job(drawings_store, models_copy):
    from digitdraw.learning.kept_split import DEFAULT_REPEATS, part_sizes

    sizes = part_sizes(_keep_drawings(drawings_store, 50))
    assert sizes.enough
    app = _train_page()
    assert not app.checkbox(key="train_kept").disabled
    assert (
        f"50 drawings are kept ({sizes.training} to learn from, {sizes.held_out} held out to measure it)."
        in [caption.value for caption in app.caption]
    )
    assert all(widget.key != "train_kept_repeats" for widget in app.number_input), "asked only when chosen"
    app.text_input(key="train_name").input("kept-net")
    app.checkbox(key="train_kept").check().run()
    assert app.number_input(key="train_kept_repeats").value == DEFAULT_REPEATS
    app.number_input(key="train_kept_repeats").set_value(3)
    app.button(key="train_start").click().run()
    assert not app.exception and not app.error
    (job,) = _queue(drawings_store).jobs()
    assert job.name == "kept-net" and job.settings.kept_repeats == 3
    assert "kept drawings 3× an epoch" in _text(app)
    app.button(key="train_preset").click().run()
    assert app.checkbox(key="train_kept").value is False, "the study trained on MNIST alone"


def _set_kept_drawings(model_id, root: Path, accuracy: float, before: float | None) -> None:
    """Give a saved model's metrics a kept-drawings record, as a run on 50 kept drawings writes it."""
    path = model_dir(model_id, root) / saved_models.METRICS_FILE
    metrics = json.loads(path.read_text())
    metrics["kept_drawings"] = {
        "source": "sqlite:///kept.sqlite",
        "kept": 50,
        "trained": 38,
        "held_out": 12,
        "held_out_share": 0.2,
        "split_rule": "by id",
        "repeats": 10,
        "accuracy": accuracy,
        "accuracy_before": before,
    }
    path.write_text(json.dumps(metrics))


def test_a_network_trained_on_kept_drawings_shows_how_it_reads_the_held_out_ones(drawings_store, models_copy):
    save_constant_model("kept-net", 3, models_copy)
    save_constant_model("mnist-net", 3, models_copy)
    _set_kept_drawings("kept-net", models_copy, accuracy=0.75, before=None)
    _set_kept_drawings(2, models_copy, accuracy=0.5, before=0.25)
    app = _train_page()
    captions = [caption.value for caption in app.caption]
    assert "Learned from 38 kept drawings (each 10× an epoch); reads 75.00% of the 12 held out." in captions
    assert sum("kept drawings (each" in caption for caption in captions) == 1, "mnist-net trained on MNIST"

    compare = _run("pages/compare.py")
    table = compare.table[0].value
    cells = dict(zip(table["Model"], table["Kept drawings (held out)"]))
    assert cells["kept-net"] == "75.00% of 12" and cells["2"] == "50.00% of 12"
    assert cells["mnist-net"] == cells["1"] == "–"
    assert "Kept drawings: for a model trained on the drawings users kept too" in _text(compare)


def test_the_compare_page_has_no_kept_drawings_column_when_no_model_learned_from_them(canvas):
    table = _run("pages/compare.py").table[0].value
    assert "Kept drawings (held out)" not in table.columns


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "../x",
            "A network's name is 1 to 40 letters, digits and dashes, starting with a letter: `x` would do.",
        ),
        ("taken", "This network cannot be trained yet: a network named 'taken' exists already"),
    ],
)
def test_a_bad_request_is_one_calm_sentence_and_queues_nothing(name, message, drawings_store, models_copy):
    save_constant_model("taken", 1, models_copy)
    app = _train_page()
    app.text_input(key="train_name").input(name)
    app.button(key="train_start").click().run()
    assert not app.exception
    assert len(app.error) == 1 and app.error[0].value.startswith(message)
    assert _queue(drawings_store).jobs() == []


def test_the_study_recipe_fills_in_what_the_study_did(drawings_store):
    from digitdraw.learning.config import TrainConfig

    app = _train_page()
    app.segmented_control(key="train_activation").set_value("sigmoid").run()
    app.button(key="train_preset").click().run()
    recipe = TrainConfig()
    assert app.selectbox(key="train_optimizer").value == "study"
    assert app.number_input(key="train_learning_rate").value == recipe.sigmoid_learning_rate
    assert app.slider(key="train_epochs").value == recipe.epochs
    assert app.select_slider(key="train_batch").value == recipe.batch_size
    assert app.toggle(key="train_augment").value is True


def test_progress_curves_stop_and_delete(drawings_store, models_copy):
    from digitdraw.learning.config import NetworkSettings
    from digitdraw.serving.saved_models import History, custom_names

    queue = _queue(drawings_store)
    job_id = queue.submit(
        NetworkSettings(name="my-net", hidden=(8,), activation="relu", epochs=4), models_copy
    )
    queue.claim("host:1")
    curves = {"loss": [0.5], "accuracy": [0.9]}
    history = History(epoch=[1], train=curves, validation=curves, test=curves, best_epoch=1)
    queue.report(job_id, "host:1", epoch=1, batch=2, batches=8, history=history)

    app = _train_page()
    progress = app.get("progress")[0]
    assert "Epoch 2 of 4, batch 2 of 8" in progress.proto.text and progress.proto.value == round(
        100 * 1.25 / 4
    )
    assert len(app.get("plotly_chart")) == 2, "live accuracy and loss curves"

    app.button(key=f"stop_{job_id}").click().run()
    assert not app.exception and queue.stop_requested(job_id)
    assert "stopping after this batch" in app.get("progress")[0].proto.text

    # The worker saves the best epoch and says so; the network is listed, and Delete removes it.
    save_constant_model("my-net", 3, models_copy)
    queue.finish(job_id, "host:1", "stopped", "Stopped on request; kept epoch 1 of 1.")
    app.run()
    assert "kept epoch 1 of 1" in _text(app) and "my-net · 784-4-10 · tanh" in _text(app)
    app.button(key="delete_my-net").click().run()
    assert not app.exception and custom_names(models_copy) == []


def test_your_drawings_judges_a_trained_network_on_the_kept_drawings(kept_drawings, models_copy):
    save_constant_model("my-net", digit=7, root=models_copy)  # Reads everything as a 7.
    app = _your_drawings()
    table = app.dataframe[0].value
    mine = dict(zip(table["Model"], table["Your drawings"]))
    assert mine["my-net"] == 0.25, "one of this browser's four drawings is labelled 7"
    app.selectbox(key="kept_model").set_value("my-net").run()
    assert not app.exception


def test_the_train_page_says_a_job_failed_when_its_worker_was_killed(drawings_store, models_copy):
    import subprocess

    from digitdraw.jobs.queue import this_worker
    from digitdraw.learning.config import NetworkSettings

    queue = _queue(drawings_store)
    queue.submit(NetworkSettings(name="my-net", hidden=(8,), activation="relu"), models_copy)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    queue.claim(f"{this_worker().rpartition(':')[0]}:{gone.stdout.strip()}")  # Its process has exited.
    app = _train_page()
    assert any("**my-net** :red-badge[:material/error: failed]" in m.value for m in app.markdown)
    assert "stopped before it finished, so nothing was saved" in _text(app)
    assert not app.get("progress"), "a failed job has no progress bar"


def test_the_cnn_beyond_the_study_shows_its_feature_maps_and_3x3_filters_layer_by_layer(canvas):
    app = _inside_with_a_seven(canvas, "Layer by layer")
    app.segmented_control(key="inside_pair").set_value("A CNN (beyond the study) vs one wide layer").run()
    assert not app.exception, [e.message for e in app.exception]
    text = _text(app)
    assert "Model 6 · 784-conv16-pool-conv32-pool-64-10 · ReLU · beyond the study** reads **7**" in text
    assert "Model 5 · 784-128-10 · ReLU** reads **7**" in text
    assert "each map shrunk to 13×13" in text and "each map shrunk to 5×5" in text
    assert "A feature map is one small filter (3×3 in model 6)" in text
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert any(caption.startswith("Convolution 1: 16 feature maps of 26×26") for caption in captions)
    assert any(caption.startswith("Convolution 2: 32 feature maps of 11×11") for caption in captions)
    assert any(caption.startswith("Model 6: filters ") for caption in captions)  # Its 3x3 first layer.
    # The CNN's dense layer as a plotly grid (it is not its first layer); model 5's first layer as HTML.
    assert len(app.get("plotly_chart")) == 1 and _html(app).count('class="dd-unit"') == 128


def test_the_damage_lab_switches_off_a_cnn_s_feature_maps_but_offers_no_pool(canvas):
    app = _inside_with_a_seven(canvas, "Damage lab")
    app.selectbox(key="damage_model").set_value(6).run()
    labels = [widget.label for widget in app.multiselect]
    assert labels == ["Switch off maps of convolution 1", "Switch off maps of convolution 2",
                      "Switch off in hidden layer 1"]  # fmt: skip
    app.multiselect(key="damage_units_6_0").set_value(list(range(16))).run()
    assert not app.exception, [e.message for e in app.exception]
    wrecked = {m.label: m.value for m in app.metric}
    assert float(wrecked["Damaged: MNIST sample"].rstrip("%")) < 20  # No first-layer map left.


@pytest.mark.parametrize("view", ["Why this digit", "What would flip it", "Preprocessing"])
def test_every_inside_view_answers_for_the_cnn(canvas, view):
    app = _inside_with_a_seven(canvas, view)
    if view == "What would flip it":
        app.selectbox(key="flip_model").set_value(6).run()
        assert "Model 6 reads the edited image as" in _text(app)
    else:
        assert "Model 6" in _html(app)
    assert not app.exception, [e.message for e in app.exception]


def test_the_train_page_lists_a_job_whose_settings_cannot_be_trained_calmly(drawings_store, models_copy):
    from queued import insert_queued

    queue = _queue(drawings_store)
    insert_queued(queue, "odd", {"name": "odd", "hidden": [8], "activation": "relu", "surprise": 1})
    app = _train_page()
    assert not app.exception and "Settings that cannot be trained." in _text(app)
    queue.claim("host:1")  # A worker fails it, with the reason, and goes on.
    assert "Its settings cannot be trained: " in _text(_train_page())


@pytest.fixture(scope="module")
def opened_keras_file(tmp_path_factory):
    """A Keras file of a network with the options only an opened one has: a strided convolution with same
    padding and leaky ReLU, a BatchNormalization, an average pool, GELU, logits out, pixels 0 to 255."""
    import keras

    keras.utils.set_random_seed(3)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Rescaling(1 / 255.0),
            layers.Conv2D(6, 5, strides=2, padding="same"),
            layers.BatchNormalization(),
            layers.LeakyReLU(negative_slope=0.1),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(12, activation="gelu"),
            layers.Dense(10),
        ]
    )
    path = tmp_path_factory.mktemp("opened") / "course-net.keras"
    model.save(path)
    return path


@pytest.fixture
def opened_network(opened_keras_file, models_copy, tiny_dataset):
    """The network of ``opened_keras_file`` opened as "course-net" among a copy of the committed models."""
    from digitdraw.learning.opening import open_network

    open_network(opened_keras_file, "course-net", models_copy, dataset=tiny_dataset)
    return "course-net"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_an_opened_network(page, canvas, opened_network):
    app = _run(page)
    assert app.title, f"{page} shows a title"


def test_an_opened_network_answers_on_the_draw_page_and_shows_on_the_inside_views(canvas, opened_network):
    canvas.image = draw_digit(7)
    draw = _run("pages/draw.py")
    assert opened_network in _reads(draw)
    app = _inside_with_a_seven(canvas, "Layer by layer")
    app.segmented_control(key="inside_pair").set_value("Any two").run()
    app.selectbox(key="inside_left").set_value(opened_network).run()
    assert not app.exception, [e.message for e in app.exception]
    assert "course-net · 784-conv6/5x5s2same-avgpool-12-10 · mixed** reads" in _text(app)
    for view, key in (("What would flip it", "flip_model"), ("Damage lab", "damage_model")):
        app.segmented_control(key="inside_view").set_value(view).run()
        app.selectbox(key=key).set_value(opened_network).run()
        assert not app.exception, (view, [e.message for e in app.exception])
    app.segmented_control(key="inside_view").set_value("Why this digit").run()
    assert not app.exception and "course-net reads" in _html(app)


def test_an_opened_network_has_no_curves_and_says_why(canvas, opened_network):
    app = _run("pages/training_curves.py")
    app.selectbox(key="curves_model").set_value(opened_network).run()
    assert not app.exception and not app.get("plotly_chart")
    assert "Opened from course-net.keras: its output read as logits, its input as pixels" in _text(app)
    app.segmented_control(key="curves_view").set_value("All models").run()
    assert not app.exception and "Opened from a file, so without curves: course-net." in _text(app)


def test_the_train_page_lists_an_opened_network_with_downloads_and_compare_downloads_any(
    canvas, opened_network
):
    train = _run("pages/train.py")
    assert "Opened from course-net.keras" in _text(train)
    labels = [button.proto.label for button in train.get("download_button")]
    assert labels == [".keras", ".npz", "Model card"]
    compare = _run("pages/compare.py")
    assert [button.proto.label for button in compare.get("download_button")] == [
        ".keras",
        ".npz",
        "Model card",
    ]
    compare.selectbox(key="compare_download_model").set_value(opened_network).run()
    assert not compare.exception
    models_in_tables = [list(frame.value.iloc[:, 0]) for frame in [*compare.dataframe, *compare.table]]
    assert any("course-net" in models for models in models_in_tables)


@pytest.mark.parametrize("phone", [True, False])
@pytest.mark.parametrize(
    "page", ["pages/training_curves.py", "pages/compare.py", "pages/confusion_matrix.py"]
)
def test_charts_never_zoom_under_a_finger_and_hide_their_toolbar_on_a_phone(page, phone, canvas, monkeypatch):
    monkeypatch.setattr(ui_app, "on_phone", lambda: phone)
    app = _run(page)
    charts_shown = app.get("plotly_chart")
    if phone and page == "pages/confusion_matrix.py":
        assert not charts_shown, "a phone's confusion matrix is a table of cells to tap"
        return
    assert charts_shown, f"{page} shows a chart"
    for chart in charts_shown:
        config = json.loads(chart.proto.config)
        layout = json.loads(chart.proto.spec)["layout"]
        assert config["scrollZoom"] is False, "the wheel and two fingers scroll the page, not the chart"
        assert config["displayModeBar"] == (False if phone else "hover")
        axes = [value for name, value in layout.items() if name.startswith(("xaxis", "yaxis"))]
        if phone:
            assert layout["dragmode"] is False and axes and all(axis["fixedrange"] for axis in axes)
        else:
            assert "dragmode" not in layout and not any(axis.get("fixedrange") for axis in axes)


def test_on_a_phone_the_confusion_matrix_is_a_table_of_cells_to_tap(canvas, monkeypatch):
    monkeypatch.setattr(ui_app, "on_phone", lambda: True)
    app = _run("pages/confusion_matrix.py")
    assert not app.exception, [e.message for e in app.exception]
    matrix = next(frame.value for frame in app.dataframe if list(frame.value.columns) == list("0123456789"))
    counts = np.array(saved_models.load(4).metrics.confusion_matrix)
    # Each cell is its count, thousands shortened to fit a phone's column; the diagonal holds most.
    assert matrix.loc["4", "9"] == str(counts[4, 9]) and matrix.loc["1", "1"].endswith("k")
    assert "Tap a cell to see its test images below." in _text(app)


def test_the_confusion_matrix_of_an_opened_network_is_its_mnist_measurement(canvas, opened_network):
    app = _run("pages/confusion_matrix.py")
    app.selectbox(key="confusion_model").set_value(opened_network).run()
    assert not app.exception, [e.message for e in app.exception]
    assert app.get("plotly_chart"), "its heatmap"
    # The tests measure an opened network on 300 MNIST test images: the gallery says it cannot match them.
    assert "was measured on 300 test images, not all 10,000" in _text(app)


def test_your_drawings_lists_each_with_its_picture_and_second_newest_first(kept_drawings):
    app = _your_drawings()
    table = app.dataframe[-1].value
    assert list(table["Digit"]) == [9, 7, 1, 0], "newest first"
    assert all(url.startswith("data:image/png;base64,") for url in table["Drawing"])
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", kept) for kept in table["Kept"])
    picture = cv2.imdecode(np.frombuffer(base64.b64decode(table["Drawing"][3].split(",")[1]), np.uint8), 0)
    assert picture.shape == (28, 28) and picture.min() < 64 and picture.max() == 255, "dark ink on white"


@pytest.mark.parametrize(
    ("page", "columns"),
    [
        ("pages/compare.py", ["Model", "Validation: ours", "Test (MNIST)", "Drawn digits"]),
        ("pages/compare.py", ["Model", "Parameters", "One prediction"]),
        ("pages/confusion_matrix.py", ["digit", "recall", "F1"]),
    ],
)
def test_on_a_phone_a_table_shows_the_columns_that_matter_and_every_column_a_tap_away(
    page, columns, canvas, monkeypatch
):
    monkeypatch.setattr(ui_app, "on_phone", lambda: True)
    app = _run(page)
    tables = [*app.table, *app.dataframe]
    shown = [list(table.value.columns) for table in tables]
    assert columns in shown, shown
    assert any(len(names) > len(columns) and set(columns) <= set(names) for names in shown), "all, a tap away"
    assert app.expander[0].label == "Every column"


def test_what_the_model_sees_shows_the_cropped_strokes_with_a_margin(canvas):
    canvas.image = draw_digit(7)
    app = _run("pages/draw.py")
    pictures = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', _html(app))
    steps = {alt: cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), 0) for data, alt in pictures}
    for step in ("2. Cropped, even, upright", "3. Fit in 20×20"):
        picture = steps[step]
        ink = np.argwhere(picture > 128)
        # The strokes stop short of every edge: no stroke looks cut off by the picture's border.
        assert (
            ink.min() > 0
            and ink[:, 0].max() < picture.shape[0] - 1
            and ink[:, 1].max() < picture.shape[1] - 1
        )


def test_an_eight_takes_an_not_a():
    assert [f"{ui_app.article(digit)} {digit}" for digit in (7, 8, "8")] == ["a 7", "an 8", "an 8"]


def test_a_network_opened_under_a_name_that_is_no_name_is_refused_before_it_is_read(
    drawings_store, models_copy, monkeypatch
):
    opened = []
    monkeypatch.setattr(ui_app, "open_network_file", lambda *arguments: opened.append(arguments))
    app = _train_page()
    app.file_uploader(key="open_file").set_value(("net.keras", b"not read", "application/octet-stream")).run()
    app.text_input(key="open_name").set_value("course net!")
    app.button(key="open_start").click().run()
    assert opened == []
    assert [error.value for error in app.error] == [
        "A network's name is 1 to 40 letters, digits and dashes, starting with a letter: "
        "`course-net` would do."
    ]
