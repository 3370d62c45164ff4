"""Streamlit helpers shared by the pages: cached loading, model pickers and error messages.

Pages stay thin: they call these ``*_ui`` helpers, which draw widgets and
return values, and ``digitdraw`` for everything else. Models are cached once
per server process with ``st.cache_resource``; tables and arrays derived
from them with ``st.cache_data``. A model that fails to load is reported for
itself, with the command that retrains it, and never stops the others.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import streamlit as st

from digitdraw import inference, saved_models
from digitdraw.models import MODEL_IDS, REGISTRY, DenseNetwork


@st.cache_resource(show_spinner="Loading the models…")
def loaded_models() -> tuple[dict[int, saved_models.SavedModel], dict[int, str]]:
    """Every saved model that loads, and an error message for each one that does not."""
    models, errors = {}, {}
    for model_id in MODEL_IDS:
        try:
            models[model_id] = inference.load_saved_model(model_id)
        except saved_models.SavedModelError as error:
            errors[model_id] = str(error)
    return models, errors


def classifiers() -> tuple[dict[int, DenseNetwork], dict[int, str]]:
    """The loaded networks by model id, and the load errors."""
    models, errors = loaded_models()
    return {model_id: model.network for model_id, model in models.items()}, errors


def classify_drawing(image: np.ndarray | None) -> inference.Classification | None:
    """Every cached model's answer for a canvas image; None before anything is drawn."""
    if image is None:
        return None
    return inference.classify_with(image, *classifiers())


@st.cache_data(show_spinner=False)
def test_images() -> tuple[np.ndarray, np.ndarray] | None:
    """MNIST's 10,000 test images and labels, or None if the data is not installed."""
    from digitdraw.data import DataError, load_mnist

    try:
        return load_mnist()[1]
    except DataError:
        return None


@st.cache_data(show_spinner=False)
def latency_microseconds(model_id: int, repeats: int = 200) -> float:
    """Median time of one single-image forward pass of a loaded model, in microseconds."""
    network = classifiers()[0][model_id]
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 4:24, 12:16] = 1.0
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        network.predict_proba(image)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings) * 1e6)


def model_label(model_id: int) -> str:
    """How a model is named in every picker: id, architecture and activation."""
    return REGISTRY[model_id].name


def model_picker_ui(label: str = "Model", key: str = "model", default: int = 4) -> int:
    """A model selector whose options show architecture and activation; returns the model id."""
    if key not in st.session_state:
        st.session_state[key] = default
    return st.selectbox(label, MODEL_IDS, key=key, format_func=model_label)


def model_error_ui(model_id: int, message: str) -> None:
    """Explain that one model is unavailable and how to rebuild it."""
    st.error(
        f"**{model_label(model_id)} is unavailable.** {message}. The other models keep working.",
        icon=":material/error:",
    )


def require_model_ui(model_id: int) -> saved_models.SavedModel | None:
    """The loaded model, or None after showing why it cannot be used."""
    models, errors = loaded_models()
    if model_id in models:
        return models[model_id]
    model_error_ui(model_id, errors.get(model_id, "It could not be loaded."))
    return None


def percent(value: float | None, digits: int = 2) -> str:
    """A fraction shown as a percentage, or a dash when there is none."""
    return "–" if value is None else f"{value:.{digits}%}"


def _fraction(percentage: float | None) -> float | None:
    return None if percentage is None else percentage / 100


def comparison_rows() -> list[dict[str, Any]]:
    """One row of published and measured numbers per loaded model, for the dashboard."""
    models, _ = loaded_models()
    rows = []
    for model_id, model in models.items():
        accuracy = model.metrics["accuracy"]
        spec = model.spec
        rows.append(
            {
                "model_id": model_id,
                "architecture": spec.architecture,
                "activation": spec.activation,
                "study_train": _fraction(spec.study_train_accuracy),
                "train": accuracy["train"],
                "study_validation": _fraction(spec.study_validation_accuracy),
                "validation": accuracy["validation"],
                "test": accuracy["test"],
                "drawn": accuracy["drawn"],
                "parameters": model.metrics["parameters"],
                "training_seconds": model.metrics["training_seconds"],
                "latency_us": latency_microseconds(model_id),
            }
        )
    return rows
