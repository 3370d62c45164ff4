"""What the browser tests and the browser benchmark share: a Streamlit server, Chromium's flags and
mouse strokes that draw each digit on the 280x280 canvas."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, steps: int = 16):
    return [
        (cx + rx * math.cos(math.radians(start + (stop - start) * i / steps)),
         cy + ry * math.sin(math.radians(start + (stop - start) * i / steps)))
        for i in range(steps + 1)
    ]  # fmt: skip


# One list of points per pen stroke, in canvas pixels; every model reads each of these correctly.
STROKES = {
    0: [_arc(140, 140, 60, 95, -90, 270, 20)],
    1: [[(150, 40), (150, 240)]],
    2: [[*_arc(140, 95, 55, 50, 200, 360, 10), (90, 240), (205, 240)]],
    3: [_arc(135, 90, 55, 45, -150, 90, 12) + _arc(135, 185, 60, 55, -90, 150, 12)],
    4: [[(170, 40), (80, 170), (210, 170)], [(170, 100), (170, 245)]],
    5: [[(195, 45), (100, 45), (92, 125), *_arc(135, 180, 60, 60, -120, 150, 14)]],
    6: [[(175, 40), (95, 150), *_arc(140, 185, 50, 55, 180, 540, 20)]],
    7: [[(80, 50), (200, 50), (120, 245)]],
    8: [_arc(140, 90, 45, 45, 90, 450, 16) + _arc(140, 190, 55, 50, -90, 270, 16)],
    9: [[*_arc(135, 95, 50, 50, 0, 360, 18), (185, 95), (175, 245)]],
}


def mouse_path(stroke: list[tuple[float, float]], left: float, top: float, substeps: int = 8):
    """Points for the mouse to move through, in page pixels, in small steps as a hand would."""
    yield left + stroke[0][0], top + stroke[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
        for step in range(1, substeps + 1):
            yield left + x0 + (x1 - x0) * step / substeps, top + y0 + (y1 - y0) * step / substeps


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(url: str, process: subprocess.Popen, log_path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {seconds} s")


@contextlib.contextmanager
def streamlit_server(log_path: Path) -> Iterator[str]:
    """Run the app with ``streamlit run`` on a free localhost port; yields its URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(url, process, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


# Waits in the page until the metric shows the digit; polled every animation frame.
PREDICTION_SHOWN = """
digit => {
  const value = document.querySelector('[data-testid="stMetricValue"]');
  return value !== null && value.textContent.trim() === String(digit);
}
"""


async def open_draw_page(browser, url: str):
    """A new browser context (its own Streamlit session) with the draw page ready for the mouse."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_text("Draw a digit on the canvas").wait_for(timeout=60_000)
    await page.get_by_role("button", name="Reset canvas & history").wait_for(timeout=60_000)
    return context, page


async def draw_and_time(page, digit: int) -> tuple[str, float]:
    """Draw a digit with the mouse; return the digit the page shows and the seconds from the
    last mouse release until the page showed the expected answer."""
    await page.get_by_role("button", name="Reset canvas & history").wait_for(timeout=60_000)
    await page.wait_for_timeout(300)  # A freshly mounted canvas needs a moment before it takes strokes.
    box = await page.locator("canvas").last.bounding_box()
    released = 0.0
    for stroke in STROKES[digit]:
        points = list(mouse_path(stroke, box["x"], box["y"]))
        await page.mouse.move(*points[0])
        await page.mouse.down()
        for point in points[1:]:
            await page.mouse.move(*point)
        released = time.perf_counter()
        await page.mouse.up()
    await page.wait_for_function(PREDICTION_SHOWN, arg=digit, polling="raf", timeout=60_000)
    elapsed = time.perf_counter() - released
    shown = await page.get_by_test_id("stMetricValue").first.text_content()
    return shown.strip(), elapsed


async def clear(page) -> None:
    """Press the app's Clear button and wait for the empty-canvas prompt."""
    await page.get_by_role("button", name="Clear the canvas").click()
    await page.get_by_text("Draw a digit on the canvas").wait_for(timeout=60_000)


async def draw_in_sessions(
    url: str, sessions: int, rounds: int, step: int = 1
) -> list[tuple[int, str, float]]:
    """Open ``sessions`` browser sessions on one server; in each round all of them draw at once.

    Session i draws digit (i + step * round) % 10, so neighbours and rounds differ. Returns
    (digit drawn, digit shown, seconds from mouse release to answer) for every drawing.
    """
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            opened = await asyncio.gather(*(open_draw_page(browser, url) for _ in range(sessions)))
            pages = [page for _, page in opened]
            drawings = []
            for round_number in range(rounds):
                digits = [(index + step * round_number) % 10 for index in range(sessions)]
                results = await asyncio.gather(*(draw_and_time(p, d) for p, d in zip(pages, digits)))
                drawings += [(digit, shown, seconds) for digit, (shown, seconds) in zip(digits, results)]
                await asyncio.gather(*(clear(page) for page in pages))
            return drawings
        finally:
            await browser.close()


def draw(page, strokes) -> None:
    """Draw a digit's strokes on the canvas with the mouse (Playwright's sync API)."""
    from playwright.sync_api import expect

    surface = page.locator("canvas").last
    # A freshly mounted canvas ignores the mouse until Fabric.js has set it up,
    # which is done when its toolbar shows.
    expect(page.get_by_role("button", name="Reset canvas & history")).to_be_visible(timeout=15_000)
    expect(surface).to_be_visible(timeout=15_000)
    page.wait_for_timeout(300)
    box = surface.bounding_box()
    for stroke in strokes:
        points = list(mouse_path(stroke, box["x"], box["y"]))
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def whole_page_png(page) -> bytes:
    """A PNG of all of a page: Streamlit scrolls inside its own container, so the window grows
    to the content's height for the picture and then returns to its size."""
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=stMain]')?.scrollHeight ?? 0")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    page.wait_for_timeout(800)  # Charts redraw at the new size.
    try:
        return page.screenshot()
    finally:
        page.set_viewport_size(size)


def whole_page_screenshot(page, path: Path) -> None:
    """Save a PNG of all of a page."""
    Path(path).write_bytes(whole_page_png(page))
