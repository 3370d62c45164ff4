"""``python -m digitdraw cluster start|stop``: PostgreSQL, app replicas behind HAProxy, and training workers
on this machine (``digitdraw.deploy.cluster``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitdraw.cli.arguments import BAD_REQUEST, add_models_folder, fail
from digitdraw.deploy import cluster
from digitdraw.deploy.network import EVERY_INTERFACE
from digitdraw.deploy.postgres import PostgresUnavailable


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``cluster start`` and ``cluster stop`` and their options."""
    parser = commands.add_parser(
        "cluster",
        help="start or stop PostgreSQL, app replicas behind HAProxy, and training workers",
        description="Start DigitDraw as a cluster on this machine: a PostgreSQL server, app replicas behind "
        "HAProxy (sticky sessions, WebSockets, health checks) and training workers, which run on after "
        "this command returns; or stop the cluster started from a folder.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="start a cluster and print the address to open")
    stop = actions.add_parser("stop", help="stop the cluster started from FOLDER")
    for action in (start, stop):
        action.add_argument(
            "--folder",
            type=Path,
            default=cluster.DEFAULT_FOLDER,
            help="where the cluster keeps its database, logs and list of processes "
            f"(default: {cluster.DEFAULT_FOLDER})",
        )
    start.add_argument(
        "--host",
        default=cluster.DEFAULT_HOST,
        help=f"the proxy's address (default {cluster.DEFAULT_HOST}); 0.0.0.0 for phones on the network",
    )
    for option, default, lowest, highest, what in (
        ("--port", cluster.DEFAULT_PORT, *cluster.PORTS, "the proxy's port"),
        ("--replicas", cluster.DEFAULT_REPLICAS, 1, cluster.MAX_REPLICAS, "app servers"),
        ("--workers", cluster.DEFAULT_WORKERS, 0, cluster.MAX_WORKERS, "training workers"),
    ):
        start.add_argument(
            option, type=int, default=default, help=f"{what}, {lowest} to {highest} (default {default})"
        )
    add_models_folder(start, "the models folder the replicas and workers share")
    start.set_defaults(run=run_start, parser=parser)
    stop.set_defaults(run=run_stop, parser=parser)


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def run_start(args: argparse.Namespace) -> int:
    """Start the cluster and say where to open it."""
    try:
        settings = cluster.ClusterSettings(
            folder=args.folder, host=args.host, port=args.port, replicas=args.replicas, workers=args.workers,
            models=args.models,
        )  # fmt: skip
    except ValueError as error:
        return fail("cluster start", error, status=BAD_REQUEST)
    try:
        running = cluster.start(settings)
    except (RuntimeError, PostgresUnavailable) as error:  # A part that would not start: its sentence.
        return fail("cluster start", error)
    elsewhere = f" (phones on the network: this machine's address, port {settings.port})"
    print(
        f"DigitDraw runs at {running.url}{elsewhere if settings.host in EVERY_INTERFACE else ''}: "
        f"{settings.replicas} app {_plural(settings.replicas, 'replica')} behind HAProxy, "
        f"{settings.workers} training {_plural(settings.workers, 'worker')} and PostgreSQL; "
        f"logs in {settings.folder / 'logs'}. "
        "Stop it with 'make cluster-stop'."
    )
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """Stop the cluster started from the folder."""
    stopped = cluster.stop(args.folder)
    if stopped is None:
        print(f"No cluster was started from {args.folder}.")
    else:
        print(f"Stopped the cluster that ran at {stopped.url}.")
    return 0
