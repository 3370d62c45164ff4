"""Reading the drawings users kept, for training: from a store (any SQLAlchemy URL), a SQLite file, or an
MNIST-style ``.npz`` as ``python -m digitdraw drawings export`` writes it.

What is done with them, the split that never moves and the repeats, is
``digitdraw.learning.kept_split``'s: an export splits exactly as its store,
since the digest reads the same bytes either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digitdraw.drawings import store
from digitdraw.learning.kept_split import KeptDrawings
from digitdraw.serving.preprocess import IMAGE_SIZE

# File suffixes taken as SQLite databases rather than exported arrays.
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def from_store(url: str) -> KeptDrawings:
    """Every drawing kept in a store, as arrays, with the exact float32 inputs the models saw."""
    kept = store.Store(url)
    try:
        ids, images, labels = kept.labelled_inputs()
    finally:
        kept.close()
    return KeptDrawings(ids=ids, images=images, labels=labels, source=store.safe_url(url))


def from_npz(path: Path) -> KeptDrawings:
    """Drawings from an MNIST-style ``.npz``, as ``drawings export`` writes one: ``x`` uint8 N x 28 x 28 and
    ``y``; its ``id`` array, if any, names them (their place in the file otherwise)."""
    from digitdraw.drawings.collect import read_npz

    x, y = read_npz(path)
    with np.load(path, allow_pickle=False) as archive:
        ids = (
            archive[store.ID_ARRAY] if store.ID_ARRAY in archive.files else np.arange(len(x), dtype=np.int64)
        )
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"x in {path} must be uint8 N x {IMAGE_SIZE} x {IMAGE_SIZE} model inputs, as `drawings export` "
            f"writes them, got {x.dtype} of shape {x.shape}"
        )
    return KeptDrawings(ids=ids, images=x.astype(np.float32) / 255.0, labels=y, source=str(path))


def _sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for any other database (or an in-memory one)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # Not a URL at all: the store says so when it opens.
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def read(source: str | None) -> KeptDrawings:
    """Kept drawings from a store's URL, a SQLite file, or an exported ``.npz``; None or '' is the
    default store (``$DIGITDRAW_DATABASE_URL`` or ``data/drawings.sqlite``)."""
    if not source:
        return from_store(store.database_url())
    if "://" in source:
        database = _sqlite_file(source)
        # Training only reads: a mistyped SQLite URL must not leave a new, empty store behind.
        if database is not None and not database.is_file():
            raise ValueError(f"{database} does not exist")
        return from_store(source)
    path = Path(source)
    if path.suffix == ".npz":
        return from_npz(path)
    if path.suffix in SQLITE_SUFFIXES:
        if not path.is_file():
            raise ValueError(f"{path} does not exist")
        return from_store(f"sqlite:///{path.resolve()}")
    raise ValueError(
        "expected a database URL (sqlite:///..., postgresql://...), a SQLite file "
        f"({', '.join(SQLITE_SUFFIXES)}) or an .npz that `python -m digitdraw drawings export` wrote, "
        f"got {source!r}"
    )
