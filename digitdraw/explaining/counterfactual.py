"""What would flip it: a small change to the 28x28 input that makes a network answer another digit.

The search walks up the gradient of the margin ``logit[target] - the
strongest other logit``, in steps of fixed length (L2, in pixel units),
keeping every pixel in [0, 1], until the target leads by ``margin``. Then it
shrinks the change: every point on the segment from the original to the
edited image is a valid image, so a bisection finds the shortest stretch of
it that still flips the answer. The result is small, not the smallest
possible (that is a non-convex problem with no cheap exact answer); a
margin above zero keeps the answer the same when another implementation of
the same network (Keras, in the tests) reads the edited image.

NumPy only, on the saved weights: one search is a few hundred forward and
backward passes of one image, milliseconds for these networks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitdraw.explaining.inside import input_gradients
from digitdraw.serving.networks import NUM_CLASSES, Network, check_class

# The target must lead the runner-up's logit by this much: about 1.6 times its probability.
DEFAULT_MARGIN = 0.5
STEP_LENGTH = 0.1  # L2 length of one step, in pixel units (a drawn digit's L2 norm is about 9).
MAX_STEPS = 400
BISECTIONS = 14
# A pixel counts as changed when it moved by more than this, a twentieth of full ink.
CHANGED_PIXEL = 0.05
# Why the search stopped: the target led by the margin; no pixel could move it further (its gradient
# is zero at this input, or every pixel it would move is at a bound); or it ran out of steps.
REACHED, NO_GRADIENT, STEP_LIMIT = "reached", "no gradient", "step limit"


@dataclass(frozen=True)
class Counterfactual:
    """The original input, the edited one, and what the network says about the edited one."""

    original: np.ndarray
    edited: np.ndarray
    target: int
    # Whether the target's logit leads every other one by the margin for ``edited`` (so the network
    # answers ``target``); the network may answer ``target`` without it (see ``reads_target``).
    succeeded: bool
    steps: int  # Gradient steps taken before shrinking.
    probabilities: np.ndarray  # The network's ten probabilities for ``edited``.
    stopped: str = REACHED  # Why the search stopped: REACHED, NO_GRADIENT or STEP_LIMIT.

    @property
    def reads_target(self) -> bool:
        """Whether the network answers ``target`` for ``edited``, by the margin or not."""
        return int(np.argmax(self.probabilities)) == self.target

    @property
    def change(self) -> np.ndarray:
        """Edited minus original, 28x28: positive where ink was added."""
        return self.edited - self.original

    @property
    def size(self) -> float:
        """The change's L2 norm, in pixel units."""
        return float(np.linalg.norm(self.change))

    @property
    def input_size(self) -> float:
        """The original input's L2 norm, in pixel units: what the change's size compares with."""
        return float(np.linalg.norm(self.original))

    @property
    def largest_change(self) -> float:
        """The largest change of one pixel, either way (1 when nothing changed): the change's colour scale."""
        return float(np.abs(self.change).max()) or 1.0

    @property
    def pixels_changed(self) -> int:
        """How many pixels moved by more than ``CHANGED_PIXEL``."""
        return int((np.abs(self.change) > CHANGED_PIXEL).sum())


def _lead(logits: np.ndarray, target: int) -> np.ndarray:
    """How far the target's logit is above the strongest other one, per row."""
    others = np.delete(logits, target, axis=-1)
    return logits[..., target] - others.max(axis=-1)


def flip(
    network: Network,
    image: np.ndarray,
    target: int,
    margin: float = DEFAULT_MARGIN,
    step_length: float = STEP_LENGTH,
    max_steps: int = MAX_STEPS,
) -> Counterfactual:
    """A small edit of a preprocessed 28x28 image, pixels in [0, 1], that the network reads as ``target``."""
    original = network.check_image(image)
    if not np.isfinite(original).all() or original.min() < 0.0 or original.max() > 1.0:
        raise ValueError("expected pixel values in [0, 1]")
    target = check_class(target, "target digit")
    if margin < 0 or step_length <= 0 or max_steps < 0:
        raise ValueError("expected margin >= 0, step_length > 0 and max_steps >= 0")
    edited = original.copy()
    steps, stopped = 0, REACHED
    while _lead(network.logits(edited[None]), target)[0] < margin:
        if steps >= max_steps:
            stopped = STEP_LIMIT
            break
        logits = network.logits(edited[None])[0]
        rival = int(np.argmax(np.where(np.arange(NUM_CLASSES) == target, -np.inf, logits)))
        direction = np.zeros((1, NUM_CLASSES), np.float32)
        direction[0, target], direction[0, rival] = 1.0, -1.0
        gradient = input_gradients(network, edited[None], direction)[0]
        # Pixels already at a bound that the gradient pushes further out cannot move: leave them out.
        gradient[((edited <= 0.0) & (gradient < 0)) | ((edited >= 1.0) & (gradient > 0))] = 0.0
        norm = float(np.linalg.norm(gradient))
        if norm == 0.0:
            stopped = NO_GRADIENT
            break
        edited = np.clip(edited + step_length * gradient / norm, 0.0, 1.0)
        steps += 1
    succeeded = stopped == REACHED
    if succeeded:
        edited = _shrink(network, original, edited, target, margin)
    probabilities = network.predict_proba(edited[None])[0]
    return Counterfactual(original, edited, target, succeeded, steps, probabilities, stopped)


def _shrink(
    network: Network, original: np.ndarray, edited: np.ndarray, target: int, margin: float
) -> np.ndarray:
    """The point nearest the original on the segment to ``edited`` that still leads by ``margin``."""
    change = edited - original
    low, high = 0.0, 1.0  # The lead is below the margin at ``low`` and reaches it at ``high``.
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        candidate = original + np.float32(middle) * change
        if _lead(network.logits(candidate[None]), target)[0] >= margin:
            high = middle
        else:
            low = middle
    return np.clip(original + np.float32(high) * change, 0.0, 1.0)
