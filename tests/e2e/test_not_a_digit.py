"""End to end in Chromium: a symbol drawn with the mouse is not answered as a confident digit, and a
digit drawn after Clear is answered again."""

from __future__ import annotations

import pytest
from harness import STROKES, draw
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

# A "#": two bars across, two strokes down, in the canvas's 280-pixel coordinates.
HASH = [[(60, 100), (220, 100)], [(60, 180), (220, 180)], [(110, 50), (100, 240)], [(180, 50), (170, 240)]]


def test_a_hash_sign_drawn_with_the_mouse_does_not_look_like_a_digit(page):
    draw(page, HASH)
    expect(page.get_by_text("That doesn't look like a digit.")).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id("stMetricValue")).to_have_count(0)
    # What it means has the canvas column's width, not the narrow cell beside Clear.
    explanation = page.get_by_text("would guess a")
    assert explanation.bounding_box()["width"] >= 0.9 * page.locator(".st-key-canvas").bounding_box()["width"]
    page.get_by_role("button", name="Clear the canvas").click()
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=15_000)
    draw(page, STROKES[7])
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("7", timeout=15_000)
    expect(page.get_by_text("That doesn't look like a digit.")).to_have_count(0)
