"""Shared fixtures and settings: hypothesis profiles, the real MNIST (loaded once), small slices of it,
and the MNIST test set classified once for every test that needs it."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One OpenBLAS thread per process, as `make run` serves the app (Makefile): the tests run on two xdist
# workers, and threaded OpenBLAS on busy cores makes small products far slower (docs/performance.md). Set
# before NumPy loads; subprocesses (the app server, training workers) inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest
from hypothesis import HealthCheck, settings

import digitdraw
from digitdraw.learning.config import TrainConfig
from digitdraw.learning.data import load_mnist
from digitdraw.learning.train import load_dataset

# The same examples every run: `make test` and CI must give the same answer each time. A failure
# found here or by `make fuzz` is pinned with @example in the test itself.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=150,
    deadline=None,  # This machine's speed varies; timings belong in benchmarks, not in tests.
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# `make fuzz`: random, many more examples, remembered between runs in .hypothesis/.
settings.register_profile(
    "explore", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def mnist():
    """The full MNIST, as load_mnist returns it."""
    return load_mnist()


@pytest.fixture(scope="session")
def small_splits(mnist):
    """1,500 training and 300 test images: enough for a one-epoch training run."""
    (x_train, y_train), (x_test, y_test) = mnist
    return (x_train[:1500], y_train[:1500]), (x_test[:300], y_test[:300])


@pytest.fixture(scope="session")
def classified_test_set(mnist):
    """The 10,000 raw MNIST test images through ``classify_batch`` with every committed model, and labels."""
    _, (x_test, y_test) = mnist
    return digitdraw.classify_batch(x_test), y_test


# The data every tiny training run in the tests uses: 1,200 training and 300 validation images.
TINY_DATA = TrainConfig(validation_size=300, drawn_eval_size=40)


@pytest.fixture(scope="module")
def tiny_dataset(small_splits, tmp_path_factory):
    """``small_splits`` through the training pipeline (``TINY_DATA``), cached in the module's own folder."""
    os.environ["DIGITDRAW_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        return load_dataset(TINY_DATA, small_splits)
    finally:
        del os.environ["DIGITDRAW_CACHE"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database of each kind: a SQLite file, and one on the test session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    from postgres import new_database

    return new_database(request.getfixturevalue("postgres_server_url"))


@pytest.fixture
def models_copy(tmp_path, monkeypatch):
    """A copy of the committed models in tmp_path, which the app and ``classify`` read from
    (``$DIGITDRAW_SAVED_MODELS``): a test may damage, replace or add models without touching the tree."""
    from digitdraw.serving.networks import SAVED_MODELS_ENV_VAR, saved_models_dir

    root = tmp_path / "saved_models"
    shutil.copytree(saved_models_dir(), root, ignore=shutil.ignore_patterns("custom"))
    monkeypatch.setenv(SAVED_MODELS_ENV_VAR, str(root))
    return root


@pytest.fixture
def drawings_store(tmp_path, monkeypatch):
    """A drawings store of the test's own (SQLite in tmp_path), never the working tree's: its URL."""
    from digitdraw.drawings import store

    url = f"sqlite:///{tmp_path / 'kept.sqlite'}"
    monkeypatch.setenv(store.DATABASE_URL_ENV_VAR, url)
    return url


@pytest.fixture(scope="session")
def postgres_server_url():
    """A PostgreSQL server for this test session (see tests/postgres.py), or a skip saying why not."""
    import tempfile
    from pathlib import Path

    from postgres import PostgresUnavailable, postgres_server

    # Not under pytest's tmp_path: its folders are private to root, and the server runs as 'postgres'.
    folder = Path(tempfile.mkdtemp(prefix="digitdraw-postgres-"))
    try:
        with postgres_server(folder) as url:
            yield url
    except FileNotFoundError as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test the store on PostgreSQL: {missing}")
        pytest.skip(str(missing))
    except PostgresUnavailable as why:
        pytest.skip(f"PostgreSQL could not start here: {why}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # Before xdist's own hook, which reads the groups.
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``--dist loadgroup``, pyproject.toml), the browser tests share one app server and
    one Chromium (tests/e2e/conftest.py): one group, so that one worker runs them all and starts them once.
    A browser test bringing its own servers (the cluster's) names a group of its own, to run beside them."""
    for item in items:
        if "e2e" in item.path.parts and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("e2e"))
