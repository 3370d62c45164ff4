"""Write every picture the README shows, from the real app in Chromium: ``make screenshots``.

It starts the app with ``streamlit run`` on a free localhost port, draws a 7
on the Draw page with the mouse, uploads a photo of a handwritten number to the
Read a number page, opens every side page and every view of the Inside page (a
first-layer unit hovered) at laptop size, the Draw page and the first screen of every other page at
phone size, and
saves each view as a small palette PNG in ``docs/screenshots/`` (the README's
pictures must stay under 150 KB each). Last, with a training worker beside the
app, it queues two networks and takes the Train page while the second one
learns. The app and the worker use a copy of ``saved_models/`` in a temporary
folder, so nothing is trained into the working tree.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT))  # The photo for the Read a number page is made by digitdraw itself.
from harness import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_FLAGS,
    LAPTOP,
    PHONE,
    STROKES,
    database_url_beside,
    draw,
    number_photo,
    streamlit_server,
    touch_draw,
    training_worker,
    upload,
    whole_page_png,
)

from digitdraw.jobs.queue import JobQueue, JobState  # noqa: E402
from digitdraw.learning.config import NetworkSettings  # noqa: E402
from digitdraw.serving.networks import SAVED_MODELS_ENV_VAR, saved_models_dir  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
MAX_BYTES = 150_000
# URL path of each side page and the picture it becomes.
SIDE_PAGES = {
    "inside": ("Inside the networks", "inside.png", "dead on all 10,000 MNIST digits"),
    "training_curves": ("Training curves", "training-curves.png", None),
    "confusion_matrix": ("Confusion matrix", "confusion-matrix.png", None),
    "compare": ("Compare the models", "compare.png", None),
}

# Text a page shows once per part, and how many parts it has when it is complete.
COMPLETE = {"inside": ("Output layer", 2)}


# Each view of the Inside page (on MNIST's first test digit), the picture it becomes, and a text that
# shows once it has been computed.
INSIDE_VIEWS = {
    "Why this digit": ("inside-why.png", "Each map on its own scale"),
    "What would flip it": ("inside-flip.png", "What every model reads"),
    "Damage lab": ("inside-damage.png", "Damaged: MNIST sample"),
    "Preprocessing": ("inside-preprocessing.png", "a step matters for this drawing"),
}


def small_png(png: bytes, max_width: int, max_bytes: int = MAX_BYTES) -> bytes:
    """A screenshot scaled to at most ``max_width`` and quantised to a palette until it fits ``max_bytes``."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width = min(max_width, image.width)
    while True:
        scaled = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        scaled.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
        if buffer.tell() <= max_bytes or width < 300:
            return buffer.getvalue()
        width = int(width * 0.85)


def save(name: str, png: bytes, max_width: int) -> None:
    """Write one README picture, small."""
    content = small_png(png, max_width)
    (OUT / name).write_bytes(content)
    print(f"{OUT.relative_to(ROOT) / name}: {len(content) / 1000:.0f} KB")


def draw_page_with_a_seven(browser, url: str, device: dict):
    """A new session on the Draw page, a 7 drawn (by finger on a phone) and answered."""
    from playwright.sync_api import expect

    context = browser.new_context(**device)
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=60_000)
    (touch_draw if device.get("has_touch") else draw)(page, STROKES[7])
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("7", timeout=30_000)
    page.wait_for_timeout(1500)  # Charts and images finish drawing.
    return context, page


def inside_views(page, url: str) -> None:
    """A first-layer unit's hover card, then each view of the Inside page, at laptop size."""
    from playwright.sync_api import expect

    page.goto(f"{url}/inside")
    unit = page.locator(".dd-unit").nth(5)
    expect(unit).to_be_visible(timeout=60_000)
    page.wait_for_timeout(2000)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 1000})  # Room for the card below.
    page.wait_for_timeout(800)
    unit.hover()
    expect(unit.locator(".dd-card")).to_be_visible()
    save("inside-hover.png", page.screenshot(), max_width=1000)
    page.set_viewport_size(size)
    for view, (name, ready) in INSIDE_VIEWS.items():
        page.get_by_test_id("stMain").get_by_text(view, exact=True).click()
        expect(page.get_by_text(ready)).to_be_visible(timeout=60_000)
        if view == "Damage lab":  # A quarter of the units off, from the keyboard: 5 steps of 5%.
            page.get_by_role("slider").first.focus()
            for _ in range(5):
                page.keyboard.press("ArrowRight")
            expect(page.get_by_text("0.25")).to_be_visible(timeout=30_000)
        page.wait_for_timeout(2000)
        save(name, whole_page_png(page), max_width=1000)


# Every other page on a phone, its first screen: URL path, heading, and a text it shows once ready.
PHONE_PAGES = {
    "read_number": ("Read a number", "Upload a photo of a number"),
    "inside": ("Inside the networks", "Output layer"),
    "training_curves": ("Training curves", None),
    "confusion_matrix": ("Confusion matrix", "Most confused pairs"),
    "compare": ("Compare the models", "The study's table, reproduced"),
    "your_drawings": ("Your drawings", None),
    "train": ("Train your own network", "Design"),
}


def phone_pages(page, url: str) -> None:
    """The first screen of every other page on the phone whose Draw page holds a 7, as phone-<page>.png."""
    from playwright.sync_api import expect

    for path, (title, ready) in PHONE_PAGES.items():
        page.goto(f"{url}/{path}")
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
        if ready:
            expect(page.get_by_text(ready).first).to_be_visible(timeout=120_000)
        page.wait_for_timeout(2000)  # Charts finish drawing.
        save(f"phone-{path.replace('_', '-')}.png", page.screenshot(), max_width=PHONE["viewport"]["width"])


def read_page_with_a_photo(browser, url: str, photo: Path):
    """A new session on the Read a number page with a photo of a handwritten number, written at a slant,
    uploaded and read."""
    from playwright.sync_api import expect

    number = number_photo(photo, slant=12.0)  # A slanted line, to show it straightened too.
    context = browser.new_context(**LAPTOP)
    page = context.new_page()
    page.goto(f"{url}/read_number")
    expect(page.get_by_text("Upload a photo of a number")).to_be_visible(timeout=60_000)
    upload(page, photo)
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(number, timeout=30_000)
    page.wait_for_timeout(1500)
    return context, page


# Two networks for the Train page's picture: one finished, one learning when the picture is taken.
TRAIN_PAGE_JOBS = (
    NetworkSettings(name="small-tanh", hidden=(32, 32), activation="tanh", epochs=3, train_limit=5_000),
    NetworkSettings(name="wide-gelu", hidden=(128,), activation="gelu", optimizer="adam", epochs=8),
)


def train_page(browser, url: str, queue: JobQueue, models: Path) -> None:
    """Queue two networks, and take the Train page once the first is done and the second is learning."""
    from playwright.sync_api import expect

    ids = [queue.submit(settings, models) for settings in TRAIN_PAGE_JOBS]
    deadline = time.monotonic() + 600
    while not (queue.job(ids[0]).state == JobState.DONE and queue.job(ids[1]).epoch >= 3):
        if time.monotonic() > deadline or not queue.job(ids[1]).active:
            raise RuntimeError(f"the Train page's jobs did not get far enough: {queue.jobs()}")
        time.sleep(1)
    context = browser.new_context(**LAPTOP)
    page = context.new_page()
    page.goto(f"{url}/train")
    expect(page.get_by_role("heading", name="Train your own network")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"Epoch \d of 8"))).to_be_visible(timeout=60_000)
    page.wait_for_timeout(2000)  # Let the charts finish drawing.
    save("train.png", whole_page_png(page), max_width=1000)
    context.close()


def main() -> None:
    """Take every screenshot the README shows."""
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        models = Path(folder) / "saved_models"
        shutil.copytree(saved_models_dir(), models)
        log_path = Path(folder) / "streamlit.log"
        with (
            streamlit_server(log_path, {SAVED_MODELS_ENV_VAR: str(models)}) as server,
            training_worker(Path(folder) / "worker.log", database_url_beside(log_path), models),
            sync_playwright() as playwright,
        ):
            queue = JobQueue(database_url_beside(log_path))
            take_screenshots(playwright, server.url, queue, models, Path(folder))


def take_screenshots(playwright, url: str, queue: JobQueue, models: Path, folder: Path) -> None:
    """Every picture, in one browser: the Draw page, every side page and Inside view, the Read a number
    page, the phone, the Train page."""
    from playwright.sync_api import expect

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    context, page = draw_page_with_a_seven(browser, url, LAPTOP)
    save("draw.png", whole_page_png(page), max_width=1100)
    for path, (title, name, ready) in SIDE_PAGES.items():
        if ready:  # A page that computes once per server: visit it first, until it shows this.
            page.goto(f"{url}/{path}")
            expect(page.get_by_text(ready).first).to_be_visible(timeout=120_000)
            page.wait_for_timeout(3000)
        page.goto(f"{url}/{path}")
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
        if ready:
            expect(page.get_by_text(ready).first).to_be_visible(timeout=60_000)
        if path in COMPLETE:  # On a busy machine the second network's part can still be running.
            text, count = COMPLETE[path]
            expect(page.get_by_text(text, exact=True)).to_have_count(count, timeout=180_000)
        page.wait_for_timeout(2000)  # Let the charts finish drawing.
        save(name, whole_page_png(page), max_width=1000)
    inside_views(page, url)
    context.close()
    context, page = read_page_with_a_photo(browser, url, folder / "number.jpg")
    save("read-number.png", whole_page_png(page), max_width=1000)
    context.close()
    context, page = draw_page_with_a_seven(browser, url, PHONE)
    save("phone-draw.png", page.screenshot(), max_width=PHONE["viewport"]["width"])
    phone_pages(page, url)
    context.close()
    train_page(browser, url, queue, models)
    browser.close()


if __name__ == "__main__":
    main()
