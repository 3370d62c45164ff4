"""End to end in Chromium: upload a photo of a handwritten number on the Read a number page, at laptop
and phone sizes, and read its number."""

from __future__ import annotations

import pytest
from harness import LAPTOP, PHONE, number_photo, upload, whole_page_screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("device", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_an_uploaded_photo_of_a_number_is_read(browser, server, screenshots, tmp_path, device):
    photo = tmp_path / "number.jpg"
    number = number_photo(photo)
    context = browser.new_context(**device)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/read_number")
        expect(page.get_by_role("heading", name="Read a number")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Upload a photo of a number")).to_be_visible(timeout=30_000)
        upload(page, photo)
        expect(page.get_by_test_id("stMetricLabel").first).to_contain_text("Model 4 reads", timeout=30_000)
        expect(page.get_by_test_id("stMetricValue").first).to_have_text(number, timeout=30_000)
        # Each digit as the models saw it, numbered like its box.
        expect(page.locator("figure")).to_have_count(len(number), timeout=15_000)
        # Nothing wider than the screen: the page never scrolls sideways.
        overflow = page.evaluate(
            "document.querySelector('[data-testid=stMain]').scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        page.wait_for_timeout(800)
        name = "laptop" if device is LAPTOP else "phone"
        whole_page_screenshot(page, screenshots / f"read-number-{name}.png")
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_wide_canvas_fits_its_column_and_gives_a_finger_room(width, browser, server):
    device = PHONE if width == 390 else {"viewport": {"width": width, "height": 800}}
    context = browser.new_context(**device)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/read_number")
        expect(page.get_by_role("heading", name="Read a number")).to_be_visible(timeout=60_000)
        page.get_by_role("radio", name="Draw").click()
        canvas = page.locator(".st-key-wide_canvas canvas").first
        expect(canvas).to_be_visible(timeout=30_000)
        page.wait_for_timeout(500)
        box = canvas.bounding_box()
        # Where the page's content ends: its main block, less the padding on its right.
        content_right = page.get_by_test_id("stMainBlockContainer").evaluate(
            "block => block.getBoundingClientRect().right - parseFloat(getComputedStyle(block).paddingRight)"
        )
        assert box["x"] + box["width"] <= content_right + 1, "the canvas is not cut off"
        assert box["height"] >= 200, "tall enough to write four digits with a finger"
    finally:
        context.close()


def test_the_model_stays_the_one_chosen_photo_after_photo(browser, server, tmp_path):
    # The browser once fell back to the picker's first option after a third photo: the page switched to
    # Model 1 on its own and read its (worse) number.
    photos = []
    for slant in (0.0, 3.0, 6.0):
        photos.append(tmp_path / f"number-{slant:.0f}.jpg")
        number_photo(photos[-1], slant=slant)
    context = browser.new_context(**LAPTOP)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/read_number")
        expect(page.get_by_text("Upload a photo of a number")).to_be_visible(timeout=60_000)
        for photo in photos:
            upload(page, photo)
            page.wait_for_timeout(1500)
            expect(page.get_by_test_id("stMetricLabel").first).to_have_text("Model 4 reads", timeout=30_000)
    finally:
        context.close()
