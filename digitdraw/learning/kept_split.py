"""Training on the drawings users kept: splitting them for good, and mixing them into MNIST.

The Draw page keeps drawings with the digit they really are (``digitdraw.drawings.store``);
``python -m digitdraw train --drawings``, and a Train page job with its
option on (``NetworkSettings.kept_repeats``), train on them beside MNIST.
Three choices make that honest:

- **A split that never moves.** Each drawing is held out or trained on by a
  hash of what it shows alone (``is_held_out`` of its ``input_digest``),
  not by a shuffle of today's drawings, nor by its id in one store: as the
  store grows, every drawing stays in the part it was in, so a held-out
  drawing is never trained on by a later run, and figures of runs months apart
  are on the same drawings plus the new ones. The same drawing kept twice, or
  imported into another store, lands in the same part every time, so no copy
  of a held-out drawing is ever trained on. The held-out part
  (``HELD_OUT_SHARE``) is never trained on and chooses nothing (the epoch kept
  is still chosen on MNIST validation); it only measures.
- **Repeated, and augmented like MNIST.** A few hundred drawings beside
  50,000 MNIST digits would barely move the weights, so each training
  drawing appears ``repeats`` times an epoch (``DEFAULT_REPEATS``), each copy
  through the same random augmentation as the MNIST digits. The trade-off:
  more repeats weigh the users' hands more and risk learning those few
  drawings by heart; the held-out accuracy is what tells.
- **Refused when too few.** An accuracy on a handful of drawings says
  nothing, so a split needs ``MIN_PER_PART`` drawings in each part
  (``PartSizes.enough``; the Train page asks the same of the store's
  digests before it offers the option).

Reading them from a store or an export is ``digitdraw.drawings.kept_drawings``'s;
this module sits below the store, which hashes each drawing it keeps with
``input_digest``.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digitdraw.serving import saved_models
from digitdraw.serving.networks import NUM_CLASSES
from digitdraw.serving.preprocess import IMAGE_SIZE

HELD_OUT_SHARE = 0.2
# Each part needs this many drawings: a held-out accuracy on fewer is noise.
MIN_PER_PART = 10
# How many times each training drawing appears in an epoch, and the most a run may ask for: at 100, 500
# kept drawings already weigh as much as 50,000 MNIST digits.
DEFAULT_REPEATS = 10
REPEATS_RANGE = (1, 100)
# Part of what is hashed, so that this split is unrelated to any other use of the digests.
SPLIT_SALT = "digitdraw-kept-drawing"
SPLIT_RULE = (
    f"held out when sha256('{SPLIT_SALT}:<input digest>')'s first 8 bytes, read as a big-endian fraction "
    "of 2**64, fall below the held-out share; the input digest is the hex sha256 of the drawing's 28x28 "
    "model input as uint8 0-255"
)


def quantised(model_input: np.ndarray) -> np.ndarray:
    """A model input as MNIST-style bytes: uint8 0-255, what an export writes and a digest hashes."""
    return np.rint(np.asarray(model_input, dtype=np.float32) * 255).astype(np.uint8)


def input_digest(model_input: np.ndarray) -> str:
    """The sha256 of a 28x28 model input's bytes (``quantised``), in hex: equal for equal drawings,
    whether read from a store (float32) or from an export (uint8 / 255)."""
    return hashlib.sha256(quantised(model_input).tobytes()).hexdigest()


def is_held_out(input_digest: str, share: float = HELD_OUT_SHARE) -> bool:
    """Whether a kept drawing belongs to the held-out part: a function of its ``input_digest`` alone
    (``SPLIT_RULE``)."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{input_digest}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass(frozen=True)
class PartSizes:
    """How many kept drawings the split trains on and holds out."""

    training: int
    held_out: int

    @property
    def kept(self) -> int:
        """How many drawings there are in all."""
        return self.training + self.held_out

    @property
    def enough(self) -> bool:
        """Whether each part holds ``MIN_PER_PART`` drawings: what ``split`` asks before it splits."""
        return min(self.training, self.held_out) >= MIN_PER_PART

    def describe(self) -> str:
        """How many are kept and how they split, in words for people (where they are kept is left out)."""
        return (
            f"{self.kept:,} drawings are kept ({self.training:,} to learn from, "
            f"{self.held_out:,} held out to measure it)"
        )

    @property
    def more_needed(self) -> int:
        """About how many more kept drawings give each part ``MIN_PER_PART`` (0 once they have), counting
        on ``HELD_OUT_SHARE`` of the new ones being held out."""
        if self.enough:
            return 0
        # Rounded before the ceiling, so that a quotient a hair above a whole number (9 / (1 - 0.55) is
        # 20.000000000000004) does not ask for one drawing more.
        held_out = math.ceil(round(max(0, MIN_PER_PART - self.held_out) / HELD_OUT_SHARE, 9))
        training = math.ceil(round(max(0, MIN_PER_PART - self.training) / (1 - HELD_OUT_SHARE), 9))
        return max(held_out, training)

    def shortfall(self) -> str:
        """Why these are too few to split, and about how many more to keep, in words for people;
        ``split``'s refusal, without the source."""
        return (
            f"{self.describe()}, and each part needs at least {MIN_PER_PART}: "
            f"keep about {self.more_needed} more"
        )


def held_out_mask(digests: Sequence[str]) -> np.ndarray:
    """Which of the drawings with these input digests are held out (``is_held_out``), as a boolean array."""
    return np.array([is_held_out(digest) for digest in digests], dtype=bool)


def part_sizes(digests: Sequence[str]) -> PartSizes:
    """How the split would divide drawings of these input digests (``Store.digests``), without reading the
    drawings themselves."""
    held_out = held_out_mask(digests)
    return PartSizes(training=int((~held_out).sum()), held_out=int(held_out.sum()))


def check_repeats(repeats: object) -> int:
    """The number of times each training drawing appears in an epoch, checked."""
    low, high = REPEATS_RANGE
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or not low <= repeats <= high:
        raise ValueError(
            f"the drawings' repeats must be a whole number from {low} to {high}, got {repeats!r}"
        )
    return int(repeats)


@dataclass(frozen=True)
class KeptDrawings:
    """Kept drawings as arrays: ids, model inputs (float32 N x 28 x 28 in [0, 1]) and labels 0-9.

    ``source`` says where they were read from (a store's URL, its password
    hidden, or a file).
    """

    ids: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        images, labels, ids = self.images, self.labels, self.ids
        if not isinstance(images, np.ndarray) or images.dtype != np.float32:
            raise ValueError(
                f"the drawings must be float32 model inputs, got {getattr(images, 'dtype', images)!r}"
            )
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"the drawings must be N x {IMAGE_SIZE} x {IMAGE_SIZE} model inputs, got shape {images.shape}"
            )
        if not np.all(np.isfinite(images)) or (images.size and (images.min() < 0 or images.max() > 1)):
            raise ValueError("the drawings' model inputs must hold finite values in [0, 1]")
        count = len(images)
        for name, array in (("labels", labels), ("ids", ids)):
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "iu" or array.shape != (count,):
                raise ValueError(
                    f"the drawings' {name} must be {count} whole numbers, one per drawing, got "
                    f"{getattr(array, 'dtype', type(array).__name__)} of shape {np.shape(array)}"
                )
        if count and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise ValueError(
                f"the drawings' labels must be digits 0-9, found {labels.min()} to {labels.max()}"
            )

    def __len__(self) -> int:
        return len(self.ids)

    @functools.cached_property
    def digests(self) -> list[str]:
        """Each drawing's ``input_digest``, what the split into parts reads (hashed once: the worker
        counts the parts before it splits)."""
        return [input_digest(image) for image in self.images]

    def subset(self, mask: np.ndarray) -> KeptDrawings:
        """The drawings where ``mask`` is True."""
        return KeptDrawings(self.ids[mask], self.images[mask], self.labels[mask], self.source)


@dataclass(frozen=True)
class KeptSplit:
    """Kept drawings split by what they show: the part trained on, ``repeats`` times an epoch, and the
    held-out part."""

    training: KeptDrawings
    held_out: KeptDrawings
    repeats: int

    @property
    def kept(self) -> int:
        """How many drawings were read (the store's count at the time)."""
        return len(self.training) + len(self.held_out)

    def training_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The training drawings and labels as one epoch sees them: each drawing ``repeats`` times."""
        images = np.tile(self.training.images, (self.repeats, 1, 1))
        return images, np.tile(self.training.labels, self.repeats)

    def record(
        self, accuracy: float, accuracy_before: float | None, before_sha256: str | None
    ) -> saved_models.KeptDrawingsRecord:
        """What the saved model keeps about these drawings, with its accuracy (and its predecessor's) on the
        held-out part."""
        return saved_models.KeptDrawingsRecord(
            source=self.training.source,
            kept=self.kept,
            trained=len(self.training),
            held_out=len(self.held_out),
            held_out_share=HELD_OUT_SHARE,
            split_rule=SPLIT_RULE,
            repeats=self.repeats,
            accuracy=accuracy,
            accuracy_before=accuracy_before,
            model_before_sha256=before_sha256,
        )


def split(kept: KeptDrawings, repeats: int = DEFAULT_REPEATS) -> KeptSplit:
    """Split kept drawings by ``is_held_out``; ValueError when a part holds fewer than ``MIN_PER_PART``."""
    repeats = check_repeats(repeats)
    held_out = held_out_mask(kept.digests)
    sizes = PartSizes(training=int((~held_out).sum()), held_out=int(held_out.sum()))
    if not sizes.enough:
        raise ValueError(
            f"too few kept drawings to split: {len(kept)} in {kept.source}, {sizes.training} for training "
            f"and {sizes.held_out} held out (by what each shows, {HELD_OUT_SHARE:.0%} held out); each part "
            f"needs at least {MIN_PER_PART}: keep about {sizes.more_needed} more"
        )
    return KeptSplit(training=kept.subset(~held_out), held_out=kept.subset(held_out), repeats=repeats)
