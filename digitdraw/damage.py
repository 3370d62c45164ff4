"""The damage lab: switch hidden units off, add noise to the weights, prune small weights, and see what
a network still gets right.

A damaged network is a new ``Network`` built from copies of the saved
weights, so nothing on disk or in the model cache changes. A unit is switched
off by zeroing its outgoing weights, which is the same as holding its output
at 0 whatever its activation (a sigmoid unit would otherwise sit at 0.5 with
its input zeroed). Pruning removes the given share of each layer's kernel
entries with the smallest magnitude; noise is Gaussian with a standard
deviation relative to each kernel's own, so one setting means as much to a
16-unit layer as to a 128-unit one; noise comes first, so that pruned weights
stay exactly zero. Random choices come from one seed, so a
setting always gives the same damaged network.

Accuracy is measured on a fixed sample of the preprocessed MNIST test set
(2,000 images by default): one forward pass of the sample, tens of
milliseconds, which keeps every change interactive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from digitdraw.models import Network

TEST_SAMPLE_SIZE = 2000
SAMPLE_SEED = 0


@dataclass(frozen=True)
class Damage:
    """What to do to a network; the default does nothing."""

    switched_off: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # Hidden layer -> units.
    random_share: float = 0.0  # Share of each hidden layer's units switched off at random.
    noise: float = 0.0  # Weight noise, in standard deviations of each kernel's weights.
    prune: float = 0.0  # Share of each kernel's weights, the smallest in magnitude, set to zero.
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("random_share", "prune"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"expected {name.replace('_', ' ')} between 0 and 1, got {value}")
        if not self.noise >= 0.0:  # NaN fails too.
            raise ValueError(f"expected noise >= 0, got {self.noise}")


def switched_off_units(network: Network, damage: Damage) -> list[np.ndarray]:
    """Per hidden layer, a boolean per unit: True where the damage switches it off."""
    hidden = network.architecture.layers[:-1]
    for layer, units in damage.switched_off.items():
        if not 0 <= layer < len(hidden):
            raise ValueError(f"expected a hidden layer 0-{len(hidden) - 1}, got {layer}")
        if any(not 0 <= unit < hidden[layer].units for unit in units):
            raise ValueError(
                f"expected units 0-{hidden[layer].units - 1} in hidden layer {layer}, got {units}"
            )
    rng = np.random.default_rng(damage.seed)
    masks = []
    for index, layer in enumerate(hidden):
        off = np.zeros(layer.units, bool)
        off[list(damage.switched_off.get(index, ()))] = True
        count = round(damage.random_share * layer.units)
        off[rng.choice(layer.units, size=count, replace=False)] = True
        masks.append(off)
    return masks


def damaged(network: Network, damage: Damage) -> Network:
    """A copy of the network with the damage done; the original is untouched."""
    rng = np.random.default_rng([damage.seed, 1])  # A stream of its own, apart from the units' choice.
    weights = [kernel.copy() for kernel in network.weights]
    for original, kernel in zip(network.weights, weights):
        # Noise first, so that pruned weights stay exactly zero.
        if damage.noise > 0:
            spread = float(original.std())
            kernel += rng.normal(0.0, damage.noise * spread, kernel.shape).astype(np.float32)
        if damage.prune > 0:
            count = round(damage.prune * kernel.size)
            smallest = np.argpartition(np.abs(kernel), count - 1, axis=None)[:count] if count else []
            kernel.reshape(-1)[smallest] = 0.0
    for index, off in enumerate(switched_off_units(network, damage)):
        weights[index + 1][off, :] = 0.0  # No output leaves a switched-off unit.
    return Network(network.architecture, weights, [bias.copy() for bias in network.biases])


def fixed_sample(
    images: np.ndarray, labels: np.ndarray, size: int = TEST_SAMPLE_SIZE, seed: int = SAMPLE_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random sample of preprocessed test images and their labels, the same every time."""
    if len(images) != len(labels):
        raise ValueError(f"expected as many labels as images, got {len(labels)} and {len(images)}")
    if not 1 <= size <= len(images):
        raise ValueError(f"expected a sample size of 1-{len(images)}, got {size}")
    chosen = np.sort(np.random.default_rng(seed).choice(len(images), size=size, replace=False))
    return images[chosen], labels[chosen]


def accuracy(network: Network, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of preprocessed images the network reads as their label."""
    return float((np.argmax(network.predict_proba(images), axis=1) == labels).mean())
