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
from harness import draw_in_sessions, streamlit_server


def main() -> None:
    """Print median and 95th percentile of the browser round trip for each number of users."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="digits each session draws (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, streamlit_server(Path(folder) / "streamlit.log") as url:
        rows = {}
        for sessions in (1, 8):
            drawings = asyncio.run(draw_in_sessions(url, sessions, args.rounds))
            wrong = [(digit, shown) for digit, shown, _ in drawings if shown != str(digit)]
            if wrong:
                raise SystemExit(f"sessions were shown the wrong digit (drawn, shown): {wrong}")
            rows[sessions] = [seconds for _, _, seconds in drawings]
    print(f"{'browser round trip (ms)':<28} {'median':>9} {'p95':>9} {'samples':>8}")
    for sessions, timings in rows.items():
        median = statistics.median(timings) * 1e3
        p95 = float(np.percentile(timings, 95)) * 1e3
        print(f"{sessions} concurrent session(s){'':<6} {median:>9.0f} {p95:>9.0f} {len(timings):>8}")
    ratio = statistics.median(rows[8]) / statistics.median(rows[1])
    print(f"\n8 sessions: median round trip is {ratio:.1f}x that of a single session")


if __name__ == "__main__":
    main()
