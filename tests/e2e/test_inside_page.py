"""Inside the networks in Chromium: the Draw page's stroke timeline, then each view of the Inside page
on the drawing, at laptop and phone sizes, and a first-layer unit's weights on hover."""

from __future__ import annotations

import pytest
from harness import PHONE, STROKES, draw, whole_page_screenshot
from playwright.sync_api import Page, expect

from digitdraw.serving.networks import MODEL_IDS

pytestmark = pytest.mark.e2e

# Each view of the Inside page and a text that shows once it has been computed.
VIEWS = {
    "Why this digit": "Each map on its own scale",
    "What would flip it": "What every model reads",
    "Damage lab": "Damaged: MNIST sample",
    "Preprocessing": "a step matters for this drawing",
}


def hover_until_shown(tab: Page, target, shown, tries: int = 3) -> None:
    """Hover over ``target`` until ``shown`` appears: a rerun that redraws the page under a resting
    pointer can drop the hover (seen once in CI on a busy machine), so move away and hover again."""
    for _ in range(tries - 1):
        target.hover()
        try:
            expect(shown).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            tab.mouse.move(0, 0)
    target.hover()
    expect(shown).to_be_visible()


def show_view(tab: Page, view: str, ready: str) -> None:
    tab.get_by_test_id("stMain").get_by_text(view, exact=True).click()
    expect(tab.get_by_text(ready)).to_be_visible(timeout=60_000)
    tab.wait_for_timeout(800)
    expect(tab.get_by_test_id("stException")).to_have_count(0)


def test_the_timeline_then_every_inside_view_on_the_drawing_at_laptop_size(page, server, screenshots):
    timeline = page.get_by_role("table").filter(has_text="Stroke")
    for count, stroke in enumerate(STROKES[4], start=1):  # A 4 in two strokes, one answer after each.
        draw(page, [stroke])
        expect(timeline.locator("thead th")).to_have_count(1 + count, timeout=15_000)
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("4", timeout=15_000)
    expect(timeline.locator("tbody tr")).to_have_count(len(MODEL_IDS))  # One row per model.
    whole_page_screenshot(page, screenshots / "laptop-draw-timeline.png")
    page.get_by_role("link", name="Look inside the networks with this drawing").click()
    expect(page.get_by_role("heading", name="Inside the networks", exact=True)).to_be_visible(timeout=30_000)
    unit = page.locator(".dd-unit").first
    expect(unit).to_be_visible(timeout=60_000)
    card = unit.locator(".dd-card")
    hover_until_shown(page, unit, card)
    expect(card).to_contain_text("unit 0")
    expect(card.locator("img")).to_have_js_property("naturalWidth", 112)
    page.screenshot(path=screenshots / "laptop-inside-hover.png")
    for view, ready in VIEWS.items():
        show_view(page, view, ready)
        whole_page_screenshot(page, screenshots / f"laptop-inside-{view.lower().replace(' ', '-')}.png")
    assert "Traceback" not in server.log_path.read_text()


def test_every_inside_view_opens_cleanly_on_a_phone(browser, server, screenshots):
    context = browser.new_context(**PHONE)
    tab = context.new_page()
    try:
        tab.goto(f"{server.url}/inside")
        expect(tab.get_by_role("heading", name="Inside the networks", exact=True)).to_be_visible(
            timeout=30_000
        )
        expect(tab.get_by_text("MNIST test image 0 (a 7)")).to_be_visible(timeout=60_000)
        for view, ready in VIEWS.items():
            show_view(tab, view, ready)
            # Nothing wider than the phone's screen: the page never scrolls sideways.
            overflow = tab.evaluate("document.querySelector('[data-testid=stMain]').scrollWidth")
            assert overflow <= PHONE["viewport"]["width"], view
            whole_page_screenshot(tab, screenshots / f"phone-inside-{view.lower().replace(' ', '-')}.png")
    finally:
        context.close()
    assert "Traceback" not in server.log_path.read_text()


# Every unit's cell of the first-layer grids, and how far the furthest reaches past its grid's column.
OVERFLOW = """
() => {
  let worst = -Infinity;
  for (const cell of document.querySelectorAll('.dd-unit')) {
    const column = cell.closest('[data-testid=stColumn]') ?? document.querySelector('[data-testid=stMain]');
    worst = Math.max(worst, cell.getBoundingClientRect().right - column.getBoundingClientRect().right);
  }
  return [document.querySelectorAll('.dd-unit').length, worst];
}
"""


@pytest.mark.parametrize("width", [1280, 1366, 390])
def test_every_unit_of_a_wide_layer_fits_its_column(browser, server, width):
    device = PHONE if width == 390 else {"viewport": {"width": width, "height": 800}}
    context = browser.new_context(**device)
    tab = context.new_page()
    tab.goto(f"{server.url}/inside")
    expect(tab.get_by_role("heading", name="Inside the networks")).to_be_visible(timeout=60_000)
    tab.get_by_text("A CNN (beyond the study) vs one wide layer", exact=True).click()
    # Model 5's 128 units (the CNN's first layer is filters, shown as pictures).
    expect(tab.locator(".dd-unit")).to_have_count(128, timeout=60_000)
    tab.wait_for_timeout(800)
    cells, worst = tab.evaluate(OVERFLOW)
    assert cells == 128
    assert worst <= 1, f"a unit reaches {worst:.0f} px past its column at {width} px"
    context.close()
