"""A classroom drawing at once: N students on the Draw page, with human pauses, on one app server and on
the cluster (two replicas behind HAProxy, PostgreSQL), measured in the same run.

Run from the repository root with ``.venv/bin/python -m benchmarks.classroom`` (Debian's Chromium,
PostgreSQL and HAProxy installed: ``make system``). For each setup and each number of students it
opens the sessions, and every student then, ``--rounds`` times: waits 1-3 s, draws a digit (one or two
strokes) with the mouse, waits for the answer, keeps the drawing one round in three ("Right, it is
a ..."), waits 1-3 s and presses Clear. It reports:

* pen-up -> answer: from the last mouse release until the answer is on screen, median and p95, and
  the part after the page sent the drawing (the canvas component waits 200 ms before sending);
* server CPU per round: the app servers' CPU (every replica, all threads, from /proc) over the rounds,
  less what the open sessions cost while nobody draws (measured for ``IDLE_SECONDS`` before the
  rounds, per second), divided by the rounds: one drawing's strokes, its answer, one keep in
  three, and Clear;
* answers lost (a drawing with no answer within 20 s, or the wrong digit shown), drawings kept by the
  page against the rows in the database.

All the students are contexts of one Chromium (a session each, its own cookies), not many browsers:
on two cores a browser per student would measure the browsers. The browser shares the cores with
the servers, so the figures are an upper bound of what phones on a network would see; compare the
setups with each other, in the same run.

Setups: ``server`` is one ``streamlit run`` with its drawings in SQLite, as ``make run`` serves;
``cluster`` is ``make cluster``'s topology without workers, with ``--replicas`` replicas.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    Drawing,
    clear,
    database_url_beside,
    draw_and_time,
    open_draw_page,
    streamlit_server,
)

from digitdraw.deploy import cluster as deploy
from digitdraw.deploy.postgres import free_port
from digitdraw.drawings import store

PAUSE_SECONDS = (1.0, 3.0)
KEEP_EVERY = 3  # A student keeps one drawing in three.
IDLE_SECONDS = 5.0


@dataclass(frozen=True)
class Target:
    """Where the students go: the address, the app servers' process ids and the drawings' database."""

    url: str
    pids: list[int]
    database_url: str


@dataclass
class Outcome:
    """What one setup with one number of students measured."""

    drawings: list[Drawing] = field(default_factory=list)
    kept_on_page: int = 0
    server_cpu_seconds: float = 0.0  # Over the rounds, less the open sessions' idle cost.
    idle_cpu_per_second: float = 0.0
    stored: int = 0


def cpu_seconds(pids: list[int]) -> float:
    """CPU time the processes have used, user and system, from /proc."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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


async def student(page, index: int, rounds: int, chance: random.Random, outcome: Outcome) -> None:
    """One student's rounds: pause, draw, read the answer, sometimes keep it, pause, Clear."""
    for round_number in range(rounds):
        await asyncio.sleep(chance.uniform(*PAUSE_SECONDS))
        digit = (index + 3 * round_number) % 10
        drawing = await draw_and_time(page, digit)
        outcome.drawings.append(drawing)
        if drawing.shown == str(digit) and (index + round_number) % KEEP_EVERY == 0:
            await page.get_by_role("button", name=f"Right, it is a {digit}").click(timeout=30_000)
            await page.get_by_text(f"Kept as a {digit}").wait_for(timeout=30_000)
            outcome.kept_on_page += 1
        await asyncio.sleep(chance.uniform(*PAUSE_SECONDS))
        await clear(page)


async def classroom(target: Target, students: int, rounds: int) -> Outcome:
    """Open ``students`` sessions, then let them all work their rounds at once."""
    from playwright.async_api import async_playwright

    outcome = Outcome()
    chance = random.Random(students)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            opened = await asyncio.gather(*(open_draw_page(browser, target.url) for _ in range(students)))
            # Each app server's first drawing loads the models: a cost paid once a server, not a stroke.
            for _ in target.pids:  # Round robin gives each replica one of these.
                context, page = await open_draw_page(browser, target.url)
                await draw_and_time(page, 1)
                await context.close()
            await asyncio.sleep(2.0)  # The last pages' first runs finish.
            idle_start = cpu_seconds(target.pids)
            await asyncio.sleep(IDLE_SECONDS)
            before = cpu_seconds(target.pids)
            outcome.idle_cpu_per_second = (before - idle_start) / IDLE_SECONDS
            started = time.monotonic()
            seeds = [chance.random() for _ in opened]
            await asyncio.gather(
                *(
                    student(page, index, rounds, random.Random(seed), outcome)
                    for index, ((_, page), seed) in enumerate(zip(opened, seeds, strict=True))
                )
            )
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
    answered = [d for d in outcome.drawings if d.total is not None]
    lost = len(outcome.drawings) - len(answered)
    totals = np.array([d.total for d in answered]) * 1e3
    after_send = np.array([d.sent_to_shown for d in answered]) * 1e3
    per_round = outcome.server_cpu_seconds / max(len(outcome.drawings), 1) * 1e3

    def median_p95(values: np.ndarray) -> str:
        if not len(values):
            return "-"
        return f"{statistics.median(values):.0f} / {np.percentile(values, 95):.0f}"

    return (
        f"| {setup} | {students} | {len(outcome.drawings)} | {median_p95(totals)} | {median_p95(after_send)} "
        f"| {per_round:.0f} | {outcome.idle_cpu_per_second * 1e3:.0f} | {lost} "
        f"| {outcome.kept_on_page} / {outcome.stored} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--setups", nargs="+", default=["server", "cluster"], choices=["server", "cluster"])
    parser.add_argument("--replicas", type=int, default=2, help="the cluster's app replicas")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.rounds} rounds per student")
    print(
        "| setup | students | drawings | pen-up -> answer, ms (median / p95) | after the send, ms "
        "| server CPU per round, ms | idle server CPU, ms/s | answers lost | kept on the page / rows stored |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for students in args.students:
        for setup in args.setups:
            with tempfile.TemporaryDirectory(prefix="digitdraw-classroom-") as folder:
                name = "one server" if setup == "server" else f"cluster, {args.replicas} replicas"
                opened = (
                    one_server(Path(folder)) if setup == "server" else a_cluster(Path(folder), args.replicas)
                )
                with opened as target:
                    outcome = asyncio.run(classroom(target, students, args.rounds))
                print(report(name, students, outcome), flush=True)


if __name__ == "__main__":
    main()
