"""Reproducible training of the registry's models, and of networks people design, from MNIST to
``saved_models/``.

The recipe, the same for every architecture: every MNIST image goes through
the app's own preprocessing first (so the networks learn from exactly what
inference will give them), the splits are those of ``data.split_ranges`` (the
last 10,000 training images held out for validation), and each epoch sees a
freshly augmented copy of the remaining 50,000. Adam with a cosine-decaying
learning rate; the weights of the epoch with the best validation accuracy
are kept (early stopping). After every epoch the network is scored on
training, validation and test data, because the study plotted all three
curves.

A network someone designs (``NetworkSettings``: 1-3 hidden layers of 4-512
units, sigmoid, ReLU, tanh or GELU, the study's recipe, Adam or SGD with
momentum) goes through the same machinery: the same data, augmentation,
per-epoch scoring, best-epoch keeping and atomic save, into
``saved_models/custom/<name>/``. A ``Monitor`` hears about every batch and
epoch and can ask the run to stop; a stopped run ends its current batch,
keeps the best epoch so far and saves it like a finished one.

Two recipes train the registry's models (``RECIPES``). The study's
(``STUDY_RECIPE``): the augmentation above, as the study's networks were
first reproduced. The improved one (``IMPROVED_RECIPE``, the command line's
default) thickens or thins strokes by up to two pixels instead of one
(``augment.IMPROVED_AUGMENTATION``). It was chosen by ``experiments/recipes.py``
on MNIST validation and on digits drawn from MNIST *validation* images, among
the study's recipe and each of three techniques added to it, and all three:
that thicker change; elastic distortion; and swapping a share of each epoch's
training digits (``stroke_share``) for the same digits redrawn once as canvas
pen strokes of 10 to 35 pixels (``drawn.redrawn_training_digits``, cached on
disk like the prepared MNIST: rendering 50,000 takes five minutes or more).
The sets docs/results.md reports (MNIST test, drawn from MNIST test, scanned,
Hershey) chose nothing. Any recipe can also distil a saved network (model 6,
the CNN) into the one it trains (``teacher``, ``digitdraw.learning.distill``): the loss
then mixes the teacher's softened answers on each epoch's augmented images
with the labels. The ablation measured that too; it drew no better on the
validation-side sets, so the improved recipe has no teacher. ``train_models``
can also train the study's recipe as a measured baseline and keep its
accuracy in each model's metrics, for the Compare page.

Any run can also train on the drawings users kept (``kept_drawings``): the
training part, repeated, joins each epoch's MNIST digits before augmentation;
the held-out part scores the kept weights, and the model the run replaces, at
the end. MNIST's curves and splits are unchanged by them, and the epoch kept
is still the best on MNIST validation.

Determinism: Keras, NumPy and Python are seeded and TensorFlow's op
determinism is on, so one seed gives the same numbers on the same machine.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitdraw.learning import data, evaluate
from digitdraw.learning.augment import augment
from digitdraw.learning.config import (
    NetworkSettings,
    TrainConfig,
    recipe_name,
)
from digitdraw.learning.distill import (
    Teacher,
    check_not_own_teacher,
    distillation_loss,
    load_teacher,
)
from digitdraw.learning.drawn import drawn_evaluation_set, redrawn_training_digits
from digitdraw.learning.kept_split import KeptSplit
from digitdraw.learning.keras_models import build_keras_model
from digitdraw.serving import preprocess, saved_models
from digitdraw.serving.files import atomic_write
from digitdraw.serving.networks import (
    MODEL_IDS,
    Architecture,
    ModelId,
    Network,
    get_spec,
    is_custom,
    saved_models_dir,
)

SPLITS = ("train", "validation", "test")

SGD_MOMENTUM = 0.9
# The training digits redrawn as strokes come from one fixed seed, whatever the run's seed, so one
# cache serves every run; not the drawn test set's seed (0) nor the calibration reference's (1).
STROKE_SEED = 7


@dataclass
class Monitor:
    """Who hears about a training run as it goes, and may stop it.

    ``epoch_done`` gets the history so far after every epoch; ``batch_done``
    (epoch, batches done, batches per epoch) after every batch; ``should_stop``
    is asked after every batch, and a True ends the run after that batch: the
    part-trained epoch is scored like any other and the best epoch is kept.
    """

    epoch_done: Callable[[saved_models.History], None] | None = None
    batch_done: Callable[[int, int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None


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
    ranges: dict[str, saved_models.SplitRange]
    # The training digits redrawn as pen strokes, image for image; None when the recipe uses none.
    x_strokes: np.ndarray | None = None
    # Drawings users kept, split into a part trained on beside MNIST and a held-out part; None for none.
    kept: KeptSplit | None = None

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of 'train', 'validation', 'test' or 'drawn'."""
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def limited(self, train_limit: int | None) -> Dataset:
        """The same data with only the first ``train_limit`` training images (all of them for None),
        as ``load_dataset`` would give for that limit; the arrays are shared, not copied."""
        stop = len(self.x_train) if train_limit is None else min(train_limit, len(self.x_train))
        train = self.ranges["train"]
        return replace(
            self,
            x_train=self.x_train[:stop],
            y_train=self.y_train[:stop],
            x_strokes=None if self.x_strokes is None else self.x_strokes[:stop],
            ranges={**self.ranges, "train": replace(train, stop=train.start + stop)},
        )


def prepare_images(images: np.ndarray) -> np.ndarray:
    """Run MNIST images through the app's preprocessing: (N, 28, 28) uint8 -> float32."""
    return np.stack([preprocess.to_mnist(image) for image in images])


def _read_cache(path: Path, *names: str) -> tuple[np.ndarray, ...] | None:
    """The named arrays of a cache file, or None when there is none yet, or a damaged one."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return tuple(archive[name] for name in names)
    except (OSError, ValueError, KeyError):
        return None


def _write_cache(path: Path, **arrays: np.ndarray) -> None:
    """Keep arrays in a cache file, atomically; a read-only cache folder costs time, not correctness."""
    try:
        with atomic_write(path) as handle:
            np.savez(handle, **arrays)
    except OSError:
        pass


def _prepared_cache(checksum: str) -> Path:
    return data.cache_dir() / f"prepared-{checksum[:12]}-{preprocess.fingerprint()[:12]}.npz"


def _cached_mnist(checksum: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The preprocessed training and test images from the cache, or None when there is none yet."""
    return _read_cache(_prepared_cache(checksum), "x_train", "x_test")


def cached_test_inputs(splits) -> np.ndarray | None:
    """MNIST's test images through ``to_mnist``, read from the cache training leaves (30 MB, a tenth of a
    second), or None when there is none yet; only the test images are read."""
    cached = _read_cache(_prepared_cache(data.data_checksum(splits)), "x_test")
    if cached is None:
        return None
    (images,) = cached
    return images if images.shape == (len(splits[1][0]), *splits[1][0].shape[1:]) else None


def _prepared_mnist(splits, checksum: str) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed training and test images, cached on disk per data and code version."""
    (x_train, _), (x_test, _) = splits
    cache = _prepared_cache(checksum)
    cached = _cached_mnist(checksum)
    if cached is not None:
        return cached
    prepared_train, prepared_test = prepare_images(x_train), prepare_images(x_test)
    _write_cache(cache, x_train=prepared_train, x_test=prepared_test)
    return prepared_train, prepared_test


def _strokes_cache(checksum: str) -> Path:
    return data.cache_dir() / f"strokes-{checksum[:12]}-{preprocess.fingerprint()[:12]}-{STROKE_SEED}.npz"


def training_strokes(raw_train: np.ndarray, checksum: str, cache: bool = True) -> np.ndarray:
    """MNIST's training digits redrawn once as pen strokes and preprocessed, from the disk cache
    when ``cache`` (the whole training split) and it exists; rendered (about 6 ms a digit) otherwise."""
    path = _strokes_cache(checksum)
    cached = _read_cache(path, "x_strokes") if cache else None
    if cached is not None and len(cached[0]) == len(raw_train):
        return cached[0]
    bar = ProgressBar("Redrawing training digits as strokes", len(raw_train))
    progress = (lambda done, _total: bar.update(done, "")) if len(raw_train) > 5_000 else None
    strokes = redrawn_training_digits(raw_train, STROKE_SEED, progress=progress)
    if cache:
        _write_cache(path, x_strokes=strokes)
    return strokes


def _drawn_cache(checksum: str, count: int, seed: int) -> Path:
    return data.cache_dir() / f"drawn-{checksum[:12]}-{preprocess.fingerprint()[:12]}-{count}-{seed}.npz"


def cached_drawn_set(
    raw_test: np.ndarray, y_test: np.ndarray, checksum: str, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``drawn.drawn_evaluation_set`` of MNIST test digits, from the disk cache when it holds this one:
    rendering 2,000 takes about ten seconds, reading them back a few milliseconds."""
    path = _drawn_cache(checksum, count, seed)
    cached = _read_cache(path, "x_drawn", "y_drawn")
    if cached is not None and cached[0].shape == (count, *raw_test.shape[1:]) and cached[1].shape == (count,):
        return cached
    images, labels = drawn_evaluation_set(raw_test, y_test, count, seed=seed)
    _write_cache(path, x_drawn=images, y_drawn=labels)
    return images, labels


def load_dataset(config: TrainConfig, splits=None) -> Dataset:
    """MNIST preprocessed like the app's input, split train/validation/test, plus drawn digits."""
    splits = splits if splits is not None else data.load_mnist()
    checksum = data.data_checksum(splits)
    (raw_all, y_all), (raw_test, y_test) = splits
    ranges = data.split_ranges(config.validation_size, config.train_limit, len(raw_all), len(raw_test))
    train, validation = ranges["train"], ranges["validation"]
    cached = _cached_mnist(checksum)
    if cached is not None:
        x_all, x_test = cached  # Reading the whole cache (0.3 s) beats preparing even a slice.
    elif train.stop < validation.start:
        # A quick run prepares only the images it uses, and leaves the cache alone.
        x_all = np.zeros(raw_all.shape, np.float32)
        x_all[: train.stop] = prepare_images(raw_all[: train.stop])
        x_all[validation.start :] = prepare_images(raw_all[validation.start :])
        x_test = prepare_images(raw_test)
    else:
        x_all, x_test = _prepared_mnist(splits, checksum)
    x_drawn, y_drawn = cached_drawn_set(raw_test, y_test, checksum, config.drawn_eval_size, config.seed)
    x_strokes = None
    if config.stroke_share > 0:
        # A quick run redraws only its own images and leaves the cache alone.
        whole = train.stop == validation.start
        x_strokes = training_strokes(raw_all[: train.stop], checksum, cache=whole)
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
        x_strokes=x_strokes,
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
    baseline: saved_models.RecipeBaseline | None = None,
) -> saved_models.SavedModel:
    """Train one registry model, save it under ``out_dir`` and return it as saved; ``baseline``, the same
    model trained by another recipe, is kept in its metrics. The dataset's kept drawings, if any, are
    trained on too."""
    spec = get_spec(model_id)
    settings = {**asdict(config), "recipe": recipe_name(config)}
    teacher = None
    if config.teacher is not None:
        teacher = load_teacher(config.teacher, spec.id, dataset.checksum, dataset.ranges)
        settings["teacher_model_sha256"] = teacher.model_sha256  # Which of the teacher's weights taught.

    def epoch_done(history: saved_models.History) -> None:
        if progress is not None:
            validation, test = history.validation.accuracy[-1], history.test.accuracy[-1]
            progress(history.epoch[-1], f"val {validation:.2%} test {test:.2%}")

    run = Run(
        spec.id,
        spec.architecture,
        config,
        learning_rate=config.learning_rate(spec),
        optimizer="study",
        settings=settings,
        teacher=teacher,
    )
    return _train_and_save(run, dataset, out_dir, Monitor(epoch_done=epoch_done), baseline)


def train_network(
    settings: NetworkSettings,
    dataset: Dataset | None = None,
    out_dir: Path | None = None,
    monitor: Monitor | None = None,
    kept: KeptSplit | None = None,
    overwrite: bool = True,
) -> saved_models.SavedModel:
    """Train a network someone designed and save it as ``<out_dir>/custom/<name>/``; without
    ``overwrite``, a SavedModelError rather than replace a network saved under its name meanwhile.

    ``dataset`` is loaded for the settings when not given (its training
    images must then match ``settings.train_limit``); ``kept``, drawings users
    kept, are trained on beside it, and must be given exactly when the
    settings ask for them (``kept_repeats``, the split's repeats).
    """
    given = None if kept is None else kept.repeats
    if given != settings.kept_repeats:
        raise ValueError(
            f"the settings ask for the kept drawings {settings.kept_repeats} times an epoch "
            f"(None: not at all), but the drawings given are split for {given}"
        )
    config = settings.train_config()
    dataset = dataset if dataset is not None else load_dataset(config)
    if kept is not None:
        dataset = replace(dataset, kept=kept)
    recorded = {**asdict(settings), "learning_rate": settings.resolved_learning_rate}
    run = Run(
        settings.name,
        settings.architecture,
        config,
        learning_rate=settings.resolved_learning_rate,
        optimizer=settings.optimizer,
        settings=recorded,
        overwrite=overwrite,
    )
    return _train_and_save(run, dataset, out_dir, monitor or Monitor())


def _optimizer(optimizer: str, learning_rate: float, decay_steps: int):
    import keras

    if optimizer == "study":
        return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps))
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.SGD(learning_rate, momentum=SGD_MOMENTUM)


def held_out_accuracy_before(
    model_id: ModelId, out_dir: Path | None, kept: KeptSplit
) -> tuple[float | None, str | None]:
    """The accuracy on the held-out kept drawings of the model a run is about to replace, and its weights'
    checksum; Nones when there is none that loads."""
    try:
        before = saved_models.load(model_id, out_dir)
    except saved_models.SavedModelError:
        return None, None  # Nothing there yet, or nothing usable: no figure to compare with.
    accuracy = evaluate.score(before.network, kept.held_out.images, kept.held_out.labels)["accuracy"]
    return accuracy, before.card.model_sha256


@dataclass(frozen=True)
class Run:
    """What one training run trains, and how: everything the loop needs beside the data."""

    model_id: ModelId
    architecture: Architecture
    config: TrainConfig
    learning_rate: float
    optimizer: str  # A key of ``config.OPTIMIZERS``.
    settings: dict  # The training settings the model card records.
    teacher: Teacher | None = None
    overwrite: bool = True  # False: a model saved under the same name meanwhile is kept, this one refused.

    @property
    def keras_name(self) -> str:
        """The Keras model's name: the network's own, or the study model's folder name."""
        return self.model_id if is_custom(self.model_id) else get_spec(self.model_id).directory_name


@dataclass(frozen=True)
class Fitted:
    """What the loop leaves: the curves of every epoch, the kept epoch's weights, the time it took."""

    history: saved_models.History
    best_weights: list[np.ndarray]
    seconds: float


def _epoch_images(
    dataset: Dataset, config: TrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's training images and labels: MNIST's (a share swapped for the same digits as pen
    strokes), the kept drawings appended, and all of it augmented afresh."""
    images, labels = dataset.x_train, dataset.y_train
    if config.stroke_share > 0:
        if dataset.x_strokes is None:
            raise ValueError("this recipe mixes in pen strokes, but the dataset was loaded without them")
        swap = rng.uniform(size=len(images)) < config.stroke_share
        images = np.where(swap[:, None, None], dataset.x_strokes, images)
    if dataset.kept is not None:
        # Appended before augmentation, so the kept drawings are transformed like the MNIST digits.
        kept_images, kept_labels = dataset.kept.training_arrays()
        images = np.concatenate([images, kept_images])
        labels = np.concatenate([labels, kept_labels.astype(labels.dtype)])
    if config.augmentation is not None:
        images = augment(images, rng, config.augmentation)
    return images, labels


def _fit(run: Run, dataset: Dataset, monitor: Monitor) -> Fitted:
    """Fit epoch by epoch, score every split after each, and keep the best epoch on validation (early
    stopping after ``patience`` epochs without a better one, or when the monitor asks)."""
    import keras

    config = run.config
    _seed_everything(config.seed)
    # Distillation needs the student's logits; the saved model, built after, ends in softmax as always.
    model = build_keras_model(run.architecture, run.keras_name, output_logits=run.teacher is not None)
    kept_size = 0 if dataset.kept is None else dataset.kept.repeats * len(dataset.kept.training)
    steps_per_epoch = -(-(len(dataset.x_train) + kept_size) // config.batch_size)
    loss = "sparse_categorical_crossentropy"
    if run.teacher is not None:
        loss = distillation_loss(config.distill_temperature, config.distill_weight)
    # No Keras metrics: every epoch is scored below, on all three splits, by the
    # same NumPy forward pass that the app uses.
    schedule_steps = config.epochs * steps_per_epoch
    model.compile(optimizer=_optimizer(run.optimizer, run.learning_rate, schedule_steps), loss=loss)
    augment_rng = np.random.default_rng(config.seed)
    curves: dict[str, dict[str, list[float]]] = {split: {"loss": [], "accuracy": []} for split in SPLITS}
    epochs: list[int] = []
    best_accuracy, best_epoch, best_weights = -1.0, 0, model.get_weights()
    stop_requested = False

    class Hooks(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            nonlocal stop_requested
            if monitor.batch_done is not None:
                monitor.batch_done(len(epochs) + 1, batch + 1, steps_per_epoch)
            if monitor.should_stop is not None and monitor.should_stop():
                stop_requested = True
                self.model.stop_training = True

    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        images, labels = _epoch_images(dataset, config, augment_rng)
        # The teacher answers on this epoch's images, exactly as the student sees them.
        targets = labels if run.teacher is None else run.teacher.targets(images, labels)
        model.fit(
            images,
            targets,
            batch_size=config.batch_size,
            epochs=1,
            shuffle=True,
            verbose=0,
            callbacks=[Hooks()],
        )
        network = Network.from_keras(model, run.architecture)
        epochs.append(epoch)
        for split in SPLITS:
            scores = evaluate.score(network, *dataset.split(split))
            curves[split]["loss"].append(scores["loss"])
            curves[split]["accuracy"].append(scores["accuracy"])
        validation_accuracy = curves["validation"]["accuracy"][-1]
        if validation_accuracy > best_accuracy:
            best_accuracy, best_epoch, best_weights = validation_accuracy, epoch, model.get_weights()
        if monitor.epoch_done is not None:
            monitor.epoch_done(saved_models.History(epoch=epochs, best_epoch=best_epoch, **curves))
        if stop_requested or epoch - best_epoch >= config.patience:
            break
    history = saved_models.History(epoch=epochs, best_epoch=best_epoch, **curves)
    return Fitted(history=history, best_weights=best_weights, seconds=time.perf_counter() - started)


def _metrics(
    network: Network,
    dataset: Dataset,
    baseline: saved_models.RecipeBaseline | None,
    before: tuple[float | None, str | None] | None,
) -> saved_models.Metrics:
    """How the kept weights score on every split and the test set in detail; on the held-out kept
    drawings too, beside ``before``, the model it replaces (``held_out_accuracy_before``)."""
    scores = {split: evaluate.score(network, *dataset.split(split)) for split in (*SPLITS, "drawn")}
    kept_record = None
    if dataset.kept is not None:
        held_out = dataset.kept.held_out
        accuracy = evaluate.score(network, held_out.images, held_out.labels)["accuracy"]
        kept_record = dataset.kept.record(accuracy, *before)
    return saved_models.Metrics(
        accuracy={split: score["accuracy"] for split, score in scores.items()},
        loss={split: score["loss"] for split, score in scores.items()},
        **evaluate.labelled_set_report(network, dataset.x_test, dataset.y_test),
        baseline=baseline,
        kept_drawings=kept_record,
    )


def _card(run: Run, dataset: Dataset, fitted: Fitted, parameters: int) -> saved_models.ModelCard:
    """The model card: what was trained, on what, how, and with which libraries."""
    return saved_models.ModelCard(
        model_id=run.model_id,
        architecture=run.architecture,
        parameters=parameters,
        epochs_run=len(fitted.history.epoch),
        best_epoch=fitted.history.best_epoch,
        training_seconds=round(fitted.seconds, 2),
        seed=run.config.seed,
        config=run.settings,
        data=data_record(dataset),
        versions=library_versions(),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def data_record(dataset: Dataset) -> saved_models.DataRecord:
    """What a model was scored on (and, trained here, trained on): the data's checksum, its splits, the
    drawn digits and the preprocessing."""
    return saved_models.DataRecord(
        sha256=dataset.checksum,
        splits=dataset.ranges,
        drawn_size=len(dataset.y_drawn),
        preprocess_fingerprint=preprocess.fingerprint(),
    )


def _train_and_save(
    run: Run,
    dataset: Dataset,
    out_dir: Path | None,
    monitor: Monitor,
    baseline: saved_models.RecipeBaseline | None = None,
) -> saved_models.SavedModel:
    """The one path every model and network takes: fit, score the best epoch, save atomically."""
    before = None
    if dataset.kept is not None:
        # Measured before training: the files about to be replaced are the model before.
        before = held_out_accuracy_before(run.model_id, out_dir, dataset.kept)
    fitted = _fit(run, dataset, monitor)
    # Saved without optimizer state: a fresh model holding the best weights.
    final = build_keras_model(run.architecture, run.keras_name)
    final.set_weights(fitted.best_weights)
    network = Network.from_keras(final, run.architecture)
    metrics = _metrics(network, dataset, baseline, before)
    card = _card(run, dataset, fitted, int(final.count_params()))
    directory = saved_models.model_dir(run.model_id, out_dir)
    saved_models.save(directory, final, card, fitted.history, metrics, overwrite=run.overwrite)
    return saved_models.load(run.model_id, out_dir)


def summary_line(model: saved_models.SavedModel) -> str:
    """One line per trained model for the end-of-run summary."""
    card, accuracy = model.card, model.metrics.accuracy
    what = f"Model {card.model_id}" if model.spec is not None else card.model_id
    line = (
        f"{what} {card.architecture.summary:<14} {card.architecture.hidden_activation:<7} "
        f"train {accuracy['train']:.2%}  val {accuracy['validation']:.2%}  "
        f"test {accuracy['test']:.2%}  drawn {accuracy['drawn']:.2%}  "
        f"{card.epochs_run} epochs in {card.training_seconds:.0f} s"
    )
    kept = model.metrics.kept_drawings
    if kept is not None:
        line += f"  {kept.summary()}"
    return line


def train_models(
    model_ids: list[int] | tuple[int, ...] = MODEL_IDS,
    config: TrainConfig = TrainConfig(),
    out_dir: Path | None = None,
    splits=None,
    baseline: TrainConfig | None = None,
    kept: KeptSplit | None = None,
) -> list[saved_models.SavedModel]:
    """Train several models on one prepared dataset; print progress and a summary.

    With ``baseline`` (another recipe), each model is first trained by it too, in a scratch folder, and
    its accuracy kept in the saved model's metrics: the Compare page shows both recipes' figures. With
    ``kept``, drawings users kept, every model (and its baseline) trains on them beside MNIST.
    """
    for model_id in model_ids:
        get_spec(model_id)  # Reject a bad id before any slow work starts.
        check_not_own_teacher(config.teacher, model_id)
    out_dir = Path(out_dir) if out_dir is not None else saved_models_dir()
    if baseline is not None and baseline.stroke_share > config.stroke_share:
        raise ValueError("the baseline recipe may not mix in more pen strokes than the trained one")
    dataset = replace(load_dataset(config, splits), kept=kept)
    if config.teacher is not None:
        for model_id in model_ids:
            # Refuse a teacher that cannot teach before a baseline's minutes of training.
            load_teacher(config.teacher, model_id, dataset.checksum, dataset.ranges)
    results = []
    for model_id in model_ids:
        measured = None
        if baseline is not None:
            with tempfile.TemporaryDirectory(prefix="digitdraw-baseline-") as scratch:
                bar = ProgressBar(f"Model {model_id} ({recipe_name(baseline)} recipe)", baseline.epochs)
                trained = train_model(model_id, dataset, baseline, Path(scratch), progress=bar.update)
            measured = saved_models.RecipeBaseline(
                recipe=recipe_name(baseline),
                accuracy=trained.metrics.accuracy,
                epochs_run=trained.card.epochs_run,
                training_seconds=trained.card.training_seconds,
            )
        bar = ProgressBar(f"Model {model_id} ({recipe_name(config)} recipe)", config.epochs)
        results.append(
            train_model(model_id, dataset, config, out_dir, progress=bar.update, baseline=measured)
        )
    print("\n".join(summary_line(model) for model in results))
    ids = " ".join(str(model_id) for model_id in model_ids)
    print(f"New weights answer uncalibrated until `python -m digitdraw calibrate --model {ids}` runs.")
    return results
