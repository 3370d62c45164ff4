"""The drawings store: drawings users chose to keep, the digit each really is, and every model's answer.

One schema for SQLite and PostgreSQL alike, through SQLAlchemy. SQLite is the
default (``data/drawings.sqlite`` beside the package, created on first use, so
there is no set-up step); ``DIGITDRAW_DATABASE_URL`` names any other database.
Alembic owns the schema's history (``digitdraw/drawings/migrations``) and opening a
store upgrades it to the newest revision. Every write is one transaction:
concurrent savers each land whole, and so does each batch of an import.

Trade-offs: each model's ten probabilities are stored as JSON, which both
databases read and a person can inspect, and the 28x28 model input as the exact
float32 bytes the models saw, with a digest of what it shows (``input_digest``:
the same for the same drawing in any store or export, so that training splits
kept drawings by what they are, and counts the parts without reading images).
Each answer keeps the model's weights checksum, so answers from a model since
retrained are never mistaken for the new one's.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload

from digitdraw.learning.kept_split import input_digest, quantised
from digitdraw.serving.networks import CHECKOUT_DIR, NUM_CLASSES
from digitdraw.serving.preprocess import IMAGE_SIZE

DATABASE_URL_ENV_VAR = "DIGITDRAW_DATABASE_URL"
DATA_DIR = CHECKOUT_DIR / "data"  # What the app keeps on this machine (ignored by git).
DEFAULT_DATABASE = DATA_DIR / "drawings.sqlite"
MIGRATIONS = Path(__file__).with_name("migrations")
SESSION_ID_LENGTH = 64
# The array of an exported .npz that holds each drawing's id, beside the MNIST-style x and y.
ID_ARRAY = "id"


class StoreError(Exception):
    """The store cannot be reached or written; the message says why in one sentence."""


class Base(DeclarativeBase):
    pass


class DrawingRow(Base):
    """One kept drawing: what it really is, what the models saw and who kept it."""

    __tablename__ = "drawings"
    __table_args__ = (CheckConstraint("label BETWEEN 0 AND 9", name="label_is_a_digit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    session_id: Mapped[str] = mapped_column(String(SESSION_ID_LENGTH), index=True)
    label: Mapped[int] = mapped_column(SmallInteger)
    model_input: Mapped[bytes] = mapped_column(LargeBinary)  # 28x28 float32, C order.
    input_sha256: Mapped[str] = mapped_column(String(64))  # ``input_digest(model_input)``.
    canvas_png: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    answers: Mapped[list[AnswerRow]] = relationship(
        back_populates="drawing", cascade="all, delete-orphan", passive_deletes=True
    )


class AnswerRow(Base):
    """One model's ten probabilities for one drawing, and which weights gave them."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("drawing_id", "model_id", name="one_answer_per_model"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drawing_id: Mapped[int] = mapped_column(ForeignKey("drawings.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(SmallInteger)
    model_sha256: Mapped[str] = mapped_column(String(64))
    probabilities: Mapped[list[float]] = mapped_column(JSON)
    drawing: Mapped[DrawingRow] = relationship(back_populates="answers")


@dataclass(frozen=True)
class NewDrawing:
    """A drawing to keep, with its label and every model's answer."""

    label: int
    model_input: np.ndarray  # 28x28 floats in [0, 1], as the models saw it.
    probabilities: Mapping[int, np.ndarray]  # Model id -> ten probabilities.
    model_sha256: Mapping[int, str]  # Model id -> checksum of the weights that answered.
    session_id: str
    canvas_png: bytes | None = None


@dataclass(frozen=True)
class Drawing:
    """A kept drawing as read back from the store."""

    id: int
    created_at: datetime.datetime
    session_id: str
    label: int
    model_input: np.ndarray
    canvas_png: bytes | None
    probabilities: dict[int, np.ndarray] = field(default_factory=dict)
    model_sha256: dict[int, str] = field(default_factory=dict)

    def digit(self, model_id: int) -> int:
        """The digit a model answered for this drawing."""
        return int(np.argmax(self.probabilities[model_id]))


def database_url() -> str:
    """The store's SQLAlchemy URL: ``$DIGITDRAW_DATABASE_URL``, or the SQLite file under ``data/``."""
    return os.environ.get(DATABASE_URL_ENV_VAR) or f"sqlite:///{DEFAULT_DATABASE}"


def _check(drawing: NewDrawing) -> None:
    if isinstance(drawing.label, bool) or not isinstance(drawing.label, (int, np.integer)):
        raise ValueError(f"the label must be a digit 0-9, got {drawing.label!r}")
    if not 0 <= drawing.label <= 9:
        raise ValueError(f"the label must be a digit 0-9, got {drawing.label}")
    image = np.asarray(drawing.model_input)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"the model input must be {IMAGE_SIZE}x{IMAGE_SIZE}, got shape {image.shape}")
    if not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1:
        raise ValueError("the model input must hold finite values in [0, 1]")
    if not isinstance(drawing.session_id, str) or not 0 < len(drawing.session_id) <= SESSION_ID_LENGTH:
        raise ValueError(f"the session id must be a string of 1 to {SESSION_ID_LENGTH} characters")
    for model_id, probabilities in drawing.probabilities.items():
        if np.asarray(probabilities).shape != (NUM_CLASSES,):
            raise ValueError(f"model {model_id}'s probabilities must be {NUM_CLASSES} numbers")
        if model_id not in drawing.model_sha256:
            raise ValueError(f"model {model_id}'s answer needs the checksum of its weights")


def _values(drawing: NewDrawing, now: datetime.datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A drawing's row and its answers' rows, checked, as the columns' values."""
    _check(drawing)
    row = {
        "created_at": now,
        "session_id": drawing.session_id,
        "label": int(drawing.label),
        "model_input": np.ascontiguousarray(drawing.model_input, dtype=np.float32).tobytes(),
        "input_sha256": input_digest(drawing.model_input),
        "canvas_png": drawing.canvas_png,
    }
    answers = [
        {
            "model_id": int(model_id),
            "model_sha256": drawing.model_sha256[model_id],
            "probabilities": [float(p) for p in np.asarray(probabilities, dtype=np.float64)],
        }
        for model_id, probabilities in sorted(drawing.probabilities.items())
    ]
    return row, answers


def _drawing(row: DrawingRow) -> Drawing:
    image = np.frombuffer(row.model_input, dtype=np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)
    return Drawing(
        id=row.id,
        created_at=row.created_at,
        session_id=row.session_id,
        label=row.label,
        model_input=image,
        canvas_png=row.canvas_png,
        probabilities={a.model_id: np.asarray(a.probabilities) for a in row.answers},
        model_sha256={a.model_id: a.model_sha256 for a in row.answers},
    )


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    # Deleting a drawing deletes its answers; SQLite only honours that when asked.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_store_engine(url: str) -> Engine:
    """An engine for a store URL: SQLite with its file's folder made, foreign keys on and writers waiting
    for each other; PostgreSQL through psycopg 3. ValueError for something that is not a URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ValueError(f"{DATABASE_URL_ENV_VAR} must be an SQLAlchemy database URL, got {url!r}") from error
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and parsed.query.get("uri") == "true":
            # A URI filename (``file:/path/to.sqlite?mode=ro``): its file is the path after "file:".
            database = urllib.parse.urlsplit(database).path
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Writers wait for each other instead of failing at once.
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "default"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except ArgumentError as error:  # An unknown dialect or driver ("foo://bar") among them.
        raise ValueError(f"{safe_url(url)} is not a database URL SQLAlchemy can open: {error}") from error
    except ImportError as error:  # A dialect SQLAlchemy knows whose driver is not installed (mysql://).
        raise ValueError(
            f"{safe_url(url)} needs a database driver that is not installed ({error.name}); the drawings "
            "store runs on SQLite or PostgreSQL"
        ) from error


@contextlib.contextmanager
def failures(url: str, action: str, subject: str) -> Iterator[None]:
    """Turn a database failure into a StoreError that says, in one sentence, what could not be done."""
    try:
        yield
    except (SQLAlchemyError, OSError) as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        backend = make_url(url).get_backend_name()
        raise StoreError(f"Could not {action} {backend} {subject}: {reason}") from error


# Any fixed number: the PostgreSQL advisory lock that lets one process at a time upgrade the schema.
_UPGRADE_LOCK = 20261124
_UPGRADE_ATTEMPTS = 5
# Alembic keeps its migration context in module globals: one upgrade at a time in a process.
_upgrade_lock = threading.Lock()


def upgrade(engine: Engine) -> None:
    """Bring the database's schema to the newest Alembic revision.

    App servers and workers starting together may all try at once. On
    PostgreSQL an advisory lock makes them take turns; SQLite has no such
    lock, so a process that loses the race (the table it was creating exists
    now) tries again, and finds the schema current. Within a process, one
    thread at a time upgrades.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    for attempt in range(1, _UPGRADE_ATTEMPTS + 1):
        try:
            with _upgrade_lock, engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            return
        except SQLAlchemyError:
            if attempt == _UPGRADE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)


class Store:
    """Kept drawings in one database; every method is one transaction."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or database_url()
        self._engine = create_store_engine(self.url)
        with self._failures("open"):
            upgrade(self._engine)

    def _failures(self, action: str) -> contextlib.AbstractContextManager[None]:
        return failures(self.url, f"{action} the", "drawings store")

    def save(self, drawing: NewDrawing) -> int:
        """Keep one drawing; returns its id."""
        return self.save_many([drawing])[0]

    def save_many(self, drawings: Iterable[NewDrawing]) -> list[int]:
        """Keep several drawings in one transaction: all of them, or none if any is invalid; their ids, in
        order. One bulk insert per table, not an object per row: thousands take seconds, not minutes."""
        now = datetime.datetime.now(datetime.UTC)
        values = [_values(drawing, now) for drawing in drawings]
        if not values:
            return []
        with self._failures("save to"), Session(self._engine) as session, session.begin():
            inserted = insert(DrawingRow).returning(DrawingRow.id, sort_by_parameter_order=True)
            ids = list(session.scalars(inserted, [row for row, _ in values]))
            answers = [
                {**answer, "drawing_id": drawing_id}
                for drawing_id, (_, drawing_answers) in zip(ids, values, strict=True)
                for answer in drawing_answers
            ]
            if answers:
                session.execute(insert(AnswerRow), answers)
            return ids

    def drawings(self, session_id: str | None = None, newest: int | None = None) -> list[Drawing]:
        """Every kept drawing, oldest first; only one browser's when ``session_id`` is given; only the
        ``newest`` N when given (still oldest first), so that a page reads a bounded sample."""
        query = select(DrawingRow).options(selectinload(DrawingRow.answers))
        if session_id is not None:
            query = query.where(DrawingRow.session_id == session_id)
        if newest is None:
            query = query.order_by(DrawingRow.id)
        else:
            query = query.order_by(DrawingRow.id.desc()).limit(newest)
        with self._failures("read"), Session(self._engine) as session:
            found = [_drawing(row) for row in session.scalars(query)]
        return found if newest is None else found[::-1]

    def digits_kept(self, session_id: str | None = None) -> dict[int, int]:
        """How many drawings are kept of each digit (by one browser when ``session_id`` is given), counted
        by the database without reading a drawing."""
        query = select(DrawingRow.label, func.count(DrawingRow.id)).group_by(DrawingRow.label)
        if session_id is not None:
            query = query.where(DrawingRow.session_id == session_id)
        with self._failures("read"), Session(self._engine) as session:
            return {int(label): int(count) for label, count in session.execute(query)}

    def labelled_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every kept drawing's id, model input (float32 N x 28 x 28) and label, oldest first: what training
        needs, without the canvases and answers ``drawings`` reads too."""
        query = select(DrawingRow.id, DrawingRow.model_input, DrawingRow.label).order_by(DrawingRow.id)
        with self._failures("read"), Session(self._engine) as session:
            rows = session.execute(query).all()
        images = np.zeros((len(rows), IMAGE_SIZE, IMAGE_SIZE), np.float32)
        for index, row in enumerate(rows):
            images[index] = np.frombuffer(row.model_input, dtype=np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)
        ids = np.array([row.id for row in rows], np.int64)
        return ids, images, np.array([row.label for row in rows], np.int64)

    def digests(self) -> list[str]:
        """Every kept drawing's ``input_digest``, oldest first: all the split into parts needs to count."""
        query = select(DrawingRow.input_sha256).order_by(DrawingRow.id)
        with self._failures("read"), Session(self._engine) as session:
            return list(session.scalars(query).all())

    def kept_as(self, session_id: str, model_input: np.ndarray) -> tuple[int, int] | None:
        """The (id, label) of the newest drawing one browser kept with this very model input, or None."""
        query = (
            select(DrawingRow.id, DrawingRow.label)
            .where(DrawingRow.session_id == session_id, DrawingRow.input_sha256 == input_digest(model_input))
            .order_by(DrawingRow.id.desc())
            .limit(1)
        )
        with self._failures("read"), Session(self._engine) as session:
            found = session.execute(query).first()
        return None if found is None else (int(found.id), int(found.label))

    def count(self, session_id: str | None = None) -> int:
        """How many drawings are kept (by one browser when ``session_id`` is given)."""
        query = select(func.count(DrawingRow.id))
        if session_id is not None:
            query = query.where(DrawingRow.session_id == session_id)
        with self._failures("read"), Session(self._engine) as session:
            return int(session.scalar(query))

    def delete(self, drawing_id: int, session_id: str) -> bool:
        """Delete one drawing kept by this browser; False if there is no such drawing of its own."""
        with self._failures("delete from"), Session(self._engine) as session, session.begin():
            row = session.get(DrawingRow, drawing_id)
            if row is None or row.session_id != session_id:
                return False
            session.delete(row)
            return True

    def delete_session(self, session_id: str) -> int:
        """Delete every drawing this browser kept; returns how many."""
        with self._failures("delete from"), Session(self._engine) as session, session.begin():
            rows = session.scalars(select(DrawingRow).where(DrawingRow.session_id == session_id)).all()
            for row in rows:
                session.delete(row)
            return len(rows)

    def close(self) -> None:
        """Close the store's connections."""
        self._engine.dispose()


def as_arrays(drawings: Iterable[Drawing]) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style arrays of kept drawings: ``x`` uint8 N x 28 x 28 (the model inputs x 255) and ``y``."""
    drawings = list(drawings)
    x = np.zeros((len(drawings), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for index, drawing in enumerate(drawings):
        x[index] = quantised(drawing.model_input)
    return x, np.array([d.label for d in drawings], dtype=np.uint8)


def export_arrays(drawings: Iterable[Drawing]) -> dict[str, np.ndarray]:
    """An exported .npz's arrays: ``as_arrays``'s ``x`` and ``y``, and each drawing's id in the store."""
    drawings = list(drawings)
    x, y = as_arrays(drawings)
    return {"x": x, "y": y, ID_ARRAY: np.array([d.id for d in drawings], dtype=np.int64)}


def safe_url(url: str) -> str:
    """A store's URL as it may be shown or recorded: any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def accuracy(drawings: Iterable[Drawing]) -> dict[int, tuple[int, int]]:
    """Per model: how many kept drawings it answered right, out of how many it answered."""
    tally: dict[int, list[int]] = {}
    for drawing in drawings:
        for model_id in drawing.probabilities:
            right_and_total = tally.setdefault(model_id, [0, 0])
            right_and_total[0] += drawing.digit(model_id) == drawing.label
            right_and_total[1] += 1
    return {model_id: (right, total) for model_id, (right, total) in sorted(tally.items())}


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(url: str | None = None) -> Store:
    """The store for a URL (default: ``database_url()``), opened and upgraded once per process.

    This is the one place stores are kept: a store holds a connection pool,
    which every caller in the process shares.
    """
    url = url or database_url()
    with _stores_lock:
        if url not in _stores:
            _stores[url] = Store(url)
        return _stores[url]
