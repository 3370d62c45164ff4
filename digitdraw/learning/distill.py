"""Knowledge distillation: a small network trained to match a bigger saved network's softened answers as
well as the labels (Hinton, Vinyals and Dean, 2015, "Distilling the knowledge in a neural network").

The loss of one image is ``weight * T**2 * KL(teacher_T || student_T) + (1 - weight) * CE(label, student)``
where ``X_T`` is ``softmax(logits / T)``: a temperature ``T`` above 1 spreads the teacher's probability
over the digits it finds alike (a 7 that is a little like a 1), which labels alone never say, and the
``T**2`` keeps the soft term's gradients the same size whatever ``T`` is.

The teacher is a saved model of the registry (in practice model 6, the CNN), read with the app's NumPy
forward pass: no second Keras model, no copied weights. Its logits are computed afresh every epoch on
the very augmented images the student is fitted on, which costs one forward pass of the teacher per
epoch (about 17 s for 50,000 images through the CNN on this project's 2-core machine, more than the
student's own epoch) but means the soft targets always describe what the student sees. Keras gets
them packed beside the labels in one target array (``pack_targets``), so ``model.fit`` shuffles and
batches both together.

A teacher is refused unless it was trained on the same MNIST arrays through the same preprocessing,
and on training images only: a teacher that saw the validation split would leak it into the student,
and the validation split chooses the student's kept epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitdraw.serving import preprocess, saved_models
from digitdraw.serving.networks import ModelId, Network, get_spec
from digitdraw.serving.saved_models import SplitRange

# Hinton et al. found temperatures of 2.5 to 4 best for their small (30 units a layer) MNIST student;
# model 2 has 16 units a layer, model 4 has 64. They also found a low weight on the labels best.
DEFAULT_TEMPERATURE = 3.0
DEFAULT_WEIGHT = 0.9


class TeacherError(ValueError):
    """A teacher that cannot teach this student: missing, the student itself, or trained on other data."""


def check_settings(teacher: object, temperature: object, weight: object) -> None:
    """Raise ValueError unless the teacher is a registry id (or None), the temperature a number above 0
    and the weight of the teacher's term a number above 0 and at most 1; without a teacher, the two
    stay at their defaults (they would change nothing but the recipe's name)."""
    if teacher is not None:
        try:
            get_spec(teacher)
        except ValueError as error:
            raise ValueError(f"teacher: {error}") from None
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"distill_temperature must be a number above 0, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"distill_temperature must be a number above 0, got {temperature!r}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1:
        raise ValueError(f"distill_weight must be a number above 0 and at most 1, got {weight!r}")
    if teacher is None and (temperature, weight) != (DEFAULT_TEMPERATURE, DEFAULT_WEIGHT):
        raise ValueError("a distillation temperature or weight needs a teacher: add --teacher")


def check_not_own_teacher(teacher_id: int | None, student_id: ModelId) -> None:
    """Raise TeacherError when a model would be trained to copy itself."""
    if teacher_id == student_id:
        raise TeacherError(f"model {student_id} cannot be its own teacher: choose another --teacher")


@dataclass(frozen=True)
class Teacher:
    """A saved network whose logits train a student, and which weights those were."""

    model_id: int
    network: Network
    model_sha256: str

    def targets(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The training targets for a batch of (augmented) images: see ``pack_targets``."""
        return pack_targets(labels, self.network.logits(images))


def pack_targets(labels: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
    """Labels and teacher logits as one float32 array (N, 11): the label in column 0, the logits after."""
    return np.concatenate(
        [np.asarray(labels, np.float32)[:, None], teacher_logits.astype(np.float32)], axis=1
    )


def load_teacher(
    teacher_id: int,
    student_id: ModelId,
    checksum: str,
    ranges: dict[str, SplitRange],
    root: Path | None = None,
) -> Teacher:
    """The saved model ``teacher_id`` under ``root`` (default: the app's saved models), checked against
    the student's data (``checksum``, ``ranges``); TeacherError says why a teacher cannot teach."""
    check_not_own_teacher(teacher_id, student_id)
    try:
        saved = saved_models.load(teacher_id, root)
    except saved_models.SavedModelError as error:
        raise TeacherError(f"teacher model {teacher_id} is not available: {error}") from None
    data = saved.card.data
    if data.sha256 != checksum or data.preprocess_fingerprint != preprocess.fingerprint():
        raise TeacherError(
            f"teacher model {teacher_id} was trained on other data or other preprocessing; "
            f"retrain it with `{saved_models.retrain_hint(teacher_id)}`"
        )
    taught, validation = data.splits["train"], ranges["validation"]
    if (
        taught.source == validation.source
        and taught.start < validation.stop
        and validation.start < taught.stop
    ):
        raise TeacherError(
            f"teacher model {teacher_id} was trained on images {taught.start}-{taught.stop}, which overlap "
            f"the student's validation images {validation.start}-{validation.stop}"
        )
    return Teacher(model_id=teacher_id, network=saved.network, model_sha256=saved.card.model_sha256)


def distillation_loss(temperature: float, weight: float) -> Callable[[Any, Any], Any]:
    """A Keras loss of packed targets (``pack_targets``) and the student's logits, per image."""
    import keras
    from keras import ops

    def loss(targets, student_logits):
        labels = ops.cast(targets[:, 0], "int32")
        teacher_log = ops.log_softmax(targets[:, 1:] / temperature, axis=-1)
        student_log = ops.log_softmax(student_logits / temperature, axis=-1)
        soft = ops.sum(ops.exp(teacher_log) * (teacher_log - student_log), axis=-1)
        hard = keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
        return weight * temperature**2 * soft + (1.0 - weight) * hard

    return loss
