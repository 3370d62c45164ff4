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


def matrix_in_view(browser, server, device: dict, test_id: str):
    """The Confusion matrix page on a device, its matrix (the element ``test_id``) scrolled into view:
    (context, page, matrix)."""
    context = browser.new_context(**device)
    page = context.new_page()
    page.goto(f"{server.url}/confusion_matrix")
    matrix = page.get_by_test_id(test_id).first
    expect(matrix).to_be_visible(timeout=60_000)
    matrix.scroll_into_view_if_needed()
    page.wait_for_timeout(1_000)
    return context, page, matrix


def test_a_click_on_a_cell_shows_its_test_images(browser, server):
    context, page, heatmap = matrix_in_view(browser, server, LAPTOP, "stPlotlyChart")
    left, top, width, height = heatmap.evaluate(PLOT_AREA)
    true_digit, predicted = 7, 2  # Rows are the true digit from the top, columns the answer.
    x, y = left + (predicted + 0.5) * width / 10, top + (true_digit + 0.5) * height / 10
    page.mouse.click(x, y)
    expect(page.get_by_text(f"test images are {true_digit}s read as {predicted}")).to_be_visible(
        timeout=30_000
    )
    context.close()


def test_a_tap_on_a_cell_of_the_phones_table_shows_its_test_images(browser, server):
    context, page, table = matrix_in_view(browser, server, PHONE, "stDataFrame")
    assert page.get_by_test_id("stPlotlyChart").count() == 0, "a phone gets the table, not the heatmap"
    box = table.bounding_box()
    # A header row above ten rows of digits; the row numbers' column is 20 pixels, each digit's 32.
    row_height = box["height"] / 11
    true_digit, predicted = 7, 2
    page.touchscreen.tap(box["x"] + 20 + (predicted + 0.5) * 32, box["y"] + (true_digit + 1.5) * row_height)
    expect(page.get_by_text(f"test images are {true_digit}s read as {predicted}")).to_be_visible(
        timeout=30_000
    )
    context.close()
