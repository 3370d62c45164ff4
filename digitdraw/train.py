"""Reproducible training of the registry's models, from MNIST to ``saved_models/``.

The recipe, the same for every architecture: every MNIST image goes through
the app's own preprocessing first (so the networks learn from exactly what
inference will give them), the splits are those of ``data.split_ranges`` (the
last 10,000 training images held out for validation), and each epoch sees a
freshly augmented copy of the remaining 50,000. Adam with a cosine-decaying
learning rate; the weights of the epoch with the best validation accuracy
are kept (early stopping). After every epoch the network is scored on
training, validation and test data, because the study plotted all three
curves.

Determinism: Keras, NumPy and Python are seeded and TensorFlow's op
determinism is on, so one seed gives the same numbers on the same machine.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitdraw import data, evaluate, preprocess, saved_models
from digitdraw.augment import AugmentConfig, augment
from digitdraw.drawn import drawn_evaluation_set
from digitdraw.files import atomic_write
from digitdraw.models import MODEL_IDS, ModelSpec, Network, build_keras_model, get_spec, saved_models_dir

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run; saved into each model's metrics."""

    epochs: int = 20
    batch_size: int = 128
    relu_learning_rate: float = 3e-3
    sigmoid_learning_rate: float = 1e-2
    patience: int = 6
    validation_size: int = data.VALIDATION_SIZE
    augmentation: AugmentConfig | None = field(default_factory=AugmentConfig)
    drawn_eval_size: int = 2_000
    seed: int = 0
    # Only for quick runs (tests, smoke checks): use the first N training images.
    train_limit: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.train_limit is not None and self.train_limit < 1:
            raise ValueError(f"train_limit must be a positive number of images, got {self.train_limit}")

    def learning_rate(self, spec: ModelSpec) -> float:
        """Sigmoid networks learn slowly with ReLU's rate, so each activation has its own."""
        return self.sigmoid_learning_rate if spec.activation == "sigmoid" else self.relu_learning_rate


@dataclass
class Dataset:
    """Preprocessed float32 images in [0, 1] with their labels, split three ways, plus drawn digits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_drawn: np.ndarray
    y_drawn: np.ndarray
    checksum: str
    ranges: dict[str, data.SplitRange]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of 'train', 'validation', 'test' or 'drawn'."""
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def prepare_images(images: np.ndarray) -> np.ndarray:
    """Run MNIST images through the app's preprocessing: (N, 28, 28) uint8 -> float32."""
    return np.stack([preprocess.to_mnist(image) for image in images])


def _prepared_mnist(splits, checksum: str) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed training and test images, cached on disk per data and code version."""
    (x_train, _), (x_test, _) = splits
    cache = data.cache_dir() / f"prepared-{checksum[:12]}-{preprocess.fingerprint()[:12]}.npz"
    try:
        with np.load(cache, allow_pickle=False) as archive:
            return archive["x_train"], archive["x_test"]
    except (OSError, ValueError, KeyError):
        pass  # No cache yet, or a damaged one: rebuild it below.
    prepared_train, prepared_test = prepare_images(x_train), prepare_images(x_test)
    try:
        with atomic_write(cache) as handle:
            np.savez(handle, x_train=prepared_train, x_test=prepared_test)
    except OSError:
        pass  # A read-only cache folder costs time, not correctness.
    return prepared_train, prepared_test


def load_dataset(config: TrainConfig, splits=None) -> Dataset:
    """MNIST preprocessed like the app's input, split train/validation/test, plus drawn digits."""
    splits = splits if splits is not None else data.load_mnist()
    checksum = data.data_checksum(splits)
    (raw_all, y_all), (raw_test, y_test) = splits
    ranges = data.split_ranges(config.validation_size, config.train_limit, len(raw_all), len(raw_test))
    train, validation = ranges["train"], ranges["validation"]
    if train.stop < validation.start:
        # A quick run prepares only the images it uses, and leaves the cache alone.
        x_all = np.zeros(raw_all.shape, np.float32)
        x_all[: train.stop] = prepare_images(raw_all[: train.stop])
        x_all[validation.start :] = prepare_images(raw_all[validation.start :])
        x_test = prepare_images(raw_test)
    else:
        x_all, x_test = _prepared_mnist(splits, checksum)
    x_drawn, y_drawn = drawn_evaluation_set(raw_test, y_test, config.drawn_eval_size, seed=config.seed)
    return Dataset(
        x_train=x_all[: train.stop],
        y_train=y_all[: train.stop],
        x_validation=x_all[validation.start :],
        y_validation=y_all[validation.start :],
        x_test=x_test,
        y_test=y_test,
        x_drawn=x_drawn,
        y_drawn=y_drawn,
        checksum=checksum,
        ranges=ranges,
    )


def library_versions() -> dict[str, str]:
    """Versions of everything that shapes a trained model's numbers."""
    import cv2
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "opencv": cv2.__version__,
    }


class ProgressBar:
    """A one-line progress bar on stderr, redrawn in place on a terminal."""

    def __init__(self, label: str, total: int, stream=sys.stderr):
        self.label, self.total, self.stream = label, total, stream
        self.interactive = stream.isatty()

    def update(self, done: int, message: str) -> None:
        """Show ``done`` of ``total`` steps and a short status message."""
        width = 24
        filled = round(width * done / self.total)
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {message}"
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if done == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_model(
    model_id: int,
    dataset: Dataset,
    config: TrainConfig,
    out_dir: Path | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> saved_models.SavedModel:
    """Train one registry model, save it under ``out_dir`` and return it as saved."""
    import keras

    spec = get_spec(model_id)
    _seed_everything(config.seed)
    model = build_keras_model(spec.architecture, spec.directory_name)
    steps_per_epoch = -(-len(dataset.x_train) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate(spec), decay_steps=config.epochs * steps_per_epoch
    )
    # No Keras metrics: every epoch is scored below, on all three splits, by the
    # same NumPy forward pass that the app uses.
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
    augment_rng = np.random.default_rng(config.seed)
    curves: dict[str, dict[str, list[float]]] = {split: {"loss": [], "accuracy": []} for split in SPLITS}
    epochs: list[int] = []
    best_accuracy, best_epoch, best_weights = -1.0, 0, model.get_weights()
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        images = dataset.x_train
        if config.augmentation is not None:
            images = augment(images, augment_rng, config.augmentation)
        model.fit(
            images,
            dataset.y_train,
            batch_size=config.batch_size,
            epochs=1,
            shuffle=True,
            verbose=0,
        )
        network = Network.from_keras(model, spec.architecture)
        epochs.append(epoch)
        for split in SPLITS:
            scores = evaluate.score(network, *dataset.split(split))
            curves[split]["loss"].append(scores["loss"])
            curves[split]["accuracy"].append(scores["accuracy"])
        validation_accuracy = curves["validation"]["accuracy"][-1]
        if validation_accuracy > best_accuracy:
            best_accuracy, best_epoch, best_weights = validation_accuracy, epoch, model.get_weights()
        if progress is not None:
            progress(epoch, f"val {validation_accuracy:.2%} test {curves['test']['accuracy'][-1]:.2%}")
        if epoch - best_epoch >= config.patience:
            break
    training_seconds = time.perf_counter() - started

    # Saved without optimizer state: a fresh model holding the best weights.
    final = build_keras_model(spec.architecture, spec.directory_name)
    final.set_weights(best_weights)
    network = Network.from_keras(final, spec.architecture)
    scores = {split: evaluate.score(network, *dataset.split(split)) for split in (*SPLITS, "drawn")}
    history = saved_models.History(epoch=epochs, best_epoch=best_epoch, **curves)
    metrics = saved_models.Metrics(
        accuracy={split: score["accuracy"] for split, score in scores.items()},
        loss={split: score["loss"] for split, score in scores.items()},
        **evaluate.labelled_set_report(network, dataset.x_test, dataset.y_test),
    )
    card = saved_models.ModelCard(
        model_id=spec.id,
        architecture=spec.architecture,
        parameters=int(final.count_params()),
        epochs_run=len(epochs),
        best_epoch=best_epoch,
        training_seconds=round(training_seconds, 2),
        seed=config.seed,
        config=asdict(config),
        data=saved_models.DataRecord(
            sha256=dataset.checksum,
            splits=dataset.ranges,
            drawn_size=len(dataset.y_drawn),
            preprocess_fingerprint=preprocess.fingerprint(),
        ),
        versions=library_versions(),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    directory = saved_models.model_dir(spec.id, out_dir)
    saved_models.save(directory, final, card, history, metrics)
    return saved_models.load(spec.id, directory.parent)


def summary_line(model: saved_models.SavedModel) -> str:
    """One line per trained model for the end-of-run summary."""
    card, accuracy = model.card, model.metrics.accuracy
    return (
        f"Model {card.model_id} {card.architecture.summary:<14} {card.architecture.hidden_activation:<7} "
        f"train {accuracy['train']:.2%}  val {accuracy['validation']:.2%}  "
        f"test {accuracy['test']:.2%}  drawn {accuracy['drawn']:.2%}  "
        f"{card.epochs_run} epochs in {card.training_seconds:.0f} s"
    )


def train_models(
    model_ids: list[int] | tuple[int, ...] = MODEL_IDS,
    config: TrainConfig = TrainConfig(),
    out_dir: Path | None = None,
    splits=None,
) -> list[saved_models.SavedModel]:
    """Train several models on one prepared dataset; print progress and a summary."""
    for model_id in model_ids:
        get_spec(model_id)  # Reject a bad id before any slow work starts.
    out_dir = Path(out_dir) if out_dir is not None else saved_models_dir()
    dataset = load_dataset(config, splits)
    results = []
    for model_id in model_ids:
        bar = ProgressBar(f"Model {model_id}", config.epochs)
        results.append(train_model(model_id, dataset, config, out_dir, progress=bar.update))
    print("\n".join(summary_line(model) for model in results))
    ids = " ".join(str(model_id) for model_id in model_ids)
    print(f"New weights answer uncalibrated until `python -m digitdraw calibrate --model {ids}` runs.")
    return results
