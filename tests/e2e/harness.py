"""What the browser tests and the browser benchmark share: a Streamlit server, Chromium's flags and
mouse strokes that draw each digit on the 280x280 canvas."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from digitdraw.deploy.network import free_port
from digitdraw.serving.saved_models import process_stat

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


@dataclass(frozen=True)
class Server:
    """A running app: its URL, its console log, the log of its script runs and its process id."""

    url: str
    log_path: Path
    run_log_path: Path
    pid: int

    def script_runs(self) -> list[dict]:
        """Every script run so far, as timed_server.py wrote them, oldest first."""
        if not self.run_log_path.exists():
            return []
        return [json.loads(line) for line in self.run_log_path.read_text().splitlines() if line]

    def cpu_seconds(self) -> float:
        """CPU time the server process has used, user and system, from /proc."""
        return cpu_seconds([self.pid])


def cpu_seconds(pids: list[int]) -> float:
    """CPU time the processes have used, user and system (all their threads), from /proc."""
    ticks = 0
    for pid in pids:
        fields = process_stat(pid)
        assert fields is not None, f"process {pid} is gone"
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def database_url_beside(log_path: Path) -> str:
    """The drawings store (and training queue) of the server whose console log is ``log_path``."""
    return f"sqlite:///{log_path.with_name('kept.sqlite')}"


def stop(process: subprocess.Popen, timeout: float) -> None:
    """Ask a child process to end (SIGTERM), and kill it if it has not within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


@contextlib.contextmanager
def training_worker(log_path: Path, database_url: str, models: Path) -> Iterator[subprocess.Popen]:
    """Run ``python -m digitdraw worker`` on a database and a models folder, its output in ``log_path``."""
    command = [
        sys.executable,
        "-m",
        "digitdraw",
        "worker",
        "--database",
        database_url,
        "--models",
        str(models),
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop(process, timeout=30)


@contextlib.contextmanager
def streamlit_server(
    log_path: Path, environment: dict[str, str] | None = None, root: Path = ROOT
) -> Iterator[Server]:
    """Run the app with ``streamlit run`` on a free localhost port, every script run timed, its
    drawings store a SQLite file beside the log (never the working tree's data/); ``environment``
    adds to the server's environment variables; ``root`` is the checkout whose app is served (this
    one unless a benchmark compares another)."""
    port = free_port()
    run_log_path = log_path.with_name("script_runs.jsonl")
    environment = {
        # One OpenBLAS thread, as ``make run`` starts the app (see the Makefile), unless set already.
        "OPENBLAS_NUM_THREADS": "1",
        **os.environ,
        "DIGITDRAW_DATABASE_URL": database_url_beside(log_path),
        **(environment or {}),
    }
    command = [
        sys.executable, str(Path(__file__).with_name("timed_server.py")), str(run_log_path),
        "streamlit_app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=environment)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(url, process, log_path)
            yield Server(url, log_path, run_log_path, process.pid)
        finally:
            stop(process, timeout=10)


# Waits in the page until the metric shows the digit, polled every animation frame; returns the
# time it saw it, on the page's clock.
PREDICTION_SHOWN = """
digit => {
  const value = document.querySelector('[data-testid="stMetricValue"]');
  return value !== null && value.textContent.trim() === String(digit) && performance.now();
}
"""

# Notes the time of every mouse release and of every message the page sends to the server.
RECORD_EVENTS = """
window.digitdrawEvents = { mouseups: [], sends: [] };
window.addEventListener("mouseup", () => window.digitdrawEvents.mouseups.push(performance.now()), true);
const originalSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  window.digitdrawEvents.sends.push(performance.now());
  return originalSend.call(this, data);
};
"""


@dataclass(frozen=True)
class Drawing:
    """One digit drawn in a browser session and what the page showed for it (None: no answer)."""

    digit: int
    shown: str | None
    released_to_sent: float | None = None  # Seconds: the canvas component's debounce.
    sent_to_shown: float | None = None  # Seconds: the server's rerun and the page's update.

    @property
    def total(self) -> float | None:
        """Seconds from the last mouse release until the answer showed."""
        if self.released_to_sent is None or self.sent_to_shown is None:
            return None
        return self.released_to_sent + self.sent_to_shown


async def open_draw_page(browser, url: str):
    """A new browser context (its own Streamlit session) with the draw page ready for the mouse."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    await context.add_init_script(RECORD_EVENTS)
    page = await context.new_page()
    # Twenty sessions opening at once on two busy cores can take longer than Playwright's 30 s.
    await page.goto(url, timeout=120_000)
    await page.get_by_text("Draw a digit on the canvas").wait_for(timeout=60_000)
    await page.get_by_role("button", name="Reset canvas & history").wait_for(timeout=60_000)
    return context, page


async def draw_and_time(page, digit: int, answer_timeout: float = 20) -> Drawing:
    """Draw a digit with the mouse and time its answer; ``shown`` is None if none came in time."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    await page.get_by_role("button", name="Reset canvas & history").wait_for(timeout=60_000)
    box = await page.locator("canvas").last.bounding_box()
    for stroke in STROKES[digit]:
        points = list(mouse_path(stroke, box["x"], box["y"]))
        await page.mouse.move(*points[0])
        await page.mouse.down()
        for point in points[1:]:
            await page.mouse.move(*point)
        await page.mouse.up()
    try:
        handle = await page.wait_for_function(
            PREDICTION_SHOWN, arg=digit, polling="raf", timeout=answer_timeout * 1e3
        )
    except PlaywrightTimeout:
        shown = await page.get_by_test_id("stMetricValue").all_text_contents()
        return Drawing(digit, shown[0].strip() if shown else None)
    shown_at = await handle.json_value()
    events = await page.evaluate("window.digitdrawEvents")
    released = events["mouseups"][-1]
    sent = min((t for t in events["sends"] if t >= released), default=shown_at)
    return Drawing(digit, str(digit), (sent - released) / 1e3, (shown_at - sent) / 1e3)


async def clear(page) -> None:
    """Press the app's Clear button and wait for the empty-canvas prompt."""
    await page.get_by_role("button", name="Clear the canvas").click()
    await page.get_by_text("Draw a digit on the canvas").wait_for(timeout=60_000)


def wait_until_quiet(server: Server, quiet: float = 0.3, limit: float = 30) -> None:
    """Wait until the server has started no script run for ``quiet`` seconds (at most ``limit``)."""
    deadline = time.monotonic() + limit
    seen = -1
    while time.monotonic() < deadline:
        size = server.run_log_path.stat().st_size if server.run_log_path.exists() else 0
        if size == seen:
            return
        seen = size
        time.sleep(quiet)


async def wait_until_idle(server: Server, quiet: float = 0.3, limit: float = 30) -> None:
    """``wait_until_quiet`` for asyncio code: the event loop runs on meanwhile."""
    await asyncio.to_thread(wait_until_quiet, server, quiet, limit)


@dataclass
class SessionsRun:
    """What ``draw_in_sessions`` measured: every drawing, and the server's work for them."""

    drawings: list[Drawing]
    stroke_runs: list[dict]  # Script runs while sessions drew and waited for answers.
    server_cpu_seconds: float  # Server CPU over all draw-and-Clear rounds.


async def draw_in_sessions(
    server: Server, sessions: int, rounds: int, step: int = 1, pause: tuple[float, float] = (0.0, 0.0)
) -> SessionsRun:
    """Open ``sessions`` browser sessions on one server; in each round all of them draw at once,
    wait for their answers, press Clear, and once the server is idle wait ``pause`` seconds
    (drawn at random from the range, per session) before the next round.

    Session i draws digit (i + step * round) % 10, so neighbours and rounds differ.
    """
    from playwright.async_api import async_playwright

    chance = random.Random(sessions * 1000 + rounds)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            opened = await asyncio.gather(*(open_draw_page(browser, server.url) for _ in range(sessions)))
            pages = [page for _, page in opened]
            await wait_until_idle(server)
            drawings, stroke_runs = [], []
            cpu_before = server.cpu_seconds()

            async def one_session(page, digit: int, wait: float) -> Drawing:
                await asyncio.sleep(wait)
                return await draw_and_time(page, digit)

            for round_number in range(rounds):
                digits = [(index + step * round_number) % 10 for index in range(sessions)]
                runs_before = len(server.script_runs())
                waits = [chance.uniform(*pause) for _ in pages]
                drawings += await asyncio.gather(
                    *(one_session(p, d, w) for p, d, w in zip(pages, digits, waits))
                )
                stroke_runs += server.script_runs()[runs_before:]
                await asyncio.gather(*(clear(page) for page in pages))
                await wait_until_idle(server)
            return SessionsRun(drawings, stroke_runs, server.cpu_seconds() - cpu_before)
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


# Whether an element is drawn with no width, or reaches sideways past an ancestor that clips what overflows.
CLIPPED = """
element => {
  const box = element.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) return true;
  for (let ancestor = element.parentElement; ancestor; ancestor = ancestor.parentElement) {
    const style = getComputedStyle(ancestor);
    if (style.overflowX !== "visible") {
      const clip = ancestor.getBoundingClientRect();
      if (box.left < clip.left - 1 || box.right > clip.right + 1) return true;
    }
  }
  return false;
}
"""


# A phone as Playwright's device list describes an iPhone 13: its screen less the browser's bars,
# a phone's User-Agent, touch and no mouse.
PHONE = {
    "viewport": {"width": 390, "height": 664},
    "screen": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 15_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/15.0 Mobile/15E148 Safari/604.1"
    ),
}
LAPTOP = {"viewport": {"width": 1366, "height": 900}}


def touch_draw(page, strokes) -> None:
    """Draw a digit's strokes with a finger, as touch events (Playwright's sync API, Chromium only).

    Strokes are in 280x280 canvas pixels and scaled to the canvas's size on the page.
    """
    surface = page.locator("canvas").last
    surface.wait_for(state="visible", timeout=15_000)
    page.wait_for_timeout(300)
    box = surface.bounding_box()
    scale = box["width"] / 280
    devtools = page.context.new_cdp_session(page)
    for stroke in strokes:
        scaled = [(x * scale, y * scale) for x, y in stroke]
        points = [{"x": x, "y": y} for x, y in mouse_path(scaled, box["x"], box["y"])]
        devtools.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points[:1]})
        for point in points[1:]:
            devtools.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        devtools.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    devtools.detach()


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


def number_photo(path: Path, min_digits: int = 4, slant: float = 0.0) -> str:
    """Write a photo of a handwritten number as a JPEG (a held-out number of ``digitdraw.reading.numbers``
    that Model 4 reads right), its line falling to the right by ``slant`` degrees, and return the number."""
    import io

    import numpy as np
    from PIL import Image

    import digitdraw
    from digitdraw.reading import numbers

    _, (x_test, y_test) = digitdraw.load_mnist()
    for sample in numbers.number_set(x_test, y_test, 60, "held-out"):
        if sample.kind != "photo" or len(sample.text) < min_digits or sample.image.shape[1] < 500:
            continue
        image = numbers.turned(sample.image, slant)[0] if slant else sample.image
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=90)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        if digitdraw.read_digits(decoded, [4]).text(4) == sample.text:
            Path(path).write_bytes(buffer.getvalue())
            return sample.text
    raise AssertionError("no held-out photo of a number is read right")


def upload(page, path: Path) -> None:
    """Give a file to the page's file uploader, as choosing it in the file dialog does."""
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))


def design_tiny_network(page, name: str) -> None:
    """On the Train page: design a network of one hidden layer of 16 tanh units, to train for one epoch
    on 1,000 images (Start training not yet pressed)."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Train your own network")).to_be_visible(timeout=60_000)
    page.get_by_label("Name", exact=True).fill(name)
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
