"""A classroom drawing at once: N students on the Draw page, with human pauses, on one app server and on
the cluster (replicas behind HAProxy, PostgreSQL), measured in the same run.

Run from the repository root with ``.venv/bin/python -m benchmarks.classroom`` (Debian's Chromium,
PostgreSQL and HAProxy installed: ``make system``). Every student, ``--rounds`` times: waits 1-3 s,
draws a digit, waits for the answer, keeps the drawing one round in three ("Right, it is a ..."),
waits 1-3 s and presses Clear.

Who the students are. Thirty Chromium sessions on two cores would measure Chromium: each renders
the whole page at every answer, which a phone does on its own processor. So a few students are
real browsers, the *witnesses* (``--witnesses``, 3 by default), drawing with the mouse; the others
speak Streamlit's WebSocket protocol directly (``websockets``), sending, at the same moments, the very
messages a browser sent for each digit, its keep and its Clear (captured once from a real
browser before the runs) and waiting for each run to finish. The server cannot tell them apart.

It reports, per setup and number of students:

* pen-up -> answer, the witnesses': from the last mouse release until the answer is on screen,
  median and p95, and the part after the page sent the drawing (the canvas component itself
  waits 200 ms before sending);
* send -> run done, the protocol students': from sending a drawing until the server says the run
  it caused finished (everything but the page's drawing of the answer);
* server CPU per round: the app servers' CPU (every replica, all threads, from /proc) over the
  rounds, less what the open sessions cost while nobody draws (measured for ``IDLE_SECONDS``
  before the rounds), divided by the rounds: a drawing, its answer, one keep in three and Clear;
* answers lost (a drawing with no answer within 20 s, or the wrong digit shown), and the drawings
  kept (confirmed on the witnesses' pages, sent by the others) against the rows in the database.

Setups: ``server`` is one ``streamlit run`` with its drawings in SQLite, as ``make run`` serves;
``cluster`` is ``make cluster``'s topology without workers, with each of ``--replicas`` (1 and 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    RECORD_EVENTS,
    Drawing,
    clear,
    cpu_seconds,
    database_url_beside,
    draw_and_time,
    open_draw_page,
    streamlit_server,
)
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from digitdraw.deploy import cluster as deploy
from digitdraw.deploy.network import free_port
from digitdraw.drawings import store
from digitdraw.ui.app import article, clear_marker, clears_marked

PAUSE_SECONDS = (1.0, 3.0)
KEEP_EVERY = 3  # A student keeps one drawing in three.
IDLE_SECONDS = 5.0
ANSWER_SECONDS = 20.0
RUN_DONE = (
    ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY,
    ForwardMsg.ScriptFinishedStatus.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
)


@dataclass
class Messages:
    """What a browser sent, per digit: the page's first run, the drawing, Right, Clear (with the emptied
    canvas's report): serialised ``BackMsg`` rerun requests, in order."""

    opening: list[bytes] = field(default_factory=list)
    drawing: dict[int, list[bytes]] = field(default_factory=dict)
    keep: dict[int, list[bytes]] = field(default_factory=dict)
    clear: dict[int, list[bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Where the students go: the address, the app servers' process ids and the drawings' database."""

    url: str
    pids: list[int]
    database_url: str


@dataclass
class Outcome:
    """What one setup with one number of students measured."""

    drawings: list[Drawing] = field(default_factory=list)  # The witnesses'.
    protocol_seconds: list[float] = field(default_factory=list)  # Send -> run done, the others'.
    protocol_lost: int = 0
    kept_on_page: int = 0
    server_cpu_seconds: float = 0.0  # Over the rounds, less the open sessions' idle cost.
    idle_cpu_per_second: float = 0.0
    stored: int = 0


@contextlib.contextmanager
def one_server(folder: Path) -> Iterator[Target]:
    """One app server, as ``make run`` starts it, its drawings in SQLite."""
    log_path = folder / "streamlit.log"
    with streamlit_server(log_path) as server:
        yield Target(server.url, [server.pid], database_url_beside(log_path))


@contextlib.contextmanager
def a_cluster(folder: Path, replicas: int) -> Iterator[Target]:
    """``make cluster``'s topology without workers: PostgreSQL, ``replicas`` replicas behind HAProxy."""
    database_folder = Path(tempfile.mkdtemp(prefix="digitdraw-classroom-postgres-"))
    settings = deploy.ClusterSettings(
        folder=folder, port=free_port(), replicas=replicas, workers=0,
        postgres_folder=database_folder,
    )  # fmt: skip
    try:
        running = deploy.start(settings)
        pids = [process.pid for process in running.of_role(deploy.Role.REPLICA)]
        yield Target(running.url, pids, running.database_url)
    finally:
        deploy.stop(folder)
        shutil.rmtree(database_folder, ignore_errors=True)


async def capture(url: str) -> Messages:
    """Draw each digit in a real browser, keep it and Clear; what the page sent for each step."""
    from playwright.async_api import async_playwright

    messages, frames = Messages(), []

    def sent(payload) -> None:
        message = BackMsg()
        message.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
        if message.WhichOneof("type") == "rerun_script":
            frames.append(message.SerializeToString())

    def taken() -> list[bytes]:
        step = list(frames)
        frames.clear()
        return step

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        await context.add_init_script(RECORD_EVENTS)
        page = await context.new_page()
        page.on("websocket", lambda socket: socket.on("framesent", sent))
        await page.goto(url)
        await page.get_by_role("button", name="Reset canvas & history").wait_for(timeout=60_000)
        await asyncio.sleep(1.0)
        messages.opening = taken()
        for digit in range(10):
            drawing = await draw_and_time(page, digit)
            assert drawing.shown == str(digit), f"the witness's {digit} was read as {drawing.shown}"
            await asyncio.sleep(0.5)
            messages.drawing[digit] = taken()
            await page.get_by_role("button", name=f"Right, it is {article(digit)} {digit}").click()
            await page.get_by_text(f"Kept as {article(digit)} {digit}").wait_for(timeout=30_000)
            await asyncio.sleep(0.5)
            messages.keep[digit] = taken()
            await clear(page)
            await asyncio.sleep(0.5)
            messages.clear[digit] = taken()
        await browser.close()
    return messages


def _shifted(value: object, shift: int) -> object:
    """A widget's JSON value with every canvas Clear marker in it counting ``shift`` more Clears."""
    if isinstance(value, dict):
        clears = clears_marked([value])
        if clears is not None:
            return clear_marker(clears + shift)
        return {key: _shifted(item, shift) for key, item in value.items()}
    if isinstance(value, list):
        return [_shifted(item, shift) for item in value]
    return value


def marked(step: list[bytes], shift: int) -> list[bytes]:
    """A step's rerun requests as a student who has pressed Clear ``shift`` times more than the witness
    had when it sent them.

    The page records only a canvas report marked with the session's own count of Clears, and takes an
    older one for stale. Every request carries every widget's state, so a Clear's click carries the
    drawing it clears, marked with the count before the click: shifting each marker by the same
    amount, rather than setting them all to the student's count, keeps that report stale, as it was.
    """
    shifted = []
    for payload in step:
        message = BackMsg()
        message.ParseFromString(payload)
        for widget in message.rerun_script.widget_states.widgets:
            if widget.WhichOneof("value") == "json_value":
                widget.json_value = json.dumps(_shifted(json.loads(widget.json_value), shift))
        shifted.append(message.SerializeToString())
    return shifted


async def until_run_done(socket) -> list[ForwardMsg]:
    """Read the server's messages until a script run finishes successfully; the messages."""
    messages = []
    while True:
        message = ForwardMsg()
        message.ParseFromString(await socket.recv())
        messages.append(message)
        if message.WhichOneof("type") == "script_finished" and message.script_finished in RUN_DONE:
            return messages


def shown_text(messages: list[ForwardMsg]) -> str:
    """The metrics' values, the Markdown and the alerts a run sent, one per line: what its page shows."""
    shown = []
    for message in messages:
        if message.WhichOneof("type") != "delta" or message.delta.WhichOneof("type") != "new_element":
            continue
        element = message.delta.new_element
        if element.WhichOneof("type") == "metric":
            shown.append(element.metric.body)
        elif element.WhichOneof("type") in ("markdown", "alert"):
            shown.append(getattr(element, element.WhichOneof("type")).body)
    return "\n".join(shown)


async def send_step(socket, step: list[bytes]) -> tuple[float, str]:
    """Send one step's rerun requests, each after the previous run finished; seconds for the first, and
    what the runs showed (``shown_text``)."""
    took, shown = 0.0, []
    for number, payload in enumerate(step):
        started = time.perf_counter()
        await socket.send(payload)
        shown.append(shown_text(await asyncio.wait_for(until_run_done(socket), ANSWER_SECONDS)))
        if number == 0:
            took = time.perf_counter() - started
    return took, "\n".join(shown)


async def protocol_session(url: str, messages: Messages):
    """A student without a browser: a WebSocket session on the app, its page's first run done."""
    import websockets

    # The page first, as a browser loads it: behind HAProxy it sets the cookie naming this one's replica.
    with await asyncio.to_thread(urllib.request.urlopen, url) as response:
        cookie = "; ".join(value.split(";")[0] for value in response.headers.get_all("Set-Cookie") or [])
    stream = url.replace("http://", "ws://", 1) + "/_stcore/stream"
    headers = {"Cookie": cookie} if cookie else {}
    socket = await websockets.connect(
        stream, subprotocols=["streamlit"], additional_headers=headers, max_size=None, open_timeout=120
    )
    await send_step(socket, messages.opening)
    return socket


async def protocol_student(
    socket, messages: Messages, index: int, rounds: int, chance: random.Random, outcome: Outcome
) -> None:
    """The rounds of a student without a browser: the witness's messages, sent over its WebSocket."""
    for round_number in range(rounds):
        await asyncio.sleep(chance.uniform(*PAUSE_SECONDS))
        digit = (index + 3 * round_number) % 10
        # The student has pressed Clear round_number times; the witness had pressed it digit times.
        shift = round_number - digit
        try:
            took, shown = await send_step(socket, marked(messages.drawing[digit], shift))
            if str(digit) in shown.splitlines():
                outcome.protocol_seconds.append(took)
                if (index + round_number) % KEEP_EVERY == 0:
                    _, shown = await send_step(socket, marked(messages.keep[digit], shift))
                    # Counted when the page says so, as a witness's keep is.
                    outcome.kept_on_page += bool(re.search(rf"Kept as \w+ \W*{digit}\b", shown))
            else:
                outcome.protocol_lost += 1
            await asyncio.sleep(chance.uniform(*PAUSE_SECONDS))
            _, shown = await send_step(socket, marked(messages.clear[digit], shift))
        except TimeoutError:
            # A run left unfinished leaves its messages on the socket and the student's Clears uncounted:
            # its remaining rounds are lost too.
            outcome.protocol_lost += rounds - round_number
            return
        if str(digit) in shown.splitlines() or "Draw a digit on the canvas" not in shown:
            raise RuntimeError(f"a replayed Clear showed {shown!r}: the replay no longer matches the page")


async def stroke_cpu(target: Target, messages: Messages, rounds: int) -> list[float]:
    """Server CPU seconds of each drawing alone: one protocol student, no pauses, the servers' CPU read
    just before the drawing is sent and just after its run finished (Clear in between, not counted)."""
    spent = []
    socket = await protocol_session(target.url, messages)
    async with socket:
        for round_number in range(rounds):
            digit = round_number % 10
            before = cpu_seconds(target.pids)
            await send_step(socket, marked(messages.drawing[digit], round_number - digit))
            spent.append(cpu_seconds(target.pids) - before)
            await send_step(socket, marked(messages.clear[digit], round_number - digit))
    return spent


async def student(page, index: int, rounds: int, chance: random.Random, outcome: Outcome) -> None:
    """One student's rounds: pause, draw, read the answer, sometimes keep it, pause, Clear."""
    for round_number in range(rounds):
        await asyncio.sleep(chance.uniform(*PAUSE_SECONDS))
        digit = (index + 3 * round_number) % 10
        drawing = await draw_and_time(page, digit)
        outcome.drawings.append(drawing)
        if drawing.shown == str(digit) and (index + round_number) % KEEP_EVERY == 0:
            await page.get_by_role("button", name=f"Right, it is {article(digit)} {digit}").click(
                timeout=30_000
            )
            await page.get_by_text(f"Kept as {article(digit)} {digit}").wait_for(timeout=30_000)
            outcome.kept_on_page += 1
        await asyncio.sleep(chance.uniform(*PAUSE_SECONDS))
        await clear(page)


async def classroom(
    target: Target, students: int, witnesses: int, rounds: int, messages: Messages
) -> Outcome:
    """Open the students' sessions, then let them all work their rounds at once."""
    from playwright.async_api import async_playwright

    outcome = Outcome()
    chance = random.Random(students)
    witnesses = min(witnesses, students)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            # Each app server's first drawing loads the models: a cost paid once a server, not a stroke.
            for _ in target.pids:  # Round robin gives each replica one of these.
                context, page = await open_draw_page(browser, target.url)
                await draw_and_time(page, 1)
                await context.close()
            opened = await asyncio.gather(*(open_draw_page(browser, target.url) for _ in range(witnesses)))
            # Every session opens before the rounds: opening costs the server, but not per round.
            sockets = await asyncio.gather(
                *(protocol_session(target.url, messages) for _ in range(witnesses, students))
            )
            await asyncio.sleep(2.0)  # The last pages' first runs finish.
            idle_start = cpu_seconds(target.pids)
            await asyncio.sleep(IDLE_SECONDS)
            before = cpu_seconds(target.pids)
            outcome.idle_cpu_per_second = (before - idle_start) / IDLE_SECONDS
            started = time.monotonic()
            seeds = [chance.random() for _ in range(students)]
            await asyncio.gather(
                *(
                    student(page, index, rounds, random.Random(seeds[index]), outcome)
                    for index, (_, page) in enumerate(opened)
                ),
                *(
                    protocol_student(socket, messages, index, rounds, random.Random(seeds[index]), outcome)
                    for index, socket in enumerate(sockets, start=witnesses)
                ),
            )
            for socket in sockets:
                await socket.close()
            idle = outcome.idle_cpu_per_second * (time.monotonic() - started)
            outcome.server_cpu_seconds = cpu_seconds(target.pids) - before - idle
        finally:
            await browser.close()
    kept = store.Store(target.database_url)
    outcome.stored = kept.count()
    kept.close()
    return outcome


def report(setup: str, students: int, outcome: Outcome) -> str:
    """One row of the table: latency, server CPU, lost answers and kept drawings."""
    answered = [d for d in outcome.drawings if d.shown is not None and d.total is not None]
    lost = len(outcome.drawings) - len(answered) + outcome.protocol_lost
    rounds = len(outcome.drawings) + len(outcome.protocol_seconds) + outcome.protocol_lost
    totals = np.array([d.total for d in answered]) * 1e3
    after_send = np.array([d.sent_to_shown for d in answered]) * 1e3
    protocol = np.array(outcome.protocol_seconds) * 1e3
    per_round = outcome.server_cpu_seconds / max(rounds, 1) * 1e3

    def median_p95(values: np.ndarray) -> str:
        if not len(values):
            return "-"
        return f"{statistics.median(values):.0f} / {np.percentile(values, 95):.0f}"

    return (
        f"| {setup} | {students} | {rounds} | {median_p95(totals)} | {median_p95(after_send)} "
        f"| {median_p95(protocol)} | {per_round:.0f} | {outcome.idle_cpu_per_second * 1e3:.0f} | {lost} "
        f"| {outcome.kept_on_page} / {outcome.stored} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--witnesses", type=int, default=3, help="students who are real browsers")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--setups", nargs="+", default=["server", "cluster"], choices=["server", "cluster"])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="the clusters' app replicas")
    parser.add_argument("--strokes", type=int, default=100, help="drawings measured alone")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="digitdraw-classroom-") as folder,
        one_server(Path(folder)) as target,
    ):
        messages = asyncio.run(capture(target.url))
        # A drawing's own cost, on a server with nobody else on it: /proc counts CPU in clock ticks
        # (10 ms here), so the median and mean of many are the figures, not any one.
        alone = np.array(asyncio.run(stroke_cpu(target, messages, args.strokes))) * 1e3
    print(
        f"Server CPU per drawing alone (its message and its run, one server, {args.strokes} drawings): "
        f"median {statistics.median(alone):.0f} ms, mean {alone.mean():.1f} ms, "
        f"p95 {np.percentile(alone, 95):.0f} ms"
    )
    print(
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.rounds} rounds per student, "
        f"{args.witnesses} of them real browsers"
    )
    print(
        "| setup | students | rounds | witnesses: pen-up -> answer, ms (median / p95) | witnesses: after the "
        "send, ms | the others: send -> run done, ms | server CPU per round, ms | idle server CPU, ms/s "
        "| answers lost | kept / rows stored |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    setups = [("server", 1)] if "server" in args.setups else []
    setups += [("cluster", replicas) for replicas in args.replicas] if "cluster" in args.setups else []
    for students in args.students:
        for setup, replicas in setups:
            with tempfile.TemporaryDirectory(prefix="digitdraw-classroom-") as folder:
                name = (
                    "one server"
                    if setup == "server"
                    else f"cluster, {replicas} replica{'s' * (replicas > 1)}"
                )
                opened = one_server(Path(folder)) if setup == "server" else a_cluster(Path(folder), replicas)
                with opened as target:
                    outcome = asyncio.run(classroom(target, students, args.witnesses, args.rounds, messages))
                print(report(name, students, outcome), flush=True)


if __name__ == "__main__":
    main()
