"""The Confusion matrix page in Chromium: a click on a cell of the heatmap shows that cell's test images
(issue 29). On a phone the matrix is a table of shaded cells: a tap on a cell shows its images, and a swipe
over it scrolls the page (tests/e2e/test_phone_charts.py)."""

from __future__ import annotations

import pytest
from harness import LAPTOP, PHONE
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

# The heatmap's plot area (where its cells are), in page pixels.
PLOT_AREA = """
chart => {
  const area = chart.querySelector('.nsewdrag').getBoundingClientRect();
  return [area.x, area.y, area.width, area.height];
}
"""


def test_a_click_on_a_cell_shows_its_test_images(browser, server):
    context = browser.new_context(**LAPTOP)
    page = context.new_page()
    page.goto(f"{server.url}/confusion_matrix")
    heatmap = page.get_by_test_id("stPlotlyChart").first
    expect(heatmap).to_be_visible(timeout=60_000)
    heatmap.scroll_into_view_if_needed()
    page.wait_for_timeout(1_000)
    left, top, width, height = heatmap.evaluate(PLOT_AREA)
    true_digit, predicted = 7, 2  # Rows are the true digit from the top, columns the answer.
    x, y = left + (predicted + 0.5) * width / 10, top + (true_digit + 0.5) * height / 10
    page.mouse.click(x, y)
    expect(page.get_by_text(f"test images are {true_digit}s read as {predicted}")).to_be_visible(
        timeout=30_000
    )
    context.close()


def test_a_tap_on_a_cell_of_the_phones_table_shows_its_test_images(browser, server):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{server.url}/confusion_matrix")
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible(timeout=60_000)
    assert page.get_by_test_id("stPlotlyChart").count() == 0, "a phone gets the table, not the heatmap"
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(1_000)
    box = table.bounding_box()
    # A header row above ten rows of digits; the row numbers' column is 20 pixels, each digit's 32.
    row_height = box["height"] / 11
    true_digit, predicted = 7, 2
    page.touchscreen.tap(box["x"] + 20 + (predicted + 0.5) * 32, box["y"] + (true_digit + 1.5) * row_height)
    expect(page.get_by_text(f"test images are {true_digit}s read as {predicted}")).to_be_visible(
        timeout=30_000
    )
    context.close()
