"""On a touch phone a swipe over any chart scrolls the page and leaves the chart as it was (issue 29): every
chart of Training curves, Compare, Confusion matrix (a table of cells to tap there) and Inside the networks,
swiped with a finger."""

from __future__ import annotations

import pytest
from harness import LAPTOP, PHONE, wait_until_quiet
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

# Where the page has scrolled to: Streamlit scrolls its main container, not the window.
SCROLLED = "(document.querySelector('[data-testid=stMain]')?.scrollTop ?? 0) + window.scrollY"
# The chart's axes' ranges as plotly drew them: a zoom or a pan would change them.
RANGES = """
chart => {
  const layout = chart.querySelector('.js-plotly-plot')?._fullLayout;
  if (!layout) return [];  // A table: nothing to zoom.
  return Object.keys(layout).filter(k => /^[xy]axis/.test(k)).map(k => JSON.stringify(layout[k].range));
}
"""
PAGES = {
    "training_curves": "Training curves",
    "compare": "Compare the models",
    "confusion_matrix": "Confusion matrix",
    "inside": "Inside the networks",
}


def swipe(page, x: float, y: float, distance: float) -> None:
    """A finger dragged ``distance`` pixels up from (x, y) (down when negative), as touch events."""
    devtools = page.context.new_cdp_session(page)
    points = [{"x": x, "y": y - distance * step / 10} for step in range(11)]
    devtools.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points[:1]})
    for point in points[1:]:
        devtools.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    devtools.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    devtools.detach()


@pytest.mark.parametrize("path", PAGES)
def test_a_swipe_over_any_chart_scrolls_the_page_on_a_touch_phone(path, browser, server):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{server.url}/{path}")
    expect(page.get_by_role("heading", name=PAGES[path])).to_be_visible(timeout=60_000)
    charts = page.locator("[data-testid=stPlotlyChart], [data-testid=stDataFrame]")
    expect(charts.first).to_be_visible(timeout=60_000)
    # The page's script run has finished and Plotly has drawn, so that nothing on the page still arrives
    # or is drawn anew while the finger moves (on a loaded machine a swipe once scrolled nothing).
    wait_until_quiet(server, quiet=1.0)
    page.wait_for_timeout(1_000)
    assert charts.count() >= 1
    for index in range(charts.count()):
        chart = charts.nth(index)
        chart.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        box = chart.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + min(box["height"], 200) / 2
        before, ranges = page.evaluate(SCROLLED), chart.evaluate(RANGES)
        swipe(page, x, y, 150)
        page.wait_for_timeout(500)
        after = page.evaluate(SCROLLED)
        if abs(after - before) < 50:  # At the end of the page: the other way.
            swipe(page, x, y, -150)
            page.wait_for_timeout(500)
            after = page.evaluate(SCROLLED)
        assert abs(after - before) >= 50, f"{path}: a swipe over chart {index} did not scroll the page"
        assert chart.evaluate(RANGES) == ranges, f"{path}: a swipe zoomed or panned chart {index}"
    context.close()


# How tall every value label inside a bar of a chart is drawn, in pixels (Plotly shrinks a label that does
# not fit its bar with a transform, not its font size).
BAR_LABELS = """
chart => [...chart.querySelectorAll('text.bartext')].map(label => label.getBoundingClientRect().height)
"""


@pytest.mark.parametrize("device", ["phone", "laptop"])
def test_the_ranking_bars_values_are_readable(device, browser, server):
    context = browser.new_context(**(PHONE if device == "phone" else LAPTOP))
    page = context.new_page()
    page.goto(f"{server.url}/compare")
    expect(page.get_by_role("heading", name="Ranking")).to_be_visible(timeout=60_000)
    ranking = page.get_by_test_id("stPlotlyChart").filter(has=page.locator(".bars")).first
    ranking.scroll_into_view_if_needed()
    page.wait_for_timeout(1_000)
    sizes = ranking.evaluate(BAR_LABELS)
    # Two bars for each of the six models, each value as tall as the page's small print (they were 12 px).
    assert len(sizes) == 12 and min(sizes) >= 14, sizes
    context.close()
