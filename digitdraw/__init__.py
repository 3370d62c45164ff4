"""DigitDraw: handwritten-digit recognition with the networks of a small MNIST study."""

from digitdraw.data import load_mnist
from digitdraw.models import MODEL_IDS, REGISTRY, get_spec
from digitdraw.preprocess import to_mnist

__all__ = ["MODEL_IDS", "REGISTRY", "get_spec", "load_mnist", "to_mnist"]
