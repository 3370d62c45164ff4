"""A throwaway PostgreSQL server for the store's tests (``digitdraw.deploy.postgres``), and a database of
its own for each test.

Started once per test session. Where the binaries are missing the tests that
need it are skipped (CI must have them: ``make test`` installs Debian's
``postgresql``), and where the server cannot start they are skipped with its
log's last lines as the reason.
"""

from __future__ import annotations

import itertools
import os

from digitdraw.deploy.postgres import PostgresUnavailable, create_database, postgres_server

__all__ = ["PostgresUnavailable", "new_database", "postgres_server"]

_numbers = itertools.count()


def new_database(server_url: str) -> str:
    """A new, empty database on the server; returns its URL."""
    return create_database(server_url, f"store_{os.getpid()}_{next(_numbers)}")
