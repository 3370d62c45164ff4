"""The package's layers, kept by import-linter's contracts in pyproject.toml: serving at the bottom, then
learning, explaining and reading, drawings, jobs, and the command line and UI on top; serving never
imports TensorFlow or Keras; the job queue's schema never imports the training loop; only the UI imports
Streamlit; no two modules of a package import each other, even through a chain.

grimp, import-linter's graph, counts imports inside functions as well as those at the top of a module,
so a "lazy" import cannot hide an upward edge. The contracts are also run on a copy of the package with one
deliberate bad edge each, to show that each of them would fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
)


def _lint(folder: Path) -> subprocess.CompletedProcess:
    """Run every contract on the package in ``folder`` (which holds pyproject.toml and digitdraw/)."""
    return subprocess.run(
        [sys.executable, "-c", LINT], cwd=folder, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_contract_is_kept_by_the_package():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and result.stdout.count("KEPT") == 5


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, to add a bad edge to."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "digitdraw", tmp_path / "digitdraw", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _add_import(folder: Path, module: str, statement: str) -> None:
    """Append ``statement`` inside a function at the end of a module, as a lazy import would hide it."""
    path = folder / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n\ndef _deliberate_edge():\n    {statement}\n")


@pytest.mark.parametrize(
    ("module", "statement", "broken"),
    [
        # The cycle the package once had, inference -> calibration -> train -> ... -> inference, starts
        # with serving importing a fitting module: an upward edge.
        (
            "digitdraw.serving.inference",
            "from digitdraw.learning import calibration",
            "Each layer imports only the layers below it",
        ),
        ("digitdraw.serving.networks", "import keras", "Serving never imports TensorFlow or Keras"),
        (
            "digitdraw.jobs.queue",
            "from digitdraw.learning.train import train_network",
            "The job queue's schema does not import the training loop",
        ),
        ("digitdraw.learning.calibration", "import streamlit", "Only the UI imports Streamlit"),
        # preprocess is imported by inference; inference imported back by preprocess closes a loop.
        (
            "digitdraw.serving.preprocess",
            "from digitdraw.serving import inference",
            "No import cycle between the modules of any package",
        ),
    ],
)
def test_each_contract_fails_on_a_deliberate_bad_edge(package_copy, module, statement, broken):
    _add_import(package_copy, module, statement)
    result = _lint(package_copy)
    assert result.returncode != 0
    assert f"{broken} BROKEN" in result.stdout
    assert result.stdout.count("BROKEN") >= 1 and result.stdout.count("KEPT") >= 1


def test_classifying_a_drawing_loads_serving_alone():
    script = (
        "import sys, digitdraw, numpy as np; "
        "digitdraw.classify(np.zeros((280, 280, 4), np.uint8)); "
        "print(' '.join(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    loaded = result.stdout.split()
    ours = {name for name in loaded if name.startswith("digitdraw.")}
    assert "digitdraw.serving.inference" in ours
    assert all(name.startswith("digitdraw.serving") for name in ours), ours
    assert not [name for name in loaded if name.split(".")[0] in ("tensorflow", "keras", "streamlit")]


def test_the_public_names_of_the_layers_above_serving_load_on_first_use():
    import digitdraw
    from digitdraw.learning.data import load_mnist
    from digitdraw.reading.read import NumberReading, read_digits

    assert (digitdraw.load_mnist, digitdraw.read_digits) == (load_mnist, read_digits)
    assert digitdraw.NumberReading is NumberReading
    with pytest.raises(AttributeError, match="no attribute 'classifyy'"):
        digitdraw.classifyy  # noqa: B018
