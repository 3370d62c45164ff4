"""What a training run is: the typed settings of a run (``TrainConfig``), the recipes that train the
registry's models, and a network someone designs (``NetworkSettings``), each checked when made.

These are plain frozen dataclasses, saved into every model card and into
queued jobs, and importable without the training loop: the job queue's
schema and the Train page read them, and neither may pull in Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from digitdraw.learning import data
from digitdraw.learning.augment import IMPROVED_AUGMENTATION, AugmentConfig
from digitdraw.learning.distill import DEFAULT_TEMPERATURE, DEFAULT_WEIGHT, check_settings
from digitdraw.learning.kept_split import check_repeats
from digitdraw.serving.networks import HIDDEN_ACTIVATIONS, Architecture, ModelSpec, check_custom_name

# What a designed network may be: the Train page's and the command line's limits.
HIDDEN_LAYERS = (1, 3)
HIDDEN_UNITS = (4, 512)
MAX_EPOCHS = 30
# The training split is MNIST's first 50,000 images; the last 10,000 validate every run.
TRAIN_IMAGES = (100, data.TRAIN_SIZE - data.VALIDATION_SIZE)
# The study's recipe is Adam with a learning rate decaying along a cosine; Adam here keeps its rate.
OPTIMIZERS = {"study": "The study's recipe", "adam": "Adam", "sgd": "SGD with momentum 0.9"}
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 0.05}  # The study's recipe: ``TrainConfig.learning_rate``.


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
    # Share of each epoch's training digits swapped for the same digits redrawn as pen strokes.
    stroke_share: float = 0.0
    # Distillation (``digitdraw.learning.distill``): the registry id of a saved model to learn from, None for
    # labels alone; its softened answers' temperature, and their weight in the loss (the labels get the rest).
    teacher: int | None = None
    distill_temperature: float = DEFAULT_TEMPERATURE
    distill_weight: float = DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        check_settings(self.teacher, self.distill_temperature, self.distill_weight)
        if not 0.0 <= self.stroke_share <= 1.0:
            raise ValueError(f"stroke_share must be from 0 to 1, got {self.stroke_share}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.train_limit is not None and self.train_limit < 1:
            raise ValueError(f"train_limit must be a positive number of images, got {self.train_limit}")
        # The drawn digits are made from MNIST's test images, one each at most.
        if not 1 <= self.drawn_eval_size <= data.TEST_SIZE:
            raise ValueError(
                f"the drawn evaluation set must hold 1 to {data.TEST_SIZE:,} digits, "
                f"got {self.drawn_eval_size}"
            )

    def learning_rate(self, spec: ModelSpec) -> float:
        """Sigmoid networks learn slowly with ReLU's rate, so each activation has its own."""
        return self.activation_learning_rate(spec.activation)

    def activation_learning_rate(self, activation: str) -> float:
        """The study recipe's starting learning rate for networks of one hidden activation."""
        return self.sigmoid_learning_rate if activation == "sigmoid" else self.relu_learning_rate


STUDY_RECIPE = TrainConfig()
# The teacher the ablation distilled from: model 6, the CNN beyond the study, best of the registry on MNIST.
DISTILL_TEACHER = 6
# The ablation's share of pen strokes (experiments/recipes.py); not in the improved recipe, which the
# ablation chose without them.
STROKE_SHARE = 0.5
IMPROVED_RECIPE = TrainConfig(augmentation=IMPROVED_AUGMENTATION)
RECIPES = {"study": STUDY_RECIPE, "improved": IMPROVED_RECIPE}


# What the recipes differ in: how the training images are made. The rest (optimizer, epochs, seed,
# data size) any run may set without leaving its recipe.
RECIPE_KEYS = ("augmentation", "stroke_share", "teacher", "distill_temperature", "distill_weight")


def recipe_name(config: TrainConfig) -> str:
    """Which of ``RECIPES`` makes a config's training images; 'custom' for any other mixture."""
    for name, recipe in RECIPES.items():
        if all(getattr(config, key) == getattr(recipe, key) for key in RECIPE_KEYS):
            return name
    return "custom"


# What the study's recipe sets for any network, beyond the activation's learning rate.
STUDY_TRAINING = {
    "optimizer": "study",
    "batch_size": STUDY_RECIPE.batch_size,
    "epochs": STUDY_RECIPE.epochs,
    "train_limit": None,
    "augmentation": STUDY_RECIPE.augmentation is not None,
    "seed": STUDY_RECIPE.seed,
}


def _in_range(value: object, bounds: tuple[int, int], what: str) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be a whole number from {low:,} to {high:,}, got {value!r}")
    return value


@dataclass(frozen=True)
class NetworkSettings:
    """A network someone designs and how to train it; saved into its model card.

    ``learning_rate`` None means the optimizer's usual one (the study's for its
    recipe); ``train_limit`` None means all 50,000 training images;
    ``kept_repeats`` None means MNIST alone, and a number the drawings users
    kept too (``kept_drawings``), each training drawing that many times an epoch.
    Every field has a default but the first three, so that settings saved
    before a field was added (a queued job, a model card) still load.
    """

    name: str
    hidden: tuple[int, ...]
    activation: str
    optimizer: str = "study"
    learning_rate: float | None = None
    batch_size: int = STUDY_RECIPE.batch_size
    epochs: int = 10
    train_limit: int | None = None
    augmentation: bool = True
    seed: int = 0
    kept_repeats: int | None = None

    def __post_init__(self) -> None:
        check_custom_name(self.name)
        object.__setattr__(self, "hidden", tuple(self.hidden))
        low, high = HIDDEN_LAYERS
        if not low <= len(self.hidden) <= high:
            raise ValueError(f"a network needs {low} to {high} hidden layers, got {len(self.hidden)}")
        for units in self.hidden:
            _in_range(units, HIDDEN_UNITS, "each hidden layer's units")
        if self.activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"the activation must be one of {', '.join(HIDDEN_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"the optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        rate = self.learning_rate
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1
        ):
            raise ValueError(f"the learning rate must be a number above 0 and at most 1, got {rate!r}")
        _in_range(self.batch_size, (1, 4096), "the batch size")
        _in_range(self.epochs, (1, MAX_EPOCHS), "the number of epochs")
        if self.train_limit is not None:
            _in_range(self.train_limit, TRAIN_IMAGES, "the number of training images")
        _in_range(self.seed, (0, 2**31 - 1), "the seed")
        if self.kept_repeats is not None:
            check_repeats(self.kept_repeats)

    @classmethod
    def study_recipe(cls, name: str, hidden: tuple[int, ...], activation: str) -> NetworkSettings:
        """What the study did, for any architecture: its optimizer, batch size, epochs and augmentation."""
        return cls(name=name, hidden=hidden, activation=activation, **STUDY_TRAINING)

    @property
    def architecture(self) -> Architecture:
        """The network these settings describe."""
        return Architecture.dense(self.hidden, self.activation)

    @property
    def resolved_learning_rate(self) -> float:
        """The learning rate the run starts with."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        if self.optimizer == "study":
            return STUDY_RECIPE.activation_learning_rate(self.activation)
        return DEFAULT_LEARNING_RATES[self.optimizer]

    def train_config(self) -> TrainConfig:
        """The study recipe's config with these settings' data, epochs, batch size and seed."""
        return replace(
            STUDY_RECIPE,
            epochs=self.epochs,
            batch_size=self.batch_size,
            augmentation=STUDY_RECIPE.augmentation if self.augmentation else None,
            seed=self.seed,
            train_limit=self.train_limit,
            # A designed network trains for the epochs asked; the best of them is kept all the same.
            patience=self.epochs,
        )
