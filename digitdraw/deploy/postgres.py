"""A PostgreSQL server of its own: Debian's binaries, a data folder, a free port, no system service.

The cluster keeps its drawings, answers and training queue here, and the
store's tests start one per test session. The server listens on 127.0.0.1
only, and asks for a password made when its data was (kept in the data's
folder, readable by its owner alone), so that another user of a shared
machine cannot connect as its superuser. A cluster across machines would use
a managed PostgreSQL and pass its URL. PostgreSQL refuses to run as root, so
as root its programs run as Debian's ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digitdraw.deploy.network import free_port

BINARY_FOLDERS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
SUPERUSER = "digitdraw"
# Each app replica and worker holds a few pooled connections; a classroom cluster stays far below this.
MAX_CONNECTIONS = 100


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be started here; the message says why."""


def binary(name: str) -> str:
    """The path of one of PostgreSQL's programs (``initdb``, ``pg_ctl``); FileNotFoundError if missing."""
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


def _as_server_user() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: run its programs as the 'postgres' user when we are root."""
    if os.geteuid() != 0:
        return {}
    account = pwd.getpwnam("postgres")
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _run(folder: Path, *command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, **_as_server_user())
    if result.returncode != 0:
        log = folder / "server.log"
        tail = (log.read_text() if log.exists() else result.stderr or result.stdout).strip()
        raise PostgresUnavailable(f"{Path(command[0]).name} failed: {' / '.join(tail.splitlines()[-3:])}")


def start(folder: Path, port: int | None = None) -> str:
    """Create a server's data in ``folder`` (if new) and start it; returns the URL of its 'postgres' database.

    The server runs on until ``stop``: it outlives this process. Every folder above
    ``folder`` must let Debian's ``postgres`` user through when run as root.
    """
    run_as = _as_server_user()
    folder.mkdir(parents=True, exist_ok=True)
    if run_as:
        os.chown(folder, run_as["user"], run_as["group"])
    data, log, password_file = folder / "data", folder / "server.log", folder / "password"
    port = port or free_port()
    if not (data / "PG_VERSION").exists():
        password_file.write_text(secrets.token_hex(24))
        password_file.chmod(0o600)
        if run_as:  # initdb, run as 'postgres', reads it.
            os.chown(password_file, run_as["user"], run_as["group"])
        initdb = [binary("initdb"), "-D", str(data), "-U", SUPERUSER, "-E", "UTF8", "--no-sync"]
        _run(folder, *initdb, "--auth=scram-sha-256", f"--pwfile={password_file}")
    password = password_file.read_text().strip()
    # pg_ctl hands these to a shell: the folder is quoted, for a checkout whose path has spaces.
    options = (
        f"-p {port} -k {shlex.quote(str(folder))} -h 127.0.0.1 -c fsync=off "
        f"-c max_connections={MAX_CONNECTIONS}"
    )
    _run(folder, binary("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
    return f"postgresql+psycopg://{SUPERUSER}:{password}@127.0.0.1:{port}/postgres"


def stop(folder: Path) -> None:
    """Stop the server whose data is in ``folder`` at once, if it runs; PostgresUnavailable if it will not."""
    data = folder / "data"
    if (data / "postmaster.pid").exists():
        stopped = subprocess.run(
            [binary("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            text=True,
            timeout=60,
            **_as_server_user(),
        )
        if stopped.returncode != 0 and (data / "postmaster.pid").exists():
            raise PostgresUnavailable(f"pg_ctl could not stop the server in {data}: {stopped.stderr.strip()}")


@contextlib.contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """Run a PostgreSQL server with its data in ``folder``; yields the URL of its 'postgres' database."""
    url = start(folder)
    try:
        yield url
    finally:
        stop(folder)


def create_database(server_url: str, name: str) -> str:
    """A new, empty database called ``name`` on the server; returns its URL."""
    from sqlalchemy import create_engine, text

    if not name.replace("_", "").isalnum():
        raise ValueError(f"a database name is letters, digits and underscores, not {name!r}")
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
