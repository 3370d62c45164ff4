"""End to end in Chromium: design a tiny network on the Train page, a real worker trains it for one epoch,
the page shows it done, and the Draw page offers it in its model picker and reads a drawing with it; and
the option to learn from the drawings people kept reads whole on a laptop and a phone, and its choice is
queued with the job."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from harness import (
    CLIPPED,
    LAPTOP,
    PHONE,
    STROKES,
    database_url_beside,
    design_tiny_network,
    draw,
    streamlit_server,
    training_worker,
    whole_page_screenshot,
)
from playwright.sync_api import expect

from digitdraw.drawings import store
from digitdraw.jobs.queue import JobQueue
from digitdraw.learning.kept_split import part_sizes
from digitdraw.serving.networks import SAVED_MODELS_ENV_VAR, saved_models_dir

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
        design_tiny_network(page, "tiny-e2e")
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
        expect(page.get_by_test_id("stMetricLabel").first).to_have_text("tiny-e2e reads", timeout=30_000)
        context.close()


def test_the_option_to_learn_from_the_kept_drawings_reads_whole_and_travels_with_the_job(
    browser, tmp_path, screenshots
):
    log_path = tmp_path / "streamlit.log"
    url = database_url_beside(log_path)
    # Fifty distinct drawings, one dot each in its own place: the split goes by what a drawing shows.
    images = np.zeros((50, 28, 28), np.float32)
    images[np.arange(50), np.arange(50) // 28, np.arange(50) % 28] = 1.0
    kept = store.Store(url)
    kept.save_many(
        store.NewDrawing(
            label=index % 10, model_input=image, probabilities={}, model_sha256={}, session_id="ab" * 16
        )
        for index, image in enumerate(images)
    )
    kept.close()
    sizes = part_sizes([store.input_digest(image) for image in images])
    assert sizes.enough
    with streamlit_server(log_path) as server:
        for name, device in (("laptop", LAPTOP), ("phone", PHONE)):
            context = browser.new_context(**device)
            page = context.new_page()
            page.goto(f"{server.url}/train")
            expect(page.get_by_role("heading", name="Train your own network")).to_be_visible(timeout=60_000)
            label = page.get_by_text("Also learn from the drawings people kept", exact=True)
            expect(label).to_be_visible(timeout=30_000)
            label.scroll_into_view_if_needed()
            assert not label.evaluate(CLIPPED), f"the option's label is cut short on a {name}"
            expect(page.get_by_text(f"{sizes.describe()}.")).to_be_visible()
            label.click()
            repeats = page.get_by_label("Repeats per epoch", exact=True)
            expect(repeats).to_have_value("10", timeout=30_000)
            overflow = page.evaluate(
                "document.querySelector('[data-testid=stMain]').scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, "the page never scrolls sideways"
            page.wait_for_timeout(800)
            whole_page_screenshot(page, screenshots / f"train-kept-drawings-{name}.png")
            if device is LAPTOP:
                page.get_by_label("Name", exact=True).fill("kept-e2e")
                repeats.fill("3")
                repeats.press("Enter")
                page.get_by_role("button", name="Start training").click()
                expect(page.get_by_text("kept drawings 3× an epoch")).to_be_visible(timeout=30_000)
                (job,) = JobQueue(url).jobs()
                assert job.name == "kept-e2e" and job.settings.kept_repeats == 3
            context.close()


def download_npz(page, path, tries: int = 3) -> None:
    """Open the first network's Download popover and save its .npz to ``path``. The list is redrawn by the
    jobs fragment every two seconds, which on a busy machine can move the popover as it opens: try again."""
    for attempt in range(tries):
        try:
            page.get_by_role("button", name="Download").first.click()
            with page.expect_download(timeout=10_000) as download:
                page.get_by_role("button", name=".npz").click(timeout=5_000)
            download.value.save_as(path)
            return
        except Exception:  # Playwright's timeout: the popover moved or closed.
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            page.wait_for_timeout(500)


def test_a_keras_file_opened_on_the_train_page_is_listed_and_downloads(browser, tmp_path, screenshots):
    import keras

    keras.utils.set_random_seed(0)
    network = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    upload = tmp_path / "course-net.keras"
    network.save(upload)
    models = tmp_path / "saved_models"
    shutil.copytree(saved_models_dir(), models, ignore=shutil.ignore_patterns("custom"))
    with streamlit_server(tmp_path / "streamlit.log", {SAVED_MODELS_ENV_VAR: str(models)}) as server:
        for name, device in (("laptop", LAPTOP), ("phone", PHONE)):
            context = browser.new_context(**device, accept_downloads=True)
            page = context.new_page()
            page.goto(f"{server.url}/train")
            expect(page.get_by_role("heading", name="Open a network")).to_be_visible(timeout=60_000)
            if device is LAPTOP:
                page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(upload))
                page.get_by_label("Name of the opened network", exact=True).fill("course-net")
                page.get_by_role("button", name="Open the network").click()
                expect(
                    page.get_by_text("course-net: opened course-net.keras as 784-conv4-pool-10")
                ).to_be_visible(timeout=120_000)
            expect(page.get_by_text("Opened from course-net.keras")).to_be_visible(timeout=30_000)
            saved = tmp_path / f"{name}.npz"
            download_npz(page, saved)
            with np.load(saved, allow_pickle=False) as archive:
                layers = json.loads(str(archive["architecture"]))["layers"]
                assert [layer["kind"] for layer in layers] == ["conv", "pool", "dense"]
                assert archive["kernel_0"].shape == (3, 3, 1, 4)
            page.keyboard.press("Escape")
            overflow = page.evaluate(
                "document.querySelector('[data-testid=stMain]').scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, "the page never scrolls sideways"
            whole_page_screenshot(page, screenshots / f"train-opened-{name}.png")
            context.close()


# Whether an element lies wholly within the window.
IN_VIEW = """
element => { const box = element.getBoundingClientRect(); return box.top >= 0 && box.bottom <= innerHeight; }
"""


def test_start_brings_the_new_job_into_view_without_a_message_over_it(browser, tmp_path):
    with streamlit_server(tmp_path / "streamlit.log") as server:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{server.url}/train")
        expect(page.get_by_role("heading", name="Train your own network")).to_be_visible(timeout=60_000)
        page.get_by_label("Name", exact=True).fill("in-view")
        start = page.get_by_role("button", name="Start training")
        start.scroll_into_view_if_needed()
        start.click()
        card = page.locator("[class*='st-key-job_']").first
        expect(card).to_contain_text("in-view", timeout=30_000)
        expect(card).to_contain_text("Waiting for a worker")
        page.wait_for_timeout(1_500)  # The smooth scroll.
        assert card.evaluate(IN_VIEW), "the new job's card is scrolled into view"
        expect(page.get_by_test_id("stToast")).to_have_count(0)
        context.close()
