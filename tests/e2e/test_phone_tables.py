"""On a 390 px phone Compare's study table fits the screen (issue 29): its key columns without a sideways
scroll, every column one tap away. (The per-digit data grid scrolls inside its own canvas, which the page
cannot measure; tests/test_app.py checks the columns each table shows on a phone.)"""

from __future__ import annotations

import pytest
from harness import PHONE
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

# How far the first static table reaches past its box.
OVERFLOW = """
() => {
  const box = document.querySelector('[data-testid=stTable]');
  return box.querySelector('table').getBoundingClientRect().right - box.getBoundingClientRect().right;
}
"""


def test_the_study_table_fits_a_phone_and_the_rest_is_a_tap_away(browser, server):
    path, heading = "compare", "The study's table, reproduced"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{server.url}/{path}")
    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stTable").first).to_be_visible(timeout=60_000)
    page.get_by_role("heading", name=heading).scroll_into_view_if_needed()
    page.wait_for_timeout(1_000)
    assert page.evaluate(OVERFLOW) <= 1, "the table scrolls sideways"
    expect(page.get_by_text("Every column").first).to_be_visible()
    context.close()
