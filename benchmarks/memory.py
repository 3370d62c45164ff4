"""What the app's two processes hold: the Streamlit server's resident memory before any session, after a
drawing and after a visit to every page (Chromium driving it), and a training worker's after importing
TensorFlow and after preparing MNIST, with what the prepared arrays themselves take.

    .venv/bin/python -m benchmarks.memory
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
PAGES = ("inside", "training_curves", "confusion_matrix", "compare", "your_drawings", "read_number", "train")

# A worker's start, in a child process of its own: TensorFlow, then the data every job trains on.
WORKER = """
import resource
import tensorflow
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"worker, TensorFlow imported: {peak():.0f} MB")
from digitdraw.jobs.worker import _LastDataset
from digitdraw.learning.config import NetworkSettings
data = _LastDataset()(NetworkSettings(name="warm-up", hidden=(16,), activation="sigmoid"))
arrays = (data.x_train, data.x_validation, data.x_test, data.x_drawn)
print(
    f"worker, MNIST prepared: {peak():.0f} MB, of which the arrays "
    f"{sum(a.nbytes for a in arrays) / 2**20:.0f} MB"
)
"""


def resident_megabytes(pid: int) -> float:
    """A process's resident memory now."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def server() -> None:
    """The server's memory as sessions use it."""
    from harness import CHROMIUM, CHROMIUM_FLAGS, LAPTOP, STROKES, draw, streamlit_server
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as folder,
        streamlit_server(Path(folder) / "streamlit.log") as running,
        sync_playwright() as playwright,
    ):
        print(f"server, no session yet: {resident_megabytes(running.pid):.0f} MB")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_context(**LAPTOP).new_page()
        page.goto(running.url)
        page.get_by_text("Draw a digit on the canvas").wait_for(timeout=60_000)
        draw(page, STROKES[7])
        page.wait_for_timeout(2_000)
        print(f"server, after a drawing: {resident_megabytes(running.pid):.0f} MB")
        for path in PAGES:
            page.goto(f"{running.url}/{path}")
            page.wait_for_timeout(6_000)
        print(f"server, after every page: {resident_megabytes(running.pid):.0f} MB")
        browser.close()


def main() -> None:
    """Print both processes' figures."""
    server()
    environment = {"OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER], capture_output=True, text=True, check=True, env=environment
    )
    print(done.stdout.strip())


if __name__ == "__main__":
    main()
