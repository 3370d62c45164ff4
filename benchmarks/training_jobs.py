"""Training beside the app: how soon a queued network shows its first epoch, and what a running job costs
the people drawing.

Run from the repository root with ``.venv/bin/python -m benchmarks.training_jobs`` (Debian's Chromium
at /usr/bin/chromium). It starts the app and one worker (``python -m digitdraw worker``) on a
temporary database and a copy of ``saved_models/``, then:

* queues a 784-64-64-10 ReLU network on all 50,000 training images, ``--jobs`` times one after the
  other, and times each from submission to its first batch and to its first epoch's row in the
  database (the Train page polls every 2 s, so the page shows it up to 2 s later). The worker
  prepares MNIST (from the disk cache) when it starts, before it takes jobs; that is timed too.
* has one browser session draw ``--rounds`` digits with no job running, then again while a job
  trains, and reports the server's own time for each script run a stroke caused (as
  ``benchmarks.browser_roundtrip`` does, from ``tests/e2e/timed_server.py``'s log).

Both measurements share the machine with the worker, as a real deployment on one machine would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from harness import database_url_beside, draw_in_sessions, streamlit_server, training_worker

from digitdraw.jobs.queue import JobQueue
from digitdraw.learning.config import NetworkSettings
from digitdraw.serving.networks import SAVED_MODELS_ENV_VAR, saved_models_dir


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} {np.percentile(values, 95):8.1f}"


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def first_epoch_seconds(queue: JobQueue, models: Path, index: int) -> tuple[float, float]:
    """Queue one 784-64-64-10 network on the full data; seconds until its first batch and its first epoch."""
    settings = NetworkSettings(name=f"first-epoch-{index}", hidden=(64, 64), activation="relu", epochs=2)
    started = time.monotonic()
    job_id = queue.submit(settings, models)
    _wait(lambda: queue.job(job_id).batch > 0 or queue.job(job_id).epoch > 0, 300, "the first batch")
    first_batch = time.monotonic() - started
    _wait(lambda: queue.job(job_id).history is not None, 300, "the first epoch")
    first_epoch = time.monotonic() - started
    queue.request_stop(job_id)
    _wait(lambda: not queue.job(job_id).active, 300, "the job to stop")
    return first_batch, first_epoch


def stroke_runs(server, rounds: int) -> list[float]:
    """Server wall time (ms) of every script run the strokes of one drawing session caused."""
    run = asyncio.run(draw_in_sessions(server, 1, rounds))
    wrong = [(d.digit, d.shown) for d in run.drawings if d.shown != str(d.digit)]
    if wrong:
        raise SystemExit(f"the session was shown the wrong digit (drawn, shown): {wrong}")
    return [r["wall_ms"] for r in run.stroke_runs]


def main() -> None:
    """Print the first-epoch latency and the draw page's server time per stroke with and without a job."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3, help="networks queued one after the other (default 3)")
    parser.add_argument("--rounds", type=int, default=12, help="digits drawn per condition (default 12)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores")
    with tempfile.TemporaryDirectory() as folder:
        models = Path(folder) / "saved_models"
        shutil.copytree(saved_models_dir(), models)
        log_path = Path(folder) / "streamlit.log"
        url = database_url_beside(log_path)
        worker_log = Path(folder) / "worker.log"
        with (
            streamlit_server(log_path, {SAVED_MODELS_ENV_VAR: str(models)}) as server,
            training_worker(worker_log, url, models),
        ):
            queue = JobQueue(url)
            started = time.monotonic()
            _wait(lambda: "takes jobs" in worker_log.read_text(), 300, "the worker to start")
            print(
                f"worker ready (TensorFlow imported, MNIST prepared) after {time.monotonic() - started:.1f} s"
            )
            print("\n784-64-64-10 ReLU, 50,000 images: seconds from Start to")
            print(f"{'job':>4} {'first batch':>12} {'first epoch':>12}")
            for index in range(args.jobs):
                batch, epoch = first_epoch_seconds(queue, models, index)
                print(f"{index + 1:>4} {batch:>12.1f} {epoch:>12.1f}", flush=True)

            idle = stroke_runs(server, args.rounds)
            busy_job = queue.submit(
                NetworkSettings(name="busy", hidden=(64, 64), activation="relu", epochs=30), models
            )
            _wait(lambda: queue.job(busy_job).batch > 0, 300, "the job to train")
            busy = stroke_runs(server, args.rounds)
            still_running = queue.job(busy_job).active
            queue.request_stop(busy_job)
            print("\nDraw page, server time per stroke (ms)      median      p95   runs")
            print(f"no job running                           {_summary(idle)} {len(idle):>6}")
            print(f"a job training (784-64-64-10, full data) {_summary(busy)} {len(busy):>6}")
            print(f"growth of the median: {statistics.median(busy) / statistics.median(idle) - 1:+.0%}")
            if not still_running:
                print("warning: the job finished before the drawing did")


if __name__ == "__main__":
    main()
