"""The training queue and its worker on SQLite and on a real PostgreSQL server: jobs are claimed once, in
order, by one worker each; progress and curves reach the database; Stop keeps the best epoch; a worker
killed with SIGKILL leaves no model, its job is reported failed, and the next job runs."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from queued import insert_queued
from sqlalchemy import update

from digitdraw.drawings import kept_drawings, store
from digitdraw.drawings.store import NewDrawing, Store
from digitdraw.jobs import queue as jobs
from digitdraw.jobs import worker
from digitdraw.jobs.queue import JobQueue, JobRow
from digitdraw.learning import evaluate, kept_split
from digitdraw.learning.config import NetworkSettings
from digitdraw.learning.train import load_dataset, prepare_images
from digitdraw.serving import saved_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def queue(database_url):
    opened = JobQueue(database_url)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def tiny_loader(small_splits, tmp_path_factory):
    """Datasets from 1,200 training and 300 validation images: a job trains in a second or two."""
    os.environ["DIGITDRAW_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        base = NetworkSettings(name="base", hidden=(8,), activation="relu").train_config()
        dataset = load_dataset(replace(base, validation_size=300, drawn_eval_size=40), small_splits)
    finally:
        del os.environ["DIGITDRAW_CACHE"]
    return lambda settings: dataset


def tiny(name: str = "my-net", **changes) -> NetworkSettings:
    fields = {"name": name, "hidden": (16,), "activation": "tanh", "epochs": 2, "batch_size": 64}
    return NetworkSettings(**{**fields, **changes})


def test_jobs_are_claimed_oldest_first_and_only_once(queue, tmp_path):
    ids = [queue.submit(tiny(f"net-{n}"), tmp_path) for n in range(3)]
    assert [job.state for job in queue.jobs()] == ["queued"] * 3
    first = queue.claim("host-a:1")
    assert first.id == ids[0] and first.state == "running" and first.worker == "host-a:1"
    assert first.settings == tiny("net-0")
    assert queue.claim("host-b:2").id == ids[1]
    assert queue.claim("host-a:1").id == ids[2]
    assert queue.claim("host-a:1") is None


def test_a_worker_is_seen_while_a_job_runs_and_for_a_while_after_it_starts_or_ends(queue, tmp_path):
    a_minute_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    queue.submit(tiny("net-0"), tmp_path)
    assert not queue.worker_seen_since(a_minute_ago)  # Queued only: no worker has shown itself.
    job = queue.claim("host-a:1")
    assert queue.worker_seen_since(a_minute_ago)  # Running.
    queue.finish(job.id, "host-a:1", jobs.JobState.DONE, "trained")
    assert queue.worker_seen_since(a_minute_ago)  # Finished a moment ago.
    with queue._engine.begin() as connection:
        long_ago = a_minute_ago - datetime.timedelta(hours=1)
        connection.execute(update(JobRow).values(started_at=long_ago, finished_at=long_ago))
    assert not queue.worker_seen_since(a_minute_ago)


def test_workers_claiming_at_once_each_get_a_different_job(queue, tmp_path):
    ids = {queue.submit(tiny(f"net-{n}"), tmp_path) for n in range(6)}
    claimed: list[int] = []
    lock = threading.Lock()

    def claim_all(worker_name: str) -> None:
        while (job := queue.claim(worker_name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claim_all, args=(f"host:{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids), "every job claimed exactly once"


def test_a_name_taken_by_a_model_or_an_active_job_is_refused(queue, tmp_path):
    queue.submit(tiny("busy"), tmp_path)
    with pytest.raises(ValueError, match="being trained already"):
        queue.submit(tiny("busy"), tmp_path)
    (tmp_path / "custom" / "saved").mkdir(parents=True)
    with pytest.raises(ValueError, match="exists already"):
        queue.submit(tiny("saved"), tmp_path)
    assert [job.name for job in queue.jobs()] == ["busy"]


def test_stop_cancels_a_queued_job_and_flags_a_running_one(queue, tmp_path):
    running = queue.submit(tiny("a"), tmp_path)
    waiting = queue.submit(tiny("b"), tmp_path)
    queue.claim("host:1")
    assert queue.request_stop(waiting) and queue.request_stop(running)
    assert queue.job(waiting).state == "stopped" and "before it started" in queue.job(waiting).message
    assert queue.job(running).state == "running" and queue.stop_requested(running)
    queue.finish(running, "host:1", "stopped", "Stopped on request.")
    assert not queue.request_stop(running), "a finished job cannot be stopped"


def test_only_the_job_s_own_worker_writes_to_it_and_only_while_it_runs(queue, tmp_path):
    job_id = queue.submit(tiny(), tmp_path)
    queue.claim("host:1")
    queue.report(job_id, "host:2", epoch=5, batch=1, batches=2)
    assert queue.job(job_id).epoch == 0, "another worker's report is ignored"
    queue.report(job_id, "host:1", epoch=1, batch=3, batches=10)
    assert (queue.job(job_id).epoch, queue.job(job_id).batch) == (1, 3)
    assert queue.job(job_id).fraction_done == pytest.approx((1 + 0.3) / 2)
    queue.finish(job_id, "host:1", "failed", "It broke.")
    queue.finish(job_id, "host:1", "done", "Too late.")
    assert queue.job(job_id).state == "failed" and queue.job(job_id).message == "It broke."


def test_jobs_of_workers_that_are_gone_are_marked_failed(queue, tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone_here = queue.submit(tiny("gone-here"), tmp_path)
    silent = queue.submit(tiny("silent"), tmp_path)
    alive = queue.submit(tiny("alive"), tmp_path)
    host = jobs.this_worker().rpartition(":")[0]
    queue.claim(f"{host}:{dead.stdout.strip()}")  # A process of this host that has exited.
    queue.claim("elsewhere:1")
    queue.claim(jobs.this_worker())
    # The other machine's worker has not been heard from for two minutes.
    with queue._engine.begin() as connection:
        long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
        connection.execute(update(JobRow).where(JobRow.id == silent).values(heartbeat_at=long_ago))
    states = {job.id: job for job in queue.jobs()}  # Listing the jobs notices the dead workers.
    assert states[gone_here].state == "failed" and "stopped before it finished" in states[gone_here].message
    assert states[silent].state == "failed"
    assert states[alive].state == "running"


def test_a_worker_trains_the_oldest_job_and_reports_every_epoch(queue, tmp_path, tiny_loader):
    root = tmp_path / "models"
    first = queue.submit(tiny("first"), root)
    second = queue.submit(tiny("second", hidden=(8, 8), activation="gelu", optimizer="sgd"), root)
    assert worker.run(queue.url, root, once=True, load=tiny_loader) == 0
    done = queue.job(first)
    assert done.state == "done" and "kept epoch" in done.message and done.fraction_done == 1.0
    assert done.history.epoch == [1, 2] and done.epoch == 2
    assert queue.job(second).state == "queued", "one job at a time"
    saved = saved_models.load("first", root)
    assert saved.history == done.history and saved.card.config["hidden"] == [16]
    assert worker.run(queue.url, root, once=True, load=tiny_loader) == 0
    assert queue.job(second).state == "done"
    assert saved_models.custom_names(root) == ["first", "second"]


def test_stop_ends_a_running_job_after_its_batch_and_keeps_the_best_epoch(queue, tmp_path, tiny_loader):
    root = tmp_path / "models"
    job_id = queue.submit(tiny(epochs=10), root)
    job = queue.claim("host:1")
    queue.request_stop(job_id)
    assert worker.run_job(queue, job, "host:1", root, tiny_loader) == "stopped"
    stopped = queue.job(job_id)
    assert stopped.state == "stopped" and "kept epoch 1 of 1" in stopped.message
    assert saved_models.load("my-net", root).card.epochs_run == 1


def test_a_job_that_fails_says_why_and_the_worker_goes_on(queue, tmp_path):
    root = tmp_path / "models"
    job_id = queue.submit(tiny(), root)

    def broken_loader(settings):
        raise OSError("the data disk is gone")

    assert worker.run(queue.url, root, once=True, load=broken_loader) == 0
    assert queue.job(job_id).state == "failed"
    assert queue.job(job_id).message == "Training failed: the data disk is gone"
    assert not (root / "custom").exists()


def test_a_job_queued_before_the_kept_drawings_option_loads_as_mnist_alone(queue):
    record = jobs.settings_record(tiny("old-net"))
    del record["kept_repeats"]  # As a job queued before the field was added holds it.
    insert_queued(queue, "old-net", record, epochs=2)
    (job,) = queue.jobs()
    assert job.settings == tiny("old-net") and job.settings.kept_repeats is None
    assert queue.claim("host:1").settings.kept_repeats is None


def _keep_mnist_drawings(url: str, mnist, count: int) -> list[str]:
    """Keep ``count`` MNIST training digits (none of them in ``tiny_loader``'s) through the app's
    preprocessing in the store at ``url``, as the Draw page would; their digests."""
    (x_train, y_train), _ = mnist
    images, labels = prepare_images(x_train[10_000 : 10_000 + count]), y_train[10_000 : 10_000 + count]
    kept = Store(url)
    try:
        kept.save_many(
            NewDrawing(label=int(label), model_input=image, probabilities={}, model_sha256={}, session_id="b")
            for image, label in zip(images, labels, strict=True)
        )
    finally:
        kept.close()
    return [store.input_digest(image) for image in images]


def test_a_job_asking_for_the_kept_drawings_trains_on_their_split_from_the_queue_s_database(
    queue, tmp_path, tiny_loader, mnist
):
    digests = _keep_mnist_drawings(queue.url, mnist, 60)
    job_id = queue.submit(tiny("kept-net", epochs=1, kept_repeats=3), tmp_path)
    job = queue.claim("host:1")
    assert job.settings.kept_repeats == 3, "the choice travels with the job"
    assert worker.run_job(queue, job, "host:1", tmp_path, tiny_loader) == "done"

    trained = saved_models.load("kept-net", tmp_path)
    record = trained.metrics.kept_drawings
    sizes = kept_split.part_sizes(digests)
    assert (record.kept, record.trained, record.held_out) == (60, sizes.training, sizes.held_out)
    assert record.repeats == 3 and record.source == store.safe_url(queue.url)
    assert record.accuracy_before is None, "a new name: no network before it"
    parts = kept_split.split(kept_drawings.from_store(queue.url), 3)
    held_out = evaluate.score(trained.network, parts.held_out.images, parts.held_out.labels)["accuracy"]
    assert record.accuracy == pytest.approx(held_out)
    assert trained.card.config["kept_repeats"] == 3
    finished = queue.job(job_id)
    assert f"held-out kept drawings {record.accuracy:.2%} of {sizes.held_out}" in finished.message


def test_a_job_asking_for_the_kept_drawings_fails_in_one_sentence_when_there_are_too_few(
    queue, tmp_path, tiny_loader, mnist
):
    digests = _keep_mnist_drawings(queue.url, mnist, 12)
    job_id = queue.submit(tiny("kept-net", kept_repeats=3), tmp_path)
    assert worker.run_job(queue, queue.claim("host:1"), "host:1", tmp_path, tiny_loader) == "failed"
    message = queue.job(job_id).message
    assert message == f"Training failed: {kept_split.part_sizes(digests).shortfall()}"
    assert (
        message.startswith("Training failed: 12 drawings are kept")
        and "each part needs at least 10" in message
    )
    assert "://" not in message, "the database's address is not for the page"
    assert not (tmp_path / "custom").exists(), "nothing trained, nothing saved"


def test_a_worker_killed_mid_epoch_leaves_no_model_its_job_fails_and_the_next_job_runs(tmp_path, tiny_loader):
    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    root = tmp_path / "models"
    queue = JobQueue(url)
    killed = queue.submit(tiny("killed", epochs=30, batch_size=16, train_limit=500), root)
    process = subprocess.Popen(
        [sys.executable, "-m", "digitdraw", "worker", "--database", url, "--models", str(root)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        deadline = time.monotonic() + 300
        while (job := queue.job(killed)).epoch < 1 or job.batch < 1:  # Into its second epoch.
            assert job.state in jobs.ACTIVE_STATES and process.poll() is None, job.message
            assert time.monotonic() < deadline, "the worker never got into its second epoch"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)

    assert not (root / "custom" / "killed").exists(), "no model, not even half of one"
    assert not (root / "custom").exists() or not any((root / "custom").iterdir()), "nor a staging folder"
    (failed,) = [job for job in queue.jobs() if job.id == killed]
    assert failed.state == "failed" and "stopped before it finished" in failed.message

    following = queue.submit(tiny("following", epochs=1), root)
    assert worker.run(url, root, once=True, load=tiny_loader) == 0
    assert queue.job(following).state == "done"
    assert saved_models.custom_names(root) == ["following"]
    queue.close()


def test_servers_and_workers_opening_a_new_database_at_once_all_succeed(database_url):
    from digitdraw.drawings.store import Store

    opened, failures = [], []

    def open_one(index: int) -> None:
        try:
            opened.append((Store if index % 2 else JobQueue)(database_url))
        except Exception as error:  # Any failure to open is what this test looks for.
            failures.append(error)

    threads = [threading.Thread(target=open_one, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(opened) == 6
    for each in opened:
        each.close()


def test_processes_opening_a_new_database_at_once_all_succeed(database_url):
    script = (
        "import sys, time; from digitdraw.jobs.queue import JobQueue;"
        "from digitdraw.drawings.store import Store;"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()));"  # All start upgrading at the same moment.
        "(JobQueue if sys.argv[3] == 'queue' else Store)(sys.argv[1]).close()"
    )
    start = str(time.time() + 8)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url, start, kind], cwd=ROOT, stderr=subprocess.PIPE
        )
        for kind in ("queue", "store", "queue", "store")
    ]
    errors = [process.communicate(timeout=120)[1].decode() for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, errors


def test_a_killed_worker_not_yet_reaped_by_its_parent_counts_as_gone():
    # A supervisor (or the cluster's starter) may leave a killed child unreaped for a while: a zombie,
    # which signals still find, but which will never write a heartbeat again.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert saved_models.process_alive(child.pid)
        child.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while saved_models.process_alive(child.pid):
            assert time.monotonic() < deadline, "a killed, unreaped child still counts as running"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    assert saved_models.process_alive(os.getpid())
