"""Non-digits (and digits of other looks) made from MNIST training digits, for the learned digit score.

A network trained only on digits has never seen anything else, so it cannot
know where digits end. Outlier exposure (Hendrycks et al., 2019) shows it
examples of "not a digit" while it learns. The project's rule is that models
learn from MNIST and its transformations only, so every example here is an
MNIST *training* digit broken in a way that leaves it no longer a digit:

- ``cut``: one side of a random line through the digit removed (most of a 6
  without its loop, half a 0);
- ``overlaid``: two digits on top of each other, one shifted;
- ``enlarged piece``: a 10-15 pixel window of a digit, blown up to fill the field;
- ``shuffled quarters``: the four quarters of a digit in a random order;
- ``turned``: a digit turned by 90, 180 or 270 degrees, or mirrored (only
  the digits that do not stay digits when turned or mirrored: 2, 3, 4, 5 and 7);
- ``pieces of two``: 14x14 pieces of two digits put down at random places;
- ``stroke fragment``: a connected 15-50% of a digit's skeleton, redrawn as
  one pen stroke 1-3 pixels wide (a digit begun and not finished);
- ``erased``: only the ink within a disc around one point of the digit
  kept, 15-50% of it.

The learned score also needs digits that look unlike MNIST's, or it learns
that any unusual digit is not one: ``varied_digits`` makes them, from MNIST
training digits too: thickened (dilated by 2 or 3 pixels) or brought down to
7-10 pixels square and blown up again (a coarse scan).

The trade-off: these are not the non-digits people draw (letters, symbols,
scribbles). ``evalsets.py`` builds those, from other sources and generators,
only to measure how well the score learned from these carries over to them.
"""

from __future__ import annotations

import cv2
import numpy as np

from digitdraw.learning.drawn import connected_piece, digit_skeleton, draw_piece, skeleton_segments
from digitdraw.serving.preprocess import IMAGE_SIZE

NEGATIVE_KINDS = (
    "cut",
    "overlaid",
    "enlarged piece",
    "shuffled quarters",
    "turned",
    "pieces of two",
    "stroke fragment",
    "erased",
)
VARIED_KINDS = ("thickened", "coarse")
TURNABLE_DIGITS = (2, 3, 4, 5, 7)  # 0, 1 and 8 stay digits when turned; 6 and 9 become each other.
INK_LEVEL = 64  # A pixel at or above this (of 255) counts as ink.
MIN_INK_LEFT = 0.2  # A cut keeps at least this share of the digit's ink, and removes at least as much.
CUT_TRIES = 10
FRAGMENT_SHARE = (0.15, 0.5)  # Of a digit's skeleton kept by a stroke fragment, and of its ink by ``erased``.
FRAGMENT_UPSCALE = 4  # A fragment is drawn at 4x and brought down, for anti-aliased edges.
FRAGMENT_WIDTH = (4, 12)  # Pen width at 4x: 1 to 3 pixels of the 28x28 field.
DILATION = (2, 3)  # Square kernel sizes that thicken a digit.
COARSE_SIZE = (7, 10)  # A coarse digit's side, in pixels, before it is blown up again.


def _cut(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows, columns = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
    ink = digit >= INK_LEVEL
    total = ink.sum()
    for _ in range(CUT_TRIES):
        centre = np.argwhere(ink).mean(axis=0) + rng.normal(0, 2, 2)
        angle = rng.uniform(0, 2 * np.pi)
        side = np.cos(angle) * (columns - centre[1]) + np.sin(angle) * (rows - centre[0]) > 0
        kept = (ink & side).sum()
        # Both sides must hold a real share of the ink: a line that misses the digit cuts nothing.
        if MIN_INK_LEFT * total <= kept <= (1 - MIN_INK_LEFT) * total:
            return np.where(side, digit, 0)
    return np.zeros_like(digit)  # No line split it (a dot of a digit): the caller draws another.


def _overlaid(digit: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shift = tuple(int(s) for s in rng.integers(-8, 9, 2))
    return np.maximum(digit, np.roll(other, shift, axis=(0, 1)))


def _enlarged_piece(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    width = int(rng.integers(10, 16))
    top, left = (int(v) for v in rng.integers(4, IMAGE_SIZE - width - 3, 2))
    piece = digit[top : top + width, left : left + width]
    return cv2.resize(piece, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)


def _shuffled_quarters(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    half = IMAGE_SIZE // 2
    quarters = [digit[:half, :half], digit[:half, half:], digit[half:, :half], digit[half:, half:]]
    # A cyclic shift by 1-3 places moves every quarter: a random permutation could leave the digit whole.
    order = np.roll(np.arange(4), int(rng.integers(1, 4)))
    a, b, c, d = (quarters[i] for i in order)
    return np.block([[a, b], [c, d]])


def _turned(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return np.rot90(digit, int(rng.integers(1, 4))).copy()
    return (digit[:, ::-1] if rng.random() < 0.5 else digit[::-1]).copy()


def _pieces_of_two(digit: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    half = IMAGE_SIZE // 2
    result = np.zeros_like(digit)
    for source in (digit, other):
        top, left, to_top, to_left = (int(v) for v in rng.integers(0, half + 1, 4))
        piece = source[top : top + half, left : left + half]
        target = result[to_top : to_top + half, to_left : to_left + half]
        np.maximum(target, piece, out=target)
    return result


def _stroke_fragment(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    points = digit_skeleton(digit.astype(np.float32) / 255.0)
    if len(points) < 2:
        return np.zeros_like(digit)
    pairs = skeleton_segments(points)
    kept = connected_piece(points, pairs, FRAGMENT_SHARE, rng)
    large = np.zeros((IMAGE_SIZE * FRAGMENT_UPSCALE,) * 2, np.uint8)
    width = int(rng.integers(FRAGMENT_WIDTH[0], FRAGMENT_WIDTH[1] + 1))
    fixed = np.rint(points * FRAGMENT_UPSCALE * 16).astype(np.int32)  # 4 fractional bits.
    draw_piece(large, fixed, pairs, kept, width)
    return cv2.resize(large, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)


def _erased(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ink = np.argwhere(digit >= INK_LEVEL)
    centre = ink[rng.integers(len(ink))]
    rows, columns = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
    distance = np.hypot(rows - centre[0], columns - centre[1])
    # The radius that keeps the chosen share of the ink pixels, nearest first.
    ink_distances = np.sort(distance[digit >= INK_LEVEL])
    kept = max(1, int(rng.uniform(*FRAGMENT_SHARE) * len(ink_distances)))
    return np.where(distance <= ink_distances[kept - 1] + 0.5, digit, 0)


def _checked(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped images and their labels, or ValueError saying what was expected."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or len(images) != len(labels):
        raise ValueError(
            f"expected MNIST images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}) with one label each, "
            f"got {images.shape} and {len(labels)} labels"
        )
    return images, labels


def varied_digits(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` raw 28x28 uint8 digits of other looks, ``VARIED_KINDS`` in turn, and each one's label.

    Still digits, and still MNIST's: thickened, or coarse (shrunk to a few
    pixels and blown up again by cubic interpolation). Run them through
    ``to_mnist`` before use.
    """
    images, labels = _checked(images, labels)
    if count < 1 or len(images) < 1:
        raise ValueError(f"expected a positive count and at least one image, got {count} and {len(images)}")
    rng = np.random.default_rng(seed)
    made, made_labels = [], []
    for index in range(count):
        source = int(rng.integers(len(images)))
        digit = images[source]
        if VARIED_KINDS[index % len(VARIED_KINDS)] == "thickened":
            size = int(rng.integers(DILATION[0], DILATION[1] + 1))
            result = cv2.dilate(digit, np.ones((size, size), np.uint8))
        else:
            side = int(rng.integers(COARSE_SIZE[0], COARSE_SIZE[1] + 1))
            small = cv2.resize(digit.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
            # Blown up to 24x24 with a 2-pixel margin, so that the cubic's overshoot never meets the edge.
            large = cv2.resize(small, (IMAGE_SIZE - 4, IMAGE_SIZE - 4), interpolation=cv2.INTER_CUBIC)
            result = np.pad(np.clip(large, 0, 255), 2)
        made.append(result.astype(np.uint8))
        made_labels.append(labels[source])
    return np.stack(made), np.array(made_labels)


def mnist_non_digits(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` raw 28x28 uint8 non-digits made from these MNIST digits, kinds in turn; and each one's kind.

    Run them through ``to_mnist`` before use, as every input of the app is.
    """
    images, labels = _checked(images, labels)
    if count < 1 or len(images) < 2:
        raise ValueError(f"expected a positive count and at least two images, got {count} and {len(images)}")
    if not (images >= INK_LEVEL).any():  # Blank images are skipped below: with nothing else, forever.
        raise ValueError("expected digits with ink, got only blank images")
    rng = np.random.default_rng(seed)
    turnable = np.flatnonzero(np.isin(labels, TURNABLE_DIGITS))
    made, kinds = [], []
    while len(made) < count:
        kind = NEGATIVE_KINDS[len(made) % len(NEGATIVE_KINDS)]
        pool = turnable if kind == "turned" and len(turnable) else np.arange(len(images))
        first, second = rng.choice(pool), rng.integers(len(images))
        digit, other = images[first], images[second]
        if not (digit >= INK_LEVEL).any():
            continue
        if kind == "cut":
            result = _cut(digit, rng)
        elif kind == "overlaid":
            result = _overlaid(digit, other, rng)
        elif kind == "enlarged piece":
            result = _enlarged_piece(digit, rng)
        elif kind == "shuffled quarters":
            result = _shuffled_quarters(digit, rng)
        elif kind == "turned":
            result = _turned(digit, rng)
        elif kind == "pieces of two":
            result = _pieces_of_two(digit, other, rng)
        elif kind == "stroke fragment":
            result = _stroke_fragment(digit, rng)
        else:
            result = _erased(digit, rng)
        if not (result >= INK_LEVEL).any():
            continue  # A window or piece that missed the ink: draw again rather than keep a blank.
        made.append(result.astype(np.uint8))
        kinds.append(kind)
    return np.stack(made), np.array(kinds)
