"""The saved-model format: one versioned, typed schema, written atomically, read back with every check.

A saved model is a folder of four files: ``saved_models/model_<id>/`` for the
study's networks, ``saved_models/custom/<name>/`` for one someone trained
(``python -m digitdraw train --name``, or the Train page):

- ``model.json``, the ``ModelCard``: the format version, which model this is,
  its architecture as a list of layers, how it was trained (settings, seed,
  data checksum and splits, preprocessing fingerprint, library versions) and
  the sha256 of the weights file;
- ``model.keras``, the weights, in Keras's own format;
- ``history.json``, the ``History``: loss and accuracy per epoch on the
  training, validation and test splits;
- ``metrics.json``, the ``Metrics``: the kept epoch's accuracies and losses,
  confusion matrix, per-class scores and every test prediction, and, for a
  run that trained on the drawings users kept, how many and how it reads the
  held-out ones (``KeptDrawingsRecord``);
- optionally ``calibration.json``, the ``Calibration``: the temperature that
  makes the stated confidence honest, the digit score's method and threshold,
  and calibration figures, with ``novelty.npz``, the arrays the digit
  score needs (``digit_score.ClassDensity`` and ``digit_score.LearnedScore``),
  fitted for these exact weights by ``python -m digitdraw calibrate``
  (``digitdraw.learning.calibration``). A model without it answers with its
  raw probabilities and no digit score.

Every key of those files is a field of the pydantic models below and is
spelled nowhere else. Each file carries ``format_version``, and there is one
version: a file written in another is refused with a message naming both
versions and the command that rewrites it (``python -m digitdraw models
upgrade`` for the version before, retraining for anything older), rather
than read half-right. The reader has no branch for older files.

Atomicity: the files are written into a hidden sibling folder, which then
replaces the old folder by two renames. A crash at any point leaves either
the old model or the new one, never a mixture; the only window, between the
two renames, is healed by ``recover`` the next time anything reads or writes
the folder.

The app reads the weights straight out of the ``.keras`` zip with h5py, so
serving predictions never imports TensorFlow; a test checks that these
weights give the same probabilities as ``keras.saving.load_model``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import typing
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import pydantic

from digitdraw.serving.files import DeclaredTooLarge, atomic_write, load_npz_bytes, sha256
from digitdraw.serving.networks import (
    CUSTOM_FOLDER,
    CUSTOM_NAME,
    NUM_CLASSES,
    REGISTRY,
    Architecture,
    ModelId,
    ModelSpec,
    Network,
    check_custom_name,
    check_model_id,
    get_spec,
    is_custom,
    saved_models_dir,
)

# Size limits, checked before anything is read or allocated: the largest network the app trains
# (784-512-512-512-10, under a million weights) fits many times over; a tampered file does not.
MAX_MODEL_FILE_BYTES = 64 * 2**20
MAX_NOVELTY_FILE_BYTES = 64 * 2**20
MAX_WEIGHTS = 10_000_000
FORMAT_VERSION = 4
# The version ``python -m digitdraw models upgrade`` rewrites in this one; anything older is retrained.
UPGRADABLE_VERSION = 3
CARD_FILE = "model.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
CALIBRATION_FILE = "calibration.json"
NOVELTY_FILE = "novelty.npz"
FILES = (CARD_FILE, MODEL_FILE, HISTORY_FILE, METRICS_FILE)
OPTIONAL_FILES = (CALIBRATION_FILE, NOVELTY_FILE)
_BACKUP_SUFFIX = ".previous"

Fraction = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]
CurveSplit = Literal["train", "validation", "test"]
# Accuracy is also measured on drawn digits, which have no per-epoch curve.
ScoredSplit = Literal["train", "validation", "test", "drawn"]


@dataclass(frozen=True)
class SplitRange:
    """Which images of which MNIST file a training split holds: ``source[start:stop]``."""

    source: Literal["mnist-train", "mnist-test"]
    start: int
    stop: int

    @property
    def size(self) -> int:
        """How many images the split holds."""
        return self.stop - self.start


class SavedModelError(RuntimeError):
    """A saved model is missing, damaged, inconsistent or of another format; the message says what to do."""


class _Schema(pydantic.BaseModel):
    # Unknown keys are errors: a misspelt key must not pass for a missing optional one.
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION


class Curves(pydantic.BaseModel):
    """One split's loss and accuracy after every epoch."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    loss: list[float]
    accuracy: list[Fraction]


class History(_Schema):
    """Per-epoch curves of one training run, and the epoch whose weights were kept."""

    epoch: list[int] = pydantic.Field(min_length=1)
    train: Curves
    validation: Curves
    test: Curves
    best_epoch: int

    @pydantic.model_validator(mode="after")
    def _curves_cover_every_epoch(self) -> History:
        for split in ("train", "validation", "test"):
            curves = getattr(self, split)
            if len(curves.loss) != len(self.epoch) or len(curves.accuracy) != len(self.epoch):
                raise ValueError(f"{split} curves cover a different number of epochs than 'epoch'")
        if self.best_epoch not in self.epoch:
            raise ValueError(f"best_epoch {self.best_epoch} is not one of the epochs")
        return self

    def curve(self, split: CurveSplit, metric: Literal["loss", "accuracy"]) -> list[float]:
        """One split's values of one metric, epoch by epoch."""
        return getattr(getattr(self, split), metric)


class PerClass(pydantic.BaseModel):
    """Precision, recall, F1 and number of test images for each digit."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    precision: list[Fraction] = pydantic.Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)
    recall: list[Fraction] = pydantic.Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)
    f1: list[Fraction] = pydantic.Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)
    support: list[int] = pydantic.Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)


class RecipeBaseline(pydantic.BaseModel):
    """The same network trained in the same run by another recipe (the study's), as a measured
    baseline: which recipe, and its kept weights' accuracy per split."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    recipe: str
    accuracy: dict[ScoredSplit, Fraction]
    epochs_run: int
    training_seconds: float


class KeptDrawingsRecord(pydantic.BaseModel):
    """The drawings users kept that a model was trained on beside MNIST (``kept_drawings``): how many, how
    they were split, and how the model (and the one it replaced) reads the held-out ones, never trained on."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    source: str  # The store's URL (password hidden) or the exported .npz they were read from.
    kept: int = pydantic.Field(ge=0)  # How many drawings the store held when the run read it.
    trained: int = pydantic.Field(ge=0)  # Of those, the training part, each seen ``repeats`` times an epoch.
    held_out: int = pydantic.Field(ge=0)  # The held-out part: never trained on, chooses nothing.
    held_out_share: Fraction
    # Which drawings are held out, by what each shows: the same ones in every run, however many are kept.
    split_rule: str
    repeats: int = pydantic.Field(ge=1)
    accuracy: Fraction  # On the held-out part.
    # The model this run replaced, on the same held-out drawings; None when there was none to load.
    accuracy_before: Fraction | None = None
    model_before_sha256: str | None = None

    def summary(self) -> str:
        """The held-out accuracy in a few words, beside that of the model the run replaced."""
        before = "no model before" if self.accuracy_before is None else f"before {self.accuracy_before:.2%}"
        return f"held-out kept drawings {self.accuracy:.2%} of {self.held_out} ({before})"

    @pydantic.model_validator(mode="after")
    def _parts_add_up(self) -> KeptDrawingsRecord:
        if self.trained + self.held_out != self.kept:
            raise ValueError(
                f"{self.trained} trained and {self.held_out} held out do not make {self.kept} kept"
            )
        return self


class Metrics(_Schema):
    """How the kept weights score: accuracy and loss per split, and the test set in detail."""

    accuracy: dict[ScoredSplit, Fraction]
    loss: dict[ScoredSplit, float]
    confusion_matrix: list[list[int]]
    per_class: PerClass
    # Kept so that the app can show which test images fell into each cell of
    # the matrix without preprocessing the test set again.
    test_predictions: list[int]
    # None when the run trained no other recipe beside this one.
    baseline: RecipeBaseline | None = None
    # None when the run trained on MNIST alone.
    kept_drawings: KeptDrawingsRecord | None = None

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Metrics:
        missing = {"train", "validation", "test", "drawn"} - set(self.accuracy)
        if missing:
            raise ValueError(f"accuracy lacks the splits {sorted(missing)}")
        matrix = np.asarray(self.confusion_matrix)
        if matrix.shape != (NUM_CLASSES, NUM_CLASSES):
            raise ValueError(f"the confusion matrix has shape {matrix.shape}, expected (10, 10)")
        if len(self.test_predictions) != int(matrix.sum()):
            raise ValueError("the test predictions disagree with the confusion matrix")
        return self


class DataRecord(pydantic.BaseModel):
    """What a model was trained and scored on."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    sha256: str  # Of the MNIST arrays (``data.data_checksum``).
    splits: dict[CurveSplit, SplitRange]
    drawn_size: int  # Drawn digits made from MNIST test digits (``drawn.drawn_evaluation_set``).
    preprocess_fingerprint: str  # ``preprocess.fingerprint()`` when the model was trained.


# How an opened network's output was read: its probabilities, or logits that DigitDraw's softmax turns
# into probabilities (the saved network then ends in a softmax either way).
OpenedOutput = Literal["probabilities", "logits"]


class OpenedRecord(pydantic.BaseModel):
    """Where a network opened from a file came from (``python -m digitdraw models add``), and what opening
    it decided: how its output and its input were read, and what was changed on the way in."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    file_name: str  # As the person gave it; shown, never used as a path.
    file_sha256: str
    file_format: Literal["keras", "npz"]
    output: OpenedOutput
    input_scaling: str  # In words, e.g. "pixels 0 to 255"; the numbers are the architecture's.
    # Accuracy and mean loss on a few MNIST test digits with each input scaling tried; the lowest loss chose.
    scaling_accuracy: dict[str, Fraction] = {}
    scaling_loss: dict[str, float] = {}
    notes: list[str] = []  # What changed on the way in: a BatchNormalization folded, a Dropout dropped.
    opened_seconds: float = 0.0


class ModelCard(_Schema):
    """What a saved model is and how it came to be: trained here, or opened from a file (``opened``), in
    which case it has no training run (``epochs_run`` 0) and no history file."""

    # The study's id (an int), or the name of a network someone trained (a str).
    model_id: int | str
    architecture: Architecture
    parameters: int
    epochs_run: int
    best_epoch: int
    training_seconds: float
    seed: int
    config: dict[str, Any]  # The training settings (``config.TrainConfig`` or ``config.NetworkSettings``).
    data: DataRecord
    versions: dict[str, str]
    trained_at: str  # ISO 8601, UTC: when it was trained, or opened.
    model_sha256: str = ""  # Filled in by ``save`` from the weights file it writes.
    opened: OpenedRecord | None = None  # None for a network trained here.

    @property
    def has_history(self) -> bool:
        """Whether the model has training curves: every model trained here, none opened from a file."""
        return self.opened is None


class ReliabilityRecord(pydantic.BaseModel):
    """A reliability diagram's bins (equal width from 0 to 1) and the expected calibration error."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    counts: list[int]
    confidence: list[Fraction | None]  # Mean confidence per bin; None where a bin is empty.
    accuracy: list[Fraction | None]
    ece: Fraction

    def share_right(self) -> float:
        """The accuracy over every bin: the share of the set's digits read right."""
        total = sum(self.counts)
        if total == 0:
            return float("nan")
        right = sum(count * accuracy for count, accuracy in zip(self.counts, self.accuracy) if count)
        return right / total


class CommitteeRecord(pydantic.BaseModel):
    """The other model a committee digit score reads, and what the model uses when that one cannot answer."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    model_id: int | str  # The committee member (``calibration.COMMITTEE_MEMBER`` when fitted).
    model_sha256: str  # Its weights when fitted; other weights, or none, mean the fallback is used.
    # Its best method that reads no other model (chosen on the tuning part too) and that threshold.
    fallback_method: str
    fallback_threshold: float


# The sets a calibration file has figures for: MNIST test and digits drawn from it, and the digits by
# other hands, ``evalsets.OTHER_HANDS``.
CalibrationSet = Literal["test", "drawn", "scanned", "hershey"]


class NoveltyRecord(pydantic.BaseModel):
    """How the digit score is computed and where it stops calling an input a digit."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    method: str  # One of ``digit_score.METHODS``.
    threshold: float  # Scores below this are "not a digit".
    keep_rate: Fraction  # The share of reference digits the threshold keeps.
    reference: str  # What those reference digits were.
    # Share of the tuning non-digits each candidate method flagged at its own threshold; the best was chosen.
    tuning_flagged: dict[str, Fraction] = {}
    # Mean and spread of each component score on MNIST validation images, for methods that add scores.
    scales: dict[str, tuple[float, float]] = {}
    statistics_sha256: str  # Of the novelty.npz holding the fitted arrays.
    # None unless the method reads another model (a committee method, ``digit_score.COMMITTEE_METHODS``).
    committee: CommitteeRecord | None = None
    # The share of each set's digits (all of them digits) that the threshold calls "not a digit", as the
    # app answers (with the committee member when there is one).
    turned_away: dict[CalibrationSet, Fraction]


class Calibration(_Schema):
    """What ``python -m digitdraw calibrate`` fitted for one model's weights, and how calibrated it is."""

    model_sha256: str  # The weights it was fitted for; other weights make the file stale.
    temperature: float = pydantic.Field(gt=0.0)  # Fitted on the validation split by minimising NLL.
    novelty: NoveltyRecord
    # Per set (``CalibrationSet``): reliability before and after temperature scaling.
    reliability: dict[CalibrationSet, dict[Literal["raw", "calibrated"], ReliabilityRecord]]
    fitted_at: str  # ISO 8601, UTC.

    @pydantic.model_validator(mode="after")
    def _every_set_measured(self) -> Calibration:
        sets = set(typing.get_args(CalibrationSet))
        for what, measured in (("reliability", self.reliability), ("turned_away", self.novelty.turned_away)):
            if set(measured) != sets:
                raise ValueError(f"{what} must cover the sets {sorted(sets)}, got {sorted(measured)}")
        return self


def rewrite_hint(version: object) -> str:
    """What rewrites a file written in another version of the format, in words for people."""
    if version == UPGRADABLE_VERSION:
        return "rewrite it with `python -m digitdraw models upgrade`"
    return "retrain the model (`python -m digitdraw train`) to write it anew"


def calibrate_hint(model_id: int) -> str:
    """The command that refits one model's calibration file."""
    return f"python -m digitdraw calibrate --model {model_id}"


RecordT = TypeVar("RecordT", bound=_Schema)


@dataclass(frozen=True)
class SavedModel:
    """Everything saved for one model, checked, with its weights ready for the NumPy forward pass."""

    card: ModelCard
    network: Network
    history: History | None  # None for a network opened from a file: no training run to show.
    metrics: Metrics
    directory: Path
    calibration: Calibration | None = None  # None when the model was never calibrated.
    novelty_arrays: dict[str, np.ndarray] | None = None  # novelty.npz's arrays, with the calibration.

    @property
    def spec(self) -> ModelSpec | None:
        """The study's registry entry for this model; None for a network someone trained."""
        return None if is_custom(self.card.model_id) else REGISTRY[self.card.model_id]


def model_dir(model_id: ModelId, root: Path | None = None) -> Path:
    """The folder that holds a model's files: ``model_<id>/``, or ``custom/<name>/``."""
    root = root or saved_models_dir()
    if is_custom(model_id):
        return root / CUSTOM_FOLDER / check_custom_name(model_id)
    return root / get_spec(model_id).directory_name


def retrain_hint(model_id: ModelId) -> str:
    """The command that rebuilds one model's files."""
    if is_custom(model_id):
        return (
            f"python -m digitdraw train --name {model_id} --force (with the settings it was trained with), "
            f"or, for a network opened from a file, `python -m digitdraw models remove {model_id}` and add "
            "it again"
        )
    return f"python -m digitdraw train --model {model_id}"


def custom_names(root: Path | None = None) -> list[str]:
    """The names of the networks someone trained under ``root/custom/``, sorted.

    Folders whose names are not network names (a save's hidden staging folder,
    anything a person put there) are not networks and are left out.
    """
    try:
        entries = list(os.scandir((root or saved_models_dir()) / CUSTOM_FOLDER))
    except OSError:
        return []  # No custom/ folder yet: nobody has trained a network.
    return sorted(entry.name for entry in entries if CUSTOM_NAME.fullmatch(entry.name) and entry.is_dir())


def delete_custom(name: str, root: Path | None = None) -> bool:
    """Delete a network someone trained; False if there is none of that name. The study's cannot be.

    The folder is first renamed out of sight, so that no reader ever sees half of it.
    """
    directory = model_dir(check_custom_name(name), root)
    doomed = directory.with_name(f".{directory.name}.{os.getpid()}.deleted.tmp")
    try:
        os.replace(directory, doomed)
    except FileNotFoundError:
        return False
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def recover(directory: Path) -> None:
    """Put back the previous model if a save stopped between its two renames."""
    backup = directory.with_name(directory.name + _BACKUP_SUFFIX)
    if backup.exists():
        if directory.exists():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(backup, directory)


def process_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command's name (its state first, as ``man 5 proc``
    numbers them from 3), or None where there is no such process or no ``/proc``."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    """Whether a process of this host is running (someone else's counts too).

    A process killed but not yet reaped by its parent (a zombie) is not: it
    will never run again, although signals still find it.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # Someone else's process: alive unless a zombie, just not ours to signal.
    fields = process_stat(pid)
    return fields is None or fields[0] != "Z"  # Without /proc, a signal found it, so it runs.


def remove_abandoned_staging(directory: Path) -> None:
    """Delete staging folders left by a save whose process was killed (SIGKILL leaves no cleanup)."""
    for staging in directory.parent.glob(f".{directory.name}.*.tmp"):
        pid = staging.name[len(directory.name) + 2 :].split(".")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _write(path: Path, record: pydantic.BaseModel) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(record.model_dump_json(indent=1))
        handle.write("\n")


def save(
    directory: Path,
    keras_model,
    card: ModelCard,
    history: History | None,
    metrics: Metrics,
    overwrite: bool = True,
) -> None:
    """Write a model's files (no history for a network opened from a file, which must have none) so that
    ``directory`` is replaced whole or not at all; without
    ``overwrite``, a SavedModelError if a model is there by then (checked by the rename itself, so two
    runs of one name cannot both think they saved)."""
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
            content = handle.read()
        _write(staging / CARD_FILE, card.model_copy(update={"model_sha256": sha256(content)}))
        if (history is None) == card.has_history:
            raise ValueError(
                "expected a history exactly for a model trained here, not one opened from a file"
            )
        if history is not None:
            _write(staging / HISTORY_FILE, history)
        _write(staging / METRICS_FILE, metrics)
        if not overwrite:
            try:
                # Renaming a folder onto a folder that holds files fails: the check and the save are one.
                os.rename(staging, directory)
            except OSError:
                if not directory.exists():
                    raise
                raise SavedModelError(
                    f"a model was saved in {directory} meanwhile; it is kept, and this one was not saved"
                ) from None
            return
        backup = directory.with_name(directory.name + _BACKUP_SUFFIX)
        if directory.exists():
            os.replace(directory, backup)
        os.replace(staging, directory)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# The Keras layer classes that hold weights, and the name Keras 3 gives each one's weight group in
# model.weights.h5: per class, in the model's layer order, ``dense``, ``dense_1``, ``dense_2``... and
# ``conv2d``, ``conv2d_1``..., whatever the layers themselves are called.
_WEIGHT_GROUPS = {"Dense": "dense", "Conv2D": "conv2d"}
# The members of a .keras file that hold the weights and the layers' order.
_WEIGHTS_MEMBER = "model.weights.h5"
_CONFIG_MEMBER = "config.json"


def _weight_group_names(config: dict) -> list[str]:
    """The weight groups of a Sequential model's layers in the model's own order, from its config.json."""
    counts: dict[str, int] = {}
    names = []
    for layer in config["config"]["layers"]:
        base = _WEIGHT_GROUPS.get(layer["class_name"])
        if base is not None:
            count = counts.get(base, 0)
            names.append(base if count == 0 else f"{base}_{count}")
            counts[base] = count + 1
    return names


def read_weights(content: bytes) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Dense and Conv2D kernels and biases, in layer order, from a ``.keras`` file's bytes, without
    TensorFlow. The order comes from the file's config.json, since the weights file names its groups
    per layer class (all convolutions, then all dense layers, whatever order they run in)."""
    import h5py

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            # Sizes as the zip declares them, before anything is inflated: a small file may hold a huge one.
            for member in (_WEIGHTS_MEMBER, _CONFIG_MEMBER):
                if archive.getinfo(member).file_size > MAX_MODEL_FILE_BYTES:
                    raise SavedModelError(
                        f"{MODEL_FILE}'s {member} unpacks to more than {MAX_MODEL_FILE_BYTES:,} bytes"
                    )
            raw = archive.read(_WEIGHTS_MEMBER)
            names = _weight_group_names(json.loads(archive.read(_CONFIG_MEMBER)))
        with h5py.File(io.BytesIO(raw), "r") as weights_file:
            layers = weights_file["layers"]
            variables = [layers[n]["vars"][k] for n in names for k in ("0", "1")]
            # Shapes from the file's metadata, before any array is read.
            count = sum(int(np.prod(variable.shape, dtype=np.int64)) for variable in variables)
            if count > MAX_WEIGHTS:
                raise SavedModelError(
                    f"{MODEL_FILE} declares {count:,} weights; a network has at most {MAX_WEIGHTS:,}"
                )
            arrays = [np.asarray(variable) for variable in variables]
            kernels, biases = arrays[0::2], arrays[1::2]
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as error:
        raise SavedModelError(f"{MODEL_FILE} is not a readable Keras model file ({error})") from error
    return kernels, biases


def _read_bytes(path: Path, limit: int) -> bytes:
    """A file's bytes, its size checked against ``limit`` before it is read; SavedModelError otherwise."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise SavedModelError(f"{path.name} is not a file")
        if size > limit:
            raise SavedModelError(f"{path.name} is {size:,} bytes; a saved model's is at most {limit:,}")
        return path.read_bytes()
    except FileNotFoundError:
        raise SavedModelError(f"{path.name} is missing") from None
    except OSError as error:
        raise SavedModelError(f"{path.name} cannot be read ({error.strerror})") from error


def _read(path: Path, schema: type[RecordT]) -> RecordT:
    """Read one JSON file of the format, checking its version before its contents."""
    try:
        payload = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise SavedModelError(f"{path.name} is missing") from None
    except (OSError, ValueError) as error:
        raise SavedModelError(f"{path.name} is not valid JSON ({error})") from error
    if not isinstance(payload, dict):
        raise SavedModelError(f"{path.name} should hold a JSON object")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise SavedModelError(
            f"{path.name} is in saved-model format {version}, and this version of DigitDraw reads "
            f"format {FORMAT_VERSION}; {rewrite_hint(version)}"
        )
    try:
        return schema.model_validate(payload)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'the file'}: {issue['msg']}"
            for issue in error.errors()[:3]
        )
        raise SavedModelError(f"{path.name} does not match the saved-model format ({problems})") from None


def load_from(directory: Path) -> SavedModel:
    """Load and cross-check the saved model in one folder, or raise SavedModelError saying what is wrong."""
    recover(directory)
    if not directory.is_dir():
        raise SavedModelError(f"no saved model in {directory}")
    card = _read(directory / CARD_FILE, ModelCard)
    content = _read_bytes(directory / MODEL_FILE, MAX_MODEL_FILE_BYTES)  # Checksummed, then unpacked.
    if card.model_sha256 != sha256(content):
        raise SavedModelError(f"{CARD_FILE} describes a different {MODEL_FILE}")
    history = None
    if card.has_history:
        history = _read(directory / HISTORY_FILE, History)
        if card.epochs_run != len(history.epoch) or card.best_epoch != history.best_epoch:
            raise SavedModelError(f"{HISTORY_FILE} and {CARD_FILE} disagree on the epochs run and kept")
    elif (directory / HISTORY_FILE).exists() or card.epochs_run != 0:
        raise SavedModelError(
            f"{CARD_FILE} describes a network opened from a file, which has no training run"
        )
    metrics = _read(directory / METRICS_FILE, Metrics)
    kernels, biases = read_weights(content)
    if not all(np.isfinite(array).all() for array in (*kernels, *biases)):
        raise SavedModelError(f"{MODEL_FILE} holds weights that are not finite numbers (NaN or infinity)")
    try:
        network = Network(card.architecture, kernels, biases)
    except ValueError as error:
        raise SavedModelError(
            f"{MODEL_FILE} does not hold the architecture {CARD_FILE} describes ({error})"
        ) from error
    calibration, arrays = _read_calibration(directory, card)
    return SavedModel(
        card=card,
        network=network,
        history=history,
        metrics=metrics,
        directory=directory,
        calibration=calibration,
        novelty_arrays=arrays,
    )


def _read_calibration(directory: Path, card: ModelCard) -> tuple[Calibration | None, dict | None]:
    """The optional calibration file and its arrays, checked against the weights; Nones if absent."""
    if not (directory / CALIBRATION_FILE).exists():
        return None, None
    fix = f"refit it with `{calibrate_hint(card.model_id)}` or delete it"
    try:
        calibration = _read(directory / CALIBRATION_FILE, Calibration)
    except SavedModelError as error:
        raise SavedModelError(f"{error}; {fix}") from error
    if calibration.model_sha256 != card.model_sha256:
        raise SavedModelError(f"{CALIBRATION_FILE} was fitted for other weights; {fix}")
    try:
        content = _read_bytes(directory / NOVELTY_FILE, MAX_NOVELTY_FILE_BYTES)
    except SavedModelError as error:
        raise SavedModelError(f"{error} beside {CALIBRATION_FILE}; {fix}") from None
    if sha256(content) != calibration.novelty.statistics_sha256:
        raise SavedModelError(f"{CALIBRATION_FILE} describes a different {NOVELTY_FILE}; {fix}")
    try:
        arrays = load_npz_bytes(content, MAX_NOVELTY_FILE_BYTES)
    except DeclaredTooLarge as error:
        raise SavedModelError(f"{NOVELTY_FILE} {error}; {fix}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise SavedModelError(f"{NOVELTY_FILE} is not a readable array file ({error}); {fix}") from error
    if not all(array.dtype.kind == "f" and np.isfinite(array).all() for array in arrays.values()):
        raise SavedModelError(
            f"{NOVELTY_FILE} holds arrays that are not finite floating-point numbers; {fix}"
        )
    return calibration, arrays


def write_calibration(directory: Path, calibration: Calibration, arrays: dict[str, np.ndarray]) -> None:
    """Write a model's novelty arrays, then its calibration file (each atomically), for the weights there.

    The arrays go first: a calibration file names its arrays' checksum, so a
    crash between the two writes leaves a calibration that refuses to load
    (with the command that refits it), never one that reads the wrong arrays.
    """
    directory = Path(directory)
    card = _read(directory / CARD_FILE, ModelCard)
    if calibration.model_sha256 != card.model_sha256:
        raise ValueError(
            f"expected a calibration for the weights {card.model_sha256[:12]}, "
            f"got one for {calibration.model_sha256[:12]}"
        )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    content = buffer.getvalue()
    with atomic_write(directory / NOVELTY_FILE) as handle:
        handle.write(content)
    statistics = calibration.novelty.model_copy(update={"statistics_sha256": sha256(content)})
    _write(directory / CALIBRATION_FILE, calibration.model_copy(update={"novelty": statistics}))


# A network's plain export (``python -m digitdraw models export --format npz``): one .npz holding its
# architecture as JSON text (the same record as model.json's ``architecture``) and its kernels and biases
# in layer order, float32, as Keras stores them; NumPy alone reads it, and ``models add`` opens it again.
EXPORT_ARCHITECTURE_KEY = "architecture"
EXPORT_KERNEL_KEY = "kernel_{}"
EXPORT_BIAS_KEY = "bias_{}"
_ARCHITECTURE = pydantic.TypeAdapter(Architecture)


def architecture_json(architecture: Architecture) -> str:
    """An architecture as the JSON text model.json holds."""
    return _ARCHITECTURE.dump_json(architecture, indent=1).decode()


def architecture_from_json(text: str) -> Architecture:
    """An architecture from JSON text; ValueError saying what is wrong."""
    try:
        return _ARCHITECTURE.validate_json(text)
    except pydantic.ValidationError as error:
        raise ValueError(f"not an architecture ({error.errors()[0]['msg']})") from None


# Each JSON file of the format and the record it holds, in the order ``upgrade`` rewrites them.
SCHEMAS: dict[str, type[_Schema]] = {
    CARD_FILE: ModelCard,
    HISTORY_FILE: History,
    METRICS_FILE: Metrics,
    CALIBRATION_FILE: Calibration,
}


def upgrade(directory: Path, check: Callable[[SavedModel], None] | None = None) -> list[str]:
    """Rewrite a folder's files of the version before (``UPGRADABLE_VERSION``) in the current one; the names
    of the files rewritten. The files are rewritten in a copy of the folder, which is loaded as the app
    would load it (and given to ``check``, which raises SavedModelError for what this module cannot judge)
    before it replaces the folder by two renames, as ``save`` does: a folder is upgraded whole or left as
    it was, and a SavedModelError says why not."""
    directory = Path(directory)
    upgraded: dict[str, _Schema] = {}
    for name, schema in SCHEMAS.items():
        path = directory / name
        if not path.exists():
            continue  # A missing file is the loader's to report; an absent calibration is allowed.
        try:
            payload = json.loads(path.read_bytes())
        except (OSError, ValueError) as error:
            raise SavedModelError(f"{name} is not valid JSON ({error})") from error
        version = payload.get("format_version") if isinstance(payload, dict) else None
        if version == FORMAT_VERSION:
            continue
        if version != UPGRADABLE_VERSION:
            raise SavedModelError(
                f"{name} is in saved-model format {version}, which cannot be upgraded; "
                f"{rewrite_hint(version)}"
            )
        try:
            upgraded[name] = schema.model_validate(payload | {"format_version": FORMAT_VERSION})
        except pydantic.ValidationError as error:
            fix = (
                "refit it with `python -m digitdraw calibrate`" if name == CALIBRATION_FILE else "retrain it"
            )
            raise SavedModelError(
                f"{name} lacks what format {FORMAT_VERSION} needs ({error.errors()[0]['msg']}); {fix}"
            ) from None
    if not upgraded:
        return []
    staging = Path(
        tempfile.mkdtemp(prefix=f".{directory.name}.{os.getpid()}.", suffix=".tmp", dir=directory.parent)
    )
    try:
        shutil.copytree(directory, staging, dirs_exist_ok=True)
        for name, record in upgraded.items():
            _write(staging / name, record)
        model = load_from(staging)
        if check is not None:
            check(model)
        backup = directory.with_name(directory.name + _BACKUP_SUFFIX)
        os.replace(directory, backup)
        os.replace(staging, directory)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return list(upgraded)


def load(model_id: ModelId, root: Path | None = None) -> SavedModel:
    """Load one model, a study one checked against the registry; a SavedModelError names the fix."""
    model_id = check_model_id(model_id)
    spec = None if is_custom(model_id) else get_spec(model_id)
    try:
        saved = load_from(model_dir(model_id, root))
        if saved.card.model_id != model_id or (spec and saved.card.architecture != spec.architecture):
            raise SavedModelError(
                f"{CARD_FILE} describes another model ({saved.card.model_id}, "
                f"{saved.card.architecture.summary})"
            )
    except Exception as error:  # A file damaged in a way no check foresaw is still this model's alone.
        unforeseen = f"its files cannot be read ({type(error).__name__}: {error})"
        reason = error if isinstance(error, SavedModelError) else unforeseen
        what = f"Network {model_id!r}" if is_custom(model_id) else f"Model {model_id}"
        raise SavedModelError(
            f"{what} cannot be loaded: {reason}. Retrain it with `{retrain_hint(model_id)}`"
        ) from error
    return saved
