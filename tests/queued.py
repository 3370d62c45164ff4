"""A job row written straight into the queue's table, as another version of DigitDraw, or a person, might
have written it: for tests of what the queue and the Train page make of rows they did not write."""

from __future__ import annotations

import datetime

from sqlalchemy import insert

from digitdraw.jobs.queue import JobQueue, JobRow, JobState


def insert_queued(queue: JobQueue, name: str, settings: dict, epochs: int = 1) -> None:
    """Add a queued job named ``name`` whose stored settings are ``settings``, exactly as given."""
    with queue._engine.begin() as connection:
        connection.execute(
            insert(JobRow).values(
                name=name,
                settings=settings,
                state=JobState.QUEUED,
                stop_requested=False,
                created_at=datetime.datetime.now(datetime.UTC),
                epoch=0,
                epochs=epochs,
                batch=0,
                batches=0,
            )
        )
