"""A cluster on one machine: PostgreSQL, app replicas behind HAProxy, and training workers.

``start`` brings the whole topology up in dependency order and returns once
the proxy answers; ``stop`` takes it down. Everything the app keeps lives in
PostgreSQL (drawings, answers, the training queue) and in the shared models
folder, so any replica serves any page and any worker takes any job; what a
replica holds in memory (a browser's Streamlit session) is lost with it, and
its browsers reconnect to another through the proxy.

The processes outlive the command that started them (``make cluster`` returns
to the shell), so the cluster is written down in ``FOLDER/cluster.json``:
each process's role, name, port, log and process id, which ``stop`` reads.
The replicas and workers run in sessions of their own, so stopping one stops
whatever it started. The database's data stays in ``FOLDER/postgres`` from
one start to the next; logs are in ``FOLDER/logs``.

Not home-made infrastructure: the proxy, the database and the queue are the
standard ones (HAProxy and PostgreSQL from Debian's packages, the queue a
table claimed with ``SKIP LOCKED``); this module only starts them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from digitdraw.deploy import postgres, proxy
from digitdraw.drawings import store
from digitdraw.serving.networks import SAVED_MODELS_ENV_VAR, saved_models_dir
from digitdraw.serving.saved_models import process_alive

ROOT = Path(__file__).resolve().parents[2]  # Where streamlit_app.py is.
DEFAULT_FOLDER = ROOT / "data" / "cluster"
STATE_FILE = "cluster.json"
DATABASE_NAME = "digitdraw"
DEFAULT_PORT = 8080
MAX_REPLICAS = 16
MAX_WORKERS = 16
STARTUP_SECONDS = 120.0  # Two replicas and two workers starting at once on two busy cores.
STOP_SECONDS = 15.0
# The processes this one started, kept referenced: Python warns when a child it still runs is forgotten.
_children: list[subprocess.Popen] = []


class Role:
    """What a process of the cluster does; ``Process.role`` holds one of these."""

    REPLICA = "replica"
    WORKER = "worker"
    PROXY = "proxy"


@dataclass(frozen=True)
class ClusterSettings:
    """What to start: where, on which address, and how many of each."""

    folder: Path = DEFAULT_FOLDER
    host: str = "127.0.0.1"  # The proxy's address: 0.0.0.0 serves a classroom's phones on the network.
    port: int = DEFAULT_PORT
    replicas: int = 2
    workers: int = 2
    models: Path | None = None  # The shared models folder; saved_models/ unless given.
    postgres_folder: Path | None = None  # FOLDER/postgres unless given.

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise ValueError(f"replicas must be 1 to {MAX_REPLICAS}, not {self.replicas}")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 0 to {MAX_WORKERS}, not {self.workers}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"the port must be 1 to 65535, not {self.port}")


@dataclass(frozen=True)
class Process:
    """One process of a running cluster."""

    role: str
    name: str
    pid: int
    log: str
    port: int | None = None

    def alive(self) -> bool:
        """Whether the process still runs."""
        return process_alive(self.pid)


@dataclass(frozen=True)
class Cluster:
    """A running cluster, as ``FOLDER/cluster.json`` records it."""

    url: str  # The proxy's: the address to open.
    database_url: str
    models: str
    postgres_folder: str
    processes: tuple[Process, ...]

    def of_role(self, role: str) -> list[Process]:
        """Its processes of one role, in the order they were started."""
        return [process for process in self.processes if process.role == role]

    def save(self, folder: Path) -> None:
        """Write it to ``folder/cluster.json``."""
        (folder / STATE_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> Cluster | None:
        """The cluster recorded in ``folder``, or None if none was started there."""
        path = folder / STATE_FILE
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        processes = tuple(Process(**process) for process in record.pop("processes"))
        return cls(processes=processes, **record)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + proxy.HEALTH_PATH, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_healthy(url: str, process: Process, seconds: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _healthy(url):
            return
        if not process.alive():
            tail = Path(process.log).read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{process.name} stopped while starting: {tail}")
        time.sleep(0.3)
    raise RuntimeError(f"{process.name} did not answer at {url} within {seconds:.0f} s (see {process.log})")


def _launch(role: str, name: str, command: list[str], logs: Path, environment: dict, port: int | None = None):
    """Start a process in a session of its own, its output in ``logs/NAME.log``."""
    log_path = logs / f"{name}.log"
    with open(log_path, "w") as log:
        started = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _children.append(started)
    return Process(role, name, started.pid, str(log_path), port)


def _database(server_url: str) -> str:
    """The cluster's database on the server, created on the first start; its schema brought up to date
    once here, before any replica or worker opens it."""
    from sqlalchemy import create_engine, text

    engine = create_engine(server_url)
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": DATABASE_NAME}
            ).first()
    finally:
        engine.dispose()
    url = server_url.rsplit("/", 1)[0] + f"/{DATABASE_NAME}"
    if not exists:
        postgres.create_database(server_url, DATABASE_NAME)
    store.Store(url).close()  # Opening runs the migrations.
    return url


def start(settings: ClusterSettings) -> Cluster:
    """Start PostgreSQL, the replicas, HAProxy and the workers; returns once the proxy answers.

    Whatever started is stopped again if a later part fails.
    """
    folder = settings.folder.resolve()
    running = Cluster.load(folder)
    if running is not None and any(process.alive() for process in running.processes):
        raise ValueError(f"a cluster already runs from {folder}: stop it first ('make cluster-stop')")
    haproxy = proxy.haproxy_binary()
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    postgres_folder = (settings.postgres_folder or folder / "postgres").resolve()
    models = (settings.models or saved_models_dir()).resolve()
    started: list[Process] = []
    try:
        database_url = _database(postgres.start(postgres_folder))
        environment = {
            "OPENBLAS_NUM_THREADS": "1",  # As `make run` serves the app (see the Makefile).
            **os.environ,
            store.DATABASE_URL_ENV_VAR: database_url,
            SAVED_MODELS_ENV_VAR: str(models),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        # One secret for every replica, so that a browser moved to another replica keeps valid cookies
        # (Streamlit takes it from its environment only, never its command line).
        environment["STREAMLIT_SERVER_COOKIE_SECRET"] = secrets.token_hex(32)
        for index in range(settings.replicas):
            port = postgres.free_port()
            command = [
                sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
                "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
            ]  # fmt: skip
            started.append(_launch(Role.REPLICA, proxy.replica_name(index), command, logs, environment, port))
        for index in range(settings.workers):
            command = [sys.executable, "-m", "digitdraw", "worker", "--database", database_url]
            command += ["--models", str(models)]
            started.append(_launch(Role.WORKER, f"worker{index + 1}", command, logs, environment))
        replicas = [process for process in started if process.role == Role.REPLICA]
        for replica in replicas:
            _wait_until_healthy(f"http://127.0.0.1:{replica.port}", replica)
        config = folder / "haproxy.cfg"
        config.write_text(proxy.haproxy_config(settings.host, settings.port, [r.port for r in replicas]))
        checked = subprocess.run([haproxy, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"HAProxy refused its configuration: {checked.stderr.strip()}")
        gateway = _launch(Role.PROXY, "haproxy", [haproxy, "-db", "-f", str(config)], logs, environment)
        started.append(gateway)
        address = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        _wait_until_healthy(f"http://{address}:{settings.port}", gateway)
        cluster = Cluster(
            url=f"http://{address}:{settings.port}",
            database_url=database_url,
            models=str(models),
            postgres_folder=str(postgres_folder),
            processes=tuple(started),
        )
        cluster.save(folder)
        return cluster
    except BaseException:
        _stop_processes(started)
        postgres.stop(postgres_folder)
        raise


def _stop_processes(processes: list[Process] | tuple[Process, ...]) -> None:
    """SIGTERM to each process's session, SIGKILL to what still runs after ``STOP_SECONDS``."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and any(process.alive() for process in processes):
        time.sleep(0.2)
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def stop(folder: Path = DEFAULT_FOLDER) -> Cluster | None:
    """Stop the cluster started from ``folder``: proxy first, then replicas, workers and PostgreSQL.
    Returns what was stopped, or None if no cluster was recorded there."""
    folder = folder.resolve()
    cluster = Cluster.load(folder)
    if cluster is None:
        return None
    order = (Role.PROXY, Role.REPLICA, Role.WORKER)
    _stop_processes([process for role in order for process in cluster.of_role(role)])
    postgres.stop(Path(cluster.postgres_folder))
    (folder / STATE_FILE).unlink()
    return cluster
