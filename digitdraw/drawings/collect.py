"""From drawings to records worth keeping: every model's answer for each, ready for the store.

This module sits between inference and the store: it classifies drawings (a
canvas from the Draw page, or arrays a user imports) with every loaded model
and records which weights answered, so that the store never needs to know how
answers are made. Imports are checked whole before anything is classified:
a file with one bad drawing is refused with a message naming it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from digitdraw.drawings.store import Drawing, NewDrawing, Store, export_arrays
from digitdraw.serving import inference
from digitdraw.serving.files import declared_bytes, npz_headers
from digitdraw.serving.networks import MODEL_IDS, is_custom
from digitdraw.serving.preprocess import IMAGE_SIZE, to_mnist

# What one import may hold, checked from the file's headers before any array is read: a class's year of
# drawings fits many times over, and a file declaring gigabytes is refused without allocating them.
MAX_IMPORT_DRAWINGS = 100_000
MAX_IMPORT_BYTES = 256 * 2**20
# Drawings classified and kept per transaction by an import: a batch's memory is a few megabytes.
IMPORT_BATCH = 2_000


def record(
    classification: inference.Classification,
    label: int,
    session_id: str,
    canvas_png: bytes | None = None,
    root: Path | None = None,
) -> NewDrawing:
    """A drawing the Draw page classified, with the label the user gave it, ready to keep."""
    if classification.is_blank:
        raise ValueError("a blank drawing cannot be kept")
    models, _ = inference.load_models(classification.raw_probabilities, root)
    # The network's own probabilities: they depend on the weights alone, whose checksum is kept beside
    # them. The store keeps the registry's answers only (models 1-6): a network someone trained can be
    # deleted, or trained anew under the same name, and is judged afresh from the kept input
    # (``current_answers``).
    answered = {m: p for m, p in classification.raw_probabilities.items() if m in models and not is_custom(m)}
    return NewDrawing(
        label=label,
        model_input=classification.image,
        probabilities=answered,
        model_sha256={model_id: models[model_id].card.model_sha256 for model_id in answered},
        session_id=session_id,
        canvas_png=canvas_png,
    )


def check_images(x: np.ndarray) -> np.ndarray:
    """``x`` as an array of N >= 1 images of numbers, grayscale or RGBA; ValueError otherwise."""
    x = np.asarray(x)
    if x.dtype.kind not in "uif" or x.dtype.kind == "b":
        raise ValueError(f"x must hold numbers, got dtype {x.dtype}")
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] == 4)) or len(x) == 0:
        raise ValueError(f"x must be N x H x W grayscale or N x H x W x 4 RGBA images, got shape {x.shape}")
    return x


def model_inputs(x: np.ndarray, first_index: int = 0) -> np.ndarray:
    """28x28 model inputs for N images: 28x28 images are taken as MNIST-style already (uint8 0-255 or
    floats in [0, 1]), larger ones (grayscale or RGBA canvases) go through ``to_mnist``. A refusal names
    the drawing by its place in the file: ``first_index`` is the place of ``x``'s first."""
    x = check_images(x)
    if x.dtype.kind in "ui" and x.dtype != np.uint8:
        # Whole numbers of any width, as long as they are 0-255: the same for 28x28 images and canvases.
        outside = np.flatnonzero(((x < 0) | (x > 255)).reshape(len(x), -1).any(axis=1))
        if len(outside):
            raise ValueError(f"drawing {first_index + outside[0]} of x has values outside 0-255")
        x = x.astype(np.uint8)
    if x.ndim == 3 and x.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        images = x.astype(np.float32) / (255.0 if x.dtype.kind in "ui" else 1.0)
        flat = images.reshape(len(images), -1)
        wrong = np.flatnonzero(
            ~np.isfinite(flat).all(axis=1) | (flat < 0).any(axis=1) | (flat > 1).any(axis=1)
        )
        if len(wrong):
            raise ValueError(
                f"drawing {first_index + wrong[0]} of x is not uint8 0-255 or floats in [0, 1], as 28x28 "
                "images must be"
            )
        blank = np.flatnonzero(images.reshape(len(images), -1).max(axis=1) == 0)
        if len(blank):
            raise ValueError(f"drawing {first_index + blank[0]} of x is blank")
        return images
    inputs = np.zeros((len(x), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for index, image in enumerate(x):
        try:
            converted = to_mnist(image)
        except ValueError as error:
            raise ValueError(f"drawing {first_index + index} of x: {error}") from None
        if converted is None:
            raise ValueError(f"drawing {first_index + index} of x is blank")
        inputs[index] = converted
    return inputs


def labels(y: np.ndarray, count: int) -> np.ndarray:
    """N labels 0-9 as integers, checked against the number of images."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != count:
        raise ValueError(f"y must hold one label per image ({count}), got shape {y.shape}")
    if y.dtype.kind not in "uif" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise ValueError("y must hold whole numbers 0-9")
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"y must hold digits 0-9, found {float(y.min()):g} to {float(y.max()):g}")
    return y.astype(np.int64)


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``x`` and ``y`` from an .npz file, or a ValueError that says what is wrong with it. The sizes
    its headers declare are checked against ``MAX_IMPORT_DRAWINGS`` and ``MAX_IMPORT_BYTES`` before any
    array is read."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        headers = npz_headers(path)
    except ValueError as error:
        raise ValueError(f"{path} is not a readable .npz file ({error})") from error
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror})") from error
    missing = {"x", "y"} - set(headers)
    if missing:
        raise ValueError(f"{path} has no array named {' or '.join(sorted(missing))}")
    count = headers["x"][0][0] if headers["x"][0] else 0
    if count > MAX_IMPORT_DRAWINGS:
        raise ValueError(
            f"{path} holds {count:,} drawings; one import takes at most {MAX_IMPORT_DRAWINGS:,} drawings "
            f"and {MAX_IMPORT_BYTES // 2**20} MiB: split it"
        )
    declared = declared_bytes(headers)
    if sum(declared.values()) > MAX_IMPORT_BYTES:
        raise ValueError(
            f"{path} declares {sum(declared.values()) / 2**20:,.0f} MiB of arrays; one import takes at most "
            f"{MAX_IMPORT_DRAWINGS:,} drawings and {MAX_IMPORT_BYTES // 2**20} MiB: split it"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            x, y = archive["x"], archive["y"]
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({error})") from error
    return x, y


def _classified(inputs: np.ndarray, digits: np.ndarray, session_id: str, models: dict) -> list[NewDrawing]:
    """Records for model inputs and their labels, each answered by every loaded model."""
    probabilities = {m: model.network.predict_proba(inputs) for m, model in models.items()}
    sha = {m: model.card.model_sha256 for m, model in models.items()}
    return [
        NewDrawing(
            label=int(digits[index]),
            model_input=inputs[index],
            probabilities={m: probabilities[m][index] for m in models},
            model_sha256=sha,
            session_id=session_id,
        )
        for index in range(len(inputs))
    ]


def _registry_models(root: Path | None) -> dict:
    models, errors = inference.load_models(MODEL_IDS, root)  # The registry's: see ``record``.
    if not models:
        raise ValueError(f"no model could be loaded to answer the imported drawings: {errors}")
    return models


def from_arrays(x: np.ndarray, y: np.ndarray, session_id: str, root: Path | None = None) -> list[NewDrawing]:
    """Records for imported images and labels, each classified by every model that loads."""
    inputs = model_inputs(x)
    return _classified(inputs, labels(y, len(inputs)), session_id, _registry_models(root))


def import_arrays(
    kept: Store,
    x: np.ndarray,
    y: np.ndarray,
    session_id: str,
    root: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Keep every drawing of ``x`` with its label in ``y``; how many. The whole file is checked first, so
    a bad drawing keeps nothing; then the drawings are classified and kept ``IMPORT_BATCH`` at a time,
    each batch its own transaction, so that memory is a batch's whatever the file's size, and
    ``progress`` hears (kept, total) after each."""
    x = check_images(x)
    digits = labels(y, len(x))
    for start in range(0, len(x), IMPORT_BATCH):
        model_inputs(x[start : start + IMPORT_BATCH], first_index=start)  # Checked, then let go.
    models = _registry_models(root)
    for start in range(0, len(x), IMPORT_BATCH):
        stop = min(start + IMPORT_BATCH, len(x))
        inputs = model_inputs(x[start:stop], first_index=start)
        kept.save_many(_classified(inputs, digits[start:stop], session_id, models))
        if progress is not None:
            progress(stop, len(x))
    return len(x)


def current_answers(drawings: list[Drawing], root: Path | None = None) -> tuple[dict[int, np.ndarray], dict]:
    """Each loadable model's digit for every kept drawing, answered now by the saved weights.

    Kept answers record what a user was shown; a model retrained since then is
    judged here on its own answers, so results of different weights never mix.
    Returns (model id -> N digits) and (model id -> why it could not answer).
    """
    networks, errors = inference.load_classifiers(root=root)
    if not drawings:
        return {model_id: np.zeros(0, np.int64) for model_id in networks}, errors
    inputs = np.stack([drawing.model_input for drawing in drawings])
    return {m: network.predict_proba(inputs).argmax(axis=1) for m, network in networks.items()}, errors


def accuracies(drawings: list[Drawing], answers: dict[int, np.ndarray]) -> dict[int, float]:
    """Per model, the share of kept drawings whose label its answers (from ``current_answers``) match."""
    labels = np.array([drawing.label for drawing in drawings])
    return {model_id: float(np.mean(digits == labels)) for model_id, digits in answers.items()}


def npz_bytes(drawings: list[Drawing]) -> bytes:
    """Kept drawings as an MNIST-style .npz file's bytes: ``x`` uint8 N x 28 x 28, ``y`` and their ids."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **export_arrays(drawings))
    return buffer.getvalue()


def png_zip_bytes(drawings: list[Drawing]) -> bytes:
    """Kept drawings as a zip of PNGs named ``<id>-digit-<label>.png``: the canvas as drawn when it was
    kept, otherwise the 28x28 model input."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for drawing in drawings:
            png = drawing.canvas_png
            if png is None:
                png = cv2.imencode(".png", np.rint(drawing.model_input * 255).astype(np.uint8))[1].tobytes()
            archive.writestr(f"{drawing.id:06d}-digit-{drawing.label}.png", png)
    return buffer.getvalue()
