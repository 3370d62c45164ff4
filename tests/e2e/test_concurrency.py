"""Eight users at once: each draws, reads the answer, clears and draws again; no drawing is lost."""

from __future__ import annotations

import asyncio
import threading

import pytest
from harness import draw_in_sessions

pytestmark = pytest.mark.e2e
SESSIONS = 8
ROUNDS = 4


def test_eight_sessions_drawing_and_clearing_at_once_lose_no_drawing(server, chromium_path):
    outcome = {}

    # The async Playwright API gets a thread of its own, away from the sync API's event loop.
    def run() -> None:
        try:
            # Different digits in neighbouring sessions and rounds catch a session shown another
            # session's drawing or its own previous one. Between rounds every session clears,
            # waits until the server is idle and then 0.4-1 s more: the rhythm in which drawings
            # used to vanish from freshly remounted canvases.
            outcome["run"] = asyncio.run(draw_in_sessions(server, SESSIONS, ROUNDS, step=3, pause=(0.4, 1.0)))
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=400)
    assert not worker.is_alive(), "the eight sessions did not finish in time"
    if "error" in outcome:
        raise outcome["error"]
    drawings = outcome["run"].drawings
    assert len(drawings) == ROUNDS * SESSIONS
    lost = [d for d in drawings if d.shown is None]
    assert not lost, f"{len(lost)} of {len(drawings)} drawings got no answer"
    assert [d.shown for d in drawings] == [str(d.digit) for d in drawings]
    log = server.log_path.read_text()
    assert "Traceback" not in log and "Exception" not in log, log
