"""Importing kept drawings: ``drawings import`` of an MNIST-style .npz (batches of ``collect.IMPORT_BATCH``,
each one bulk insert per table in its own transaction) against the way before it, every drawing an ORM
object in one transaction. Each run is a fresh process on a fresh SQLite store, so its peak memory is its
own: wall time and peak resident memory, median and p95 over the runs.

    .venv/bin/python -m benchmarks.import_drawings [--drawings 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# One import as a child process: the way it is, or every drawing an ORM object in one transaction.
CHILD = """
import sys, resource, numpy as np
from sqlalchemy.orm import Session
from digitdraw.drawings import collect, store
path, url, way = sys.argv[1:4]
kept = store.Store(url)
x, y = collect.read_npz(path)
if way == "batched":
    collect.import_arrays(kept, x, y, "benchmark")
else:
    rows = []
    for drawing in collect.from_arrays(x, y, session_id="benchmark"):
        row, answers = store._values(drawing, store.datetime.datetime.now(store.datetime.UTC))
        rows.append(store.DrawingRow(**row, answers=[store.AnswerRow(**a) for a in answers]))
    with Session(kept._engine) as session, session.begin():
        session.add_all(rows)
assert kept.count() == len(x), kept.count()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_once(path: Path, way: str) -> tuple[float, float]:
    """Seconds and peak MiB of one import into a new store."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/kept.sqlite"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), url, way], capture_output=True, text=True, check=True
        )
        return time.perf_counter() - started, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", type=int, default=20_000, help="drawings per import (default 20,000)")
    parser.add_argument("--runs", type=int, default=3, help="imports per way (default 3)")
    args = parser.parse_args()
    from digitdraw import load_mnist

    (x, y), _ = load_mnist()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "drawings.npz"
        np.savez(path, x=x[: args.drawings], y=y[: args.drawings])
        print(f"{args.drawings:,} MNIST digits, {args.runs} imports each, one process each (this machine)")
        print(f"{'way':<34}{'median s':>10}{'p95 s':>10}{'median MiB':>12}{'p95 MiB':>10}")
        for way, label in (
            ("batched", "batches, bulk inserts (now)"),
            ("orm", "one transaction, ORM objects"),
        ):
            runs = [run_once(path, way) for _ in range(args.runs)]
            seconds, memory = [run[0] for run in runs], [run[1] for run in runs]
            print(
                f"{label:<34}{statistics.median(seconds):>10.1f}{np.percentile(seconds, 95):>10.1f}"
                f"{statistics.median(memory):>12.0f}{np.percentile(memory, 95):>10.0f}"
            )


if __name__ == "__main__":
    main()
