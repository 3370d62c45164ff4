"""A cluster on one machine: PostgreSQL, app replicas behind HAProxy, and training workers.

``start`` brings the whole topology up in dependency order and returns once
the proxy answers; ``stop`` takes it down. Everything the app keeps lives in
PostgreSQL (drawings, answers, the training queue) and in the shared models
folder, so any replica serves any page and any worker takes any job; what a
replica holds in memory (a browser's Streamlit session) is lost with it, and
its browsers reconnect to another through the proxy.

The processes outlive the command that started them (``make cluster`` returns
to the shell), so the cluster is written down in ``FOLDER/cluster.json`` as
it starts, part by part: each process's role, name, port, log, process id and
start time, with the machine's boot id, which ``stop`` reads. A process id
alone could name another program after a reboot; with its start time and the
boot id, ``stop`` signals only the processes it started. Each runs in a
session of its own, so stopping one stops whatever it started. The record
holds the database's password: it is readable by its owner alone. The
database's data stays in ``FOLDER/postgres`` from one start to the next; logs
are in ``FOLDER/logs``.

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
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from digitdraw.deploy import postgres, proxy
from digitdraw.deploy.network import checked_host, free_port, port_is_free, url_of
from digitdraw.drawings import store
from digitdraw.serving.networks import CHECKOUT_DIR, SAVED_MODELS_ENV_VAR, saved_models_dir
from digitdraw.serving.saved_models import process_stat

DEFAULT_FOLDER = store.DATA_DIR / "cluster"
STATE_FILE = "cluster.json"
DATABASE_NAME = "digitdraw"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_REPLICAS = 2
DEFAULT_WORKERS = 2
MAX_REPLICAS = 16
MAX_WORKERS = 16
PORTS = (1, 65535)  # The proxy's port: any a TCP port can be.
STARTUP_SECONDS = 120.0  # Two replicas and two workers starting at once on two busy cores.
STOP_SECONDS = 15.0
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# The processes this one started: reaped once stopped, so that none lingers as a zombie.
_children: dict[int, subprocess.Popen] = {}


class Role:
    """What a process of the cluster does; ``Process.role`` holds one of these."""

    REPLICA = "replica"
    WORKER = "worker"
    PROXY = "proxy"


@dataclass(frozen=True)
class ClusterSettings:
    """What to start: where, on which address, and how many of each."""

    folder: Path = DEFAULT_FOLDER
    host: str = DEFAULT_HOST  # The proxy's address: 0.0.0.0 serves a classroom's phones on the network.
    port: int = DEFAULT_PORT
    replicas: int = DEFAULT_REPLICAS
    workers: int = DEFAULT_WORKERS
    models: Path | None = None  # The shared models folder; saved_models/ unless given.
    postgres_folder: Path | None = None  # FOLDER/postgres unless given.

    def __post_init__(self) -> None:
        checked_host(self.host)
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise ValueError(f"replicas must be 1 to {MAX_REPLICAS}, not {self.replicas}")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 0 to {MAX_WORKERS}, not {self.workers}")
        if not PORTS[0] <= self.port <= PORTS[1]:
            raise ValueError(f"the port must be {PORTS[0]} to {PORTS[1]}, not {self.port}")


def _boot_id() -> str:
    return BOOT_ID.read_text().strip() if BOOT_ID.exists() else ""


def _start_time(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (``/proc/PID/stat``), or None if it is gone."""
    fields = process_stat(pid)
    return None if fields is None or fields[0] == "Z" else int(fields[19])


@dataclass(frozen=True)
class Process:
    """One process of a running cluster."""

    role: str
    name: str
    pid: int
    log: str
    started: int  # Clock ticks since boot: with the pid, names this process and no later one.
    port: int | None = None

    def alive(self) -> bool:
        """Whether this very process still runs (not a zombie, nor another that took its pid)."""
        return _start_time(self.pid) == self.started


@dataclass(frozen=True)
class Cluster:
    """A running cluster, as ``FOLDER/cluster.json`` records it."""

    url: str  # The proxy's: the address to open ("" until it answers).
    database_url: str
    models: str
    postgres_folder: str
    processes: tuple[Process, ...] = ()
    boot_id: str = dataclasses.field(default_factory=_boot_id)

    def of_role(self, role: str) -> list[Process]:
        """Its processes of one role, in the order they were started."""
        return [process for process in self.processes if process.role == role]

    def running(self) -> list[Process]:
        """Its processes that still run: none after the machine restarted."""
        if self.boot_id != _boot_id():
            return []
        return [process for process in self.processes if process.alive()]

    def save(self, folder: Path) -> None:
        """Write it to ``folder/cluster.json``, readable by its owner alone (it holds a password)."""
        path = folder / STATE_FILE
        path.touch(mode=0o600)
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2))

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


def _last_lines(process: Process) -> str:
    return " / ".join(Path(process.log).read_text(errors="replace").strip().splitlines()[-3:])


def _wait_until_healthy(url: str, process: Process, seconds: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} stopped while starting: {_last_lines(process)}")
        if _healthy(url):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{process.name} did not answer at {url} within {seconds:.0f} s (see {process.log})")


def _launch(role: str, name: str, command: list[str], logs: Path, environment: dict, port: int | None = None):
    """Start a process in a session of its own, its output in ``logs/NAME.log``."""
    log_path = logs / f"{name}.log"
    with open(log_path, "w") as log:
        started = subprocess.Popen(
            command,
            cwd=CHECKOUT_DIR,  # Where streamlit_app.py is.
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[started.pid] = started
    return Process(role, name, started.pid, str(log_path), _start_time(started.pid) or 0, port)


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


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) stop a start as Ctrl-C does, so that it cleans up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def start(settings: ClusterSettings) -> Cluster:
    """Start PostgreSQL, the replicas, HAProxy and the workers; returns once the proxy answers.

    Whatever started is stopped again if a later part fails or the start is interrupted.
    """
    folder = settings.folder.resolve()
    recorded = Cluster.load(folder)
    if recorded is not None and recorded.running():
        raise ValueError(f"a cluster already runs from {folder}: stop it first ('make cluster-stop')")
    if recorded is not None:  # Its processes are gone (a reboot, say): its PostgreSQL may not be.
        stop(folder)
    if not port_is_free(settings.host, settings.port):
        raise ValueError(f"port {settings.port} is in use: stop what runs there, or choose another port")
    haproxy = proxy.haproxy_binary()
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    postgres_folder = (settings.postgres_folder or folder / "postgres").resolve()
    models = (settings.models or saved_models_dir()).resolve()
    cluster = Cluster(url="", database_url="", models=str(models), postgres_folder=str(postgres_folder))
    cluster.save(folder)  # From here on, ``stop`` finds whatever has started.

    def started(process: Process) -> Process:
        nonlocal cluster
        cluster = dataclasses.replace(cluster, processes=(*cluster.processes, process))
        cluster.save(folder)
        return process

    try:
        with _interruptible():
            cluster = dataclasses.replace(cluster, database_url=_database(postgres.start(postgres_folder)))
            cluster.save(folder)
            environment = {
                "OPENBLAS_NUM_THREADS": "1",  # As `make run` serves the app (see the Makefile).
                **os.environ,
                # The database's URL, password and all, in the environment: never on a command line,
                # which every user of the machine can read.
                store.DATABASE_URL_ENV_VAR: cluster.database_url,
                SAVED_MODELS_ENV_VAR: str(models),
                # One secret for every replica, so that a browser moved to another keeps valid cookies
                # (Streamlit takes it from its environment only, never its command line).
                "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_hex(32),
                "TF_CPP_MIN_LOG_LEVEL": "3",
            }
            replicas = []
            for index in range(settings.replicas):
                port = free_port()
                command = [
                    sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
                    "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                    "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
                ]  # fmt: skip
                name = proxy.replica_name(index)
                replicas.append(started(_launch(Role.REPLICA, name, command, logs, environment, port)))
            for index in range(settings.workers):
                command = [sys.executable, "-m", "digitdraw", "worker", "--models", str(models)]
                started(_launch(Role.WORKER, f"worker{index + 1}", command, logs, environment))
            for replica in replicas:
                _wait_until_healthy(f"http://127.0.0.1:{replica.port}", replica)
            config = folder / "haproxy.cfg"
            config.write_text(proxy.haproxy_config(settings.host, settings.port, [r.port for r in replicas]))
            checked = subprocess.run([haproxy, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
            if checked.returncode != 0:
                raise RuntimeError(f"HAProxy refused its configuration: {checked.stderr.strip()}")
            gateway = started(
                _launch(Role.PROXY, "haproxy", [haproxy, "-db", "-f", str(config)], logs, environment)
            )
            url = url_of(settings.host, settings.port)
            _wait_until_healthy(url, gateway)
            # Something else on the port (another DigitDraw) may answer for a proxy that could not bind it.
            time.sleep(0.5)
            stopped = [process.name for process in cluster.processes if not process.alive()]
            if stopped:
                raise RuntimeError(f"{', '.join(stopped)} stopped while starting: {_last_lines(gateway)}")
            cluster = dataclasses.replace(cluster, url=url)
            cluster.save(folder)
            return cluster
    except BaseException:
        # The failure that stopped the start is the one to report, even if cleaning up fails too.
        with contextlib.suppress(postgres.PostgresUnavailable, OSError):
            stop(folder)
        raise


def _stop_processes(processes: list[Process]) -> None:
    """SIGTERM to each process's session, SIGKILL to what still runs after ``STOP_SECONDS``; then reap
    the ones this process started."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and any(process.alive() for process in processes):
        time.sleep(0.2)
    for process in processes:
        if process.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
    for process in processes:
        child = _children.pop(process.pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=STOP_SECONDS)


def stop(folder: Path = DEFAULT_FOLDER) -> Cluster | None:
    """Stop the cluster started from ``folder``: its processes that still run (all asked at once, then
    killed if they linger), and PostgreSQL. Returns what was stopped, or None if no cluster was
    recorded there."""
    folder = folder.resolve()
    cluster = Cluster.load(folder)
    if cluster is None:
        return None
    _stop_processes(cluster.running())
    postgres.stop(Path(cluster.postgres_folder))
    (folder / STATE_FILE).unlink()
    return cluster
