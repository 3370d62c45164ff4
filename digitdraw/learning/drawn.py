"""A set of drawn-looking digits, to measure what a user of the canvas experiences.

MNIST test accuracy says little about digits drawn with a mouse: canvas strokes
have the brush's uniform width and round caps, and people draw at any size,
position, slant and angle. We rebuild such drawings from MNIST *test* digits
(never the training images): each digit is thinned to its one-pixel skeleton,
the skeleton is moved by a random affine map onto a 280x280 canvas, and it is
redrawn as anti-aliased strokes 10 to 35 pixels wide, as a brush would. The
result is an RGBA image with black ink on a transparent background, exactly
what the app's canvas returns.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from digitdraw.serving.preprocess import CANVAS_SIZE, to_mnist


@dataclass(frozen=True)
class DrawnStyle:
    """Ranges from which each drawing's stroke, size, position and slant are drawn."""

    stroke_width: tuple[int, int] = (10, 35)
    height_fraction: tuple[float, float] = (0.35, 0.85)
    rotation_degrees: float = 15.0
    shear: float = 0.3


def _neighbours(image: np.ndarray) -> list[np.ndarray]:
    """The 8 neighbours P2..P9 of every pixel, clockwise from north, zero-padded."""
    padded = np.pad(image, 1)
    height, width = image.shape
    offsets = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    return [padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in offsets]


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a binary mask to one-pixel-wide lines (uint8 0/1)."""
    skeleton = (np.asarray(mask) > 0).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p2, p3, p4, p5, p6, p7, p8, p9 = _neighbours(skeleton)
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            count = sum(ring[:8])
            transitions = sum((a == 0) & (b == 1) for a, b in itertools.pairwise(ring))
            if step == 0:
                side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (skeleton == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if remove.any():
                skeleton[remove] = 0
                changed = True
        if not changed:
            return skeleton


def digit_skeleton(image: np.ndarray, upscale: int = 4) -> np.ndarray:
    """Skeleton points (x, y) of a 28x28 MNIST digit, in units of its own pixels."""
    large = cv2.resize(image.astype(np.float32), None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
    skeleton = skeletonize(large >= 0.5 * large.max())
    ys, xs = np.nonzero(skeleton)
    return np.stack([xs, ys], axis=1).astype(np.float32) / upscale


def skeleton_segments(points: np.ndarray) -> list[tuple[int, int]]:
    """Index pairs of skeleton points that touch, so they can be joined by strokes."""
    grid = {(round(x * 4), round(y * 4)): index for index, (x, y) in enumerate(points)}
    pairs = []
    for (x, y), index in grid.items():
        for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1)):
            other = grid.get((x + dx, y + dy))
            if other is not None:
                pairs.append((index, other))
    return pairs


def connected_piece(
    points: np.ndarray,
    pairs: list[tuple[int, int]],
    share: tuple[float, float],
    rng: np.random.Generator,
) -> set[int]:
    """Indices of a connected piece of a skeleton: a share of its points (drawn from ``share``), found
    breadth-first from a random point, so the piece is one run of stroke, not scattered dots."""
    neighbours: dict[int, list[int]] = {index: [] for index in range(len(points))}
    for a, b in pairs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    keep_count = max(2, int(len(points) * rng.uniform(*share)))
    start = int(rng.integers(len(points)))
    kept, frontier = {start}, [start]
    while frontier and len(kept) < keep_count:
        for other in neighbours[frontier.pop(0)]:
            if other not in kept:
                kept.add(other)
                frontier.append(other)
    return kept


def draw_piece(
    canvas: np.ndarray, fixed_points: np.ndarray, pairs: list[tuple[int, int]], kept: set[int], width: int
) -> None:
    """Draw the kept points of a skeleton and the segments between them as round strokes, in place;
    ``fixed_points`` are pixel coordinates with 4 fractional bits (OpenCV's ``shift=4``)."""
    for a, b in pairs:
        if a in kept and b in kept:
            cv2.line(canvas, tuple(fixed_points[a]), tuple(fixed_points[b]), 255, width, cv2.LINE_AA, shift=4)
    for index in kept:
        cv2.circle(canvas, tuple(fixed_points[index]), width * 8, 255, -1, cv2.LINE_AA, shift=4)


def draw_like_canvas(
    image: np.ndarray, rng: np.random.Generator, style: DrawnStyle = DrawnStyle()
) -> np.ndarray:
    """Redraw a 28x28 digit as brush strokes on a 280x280 RGBA canvas."""
    points = digit_skeleton(image)
    if len(points) == 0:
        raise ValueError("the digit has no ink to redraw")
    stroke = int(rng.integers(style.stroke_width[0], style.stroke_width[1] + 1))
    angle = np.deg2rad(rng.uniform(-style.rotation_degrees, style.rotation_degrees))
    shear = rng.uniform(-style.shear, style.shear)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rotation @ np.array([[1.0, shear], [0.0, 1.0]])
    centred = (points - points.mean(axis=0)) @ linear.T
    extent = centred.max(axis=0) - centred.min(axis=0)
    # Scale the digit's height, but never past the canvas once the brush is added.
    height = rng.uniform(*style.height_fraction) * CANVAS_SIZE
    scale = min(height / max(extent[1], 1.0), (CANVAS_SIZE - stroke - 4) / max(extent.max(), 1.0))
    placed = centred * scale
    low = -placed.min(axis=0) + stroke / 2 + 2
    high = CANVAS_SIZE - placed.max(axis=0) - stroke / 2 - 2
    offset = np.array([rng.uniform(low[0], max(low[0], high[0])), rng.uniform(low[1], max(low[1], high[1]))])
    placed = placed + offset

    alpha = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
    # Sub-pixel coordinates with 4 fractional bits keep the strokes smooth.
    fixed = np.rint(placed * 16).astype(np.int32)
    for index, other in skeleton_segments(points):
        cv2.line(alpha, tuple(fixed[index]), tuple(fixed[other]), 255, stroke, cv2.LINE_AA, shift=4)
    for point in fixed:  # Lone skeleton points (dots) still get ink.
        cv2.circle(alpha, tuple(point), stroke * 8, 255, -1, cv2.LINE_AA, shift=4)
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), np.uint8)
    canvas[:, :, 3] = alpha
    return canvas


def drawn_digits(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0, style: DrawnStyle = DrawnStyle()
) -> tuple[list[np.ndarray], np.ndarray]:
    """Redraw ``count`` digits, chosen at random, as canvases; return them and their labels."""
    if count < 1 or count > len(images):
        raise ValueError(f"count must be between 1 and {len(images)}, got {count}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=count, replace=False)
    canvases = [draw_like_canvas(images[index].astype(np.float32) / 255.0, rng, style) for index in chosen]
    return canvases, labels[chosen]


def drawn_evaluation_set(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` drawn-looking canvases made from MNIST test digits, preprocessed to (N, 28, 28)."""
    canvases, chosen_labels = drawn_digits(images, labels, count, seed=seed)
    return np.stack([to_mnist(canvas) for canvas in canvases]), chosen_labels


def redrawn_training_digits(
    images: np.ndarray,
    seed: int,
    style: DrawnStyle = DrawnStyle(),
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Every digit of an (N, 28, 28) uint8 batch redrawn once as canvas strokes and preprocessed:
    (N, 28, 28) float32, in order; a digit with no ink to redraw is preprocessed as it is.

    For training (``config.TrainConfig.stroke_share``) on MNIST's *training* split only. About 6 ms
    a digit on this project's machine, so training caches the result.
    """
    rng = np.random.default_rng(seed)
    redrawn = np.empty(images.shape, np.float32)
    for index, image in enumerate(images):
        digit = image.astype(np.float32) / 255.0
        prepared = to_mnist(draw_like_canvas(digit, rng, style)) if digit.max() > 0 else None
        if prepared is None:
            prepared = to_mnist(image)
        redrawn[index] = prepared if prepared is not None else 0.0
        if progress is not None and (index + 1) % 1000 == 0:
            progress(index + 1, len(images))
    return redrawn
