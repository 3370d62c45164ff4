"""Small saved models made on the spot: a network (a study architecture, or a named one of one's own) that
always answers one digit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitdraw.learning import evaluate
from digitdraw.learning.data import split_ranges
from digitdraw.learning.keras_models import build_keras_model
from digitdraw.serving import saved_models
from digitdraw.serving.networks import (
    NUM_CLASSES,
    Architecture,
    ModelId,
    Network,
    get_spec,
)
from digitdraw.serving.preprocess import IMAGE_SIZE


def save_constant_model(
    model_id: ModelId, digit: int, root: Path, architecture: Architecture | None = None
) -> saved_models.SavedModel:
    """Save, in the real format under ``root``, a model ``model_id`` that reads every image as ``digit``.

    A study id takes the study's architecture; a name (a network of one's own) takes ``architecture``,
    by default one hidden layer of 4 tanh units.
    """
    if architecture is None:
        architecture = (
            Architecture.dense((4,), "tanh") if isinstance(model_id, str) else get_spec(model_id).architecture
        )
    keras_model = build_keras_model(architecture)
    weights = [np.zeros_like(array) for array in keras_model.get_weights()]
    weights[-1][digit] = 10.0  # The output layer's bias alone decides.
    keras_model.set_weights(weights)
    network = Network.from_keras(keras_model, architecture)
    images = np.zeros((NUM_CLASSES, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    labels = np.arange(NUM_CLASSES)
    splits = ("train", "validation", "test", "drawn")
    metrics = saved_models.Metrics(
        accuracy=dict.fromkeys(splits, 0.1),
        loss=dict.fromkeys(splits, 2.3),
        **evaluate.labelled_set_report(network, images, labels),
    )
    curves = {"loss": [2.3], "accuracy": [0.1]}
    history = saved_models.History(epoch=[1], train=curves, validation=curves, test=curves, best_epoch=1)
    card = saved_models.ModelCard(
        model_id=model_id,
        architecture=architecture,
        parameters=architecture.parameter_count,
        epochs_run=1,
        best_epoch=1,
        training_seconds=0.0,
        seed=0,
        config={"made_by": "tests/saved.py"},
        data=saved_models.DataRecord(
            sha256="none", splits=split_ranges(), drawn_size=0, preprocess_fingerprint="none"
        ),
        versions={},
        trained_at="2026-01-01T00:00:00+00:00",
    )
    saved_models.save(saved_models.model_dir(model_id, root), keras_model, card, history, metrics)
    return saved_models.load(model_id, root)
