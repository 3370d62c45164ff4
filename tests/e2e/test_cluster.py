"""The cluster end to end (issue 26): PostgreSQL, two app replicas behind HAProxy and two training workers,
started by ``digitdraw.deploy.cluster`` as ``make cluster`` starts them, on free local ports, and used
through the proxy by Chromium.

The tests run in order on one cluster: ten sessions keep drawings spread over both replicas; two jobs
queued from sessions on the two replicas run once each, on the two workers, and each network appears on
the other replica's page; a worker killed mid-job fails its job and the next job runs; a replica killed
mid-session hands its sessions to the other, and every kept drawing is in the database exactly once.
The group is the cluster's own, so that it runs beside the other browser tests' server.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
from harness import LAPTOP, STROKES, design_tiny_network, draw
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from digitdraw.deploy import cluster as deploy
from digitdraw.deploy.network import free_port
from digitdraw.deploy.postgres import PostgresUnavailable
from digitdraw.deploy.proxy import REPLICA_COOKIE
from digitdraw.jobs.queue import JobQueue, JobState
from digitdraw.learning.config import NetworkSettings
from digitdraw.serving import saved_models
from digitdraw.serving.networks import saved_models_dir
from digitdraw.ui.app import article

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cluster")]
SESSIONS = 10


@pytest.fixture(scope="module")
def running(tmp_path_factory, chromium_path):
    """A cluster of two replicas and two workers, its models a copy of the committed ones; skipped with
    the reason where PostgreSQL or HAProxy is missing or will not start, except in CI, which must run it."""
    folder = tmp_path_factory.mktemp("cluster")
    models = folder / "saved_models"
    shutil.copytree(saved_models_dir(), models, ignore=shutil.ignore_patterns("custom"))
    # Not under pytest's tmp_path: its folders are private to root, and PostgreSQL runs as 'postgres'.
    database_folder = Path(tempfile.mkdtemp(prefix="digitdraw-cluster-postgres-"))
    settings = deploy.ClusterSettings(
        folder=folder, port=free_port(), models=models, postgres_folder=database_folder
    )
    try:
        try:
            started = deploy.start(settings)
        except (FileNotFoundError, PostgresUnavailable) as missing:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI must test the cluster: {missing}")
            pytest.skip(str(missing))
        yield started
    finally:
        deploy.stop(folder)
        shutil.rmtree(database_folder, ignore_errors=True)


@pytest.fixture(scope="module")
def sessions(browser, running):
    """Browser sessions on the cluster, kept open from one test to the next: (context, page) pairs."""
    opened: list = []
    yield opened
    for context, _ in opened:
        context.close()


def replica_of(context) -> str:
    """The replica HAProxy pinned this browser to, by the cookie it set."""
    (name,) = [cookie["value"] for cookie in context.cookies() if cookie["name"] == REPLICA_COOKIE]
    return name


def open_session(browser, url: str, path: str = ""):
    """A new browser (context) opening a page of the cluster; it loads while the next one opens."""
    context = browser.new_context(**LAPTOP)
    page = context.new_page()
    page.goto(f"{url}/{path}", timeout=120_000, wait_until="commit")
    return context, page


def keep(page, digit: int) -> None:
    """Draw a digit, confirm the answer, and wait until the page says it is kept."""
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=60_000)
    draw(page, STROKES[digit])
    page.get_by_role("button", name=f"Right, it is {article(digit)} {digit}").click(timeout=30_000)
    expect(page.get_by_text(f"Kept as {article(digit)} {digit}")).to_be_visible(timeout=30_000)


def clear(page, tries: int = 4) -> None:
    """Press Clear until the canvas is empty: a click made while the page is still reconnecting to its new
    replica goes nowhere, and a person would tap again."""
    for attempt in range(tries):
        page.get_by_role("button", name="Clear the canvas").click(timeout=60_000)
        try:
            expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=15_000)
            return
        except AssertionError:
            if attempt == tries - 1:
                raise


def kept_rows(database_url: str) -> list[tuple]:
    """Every kept drawing's (id, label, browser id, input digest)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT id, label, session_id, input_sha256 FROM drawings")))
    finally:
        engine.dispose()


def wait_for_jobs(queue: JobQueue, ids: list[int], states: tuple, seconds: float = 300) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        jobs = {job.id: job for job in queue.jobs() if job.id in ids}
        if len(jobs) == len(ids) and all(job.state in states for job in jobs.values()):
            return jobs
        time.sleep(0.5)
    pytest.fail(f"jobs {ids} did not reach {states}: {[(j.name, j.state, j.message) for j in jobs.values()]}")


def test_ten_sessions_keep_drawings_spread_over_both_replicas(browser, running, sessions):
    for _ in range(SESSIONS):
        sessions.append(open_session(browser, running.url))
    for index, (_, page) in enumerate(sessions):
        keep(page, index % 10)
    replicas = [replica_of(context) for context, _ in sessions]
    assert sorted(set(replicas)) == ["app1", "app2"], replicas
    rows = kept_rows(running.database_url)
    assert sorted(label for _, label, _, _ in rows) == list(range(SESSIONS))
    assert len({browser_id for _, _, browser_id, _ in rows}) == SESSIONS, "one browser, one drawing"


def test_jobs_queued_on_both_replicas_run_once_each_on_both_workers_and_show_on_both(browser, running):
    queue = JobQueue(running.database_url)
    pages = {}
    while len(pages) < 2:  # New browsers are shared round robin: one lands on each replica soon.
        context, page = open_session(browser, running.url, "train")
        name = replica_of(context)
        if name in pages:
            context.close()
        else:
            pages[name] = (context, page)
    for name, (_, page) in pages.items():
        design_tiny_network(page, f"net-{name}")
    # Both queued at once, so that each worker has one to take.
    for _, page in pages.values():
        page.get_by_role("button", name="Start training").click()
    for name, (_, page) in pages.items():
        expect(page.get_by_text(f"net-{name} · 784-16-10 · tanh")).to_be_visible(timeout=30_000)
    ids = [job.id for job in queue.jobs()]
    jobs = wait_for_jobs(queue, ids, (JobState.DONE, JobState.FAILED))
    assert [job.state for job in jobs.values()] == [JobState.DONE, JobState.DONE], [
        j.message for j in jobs.values()
    ]
    workers = {job.worker for job in jobs.values()}
    assert len(workers) == 2, f"both workers trained: {workers}"
    assert saved_models.custom_names(Path(running.models)) == ["net-app1", "net-app2"]
    # Each network shows in the model picker of the replica that did not queue it.
    for name, (context, page) in pages.items():
        other = "net-app2" if name == "app1" else "net-app1"
        page.goto(running.url)
        page.get_by_test_id("stSelectbox").first.click(timeout=60_000)
        expect(page.get_by_role("option", name=f"{other} · 784-16-10 · tanh")).to_be_visible(timeout=30_000)
        page.keyboard.press("Escape")
        assert replica_of(context) == name
        context.close()
    queue.close()


def test_a_worker_killed_mid_job_fails_its_job_with_a_reason_and_the_next_job_runs(running):
    queue = JobQueue(running.database_url)
    models = Path(running.models)
    long_one = NetworkSettings(
        name="killed", hidden=(16,), activation="tanh", epochs=30, batch_size=16, train_limit=1000
    )
    killed = queue.submit(long_one, models)
    deadline = time.monotonic() + 180
    while (job := queue.job(killed)).epoch < 1:  # Mid-job: past its first epoch.
        assert job.state in (JobState.QUEUED, JobState.RUNNING), job.message
        assert time.monotonic() < deadline, "no worker got through an epoch of the job"
        time.sleep(0.1)
    pid = int(job.worker.rsplit(":", 1)[1])
    assert pid in [process.pid for process in running.of_role(deploy.Role.WORKER)]
    os.kill(pid, signal.SIGKILL)
    following = queue.submit(
        NetworkSettings(name="following", hidden=(16,), activation="tanh", epochs=1, train_limit=1000), models
    )
    jobs = wait_for_jobs(queue, [killed, following], (JobState.DONE, JobState.FAILED))
    assert jobs[killed].state == JobState.FAILED and "stopped before it finished" in jobs[killed].message
    assert jobs[following].state == JobState.DONE, jobs[following].message
    assert "killed" not in saved_models.custom_names(models), "no model, not even half of one"
    assert not (models / "custom" / "killed").exists()
    queue.close()


def test_a_replica_killed_mid_session_hands_its_sessions_over_and_loses_no_kept_drawing(running, sessions):
    before = kept_rows(running.database_url)
    victim = next(process for process in running.of_role(deploy.Role.REPLICA) if process.name == "app1")
    orphaned = [(context, page) for context, page in sessions if replica_of(context) == "app1"]
    survivors = [(context, page) for context, page in sessions if replica_of(context) == "app2"]
    assert orphaned and survivors
    os.killpg(victim.pid, signal.SIGKILL)
    # The orphaned sessions reconnect through the proxy to app2, as new Streamlit sessions: HAProxy's cookie
    # then names app2. Their canvas still holds the drawing they kept, which the page says is kept
    # (offering to keep it again would store it twice); Clear empties it, and they go on keeping drawings.
    for index, (context, page) in enumerate(orphaned[:2] + survivors[:1]):
        if index < 2:
            deadline = time.monotonic() + 60
            while replica_of(context) != "app2":
                assert time.monotonic() < deadline, "the page never reconnected through the proxy"
                page.wait_for_timeout(200)
            expect(page.get_by_text("Kept as a")).to_be_visible(timeout=60_000)
        clear(page)
        keep(page, (index + 3) % 10)
        assert replica_of(context) == "app2"
    rows = kept_rows(running.database_url)
    assert len(rows) == len(before) + 3
    assert len({row[0] for row in rows}) == len(rows), "every kept drawing once"
    assert set(before) <= set(rows), "nothing kept before is lost"
