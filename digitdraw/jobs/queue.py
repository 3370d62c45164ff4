"""The training queue: networks people design wait here for a worker, which reports its progress here.

The queue is a table (``training_jobs``) in the same database as the drawings
store, SQLite by default and PostgreSQL through ``DIGITDRAW_DATABASE_URL``,
so any number of app servers and workers, on any machines, share one queue.
The web server only submits jobs, reads them and asks them to stop; it never
trains (and never imports TensorFlow). A worker (``digitdraw.jobs.worker``)
claims the oldest queued job, trains it and writes its progress: the batch
within the epoch, and after every epoch the curves so far.

Claiming is atomic on both databases: on PostgreSQL the oldest queued row
is selected ``FOR UPDATE SKIP LOCKED``, so workers never wait for each other
and never take the same job; on SQLite (which ignores that clause and locks
the whole file instead) the claim is a conditional ``UPDATE ... WHERE
state = 'queued'`` whose row count says whether this worker won the job.

A worker that dies (SIGKILL, a lost machine) cannot say so. Each running job
carries its worker's host and process id and a heartbeat; a job whose worker
is gone from this host, or whose heartbeat is older than ``STALE_AFTER``, is
marked failed with a sentence saying so by whoever looks next (a worker
polling, a page listing the jobs). Since a model is saved atomically, such a
job leaves no half-written model behind.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from digitdraw.drawings import store
from digitdraw.learning.config import NetworkSettings
from digitdraw.serving import saved_models
from digitdraw.serving.saved_models import History


class JobState(enum.StrEnum):
    """Where a job stands; stored in the database as its value."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
FINISHED_STATES = (JobState.DONE, JobState.FAILED, JobState.STOPPED)
HEARTBEAT_SECONDS = 5.0
# A heartbeat this old means the worker is gone: many heartbeats missed, not a slow epoch.
STALE_AFTER = datetime.timedelta(seconds=60)


class JobRow(store.Base):
    """One training job: what to train, where it stands, and who is training it."""

    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    settings: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)  # host:pid
    epoch: Mapped[int] = mapped_column(Integer, default=0)  # Epochs finished.
    epochs: Mapped[int] = mapped_column(Integer)
    batch: Mapped[int] = mapped_column(Integer, default=0)  # Batches finished in the epoch under way.
    batches: Mapped[int] = mapped_column(Integer, default=0)
    history: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # ``saved_models.History`` so far.
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class Job:
    """A training job as read from the queue."""

    id: int
    name: str
    settings: NetworkSettings | None  # None when the stored settings cannot be read or trained.
    state: JobState
    stop_requested: bool
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    worker: str | None
    epoch: int
    epochs: int
    batch: int
    batches: int
    history: History | None
    message: str | None

    @property
    def active(self) -> bool:
        """Queued or running: not finished one way or another."""
        return self.state in ACTIVE_STATES

    @property
    def fraction_done(self) -> float:
        """How far the job is, 0 to 1, counting the batches of the epoch under way."""
        if self.state == JobState.DONE:
            return 1.0
        within = self.batch / self.batches if self.batches else 0.0
        return min(1.0, (self.epoch + within) / self.epochs) if self.epochs > 0 else 0.0


def this_worker() -> str:
    """This process's name in the queue: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _as_utc(moment: datetime.datetime) -> datetime.datetime:
    # SQLite hands back naive datetimes; everything here is written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _worker_gone(worker: str | None, heartbeat: datetime.datetime | None, now: datetime.datetime) -> bool:
    """True when a running job's worker has surely stopped: its process is gone from this host, or its
    heartbeat is stale."""
    if heartbeat is None or now - _as_utc(heartbeat) > STALE_AFTER:
        return True
    host, _, pid = (worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return not saved_models.process_alive(int(pid))
    return False


def _job(row: JobRow) -> Job:
    try:
        settings, unreadable = settings_from_record(row.settings), None
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        # A row written by another version, or by hand: shown and failed with the reason, never trained.
        settings, unreadable = None, f"Its settings cannot be trained: {error}"
    try:
        history = History.model_validate(row.history) if row.history else None
    except ValueError:
        history = None  # Curves that cannot be read are not drawn; the job itself is still listed.
    return Job(
        id=row.id,
        name=row.name,
        settings=settings,
        state=JobState(row.state),
        stop_requested=row.stop_requested,
        created_at=_as_utc(row.created_at),
        started_at=row.started_at and _as_utc(row.started_at),
        finished_at=row.finished_at and _as_utc(row.finished_at),
        worker=row.worker,
        epoch=row.epoch,
        epochs=row.epochs,
        batch=row.batch,
        batches=row.batches,
        history=history,
        message=row.message or unreadable,
    )


def settings_record(settings: NetworkSettings) -> dict[str, Any]:
    """Settings as the JSON the queue keeps."""
    return {**dataclasses.asdict(settings), "hidden": list(settings.hidden)}


def settings_from_record(record: Mapping[str, Any]) -> NetworkSettings:
    """Settings back from the queue's JSON, checked again; a field the record predates takes its default."""
    return NetworkSettings(**{**record, "hidden": tuple(record["hidden"])})


class JobQueue:
    """The training jobs of one database; every method is one transaction."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or store.database_url()
        self._engine = store.create_store_engine(self.url)
        with self._failures("open"):
            store.upgrade(self._engine)

    def _failures(self, action: str):
        return store.failures(self.url, f"{action} the", "training queue")

    def submit(self, settings: NetworkSettings, models_root: Path | None = None) -> int:
        """Queue a network for training; ValueError when its name is taken by a model or an active job."""
        if saved_models.model_dir(settings.name, models_root).exists():
            raise ValueError(f"a network named {settings.name!r} exists already: choose another name")
        with self._failures("add to"), Session(self._engine) as session, session.begin():
            taken = session.scalar(
                select(JobRow.id).where(JobRow.name == settings.name, JobRow.state.in_(ACTIVE_STATES))
            )
            if taken is not None:
                raise ValueError(
                    f"a network named {settings.name!r} is being trained already: choose another"
                )
            row = JobRow(
                name=settings.name,
                settings=settings_record(settings),
                state=JobState.QUEUED,
                stop_requested=False,
                created_at=_now(),
                epoch=0,
                epochs=settings.epochs,
                batch=0,
                batches=0,
            )
            session.add(row)
            session.flush()
            return row.id

    def jobs(self, limit: int = 50) -> list[Job]:
        """The newest jobs first; jobs whose worker is gone are marked failed first."""
        self.fail_abandoned()
        with self._failures("read"), Session(self._engine) as session:
            rows = session.scalars(select(JobRow).order_by(JobRow.id.desc()).limit(limit))
            return [_job(row) for row in rows]

    def worker_seen_since(self, moment: datetime.datetime) -> bool:
        """Whether a worker has shown it is alive since ``moment``: a job is running, or one started or
        finished since. Workers are listed nowhere while idle, so this is all there is to tell by."""
        with self._failures("read"), Session(self._engine) as session:
            seen = select(JobRow.id).where(
                (JobRow.state == JobState.RUNNING)
                | (JobRow.started_at > moment)
                | (JobRow.finished_at > moment)
            )
            return session.scalars(seen.limit(1)).first() is not None

    def job(self, job_id: int) -> Job | None:
        """One job, or None if there is no such job."""
        with self._failures("read"), Session(self._engine) as session:
            row = session.get(JobRow, job_id)
            return None if row is None else _job(row)

    def request_stop(self, job_id: int) -> bool:
        """Stop a job: a queued one at once, a running one after its current batch (its worker saves the best
        epoch so far). False when the job is finished already."""
        with self._failures("write to"), Session(self._engine) as session, session.begin():
            cancelled = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == JobState.QUEUED)
                .values(state=JobState.STOPPED, finished_at=_now(), message="Stopped before it started.")
            ).rowcount
            asked = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == JobState.RUNNING)
                .values(stop_requested=True)
            ).rowcount
            return bool(cancelled or asked)

    def stop_requested(self, job_id: int) -> bool:
        """Whether someone asked this job to stop."""
        with self._failures("read"), Session(self._engine) as session:
            return bool(session.scalar(select(JobRow.stop_requested).where(JobRow.id == job_id)))

    def claim(self, worker: str | None = None) -> Job | None:
        """Take the oldest queued job for this worker, atomically; None when nothing is queued."""
        worker = worker or this_worker()
        with self._failures("claim from"), Session(self._engine) as session, session.begin():
            while True:
                job_id = session.scalar(
                    select(JobRow.id)
                    .where(JobRow.state == JobState.QUEUED)
                    .order_by(JobRow.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if job_id is None:
                    return None
                now = _now()
                won = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.state == JobState.QUEUED)
                    .values(state=JobState.RUNNING, worker=worker, started_at=now, heartbeat_at=now)
                ).rowcount
                if not won:
                    continue
                job = _job(session.get(JobRow, job_id))
                if job.settings is not None:
                    return job
                # Checked again as it is claimed: a job that cannot run fails with its reason, and the
                # worker takes the next one instead of stopping at it.
                session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id)
                    .values(state=JobState.FAILED, finished_at=now, message=job.message)
                )

    def heartbeat(self, job_id: int, worker: str) -> None:
        """Say that this job's worker is alive."""
        self._update(job_id, worker, heartbeat_at=_now())

    def report(
        self,
        job_id: int,
        worker: str,
        *,
        epoch: int,
        batch: int,
        batches: int,
        history: History | None = None,
    ) -> None:
        """Record a running job's progress: the epochs done, the batch within the next, the curves so far."""
        values: dict[str, Any] = {"epoch": epoch, "batch": batch, "batches": batches, "heartbeat_at": _now()}
        if history is not None:
            values["history"] = history.model_dump(mode="json")
        self._update(job_id, worker, **values)

    def finish(self, job_id: int, worker: str, state: JobState, message: str) -> None:
        """End a job: done, stopped (its best epoch saved) or failed, with a sentence saying how."""
        if state not in FINISHED_STATES:
            raise ValueError(f"a job finishes done, failed or stopped, not {state!r}")
        self._update(job_id, worker, state=state, message=message, finished_at=_now())

    def _update(self, job_id: int, worker: str, **values: Any) -> None:
        # Only the job's own worker, and only while it runs: a job marked failed stays failed.
        with self._failures("write to"), Session(self._engine) as session, session.begin():
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.worker == worker, JobRow.state == JobState.RUNNING)
                .values(**values)
            )

    def fail_abandoned(self) -> int:
        """Mark failed every running job whose worker is gone; returns how many."""
        now = _now()
        with self._failures("write to"), Session(self._engine) as session, session.begin():
            running = session.execute(
                select(JobRow.id, JobRow.worker, JobRow.heartbeat_at).where(JobRow.state == JobState.RUNNING)
            ).all()
            failed = 0
            for job_id, worker, heartbeat in running:
                if _worker_gone(worker, heartbeat, now):
                    message = (
                        f"The worker training it ({worker}) stopped before it finished, so nothing was "
                        "saved. Start it again."
                    )
                    failed += session.execute(
                        update(JobRow)
                        .where(JobRow.id == job_id, JobRow.state == JobState.RUNNING, JobRow.worker == worker)
                        .values(state=JobState.FAILED, finished_at=now, message=message)
                    ).rowcount
            return failed

    def close(self) -> None:
        """Close the queue's connections."""
        self._engine.dispose()


_queues: dict[str, JobQueue] = {}
_queues_lock = threading.Lock()


def open_queue(url: str | None = None) -> JobQueue:
    """The queue of a database URL (default: the drawings store's), opened once per process."""
    url = url or store.database_url()
    with _queues_lock:
        if url not in _queues:
            _queues[url] = JobQueue(url)
        return _queues[url]
