"""Round trip in a real browser: mouse released on the canvas -> prediction shown, with 1 and 8 users.

Run from the repository root with ``.venv/bin/python -m benchmarks.browser_roundtrip`` (Debian's
Chromium at /usr/bin/chromium). It starts the app with ``streamlit run`` on a free localhost port,
opens 1 and then 8 browser sessions, and has every session draw digits with the mouse, timing
each from the last mouse release until the page shows the expected digit. Both loads run in the
same process against the same server, so their ratio is what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    clear,
    draw_and_time,
    open_draw_page,
    streamlit_server,
)


async def _measure(url: str, sessions: int, rounds: int) -> list[float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            opened = await asyncio.gather(*(open_draw_page(browser, url) for _ in range(sessions)))
            pages = [page for _, page in opened]
            timings = []
            for round_number in range(rounds):
                digits = [(index + round_number) % 10 for index in range(sessions)]
                results = await asyncio.gather(*(draw_and_time(p, d) for p, d in zip(pages, digits)))
                for digit, (shown, seconds) in zip(digits, results):
                    if shown != str(digit):
                        raise SystemExit(f"a session drew {digit} but was shown {shown}")
                    timings.append(seconds)
                await asyncio.gather(*(clear(page) for page in pages))
            return timings
        finally:
            await browser.close()


def main() -> None:
    """Print median and 95th percentile of the browser round trip for each number of users."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="digits each session draws (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, streamlit_server(Path(folder) / "streamlit.log") as url:
        rows = {sessions: asyncio.run(_measure(url, sessions, args.rounds)) for sessions in (1, 8)}
    print(f"{'browser round trip (ms)':<28} {'median':>9} {'p95':>9} {'samples':>8}")
    for sessions, timings in rows.items():
        median = statistics.median(timings) * 1e3
        p95 = float(np.percentile(timings, 95)) * 1e3
        print(f"{sessions} concurrent session(s){'':<6} {median:>9.0f} {p95:>9.0f} {len(timings):>8}")
    ratio = statistics.median(rows[8]) / statistics.median(rows[1])
    print(f"\n8 sessions: median round trip is {ratio:.1f}x that of a single session")


if __name__ == "__main__":
    main()
