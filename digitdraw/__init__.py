"""DigitDraw: handwritten-digit recognition with the networks of a small MNIST study.

The public API, in the order data flows through it: load MNIST, turn a drawing
into a 28x28 MNIST-style image, and classify it with the saved models.
"""

from digitdraw.data import load_mnist
from digitdraw.inference import (
    BatchClassification,
    Classification,
    classify,
    classify_batch,
    load_classifier,
)
from digitdraw.models import MODEL_IDS
from digitdraw.preprocess import preprocess_steps, to_mnist
from digitdraw.saved_models import SavedModelError

__all__ = [
    "MODEL_IDS",
    "BatchClassification",
    "Classification",
    "SavedModelError",
    "classify",
    "classify_batch",
    "load_classifier",
    "load_mnist",
    "preprocess_steps",
    "to_mnist",
]
