"""DigitDraw: handwritten-digit recognition with the networks of a small MNIST study.

The public API, in the order data flows through it: load MNIST, turn a drawing
into a 28x28 MNIST-style image, classify it with the saved models, and read
whole numbers from photos and wide drawings.
"""

from digitdraw.learning.data import load_mnist
from digitdraw.reading.read import NumberReading, read_digits
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
