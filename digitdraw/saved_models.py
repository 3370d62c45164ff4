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
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
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


def read_weights(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Dense kernels and biases from a ``.keras`` file, in layer order, without TensorFlow."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive:
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
        if metrics.get("model_sha256") != sha256_of(model_path):
            raise SavedModelError(f"{METRICS_FILE} describes a different {MODEL_FILE}")
        kernels, biases = read_weights(model_path)
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
