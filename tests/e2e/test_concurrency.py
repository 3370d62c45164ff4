"""Eight users at once: each browser session draws its own digit on one server and sees its own answer."""

from __future__ import annotations

import asyncio
import threading

import pytest
from harness import draw_in_sessions

pytestmark = pytest.mark.e2e
SESSIONS = 8


def test_eight_sessions_drawing_at_once_each_see_their_own_answer(server, chromium_path):
    url, log_path = server
    outcome = {}

    # The async Playwright API gets a thread of its own, away from the sync API's event loop.
    def run() -> None:
        try:
            # Two rounds with different digits, so that a session shown another session's
            # drawing, or its own previous one, is caught.
            outcome["drawings"] = asyncio.run(draw_in_sessions(url, SESSIONS, rounds=2, step=3))
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=240)
    assert not worker.is_alive(), "the eight sessions did not finish within four minutes"
    if "error" in outcome:
        raise outcome["error"]
    drawings = outcome["drawings"]
    assert len(drawings) == 2 * SESSIONS
    assert [shown for _, shown, _ in drawings] == [str(digit) for digit, _, _ in drawings]
    log = log_path.read_text()
    assert "Traceback" not in log and "Exception" not in log, log
