"""Shared fixtures: the real MNIST (loaded once), small slices of it, and hand-drawn canvases."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from digitdraw.data import load_mnist


@pytest.fixture(scope="session")
def mnist():
    """The full MNIST, as load_mnist returns it."""
    return load_mnist()


@pytest.fixture(scope="session")
def small_splits(mnist):
    """1,500 training and 300 test images: enough for a one-epoch training run."""
    (x_train, y_train), (x_test, y_test) = mnist
    return (x_train[:1500], y_train[:1500]), (x_test[:300], y_test[:300])
