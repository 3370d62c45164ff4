"""Training killed mid-run (Ctrl-C or SIGKILL) leaves the saved model intact, and a new run starts cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitdraw.serving import saved_models

ROOT = Path(__file__).resolve().parents[1]
QUICK_RUN = ["--model", "1", "--limit", "500", "--drawn", "20", "--seed", "3", "--no-baseline"]


def _train(out: Path, epochs: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "digitdraw",
        "train",
        *QUICK_RUN,
        "--epochs",
        str(epochs),
        "--out",
        str(out),
    ]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
        # A shell without job control starts background commands with Ctrl-C ignored, and
        # the child would inherit that; this child must take Ctrl-C as a terminal user would.
        preexec_fn=_take_ctrl_c,
    )


def _take_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_an_epoch(process: subprocess.Popen, seconds: float = 120) -> None:
    """Read the progress bar until the first epoch has finished: training is then under way."""
    deadline = time.monotonic() + seconds
    for line in process.stderr:
        if line.startswith("Model 1 (improved recipe) ["):
            return
        if time.monotonic() > deadline:
            break
    process.kill()
    pytest.fail(f"training never reported an epoch (exit code {process.wait()})")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_a_killed_run_leaves_the_previous_model_and_a_new_run_starts_cleanly(signal_number, tmp_path):
    out = tmp_path / "saved_models"
    folder = saved_models.model_dir(1, out)
    shutil.copytree(saved_models.model_dir(1), folder)
    before = _files(folder)

    process = _train(out, epochs=200)
    _wait_for_an_epoch(process)
    process.send_signal(signal_number)
    code = process.wait(timeout=60)
    process.stderr.close()
    process.stdout.close()
    assert code != 0
    if signal_number == signal.SIGINT:
        assert code == 130  # The CLI's own message and exit code for Ctrl-C.

    assert _files(folder) == before
    assert saved_models.load(1, out).card.model_sha256 == saved_models.load(1).card.model_sha256

    rerun = _train(out, epochs=1)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert "Model 1 784-16-16-10" in stdout  # The end-of-run summary.
    assert saved_models.load(1, out).card.epochs_run == 1
    assert [p.name for p in out.iterdir()] == [folder.name], "no staging or backup folder is left behind"
