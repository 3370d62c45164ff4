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

In a convolutional network a convolution's unit is a whole feature map (one
filter): switching it off zeroes every weight that reads that map in the next
layer with weights, through any pool between them. A pool has no units of
its own to switch off.

Accuracy is measured on a fixed sample of the preprocessed MNIST test set
(2,000 images by default): one forward pass of the sample, tens of
milliseconds, which keeps every change interactive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from digitdraw.serving.networks import Network

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


def switchable_layers(network: Network) -> list[int]:
    """The hidden layers whose units can be switched off: every hidden layer but a pool."""
    return [index for index, layer in enumerate(network.architecture.layers[:-1]) if layer.has_weights]


def hidden_units(network: Network) -> list[int]:
    """Each hidden layer's number of units: a dense layer's units, a conv or pool layer's feature maps."""
    return [shape[-1] for shape in network.architecture.shapes[1:-1]]


def switched_off_units(network: Network, damage: Damage) -> list[np.ndarray]:
    """Per hidden layer, a boolean per unit: True where the damage switches it off (never, in a pool)."""
    switchable, units = switchable_layers(network), hidden_units(network)
    for layer, chosen in damage.switched_off.items():
        if layer not in switchable:
            raise ValueError(
                f"expected a hidden layer with units of its own, one of {switchable}, got {layer}"
            )
        if any(not 0 <= unit < units[layer] for unit in chosen):
            raise ValueError(f"expected units 0-{units[layer] - 1} in hidden layer {layer}, got {chosen}")
    rng = np.random.default_rng(damage.seed)
    masks = []
    for index, count in enumerate(units):
        off = np.zeros(count, bool)
        if index in switchable:
            off[list(damage.switched_off.get(index, ()))] = True
            off[rng.choice(count, size=round(damage.random_share * count), replace=False)] = True
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
        if off.any():
            # The next layer with weights reads this layer's units along its kernel's second-last axis
            # once the kernel is seen as (positions, units, outputs): a 3x3 kernel's channels, or a
            # dense kernel's rows of a flattened channels-last map (one unit per row for a vector).
            reader = next(p for p in network.parameter_index[index + 1 :] if p is not None)
            kernel = weights[reader]
            kernel.reshape(-1, off.size, kernel.shape[-1])[:, off, :] = 0.0  # No output leaves the unit.
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
