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
