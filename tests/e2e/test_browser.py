"""End to end in Chromium: draw with the mouse, read the answer, switch models, clear, open every page."""

from __future__ import annotations

import pytest
from harness import STROKES, draw, whole_page_screenshot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

# URL path of each side page (from its file name) and the heading it shows.
PAGES = {
    "training_curves": "Training curves",
    "confusion_matrix": "Confusion matrix",
    "compare": "Compare the models",
}


def prediction(page: Page):
    return page.get_by_test_id("stMetricValue").first


def clear(page: Page) -> None:
    page.get_by_role("button", name="Clear the canvas").click()
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=15_000)


def test_drawn_digits_are_recognised_by_model_4_and_clear_empties_the_canvas(page, screenshots):
    for digit in (1, 0, 7):
        draw(page, STROKES[digit])
        expect(page.get_by_test_id("stMetricLabel").first).to_contain_text("Model 4 reads", timeout=15_000)
        expect(prediction(page)).to_have_text(str(digit), timeout=15_000)
        if digit == 7:
            whole_page_screenshot(page, screenshots / "draw.png")
        clear(page)
        expect(page.get_by_test_id("stMetricValue")).to_have_count(0)


def test_switching_models_shows_the_other_models_answer(page):
    draw(page, STROKES[7])
    expect(prediction(page)).to_have_text("7", timeout=15_000)
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Model 2 · 784-16-16-10 · ReLU").click()
    expect(page.get_by_test_id("stMetricLabel").first).to_contain_text("Model 2 reads", timeout=15_000)
    expect(page.get_by_text("Every model's answer")).to_be_visible()


@pytest.mark.parametrize("viewport", [(1366, 900), (390, 844)], ids=["laptop", "phone"])
def test_every_page_opens_cleanly(browser, server, screenshots, viewport):
    url, log_path = server
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    tab = context.new_page()
    name = "laptop" if viewport[0] > 800 else "phone"
    try:
        tab.goto(url)
        expect(tab.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=30_000)
        expect(tab.locator("canvas").last).to_be_visible(timeout=30_000)
        tab.wait_for_timeout(1000)  # The toolbar and fonts settle after the canvas appears.
        whole_page_screenshot(tab, screenshots / f"{name}-draw-empty.png")
        for path, title in PAGES.items():
            tab.goto(f"{url}/{path}")
            expect(tab.get_by_role("heading", name=title)).to_be_visible(timeout=30_000)
            tab.wait_for_timeout(1500)  # Let the charts finish drawing before the screenshot.
            expect(tab.get_by_test_id("stException")).to_have_count(0)
            whole_page_screenshot(tab, screenshots / f"{name}-{path}.png")
    finally:
        context.close()
    assert "Traceback" not in log_path.read_text()
