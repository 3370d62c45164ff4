"""A training worker: ``python -m digitdraw worker`` takes jobs from the queue one at a time and trains them.

Training runs here, in its own process, never in the web server: a job keeps
a core busy for seconds to minutes, and TensorFlow is a gigabyte of memory the
server has no use for. Run one worker per core you want to give to training,
on any machine that reaches the database and the shared models folder; each
claims the oldest queued job (``jobs.JobQueue.claim``) and writes its
progress back (the batch within the epoch at most every ``REPORT_SECONDS``,
every finished epoch with the curves so far) while a heartbeat thread says
it is alive. A job asked to stop ends after its current batch and is saved
with its best epoch so far; a worker stopped by SIGTERM or Ctrl-C marks its
job failed; one killed outright is noticed by whoever reads the queue next.

The worker prepares MNIST when it starts and keeps it in memory between
jobs, so a job starts training at once (a job on fewer images takes a
slice). A job that asks for the drawings users kept too (``kept_repeats``)
reads them when it starts, from the database the queue lives in, so that it
trains on every drawing kept until then; too few fail the job with the split's
own sentence. The command line runs it at a lower priority (``NICENESS``): on a
machine it shares with an app server, people drawing come first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from digitdraw.drawings import kept_drawings, store
from digitdraw.jobs import queue as jobs
from digitdraw.learning import kept_split
from digitdraw.learning.config import HIDDEN_UNITS, NetworkSettings
from digitdraw.learning.train import Dataset, Monitor, load_dataset
from digitdraw.serving import saved_models
from digitdraw.serving.networks import HIDDEN_ACTIVATIONS

REPORT_SECONDS = 0.5  # Progress within an epoch, and stop requests, are looked at this often.
# Training yields the CPU to the app's servers on the same machine: people drawing come first.
NICENESS = 10
# A worker trains on this many cores by default: run one worker per core you give to training.
THREADS = 1
POLL_SECONDS = 1.0  # An idle worker looks for a queued job this often.

DatasetLoader = Callable[[NetworkSettings], Dataset]


class _LastDataset:
    """All the training data of the last job, kept for the next: a job on fewer images takes a slice."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._dataset: Dataset | None = None

    def __call__(self, settings: NetworkSettings) -> Dataset:
        config = replace(settings.train_config(), train_limit=None)
        key = (config.validation_size, config.drawn_eval_size, config.seed)  # What the arrays depend on.
        if key != self._key:
            self._dataset, self._key = None, None  # Let the old arrays go before building the new ones.
            self._dataset, self._key = load_dataset(config), key
        return self._dataset.limited(settings.train_limit)


class _Reporter:
    """The job's side of training: progress into the queue, stop requests out of it, a heartbeat."""

    def __init__(self, queue: jobs.JobQueue, job: jobs.Job, worker: str) -> None:
        self.queue, self.job, self.worker = queue, job, worker
        self.stop_asked = False
        self._last_report = self._last_check = 0.0
        self._done = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name=f"heartbeat-{job.id}")

    def __enter__(self) -> _Reporter:
        self._beat.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._done.set()
        self._beat.join()

    def _heartbeat(self) -> None:
        while not self._done.wait(jobs.HEARTBEAT_SECONDS):
            with contextlib.suppress(store.StoreError):  # A missed beat is retried; many mean "gone".
                self.queue.heartbeat(self.job.id, self.worker)

    def _quietly(self, action: Callable[[], object]) -> None:
        # A database hiccup must not cost the training run: the next report carries the news.
        try:
            action()
        except store.StoreError as error:
            print(f"job {self.job.id}: {error}", file=sys.stderr, flush=True)

    def batch_done(self, epoch: int, batch: int, batches: int) -> None:
        now = time.monotonic()
        if now - self._last_report >= REPORT_SECONDS or batch == batches:
            self._last_report = now
            self._quietly(
                lambda: self.queue.report(
                    self.job.id, self.worker, epoch=epoch - 1, batch=batch, batches=batches
                )
            )

    def epoch_done(self, history: saved_models.History) -> None:
        epoch = history.epoch[-1]
        self._quietly(
            lambda: self.queue.report(
                self.job.id, self.worker, epoch=epoch, batch=0, batches=0, history=history
            )
        )
        print(
            f"job {self.job.id} {self.job.name}: epoch {epoch}/{self.job.epochs} "
            f"val {history.validation.accuracy[-1]:.2%} test {history.test.accuracy[-1]:.2%}",
            flush=True,
        )

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self.stop_asked and now - self._last_check >= REPORT_SECONDS:
            self._last_check = now
            with contextlib.suppress(store.StoreError):
                self.stop_asked = self.queue.stop_requested(self.job.id)
        return self.stop_asked


def run_job(
    queue: jobs.JobQueue, job: jobs.Job, worker: str, models_root: Path | None, load: DatasetLoader
) -> jobs.JobState:
    """Train one claimed job and record how it ended; returns its final state."""
    from digitdraw.learning.train import train_network

    settings = job.settings
    if saved_models.model_dir(settings.name, models_root).exists():
        message = f"A network named {settings.name!r} was saved meanwhile; start this one under another name."
        queue.finish(job.id, worker, jobs.JobState.FAILED, message)
        return jobs.JobState.FAILED
    with _Reporter(queue, job, worker) as reporter:
        try:
            dataset = load(settings)
            drawings = None
            if settings.kept_repeats is not None:
                kept = kept_drawings.from_store(queue.url)
                sizes = kept_split.part_sizes(kept.digests)
                if not sizes.enough:  # Said without the database's address: the page shows it to anyone.
                    raise ValueError(sizes.shortfall())
                drawings = kept_split.split(kept, settings.kept_repeats)
            monitor = Monitor(
                epoch_done=reporter.epoch_done,
                batch_done=reporter.batch_done,
                should_stop=reporter.should_stop,
            )
            # Never over a network saved under its name meanwhile (checked by the save itself).
            trained = train_network(settings, dataset, models_root, monitor, kept=drawings, overwrite=False)
        except KeyboardInterrupt:
            queue.finish(
                job.id,
                worker,
                jobs.JobState.FAILED,
                "The worker was stopped before the job finished; nothing was saved.",
            )
            raise
        except Exception as error:  # Whatever went wrong is this job's failure, not the worker's end.
            queue.finish(job.id, worker, jobs.JobState.FAILED, f"Training failed: {error}")
            return jobs.JobState.FAILED
    card, accuracy = trained.card, trained.metrics.accuracy
    kept = f"kept epoch {card.best_epoch} of {card.epochs_run}: test accuracy {accuracy['test']:.2%}"
    if trained.metrics.kept_drawings is not None:
        kept += f", {trained.metrics.kept_drawings.summary()}"
    if reporter.stop_asked:
        queue.finish(job.id, worker, jobs.JobState.STOPPED, f"Stopped on request; {kept}.")
        return jobs.JobState.STOPPED
    queue.finish(job.id, worker, jobs.JobState.DONE, f"Trained in {card.training_seconds:.0f} s; {kept}.")
    return jobs.JobState.DONE


def be_nice() -> None:
    """Lower this process's priority, so that training never slows the app beside it."""
    os.nice(NICENESS)


def _stop_on_sigterm() -> None:
    """SIGTERM (``make run`` ending, a service manager) stops the worker as Ctrl-C does."""

    def interrupt(_signal, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run(
    url: str | None = None,
    models_root: Path | None = None,
    once: bool = False,
    load: DatasetLoader | None = None,
    poll_seconds: float = POLL_SECONDS,
    stop_on_sigterm: bool = False,
    threads: int | None = None,
) -> int:
    """Take and train jobs until stopped (``once``: train at most one queued job, then return).

    ``stop_on_sigterm`` (the command line's choice) makes SIGTERM stop the worker as Ctrl-C does;
    ``threads`` caps the cores TensorFlow trains on (the command line's default: ``THREADS``).
    """
    queue = jobs.JobQueue(url)
    worker = jobs.this_worker()
    load = load or _LastDataset()
    if stop_on_sigterm:
        _stop_on_sigterm()
    # Import TensorFlow and prepare the data now, not when the first job arrives: that takes seconds.
    import tensorflow as tf

    if threads is not None:
        if threads < 1:
            raise ValueError(f"a worker trains on at least 1 thread, got {threads}")
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    try:
        load(NetworkSettings(name="warm-up", hidden=(HIDDEN_UNITS[0],), activation=HIDDEN_ACTIVATIONS[0]))
    except Exception as error:  # Each job will try again, and say why it failed where people look.
        print(f"worker {worker}: the training data could not be prepared yet ({error})", flush=True)
    print(f"worker {worker} takes jobs from {store.safe_url(queue.url)}", flush=True)
    try:
        while True:
            abandoned = queue.fail_abandoned()
            if abandoned:
                print(f"marked {abandoned} job(s) of stopped workers as failed", flush=True)
            job = queue.claim(worker)
            if job is not None:
                print(f"job {job.id} {job.name}: started", flush=True)
                state = run_job(queue, job, worker, models_root, load)
                print(f"job {job.id} {job.name}: {state}", flush=True)
            if once:
                return 0
            if job is None:
                time.sleep(poll_seconds)
    except KeyboardInterrupt:
        print(f"worker {worker} stopped", flush=True)
        return 130
    finally:
        queue.close()
