"""Self-describing saved models: written atomically, read back with every check.

Each model lives in ``saved_models/model_<id>/`` as three files: the Keras
model (``model.keras``), its per-epoch history (``history.json``) and its
metrics (``metrics.json``: accuracies, confusion matrix, per-class scores,
seed, data checksum, library versions and the sha256 of ``model.keras``).

Atomicity: the three files are written into a hidden sibling folder, which
then replaces the old folder by two renames. A crash at any point leaves
either the old model or the new one, never a mixture; the only window, between
the two renames, is healed by ``recover`` the next time anything reads or
writes the folder.

The app reads the weights straight out of the ``.keras`` zip with h5py, so
serving predictions never imports TensorFlow; a test checks that these
weights give the same probabilities as ``keras.saving.load_model``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitdraw.models import DenseNetwork, ModelSpec, get_spec, saved_models_dir

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
_BACKUP_SUFFIX = ".previous"


class SavedModelError(RuntimeError):
    """A saved model is missing, damaged or inconsistent; the message says how to fix it."""


@dataclass(frozen=True)
class SavedModel:
    """Everything saved for one model: its spec, weights, history and metrics."""

    spec: ModelSpec
    network: DenseNetwork
    history: dict[str, Any]
    metrics: dict[str, Any]
    directory: Path


def model_dir(model_id: int, root: Path | None = None) -> Path:
    """The folder that holds a model's files."""
    return (root or saved_models_dir()) / get_spec(model_id).directory_name


def retrain_hint(model_id: int) -> str:
    """The command that rebuilds one model's files."""
    return f"python -m digitdraw train --model {model_id}"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recover(directory: Path) -> None:
    """Put back the previous model if a save stopped between its two renames."""
    backup = directory.with_name(directory.name + _BACKUP_SUFFIX)
    if backup.exists():
        if directory.exists():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(backup, directory)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Someone else's process: alive, just not ours to signal.
    return True


def remove_abandoned_staging(directory: Path) -> None:
    """Delete staging folders left by a save whose process was killed (SIGKILL leaves no cleanup)."""
    for staging in directory.parent.glob(f".{directory.name}.*.tmp"):
        pid = staging.name[len(directory.name) + 2 :].split(".")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=1)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def save(directory: Path, keras_model, history: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write model, history and metrics so that ``directory`` is replaced whole or not at all."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    recover(directory)
    remove_abandoned_staging(directory)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{directory.name}.{os.getpid()}.", suffix=".tmp", dir=directory.parent)
    )
    staging.chmod(0o755)  # mkdtemp makes it private; a saved model is meant to be shared.
    try:
        keras_model.save(staging / MODEL_FILE)
        with open(staging / MODEL_FILE, "rb") as handle:
            os.fsync(handle.fileno())
        metrics = {**metrics, "model_sha256": sha256_of(staging / MODEL_FILE)}
        _write_json(staging / HISTORY_FILE, history)
        _write_json(staging / METRICS_FILE, metrics)
        backup = directory.with_name(directory.name + _BACKUP_SUFFIX)
        if directory.exists():
            os.replace(directory, backup)
        os.replace(staging, directory)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _layer_order(name: str) -> int:
    # Keras names the weights of successive Dense layers dense, dense_1, dense_2...
    match = re.fullmatch(r"dense(?:_(\d+))?", name)
    return int(match.group(1) or 0) if match else -1


def read_weights(path: Path, content: bytes | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Dense kernels and biases from a ``.keras`` file (or its bytes), in layer order, without TensorFlow."""
    import h5py

    try:
        with zipfile.ZipFile(io.BytesIO(content) if content is not None else path) as archive:
            raw = archive.read("model.weights.h5")
        with h5py.File(io.BytesIO(raw), "r") as weights_file:
            layers = weights_file["layers"]
            names = sorted((n for n in layers if _layer_order(n) >= 0), key=_layer_order)
            kernels = [np.asarray(layers[n]["vars"]["0"]) for n in names]
            biases = [np.asarray(layers[n]["vars"]["1"]) for n in names]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise SavedModelError(f"{path} is not a readable Keras model file ({error})") from error
    return kernels, biases


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise SavedModelError(f"{path.name} is missing") from None
    except (OSError, ValueError) as error:
        raise SavedModelError(f"{path.name} is not valid JSON ({error})") from error
    if not isinstance(payload, dict):
        raise SavedModelError(f"{path.name} should hold a JSON object")
    return payload


def _check_history(history: dict[str, Any]) -> None:
    epochs = history.get("epoch")
    if not isinstance(epochs, list) or not epochs:
        raise SavedModelError(f"{HISTORY_FILE} has no list of epochs")
    for split in ("train", "validation", "test"):
        curves = history.get(split)
        if not isinstance(curves, dict):
            raise SavedModelError(f"{HISTORY_FILE} has no {split} curves")
        for metric in ("loss", "accuracy"):
            values = curves.get(metric)
            if not isinstance(values, list) or len(values) != len(epochs):
                raise SavedModelError(f"{HISTORY_FILE} has {split} {metric} for a different number of epochs")
            if not all(isinstance(value, (int, float)) for value in values):
                raise SavedModelError(f"{HISTORY_FILE} has non-numeric {split} {metric} values")


def _check_metrics(metrics: dict[str, Any], spec: ModelSpec, history: dict[str, Any]) -> None:
    if metrics.get("model_id") != spec.id or metrics.get("architecture") != spec.architecture:
        raise SavedModelError(f"{METRICS_FILE} describes another model ({metrics.get('architecture')})")
    accuracy = metrics.get("accuracy")
    if not isinstance(accuracy, dict) or not all(
        isinstance(accuracy.get(split), (int, float)) and 0 <= accuracy[split] <= 1
        for split in ("train", "validation", "test", "drawn")
    ):
        raise SavedModelError(f"{METRICS_FILE} lacks train, validation, test and drawn accuracies in [0, 1]")
    matrix = np.asarray(metrics.get("confusion_matrix", []))
    if matrix.shape != (10, 10):
        raise SavedModelError(
            f"{METRICS_FILE} has a confusion matrix of shape {matrix.shape}, expected (10, 10)"
        )
    predictions = metrics.get("test_predictions")
    if not isinstance(predictions, list) or len(predictions) != int(matrix.sum()):
        raise SavedModelError(
            f"{METRICS_FILE} lists test predictions that disagree with its confusion matrix"
        )
    if metrics.get("epochs_run") != len(history["epoch"]):
        raise SavedModelError(f"{HISTORY_FILE} and {METRICS_FILE} disagree on the number of epochs")


def load(model_id: int, root: Path | None = None) -> SavedModel:
    """Load and cross-check one saved model, or raise SavedModelError naming the fix."""
    spec = get_spec(model_id)
    directory = model_dir(model_id, root)
    try:
        recover(directory)
        if not directory.is_dir():
            raise SavedModelError(f"no saved model in {directory}")
        model_path = directory / MODEL_FILE
        if not model_path.is_file():
            raise SavedModelError(f"{MODEL_FILE} is missing")
        metrics = _read_json(directory / METRICS_FILE)
        history = _read_json(directory / HISTORY_FILE)
        # Read once: the same bytes are checksummed and then unpacked.
        content = model_path.read_bytes()
        if metrics.get("model_sha256") != hashlib.sha256(content).hexdigest():
            raise SavedModelError(f"{METRICS_FILE} describes a different {MODEL_FILE}")
        _check_history(history)
        _check_metrics(metrics, spec, history)
        kernels, biases = read_weights(model_path, content)
        shapes = [kernel.shape for kernel in kernels]
        expected = list(zip(spec.layer_sizes, spec.layer_sizes[1:]))
        if shapes != expected:
            raise SavedModelError(f"{MODEL_FILE} has layers {shapes}, expected {expected}")
        network = DenseNetwork(kernels, biases, spec.activation)
    except SavedModelError as error:
        raise SavedModelError(
            f"Model {model_id} cannot be loaded: {error}. Retrain it with `{retrain_hint(model_id)}`"
        ) from error
    return SavedModel(spec=spec, network=network, history=history, metrics=metrics, directory=directory)
