"""End to end in Chromium: design a tiny network on the Train page, a real worker trains it for one epoch,
the page shows it done, and the Draw page offers it in its model picker and reads a drawing with it."""

from __future__ import annotations

import shutil

import pytest
from harness import LAPTOP, STROKES, database_url_beside, draw, streamlit_server, training_worker
from playwright.sync_api import expect

from digitdraw.models import SAVED_MODELS_ENV_VAR, saved_models_dir

pytestmark = pytest.mark.e2e


def test_a_network_trained_on_the_train_page_appears_in_the_draw_page_s_picker(
    browser, tmp_path, screenshots
):
    models = tmp_path / "saved_models"
    shutil.copytree(saved_models_dir(), models)
    log_path = tmp_path / "streamlit.log"
    with (
        streamlit_server(log_path, {SAVED_MODELS_ENV_VAR: str(models)}) as server,
        training_worker(tmp_path / "worker.log", database_url_beside(log_path), models),
    ):
        context = browser.new_context(**LAPTOP)
        page = context.new_page()
        page.goto(f"{server.url}/train")
        expect(page.get_by_role("heading", name="Train your own network")).to_be_visible(timeout=60_000)
        page.get_by_label("Name", exact=True).fill("tiny-e2e")
        page.get_by_role("radio", name="1", exact=True).click()  # One hidden layer.
        units = page.get_by_label("Layer 1 units", exact=True)
        units.fill("16")
        units.press("Enter")
        page.get_by_role("radio", name="tanh", exact=True).click()
        expect(page.get_by_role("radio", name="tanh", exact=True)).to_be_checked()
        epochs = page.get_by_role("slider", name="Epochs")
        epochs.focus()
        epochs.press("Home")  # One epoch.
        images = page.get_by_role("slider", name="Training images")
        images.focus()
        images.press("Home")  # 1,000 images.
        page.get_by_role("button", name="Start training").click()

        expect(page.get_by_text("784-16-10 · tanh")).to_be_visible(timeout=30_000)
        # The worker prepares the data and trains; the fragment polls until the job is done.
        expect(page.get_by_text("kept epoch 1 of 1")).to_be_visible(timeout=300_000)
        expect(page.get_by_text("tiny-e2e · 784-16-10 · tanh")).to_be_visible(timeout=10_000)
        page.screenshot(path=screenshots / "train-done.png", full_page=True)

        page.goto(server.url)
        expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=60_000)
        page.get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name="tiny-e2e · 784-16-10 · tanh").click()
        draw(page, STROKES[1])
        expect(page.get_by_test_id("stMetricLabel").first).to_have_text(
            "Model tiny-e2e reads", timeout=30_000
        )
        context.close()
