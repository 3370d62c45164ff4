"""End to end in Chromium: draw with the mouse, read the answer, switch models, clear, open every page."""

from __future__ import annotations

import re

import pytest
from harness import (
    LAPTOP,
    PHONE,
    STROKES,
    draw,
    mouse_path,
    streamlit_server,
    touch_draw,
    whole_page_screenshot,
)
from playwright.sync_api import Page, expect

from digitdraw.ui import app as ui_app

pytestmark = pytest.mark.e2e

# URL path of each side page (from its file name) and the heading it shows.
PAGES = {
    "inside": "Inside the networks",
    "your_drawings": "Your drawings",
    "training_curves": "Training curves",
    "confusion_matrix": "Confusion matrix",
    "compare": "Compare the models",
    "train": "Train your own network",
}


def prediction(page: Page):
    return page.get_by_test_id("stMetricValue").first


def clear(page: Page) -> None:
    page.get_by_role("button", name="Clear the canvas").click()
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=15_000)


# Counts the canvas component's dark pixels: ink is #111111 on a white background.
INK_PIXELS = """
canvases => canvases.reduce((total, canvas) => {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let dark = 0;
  for (let i = 0; i < pixels.length; i += 4) if (pixels[i + 3] > 0 && pixels[i] < 128) dark++;
  return total + dark;
}, 0)
"""


def ink_pixels(page: Page) -> int:
    return page.locator(".st-key-canvas canvas").evaluate_all(INK_PIXELS)


def test_drawn_digits_are_recognised_by_model_4_and_clear_empties_the_canvas(page, screenshots):
    for digit in (1, 0, 7):
        draw(page, STROKES[digit])
        expect(page.get_by_test_id("stMetricLabel").first).to_contain_text("Model 4 reads", timeout=15_000)
        expect(prediction(page)).to_have_text(str(digit), timeout=15_000)
        if digit == 7:
            whole_page_screenshot(page, screenshots / "draw.png")
        clear(page)
        expect(page.get_by_test_id("stMetricValue")).to_have_count(0)


def test_clear_empties_the_canvas_and_the_answer_in_one_click_without_reloading(page):
    draw(page, STROKES[4])
    expect(prediction(page)).to_have_text("4", timeout=15_000)
    assert ink_pixels(page) > 1000
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Clear the canvas").click()
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id("stMetricValue")).to_have_count(0)
    for _ in range(50):  # The canvas empties itself as soon as the Clear rerun's props arrive.
        if ink_pixels(page) == 0:
            break
        page.wait_for_timeout(100)
    assert ink_pixels(page) == 0
    assert page.evaluate("window.notReloaded") is True
    # The next drawing, straight away, is read.
    draw(page, STROKES[1])
    expect(prediction(page)).to_have_text("1", timeout=15_000)


def test_a_stroke_reruns_only_the_drawing_area(page, server):
    page.wait_for_timeout(500)  # The page's first, whole run has finished.
    runs_before = len(server.script_runs())
    draw(page, STROKES[7])
    expect(prediction(page)).to_have_text("7", timeout=15_000)
    # The answer reaches the browser while its run is still ending; the run's record is written after.
    for _ in range(50):
        runs = server.script_runs()[runs_before:]
        if runs:
            break
        page.wait_for_timeout(100)
    assert runs, "the stroke reran nothing on the server"
    assert all(run["fragment"] for run in runs), runs


# Whether the page has fetched Streamlit's browser code for every kind of element the first stroke shows.
ANSWER_CODE_LOADED = """
kinds => kinds.every(kind => performance.getEntriesByType("resource").some(
  entry => entry.name.includes(`/static/js/${kind}.`)))
"""


def test_a_fresh_page_loads_the_answer_s_code_before_the_first_stroke(page):
    # Without the preload the first stroke fetched ten script files (the answer's metric, the pills,
    # the page link and what they import), and its answer waited for them.
    page.wait_for_function(ANSWER_CODE_LOADED, arg=list(ui_app.FIRST_ANSWER_ELEMENTS), timeout=15_000)
    page.wait_for_load_state("networkidle")  # What they import, too.
    fetched = []
    page.on("request", lambda request: fetched.append(request.url))
    draw(page, STROKES[2])
    expect(prediction(page)).to_have_text("2", timeout=15_000)
    expect(page.get_by_role("button", name="Right, it is a 2")).to_be_visible()
    expect(page.get_by_role("link", name="Look inside the networks with this drawing")).to_be_visible()
    assert not [url for url in fetched if "/static/js/" in url], fetched


@pytest.mark.parametrize("x", [40, 150, 260])
def test_a_first_stroke_from_the_top_edge_of_a_fresh_canvas_is_drawn(page, x):
    # The canvas component's toolbar is invisible until hovered and sits over the
    # canvas's top right; the app moves it above the canvas so it cannot take this stroke.
    surface = page.locator("canvas").last
    expect(surface).to_be_visible(timeout=15_000)
    # The page's script has moved the toolbar (on a busy machine it runs a moment after the canvas shows).
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stBidiComponentIsolated]')]"
        ".some(host => host.shadowRoot?.querySelector('style[data-digitdraw]'))",
        timeout=15_000,
    )
    page.wait_for_timeout(500)
    # Only what drawing a digit needs: the toggle that turns the pen into a stroke mover is hidden.
    edit = page.get_by_role("button", name="Edit", exact=True, include_hidden=True)
    expect(edit).to_be_attached()
    expect(edit).to_be_hidden()
    expect(page.get_by_role("button", name="Reset canvas & history")).to_be_attached()
    box = surface.bounding_box()
    page.mouse.move(box["x"] + x, box["y"] - 50)  # Come in from above, as a hand does.
    points = list(mouse_path([(x, 3), (x, 240)], box["x"], box["y"]))
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
    page.mouse.up()
    expect(page.get_by_test_id("stMetricValue")).to_have_count(1, timeout=15_000)


def _bottom(box: dict) -> float:
    return box["y"] + box["height"]


def test_on_a_phone_a_finger_draws_the_answer_is_on_the_first_screen_and_one_tap_clears(
    browser, server, screenshots
):
    context = browser.new_context(**PHONE)
    tab = context.new_page()
    try:
        tab.goto(server.url)
        expect(tab.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=30_000)
        canvas = tab.locator("canvas").last.bounding_box()
        width = PHONE["viewport"]["width"]
        assert 0.75 * width <= canvas["width"] <= width, "the canvas fills most of the screen's width"
        touch_draw(tab, STROKES[4])
        expect(prediction(tab)).to_have_text("4", timeout=15_000)
        expect(tab.get_by_test_id("stMetricLabel").first).to_contain_text("Model 4 reads")
        confidence = tab.get_by_test_id("stMetricDelta").first
        expect(confidence).to_contain_text("confident")
        tab.wait_for_timeout(500)
        assert tab.evaluate("document.querySelector('[data-testid=stMain]').scrollTop") == 0
        canvas = tab.locator("canvas").last.bounding_box()
        assert canvas["y"] >= 0 and _bottom(canvas) <= PHONE["viewport"]["height"], "the canvas is all there"
        # The digit fits the browser's window with its bars showing; the whole answer, the
        # confidence too, fits the phone's 390x844 screen, which the page has once the bars hide.
        assert _bottom(prediction(tab).bounding_box()) <= PHONE["viewport"]["height"], "no scrolling"
        assert _bottom(confidence.bounding_box()) <= PHONE["screen"]["height"], "no scrolling"
        clear_button = tab.get_by_role("button", name="Clear the canvas")
        assert _bottom(clear_button.bounding_box()) <= PHONE["viewport"]["height"], "Clear is in reach too"
        # The title starts below the header that holds the sidebar's button, not under it.
        heading = tab.get_by_role("heading", name="Draw a digit").bounding_box()
        assert heading["y"] >= _bottom(tab.get_by_test_id("stHeader").bounding_box()) - 1
        # The model is chosen on the page, above the canvas, not behind the sidebar's button.
        picker = tab.get_by_test_id("stMain").get_by_test_id("stSelectbox").first.bounding_box()
        assert picker["y"] >= 0 and _bottom(picker) <= canvas["y"], "the model picker is on the first screen"
        assert tab.evaluate("document.documentElement.scrollWidth") <= width, (
            "nothing is wider than the screen"
        )
        tab.screenshot(path=screenshots / "phone-draw-answered.png")
        assert ink_pixels(tab) > 500
        clear_button.tap()  # One tap, no reload.
        expect(tab.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=15_000)
        expect(tab.get_by_test_id("stMetricValue")).to_have_count(0)
        for _ in range(50):  # The canvas empties itself as soon as the Clear rerun's props arrive.
            if ink_pixels(tab) == 0:
                break
            tab.wait_for_timeout(100)
        assert ink_pixels(tab) == 0
        assert tab.evaluate("document.querySelector('[data-testid=stMain]').scrollTop") == 0
        touch_draw(tab, STROKES[1])  # And the next drawing, straight away, is read.
        expect(prediction(tab)).to_have_text("1", timeout=15_000)
    finally:
        context.close()


def test_switching_models_shows_the_other_models_answer(page):
    draw(page, STROKES[7])
    expect(prediction(page)).to_have_text("7", timeout=15_000)
    # The answer shows before the rest of the drawing area below it; click once the page stands still.
    expect(page.get_by_role("heading", name="What the model sees")).to_be_visible(timeout=15_000)
    option = page.get_by_role("option", name="Model 2 · 784-16-16-10 · ReLU")
    for _ in range(3):  # A click during a re-render can land on a moving picker: open it again.
        page.get_by_test_id("stSelectbox").first.click()
        try:
            expect(option).to_be_visible(timeout=5_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    option.click()
    expect(page.get_by_test_id("stMetricLabel").first).to_contain_text("Model 2 reads", timeout=15_000)
    expect(page.get_by_role("heading", name="Every model's answer")).to_be_visible()


@pytest.mark.parametrize("device", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_page_opens_cleanly(browser, server, screenshots, device):
    url = server.url
    context = browser.new_context(**device)
    tab = context.new_page()
    name = "phone" if device.get("is_mobile") else "laptop"
    try:
        tab.goto(url)
        expect(tab.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=30_000)
        expect(tab.locator("canvas").last).to_be_visible(timeout=30_000)
        tab.wait_for_timeout(1000)  # The toolbar and fonts settle after the canvas appears.
        whole_page_screenshot(tab, screenshots / f"{name}-draw-empty.png")
        for path, title in PAGES.items():
            tab.goto(f"{url}/{path}")
            expect(tab.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=30_000)
            tab.wait_for_timeout(1500)  # Let the charts finish drawing before the screenshot.
            expect(tab.get_by_test_id("stException")).to_have_count(0)
            whole_page_screenshot(tab, screenshots / f"{name}-{path}.png")
    finally:
        context.close()
    assert "Traceback" not in server.log_path.read_text()


def test_a_deep_link_as_a_fresh_server_s_first_request_opens_inside_the_app(browser, tmp_path):
    # Until the main script has run once, Streamlit treats pages/ as an old-style pages folder.
    with streamlit_server(tmp_path / "streamlit.log") as fresh:
        context = browser.new_context(**LAPTOP)
        tab = context.new_page()
        try:
            tab.goto(f"{fresh.url}/compare")
            expect(tab.get_by_role("heading", name="Compare the models")).to_be_visible(timeout=30_000)
            navigation = tab.get_by_test_id("stSidebarNav")
            expect(navigation).to_contain_text("Compare models")
            expect(navigation).not_to_contain_text("streamlit app")
            expect(tab.get_by_text("Five fully connected networks")).to_be_visible()
        finally:
            context.close()


def test_a_corrected_drawing_shows_on_your_drawings(page, server):
    draw(page, STROKES[7])
    expect(prediction(page)).to_have_text("7", timeout=15_000)
    # "Not right? It is a 1": kept with the label the user gave.
    page.get_by_test_id("stButtonGroup").get_by_text("1", exact=True).click()
    expect(page.get_by_text("Kept as a 1")).to_be_visible(timeout=15_000)
    page.get_by_role("link", name="Your drawings").click()
    expect(page.get_by_role("heading", name="Your drawings", exact=True)).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("1", timeout=15_000)
    expect(page.get_by_text("1 of 1 read wrong")).to_be_visible()  # Every model read a 7.


@pytest.mark.parametrize("width", [1280, 1366])
def test_the_study_s_table_shows_every_column_on_a_laptop(browser, server, width):
    # As a dataframe it hid its last three columns, our test and drawn accuracy, behind a sideways scroll.
    context = browser.new_context(viewport={"width": width, "height": 800})
    tab = context.new_page()
    try:
        tab.goto(f"{server.url}/compare")
        table = tab.get_by_test_id("stTable").first
        expect(table).to_be_visible(timeout=30_000)
        for header in ("Model", "Drawn digits"):
            cell = table.get_by_role("columnheader", name=header)
            box, frame = cell.bounding_box(), table.bounding_box()
            assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1, (
                header
            )
        hidden = table.evaluate(
            "t => [t, ...t.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)"
        )
        assert not hidden, "the study's table scrolls sideways"
        # The reliability diagram's set buttons show their whole labels: their row does not scroll.
        first = tab.get_by_test_id("stMain").get_by_role("radio", name="MNIST", exact=True)
        row = "b => { const row = b.parentElement; return row.scrollWidth - row.clientWidth; }"
        assert first.evaluate(row) <= 1, "the set buttons are cut short"
    finally:
        context.close()


def test_a_drawing_survives_a_visit_to_another_page_and_clear_still_empties_it(page):
    draw(page, STROKES[4])
    expect(prediction(page)).to_have_text("4", timeout=15_000)
    drawn = ink_pixels(page)
    page.get_by_test_id("stSidebarNav").get_by_text("Training curves").click()
    expect(page.get_by_role("heading", name="Training curves")).to_be_visible(timeout=30_000)
    page.get_by_test_id("stSidebarNav").get_by_text("Draw", exact=True).click()
    expect(prediction(page)).to_have_text("4", timeout=30_000)  # Read again, with no new stroke.
    for _ in range(50):  # The strokes are redrawn once the fresh canvas has loaded them.
        if ink_pixels(page) > drawn * 0.9:
            break
        page.wait_for_timeout(100)
    assert ink_pixels(page) > drawn * 0.9, "the strokes are back on the canvas"
    draw(page, STROKES[1])  # A stroke more: the restored strokes and the new one are read together.
    expect(page.get_by_test_id("stMetricValue").first).not_to_have_text("1", timeout=15_000)
    clear(page)
    page.get_by_test_id("stSidebarNav").get_by_text("Compare models").click()
    expect(page.get_by_role("heading", name="Compare the models")).to_be_visible(timeout=30_000)
    page.get_by_test_id("stSidebarNav").get_by_text("Draw", exact=True).click()
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=30_000)
    assert ink_pixels(page) == 0, "a cleared drawing stays cleared"


def test_a_strokes_report_that_comes_after_clear_and_a_visit_to_another_page_brings_nothing_back(
    browser, server
):
    # The canvas sends a stroke a fifth of a second after the pen lifts, unless a Clear has reached it by
    # then. On a busy server it has not: the server's messages to this tab are held back here, so the
    # stroke is sent after the Clear, and the tab leaves for another page before the emptied canvas
    # reports back.
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    held: list[str | bytes] = []
    state = {"hold": False, "route": None}

    def route(socket) -> None:
        upstream = socket.connect_to_server()
        state["route"] = socket
        upstream.on_message(lambda message: held.append(message) if state["hold"] else socket.send(message))

    tab.route_web_socket(re.compile(r"_stcore/stream"), route)
    tab.goto(server.url)
    expect(tab.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=60_000)
    draw(tab, STROKES[4])
    expect(prediction(tab)).to_have_text("4", timeout=15_000)
    draw(tab, STROKES[1])
    state["hold"] = True
    tab.get_by_role("button", name="Clear the canvas").click()
    tab.wait_for_timeout(600)  # The stroke's report goes out, marked as drawn before the Clear.
    tab.get_by_test_id("stSidebarNav").get_by_text("Compare models").click()
    tab.wait_for_timeout(300)
    state["hold"] = False
    for message in held:
        state["route"].send(message)
    expect(tab.get_by_role("heading", name="Compare the models")).to_be_visible(timeout=30_000)
    tab.get_by_test_id("stSidebarNav").get_by_text("Draw", exact=True).click()
    expect(tab.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=30_000)
    tab.wait_for_timeout(1_000)  # Time for a drawing to be restored, were one kept.
    assert ink_pixels(tab) == 0, "the cleared drawing stays cleared"
    expect(prediction(tab)).to_have_count(0)
    draw(tab, STROKES[7])  # And the canvas reads what is drawn next.
    expect(prediction(tab)).to_have_text("7", timeout=15_000)
    context.close()


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1366, 768)])
def test_the_whole_draw_loop_fits_a_laptop_screen(browser, server, width, height):
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    tab.goto(server.url)
    expect(tab.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=60_000)
    draw(tab, STROKES[7])
    expect(prediction(tab)).to_have_text("7", timeout=15_000)
    tab.wait_for_timeout(500)
    # The canvas, the answer, Right and the ten digits, all without scrolling.
    for part in (
        tab.locator(".st-key-canvas"),
        prediction(tab),
        tab.get_by_role("button", name="Right, it is a 7"),
        tab.locator(".st-key-keep_as"),
    ):
        box = part.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, (part, box)
    context.close()
