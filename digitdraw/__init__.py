"""DigitDraw: handwritten-digit recognition with the networks of a small MNIST study.

The public API, in the order data flows through it: load MNIST, turn a drawing
into a 28x28 MNIST-style image, classify it with the saved models, and read
whole numbers from photos and wide drawings.

Classifying is serving alone (``digitdraw.serving``: NumPy, no TensorFlow);
the names from the layers above it, ``load_mnist`` (learning) and
``read_digits`` (reading), are imported the first time they are used, so that
``import digitdraw`` and a ``classify`` load nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from digitdraw.serving.inference import (
    BatchClassification,
    Classification,
    classify,
    classify_batch,
    load_classifier,
)
from digitdraw.serving.networks import MODEL_IDS
from digitdraw.serving.preprocess import preprocess_steps, to_mnist
from digitdraw.serving.saved_models import SavedModelError

if TYPE_CHECKING:
    from digitdraw.learning.data import load_mnist
    from digitdraw.reading.read import NumberReading, read_digits

# Public names of the layers above serving, and the module each comes from.
_LATER = {
    "load_mnist": "digitdraw.learning.data",
    "NumberReading": "digitdraw.reading.read",
    "read_digits": "digitdraw.reading.read",
}


def __getattr__(name: str) -> object:
    """Import a public name of a layer above serving on first use (PEP 562)."""
    if name not in _LATER:
        raise AttributeError(f"module 'digitdraw' has no attribute {name!r}")
    return getattr(importlib.import_module(_LATER[name]), name)


__all__ = [
    "MODEL_IDS",
    "BatchClassification",
    "Classification",
    "NumberReading",
    "SavedModelError",
    "classify",
    "classify_batch",
    "load_classifier",
    "load_mnist",
    "preprocess_steps",
    "read_digits",
    "to_mnist",
]
