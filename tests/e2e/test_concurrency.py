"""Eight users at once: each browser session draws its own digit on one server and sees its own answer."""

from __future__ import annotations

import asyncio
import threading

import pytest
from harness import CHROMIUM_FLAGS, clear, draw_and_time, open_draw_page

pytestmark = pytest.mark.e2e
SESSIONS = 8


async def _eight_users(url: str, chromium: str) -> list[tuple[int, str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            opened = await asyncio.gather(*(open_draw_page(browser, url) for _ in range(SESSIONS)))
            pages = [page for _, page in opened]
            answers = []
            # Two rounds with different digits, so that a session showing another's drawing
            # (or its own previous one) is caught.
            for round_number in range(2):
                digits = [(index + 3 * round_number) % 10 for index in range(SESSIONS)]
                results = await asyncio.gather(*(draw_and_time(p, d) for p, d in zip(pages, digits)))
                answers += [(digit, shown) for digit, (shown, _) in zip(digits, results)]
                await asyncio.gather(*(clear(page) for page in pages))
            return answers
        finally:
            await browser.close()


def test_eight_sessions_drawing_at_once_each_see_their_own_answer(server, chromium_path):
    url, log_path = server
    outcome = {}

    # The async Playwright API gets a thread of its own, away from the sync API's loop.
    def run() -> None:
        try:
            outcome["answers"] = asyncio.run(_eight_users(url, chromium_path))
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=240)
    assert not worker.is_alive(), "the eight sessions did not finish within four minutes"
    if "error" in outcome:
        raise outcome["error"]
    answers = outcome["answers"]
    assert len(answers) == 2 * SESSIONS
    assert [shown for _, shown in answers] == [str(digit) for digit, _ in answers]
    log = log_path.read_text()
    assert "Traceback" not in log and "Exception" not in log, log
