"""Evaluation sets for "is this a digit at all?" and for digits by other hands, built reproducibly.

Nothing here is ever fitted on: temperatures, novelty statistics and the
novelty threshold come only from MNIST and its transformations
(``digitdraw.serving.digit_score``, ``digitdraw.learning.calibration``), so every set built here
stays a fair test. Each generator takes a seed; the benchmarks use one seed
for a *tuning* part (to choose among novelty methods) and another for a
*held-out* part that no choice ever looked at.

Non-digits are drawn in code on the Draw page's 280x280 RGBA canvas (black
ink on transparent), as a user would draw them:

- letters and symbols in OpenCV's Hershey fonts (plain, duplex, complex,
  triplex and both script fonts, upright or italic), at random size, stroke,
  slant and rotation. Glyphs a reader could take for a digit are left out
  (``EXCLUDED_GLYPHS``): O o Q D (0), I l i j | / \\ ( ) [ ] ! (1), Z z (2),
  S s $ (5), b G (6), B (8), g q (9), and "." "," "'" which are too small to
  be anything;
- scribbles: one to three smooth random pen strokes;
- partial digits: a connected fragment (a fifth to two fifths) of an MNIST
  test digit's skeleton, redrawn as strokes;
- blobs: filled random polygons and ellipses;
- lines: one or two near-horizontal strokes (within 20 degrees). Steeper lines are left
  out: after deskewing, any slanted line is a 1.

Digits by other hands (never MNIST's writers): the 1,797 8x8 scans of
scikit-learn's ``load_digits`` (43 people, UCI), read straight from the data
file scikit-learn ships, so scikit-learn itself is never imported; and
Hershey-font digits drawn the same way as the letters.
"""

from __future__ import annotations

import csv
import gzip
import importlib.metadata
import string
from pathlib import Path

import cv2
import numpy as np

from digitdraw.learning.drawn import connected_piece, digit_skeleton, draw_piece, skeleton_segments
from digitdraw.serving.preprocess import CANVAS_SIZE, IMAGE_SIZE, to_mnist

HERSHEY_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
)
EXCLUDED_GLYPHS = frozenset(
    "OoQD" + "Ili j|/\\()[]!".replace(" ", "") + "Zz" + "Ss$" + "bG" + "B" + "gq" + ".,'`"
)
GLYPHS = "".join(c for c in string.ascii_letters + '+-*=#%&@?<>{}~^_:;"' if c not in EXCLUDED_GLYPHS)
# The tuning part (choosing among methods) and the held-out part (measuring once) differ only in seed.
TUNING_SEED, HELD_OUT_SEED = 101, 202
NON_DIGIT_KINDS = ("letters and symbols", "scribbles", "partial digits", "blobs", "lines")
# The digits by other hands every benchmark and the calibration report measure: the scanned set whole,
# and this many Hershey-font digits drawn from this seed (the held-out seed: nothing is tuned on them).
OTHER_HANDS = ("scanned", "hershey")
HERSHEY_COUNT = 1000
HERSHEY_SEED = HELD_OUT_SEED
SKLEARN_DISTRIBUTION = "scikit-learn"
SKLEARN_DIGITS_FILE = "sklearn/datasets/data/digits.csv.gz"


def _canvas(alpha: np.ndarray) -> np.ndarray:
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), np.uint8)
    canvas[:, :, 3] = alpha
    return canvas


def _place(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Crop ink, then put it back at a random size (35-85% of the canvas), slant and place."""
    ys, xs = np.nonzero(alpha)
    if len(xs) == 0:
        return alpha
    crop = alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    angle = rng.uniform(-15, 15)
    shear = rng.uniform(-0.3, 0.3)
    height, width = crop.shape
    pad = int(max(height, width))
    padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    centre = (padded.shape[1] / 2, padded.shape[0] / 2)
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
    rotation[0, 1] += shear
    rotation[0, 2] -= shear * centre[1]
    turned = cv2.warpAffine(padded, rotation, (padded.shape[1], padded.shape[0]))
    ys, xs = np.nonzero(turned > 16)
    turned = turned[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    target = rng.uniform(0.35, 0.85) * CANVAS_SIZE
    scale = min(target / max(turned.shape), (CANVAS_SIZE - 8) / max(turned.shape))
    size = (max(1, round(turned.shape[1] * scale)), max(1, round(turned.shape[0] * scale)))
    resized = cv2.resize(turned, size, interpolation=cv2.INTER_AREA)
    out = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
    top = int(rng.integers(0, CANVAS_SIZE - size[1] + 1))
    left = int(rng.integers(0, CANVAS_SIZE - size[0] + 1))
    out[top : top + size[1], left : left + size[0]] = resized
    return out


def hershey_glyph(text: str, rng: np.random.Generator) -> np.ndarray:
    """One or more characters in a random Hershey font and stroke, placed like a drawing (RGBA)."""
    font = int(rng.choice(HERSHEY_FONTS)) | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    scale = 6.0
    thickness = int(rng.integers(6, 22))  # After placing, 35-85% of the canvas: about 10-35 canvas pixels.
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    alpha = np.zeros((height + baseline + 4 * thickness, width + 4 * thickness), np.uint8)
    cv2.putText(
        alpha, text, (2 * thickness, height + 2 * thickness), font, scale, 255, thickness, cv2.LINE_AA
    )
    return _canvas(_place(alpha, rng))


def _stroke_width(rng: np.random.Generator) -> int:
    return int(rng.integers(10, 36))


def scribble(rng: np.random.Generator) -> np.ndarray:
    """One to three smooth random pen strokes."""
    alpha = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
    width = _stroke_width(rng)
    for _ in range(int(rng.integers(1, 4))):
        steps = int(rng.integers(30, 120))
        heading = rng.uniform(0, 2 * np.pi)
        turn = np.cumsum(rng.normal(0, 0.25, steps))
        angles = heading + np.cumsum(turn * 0.3 + rng.normal(0, 0.15, steps))
        points = np.cumsum(np.stack([np.cos(angles), np.sin(angles)], axis=1) * 6.0, axis=0)
        points += rng.uniform(60, CANVAS_SIZE - 60, 2)
        points = np.clip(points, width, CANVAS_SIZE - width)
        cv2.polylines(alpha, [np.rint(points * 16).astype(np.int32)], False, 255, width, cv2.LINE_AA, shift=4)
    return _canvas(_place(alpha, rng))


# A partial digit keeps this share of its skeleton's points.
PARTIAL_SHARE = (0.2, 0.4)


def partial_digit(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A connected fifth to two fifths of a 28x28 digit's skeleton, redrawn as strokes."""
    points = digit_skeleton(digit)
    pairs = skeleton_segments(points)
    kept = connected_piece(points, pairs, PARTIAL_SHARE, rng)
    scale = CANVAS_SIZE / IMAGE_SIZE
    alpha = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
    width = _stroke_width(rng)
    draw_piece(alpha, np.rint(points * scale * 16).astype(np.int32), pairs, kept, width)
    return _canvas(_place(alpha, rng))


def blob(rng: np.random.Generator) -> np.ndarray:
    """A filled random polygon or ellipse."""
    alpha = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
    centre = np.array([CANVAS_SIZE / 2, CANVAS_SIZE / 2])
    if rng.random() < 0.5:
        axes = (int(rng.integers(20, 120)), int(rng.integers(20, 120)))
        cv2.ellipse(
            alpha, tuple(int(c) for c in centre), axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA
        )
    else:
        count = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = rng.uniform(30, 120, count)
        points = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
        cv2.fillPoly(alpha, [np.rint(points).astype(np.int32)], 255, cv2.LINE_AA)
    return _canvas(_place(alpha, rng))


def line(rng: np.random.Generator) -> np.ndarray:
    """One or two near-horizontal strokes (within 20 degrees), anywhere on the canvas."""
    alpha = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
    width = _stroke_width(rng)
    for row in range(int(rng.integers(1, 3))):
        angle = np.deg2rad(rng.uniform(-20, 20))
        length = rng.uniform(80, 200)
        start = np.array([rng.uniform(20, 60), rng.uniform(60, 140) + 80 * row])
        end = start + length * np.array([np.cos(angle), np.sin(angle)])
        cv2.line(
            alpha, tuple(np.rint(start).astype(int)), tuple(np.rint(end).astype(int)), 255, width, cv2.LINE_AA
        )
    # Not placed by _place, whose rotation and shear would make some of them steep enough to be a 1.
    return _canvas(alpha)


def non_digits(
    count_per_kind: int, mnist_test_images: np.ndarray, seed: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """``count_per_kind`` canvases of each kind in ``NON_DIGIT_KINDS``; returns them and each one's kind."""
    if count_per_kind < 1:
        raise ValueError(f"expected a positive count per kind, got {count_per_kind}")
    rng = np.random.default_rng(seed)
    canvases: list[np.ndarray] = []
    kinds: list[str] = []
    for kind in NON_DIGIT_KINDS:
        for _ in range(count_per_kind):
            if kind == "letters and symbols":
                text = "".join(rng.choice(list(GLYPHS), size=1 if rng.random() < 0.85 else 2))
                canvases.append(hershey_glyph(text, rng))
            elif kind == "scribbles":
                canvases.append(scribble(rng))
            elif kind == "partial digits":
                index = int(rng.integers(len(mnist_test_images)))
                canvases.append(partial_digit(mnist_test_images[index].astype(np.float32) / 255.0, rng))
            elif kind == "blobs":
                canvases.append(blob(rng))
            else:
                canvases.append(line(rng))
            kinds.append(kind)
    return canvases, np.array(kinds)


def hershey_digits(count: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``count`` digits in random Hershey fonts, drawn like the letters; returns canvases and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    return [hershey_glyph(str(label), rng) for label in labels], labels


def sklearn_digits_file() -> Path:
    """Where scikit-learn's ``digits.csv.gz`` is installed; ValueError naming the package if it is not."""
    try:
        located = importlib.metadata.distribution(SKLEARN_DISTRIBUTION).locate_file(SKLEARN_DIGITS_FILE)
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(
            f"expected {SKLEARN_DISTRIBUTION} to be installed (requirements-data.txt) for its digits file"
        ) from None
    return Path(str(located))


def scanned_digits(path: Path | None = None, upscale: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 scanned 8x8 digits as light-on-dark grayscale images, upsampled; and labels."""
    with gzip.open(path or sklearn_digits_file(), "rt") as handle:
        rows = np.array([[float(value) for value in row] for row in csv.reader(handle)], np.float32)
    images = rows[:, :64].reshape(-1, 8, 8) / 16.0
    size = 8 * upscale
    large = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC) for image in images])
    # A margin of background, as a scan has, so that the ink does not touch the border.
    large = np.pad(np.clip(large, 0, 1), ((0, 0), (upscale, upscale), (upscale, upscale)))
    return (large * 255).astype(np.uint8), rows[:, 64].astype(np.int64)


def other_hands() -> dict[str, tuple[list[np.ndarray] | np.ndarray, np.ndarray]]:
    """Digits by other hands (``OTHER_HANDS``) as drawn or scanned, and their labels."""
    return {"scanned": scanned_digits(), "hershey": hershey_digits(HERSHEY_COUNT, HERSHEY_SEED)}


def other_hands_inputs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``other_hands`` through ``to_mnist``: float32 model inputs and labels (a blank image would be left
    out; neither set has one)."""
    sets = {}
    for name, (images, labels) in other_hands().items():
        inputs = [to_mnist(image) for image in images]
        inked = np.array([image is not None for image in inputs])
        sets[name] = (np.stack([image for image in inputs if image is not None]), labels[inked])
    return sets
