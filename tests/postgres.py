"""A throwaway PostgreSQL server for the store's tests: Debian's binaries, a temporary folder, a free port.

Started once per test session; each test gets a database of its own. Where the
binaries are missing the tests that need it are skipped (CI must have them:
``make test`` installs Debian's ``postgresql``), and where the server cannot
start they are skipped with its log's last lines as the reason.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

BINARY_FOLDERS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
SUPERUSER = "digitdraw"


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be started here; the message says why."""


def _binary(name: str) -> str:
    for folder in BINARY_FOLDERS:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"PostgreSQL's {name} not found: install it with 'apt-get install postgresql'"
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user() -> dict:
    """PostgreSQL refuses to run as root: run its programs as the 'postgres' user when we are root."""
    if os.geteuid() != 0:
        return {}
    account = pwd.getpwnam("postgres")
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """Run a PostgreSQL server with its data in ``folder``; yields the URL of its 'postgres' database."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    run_as = _as_server_user()
    folder.mkdir(parents=True, exist_ok=True)
    if run_as:
        os.chown(folder, run_as["user"], run_as["group"])
    data, log = folder / "data", folder / "server.log"
    port = _free_port()

    def run(*command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, **run_as)
        if result.returncode != 0:
            tail = (log.read_text() if log.exists() else result.stderr or result.stdout).strip()
            raise PostgresUnavailable(f"{Path(command[0]).name} failed: {tail.splitlines()[-3:]}")

    run(initdb, "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-p {port} -k {folder} -h 127.0.0.1 -c fsync=off -c max_connections=60"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
    try:
        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            **run_as,
        )


_numbers = itertools.count()


def new_database(server_url: str) -> str:
    """A new, empty database on the server; returns its URL."""
    from sqlalchemy import create_engine, text

    name = f"store_{os.getpid()}_{next(_numbers)}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
