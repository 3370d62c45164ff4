"""Round trip in a real browser, in parts: mouse released -> drawing sent -> answer on screen, and the
server's time per stroke, with 1, 8 and 20 users drawing at once.

Run from the repository root with ``.venv/bin/python -m benchmarks.browser_roundtrip`` (Debian's
Chromium at /usr/bin/chromium). It starts the app on a free localhost port, its every script run
timed by the server itself (tests/e2e/timed_server.py), opens the sessions, and in each round has
every session draw a digit with the mouse, wait for the answer, press Clear and wait until the server
is idle. Per drawing it reports, on the page's own clock:

* release -> sent: from the last mouse release until the page sends the drawing. This is the canvas
  component's fixed 200 ms debounce, a floor no server can lower.
* sent -> shown: from that message until the answer is on screen.
* server run: the wall and CPU time of each script run the strokes caused, from the server's log.
* server CPU per round: the server process's CPU (all threads, /proc) per drawing, Clear included.

Before the rounds, ``--first`` fresh sessions (8 by default) open the page one after another and
draw one digit each: the first answer of a session, whose page must first load the browser code of
what a stroke shows, and the very first drawing the server process reads, its own first stroke.

All loads run against the same server in the same process, so compare them with each other.
``--profile PATH`` profiles every fragment run on the server instead (tests/e2e/timed_server.py) and
prints where their CPU went, by function of the app; its timings are the profiler's, slower.
``--baseline DIR`` serves another checkout of the app (an older commit, say) first, with the same
sessions and rounds, so that old and new are measured in one run under the same load.
``--alternate DIR [DIR ...]`` serves them and this checkout at once, one browser session on each,
and has them draw in turn, the first to draw changing every round: the fairest comparison of one
session's round trip, since the machine's drift over a run (the second of two runs one after the
other was slower by some 10 ms whichever it was) falls on all alike. Each row gives the machine's
load average (1 minute) before and after it: the server shares its cores with the browsers and with
whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    ROOT,
    SessionsRun,
    clear,
    draw_and_time,
    draw_in_sessions,
    open_draw_page,
    streamlit_server,
    wait_until_idle,
)
from timed_server import PROFILE_ENV_VAR


async def page_ready_seconds(url: str, loads: int) -> list[float]:
    """Seconds from asking for the app's first page until its canvas is ready, one fresh session each."""
    from playwright.async_api import async_playwright

    timings = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for _ in range(loads + 1):  # The first load warms the server up and is not counted.
            started = time.perf_counter()
            context, _ = await open_draw_page(browser, url)
            timings.append(time.perf_counter() - started)
            await context.close()
        await browser.close()
    return timings[1:]


async def first_answers(server, sessions: int) -> list[tuple[float, dict]]:
    """For fresh sessions one after another: the first drawing's sent -> shown seconds and the server's
    record of the script run its first stroke caused (session 0 draws a 0, in one stroke)."""
    from playwright.async_api import async_playwright

    firsts = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for session in range(sessions):
            context, page = await open_draw_page(browser, server.url)
            await wait_until_idle(server)
            runs_before = len(server.script_runs())
            drawing = await draw_and_time(page, session % 10)
            await wait_until_idle(server)
            if drawing.sent_to_shown is None:
                raise SystemExit(f"a fresh session drew a {drawing.digit} and was shown {drawing.shown}")
            fragment_runs = [r for r in server.script_runs()[runs_before:] if r["fragment"]]
            firsts.append((drawing.sent_to_shown, fragment_runs[0]))  # Its first stroke's run.
            await context.close()
        await browser.close()
    return firsts


def _summary(values: list[float]) -> str:
    if not values:
        return f"{'-':>8} {'-':>8}"
    return f"{statistics.median(values):>8.0f} {float(np.percentile(values, 95)):>8.0f}"


def main() -> None:
    """Print median and 95th percentile of each part of the round trip for each number of users."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="digits each session draws (default 8)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 20], help="users at once")
    parser.add_argument("--baseline", type=Path, help="another checkout of the app, measured first")
    parser.add_argument("--profile", type=Path, help="profile the fragment runs into this pstats file")
    parser.add_argument("--first", type=int, default=8, help="fresh sessions that draw once (default 8)")
    parser.add_argument(
        "--alternate", type=Path, nargs="+", help="other checkouts, served beside this one, drawn on in turn"
    )
    args = parser.parse_args()
    if args.alternate is not None and (args.baseline is not None or args.profile is not None):
        parser.error(
            "--alternate serves its checkouts beside this one: it takes neither --baseline nor --profile"
        )
    print(f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores")
    if args.alternate is not None:
        alternate({**{f"other {i}": d for i, d in enumerate(args.alternate, 1)}, "this": ROOT}, args.rounds)
        return
    if args.profile is not None:
        measure(ROOT, args.sessions, args.rounds, 0, {PROFILE_ENV_VAR: str(args.profile.resolve())})
        print_profile(args.profile)
        return
    if args.baseline is not None:
        print(f"\n== baseline: {args.baseline}")
        measure(args.baseline, args.sessions, args.rounds, args.first)
        print(f"\n== this checkout: {ROOT}")
    measure(ROOT, args.sessions, args.rounds, args.first)


def print_profile(path: Path, rows: int = 25) -> None:
    """The functions, the app's and Streamlit's, that took the largest shares of the fragment runs' CPU,
    callees included."""
    stats = pstats.Stats(str(path))
    runs = sum(calls for (_, _, name), (_, calls, *_) in stats.stats.items() if name == "drawing_ui")
    shares = [
        (
            cumulative / stats.total_tt,
            calls,
            f"{file.split('site-packages/')[-1].removeprefix(f'{ROOT}/')}:{name}",
        )
        for (file, _, name), (_, calls, _, cumulative, _) in stats.stats.items()
        if file.startswith(str(ROOT)) and "/tests/" not in file
    ]
    print(f"\nfragment runs profiled: {runs}, CPU under the profiler {stats.total_tt * 1e3:.0f} ms in all")
    print(f"{'share':>6} {'calls':>6}  function (callees included)")
    for share, calls, name in sorted(shares, reverse=True)[:rows]:
        print(f"{share:>6.1%} {calls:>6}  {name}")


def measure(
    root: Path, sessions_counts: list[int], rounds: int, fresh_sessions: int, environment: dict | None = None
) -> None:
    """Serve the app of one checkout and print its page-ready time, the first answers of fresh sessions,
    idle CPU and one row per load."""
    with (
        tempfile.TemporaryDirectory() as folder,
        streamlit_server(Path(folder) / "streamlit.log", environment, root=root) as server,
    ):
        ready = asyncio.run(page_ready_seconds(server.url, loads=5))
        print(f"page ready, warm server (s): median {statistics.median(ready):.2f}, max {max(ready):.2f}")
        if fresh_sessions:
            firsts = asyncio.run(first_answers(server, fresh_sessions))
            server_first_run = firsts[0][1]
            print(
                f"first drawing of a fresh session, sent->shown ms: {_summary([s * 1e3 for s, _ in firsts])} "
                f"(median, p95 of {len(firsts)}); the server's first stroke: "
                f"{server_first_run['wall_ms']:.0f} ms, CPU {server_first_run['cpu_ms']:.0f} ms"
            )
        idle_before = server.cpu_seconds()
        time.sleep(5)
        print(f"server CPU while idle: {(server.cpu_seconds() - idle_before) * 1e3 / 5:.0f} ms per second\n")
        _print_header("sessions")
        for sessions in sessions_counts:
            load_before = os.getloadavg()[0]
            run = asyncio.run(draw_in_sessions(server, sessions, rounds))
            print(f"{_row(f'{sessions:>8}', run)} | {load_before:.1f}-{os.getloadavg()[0]:.1f}", flush=True)


def _print_header(first: str) -> None:
    header = f"{first:>8} {'drawings':>8} {'lost':>5}"
    for part in ("release->sent", "sent->shown", "total", "server run", "run CPU"):
        header += f" | {part + ' ms':^17}"
    print(header + f" | {'CPU/round ms':>12} | load avg")
    print(f"{'':>23}" + " | median      p95" * 5)


def _row(label: str, run: SessionsRun) -> str:
    """One row of the table: each part's median and p95, and the server's CPU per round."""
    answered = [d for d in run.drawings if d.shown is not None]
    wrong = [(d.digit, d.shown) for d in answered if d.shown != str(d.digit)]
    if wrong:
        raise SystemExit(f"sessions were shown the wrong digit (drawn, shown): {wrong}")
    columns = [
        [d.released_to_sent * 1e3 for d in answered],
        [d.sent_to_shown * 1e3 for d in answered],
        [d.total * 1e3 for d in answered],
        [r["wall_ms"] for r in run.stroke_runs],
        [r["cpu_ms"] for r in run.stroke_runs],
    ]
    line = f"{label} {len(run.drawings):>8} {len(run.drawings) - len(answered):>5}"
    line += "".join(f" | {_summary(values)}" for values in columns)
    return line + f" | {run.server_cpu_seconds * 1e3 / max(len(run.drawings), 1):>12.1f}"


def alternate(roots: dict[str, Path], rounds: int) -> None:
    """Serve every checkout at once, one session on each, drawing in turn; one row per checkout."""
    with contextlib.ExitStack() as stack:
        servers = {}
        for label, root in roots.items():
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            servers[label] = stack.enter_context(streamlit_server(folder / "streamlit.log", root=root))
        load_before = os.getloadavg()[0]
        runs = asyncio.run(_in_turn(list(servers.values()), rounds))
        print(f"\none session on each, {rounds} digits each, drawn in turn")
        _print_header("")
        for label, run in zip(servers, runs):
            print(f"{_row(f'{label:>8}', run)} | {load_before:.1f}-{os.getloadavg()[0]:.1f}  {roots[label]}")


async def _in_turn(servers: list, rounds: int) -> list[SessionsRun]:
    """One session per server; each round every session draws the same digit, one after the other."""
    from playwright.async_api import async_playwright

    drawings = [[] for _ in servers]
    stroke_runs = [[] for _ in servers]
    cpu = [0.0 for _ in servers]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            pages = [(await open_draw_page(browser, server.url))[1] for server in servers]
            for page, server in zip(pages, servers):  # A first answer is slower: not counted.
                await draw_and_time(page, 8)
                await clear(page)
                await wait_until_idle(server)
            for round_number in range(rounds):
                # Each checkout draws first in its turn: the order rotates every round.
                order = [(index + round_number) % len(servers) for index in range(len(servers))]
                for index in order:
                    server, page = servers[index], pages[index]
                    runs_before, cpu_before = len(server.script_runs()), server.cpu_seconds()
                    drawings[index].append(await draw_and_time(page, round_number % 10))
                    stroke_runs[index] += server.script_runs()[runs_before:]
                    await clear(page)
                    await wait_until_idle(server)
                    cpu[index] += server.cpu_seconds() - cpu_before
        finally:
            await browser.close()
    return [SessionsRun(*parts) for parts in zip(drawings, stroke_runs, cpu)]


if __name__ == "__main__":
    main()
