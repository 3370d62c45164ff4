"""Whole numbers on paper and wide canvases, made from MNIST *test* digits, to measure ``read_digits``.

Each sample is a number 2 to 6 digits long with its true digits and their
boxes. Three kinds in fixed proportions: photographs of handwriting (MNIST
digits, or the same digits redrawn as pen strokes by ``drawn.py``, on
synthetic paper: a tint, light falling off across the page or a shadow,
ruled lines, sensor noise, blur, JPEG compression, and now and then chalk
on a dark board), and wide drawings as the Read page's canvas returns them
(brush strokes, RGBA with a transparent background). Sizes, spacing,
baselines and now and then touching digits vary from number to number.

Two parts never share a source digit: the *tuning* part is drawn from the
first half of MNIST's test set with ``TUNING_SEED``, the *held-out* part
from the second half with ``HELD_OUT_SEED``. Segmentation's constants were
tuned on the first only; the second measures them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitdraw.learning.drawn import DrawnStyle, draw_like_canvas
from digitdraw.serving.preprocess import IMAGE_SIZE

TUNING_SEED = 0
HELD_OUT_SEED = 1
PARTS = {"tuning": (TUNING_SEED, 0), "held-out": (HELD_OUT_SEED, 1)}  # Seed, half of the MNIST test set.
# Shares of each kind of sample.
KINDS = {"photo": 0.75, "canvas": 0.25}
# Digit heights in pixels: in photos from MNIST's own size up; on canvases as people draw them.
PHOTO_DIGIT_HEIGHTS = (IMAGE_SIZE, 150)
CANVAS_DIGIT_HEIGHTS = (120, 220)
# A box that overlaps a true digit's box by at least this much (intersection over union) found it.
MATCH_IOU = 0.3

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class NumberSample:
    """One image of a number, its true digits and each digit's box (x, y, width, height), left to right."""

    image: np.ndarray  # uint8 RGB for a photo, RGBA for a canvas.
    text: str
    boxes: list[Box]
    kind: str


def _digit_alpha(image: np.ndarray, rng: np.random.Generator, pen: bool, height: int) -> np.ndarray:
    """One digit's ink as float32 alpha in [0, 1], cropped to its ink and scaled to ``height`` pixels."""
    if pen:
        # Redrawn as strokes: thinner than the Draw page's brush, as a pen is beside a digit's size.
        style = DrawnStyle(stroke_width=(8, 22), rotation_degrees=8.0, shear=0.2)
        alpha = draw_like_canvas(image, rng, style)[:, :, 3].astype(np.float32) / 255.0
    else:
        alpha = image.astype(np.float32)
    rows, columns = np.flatnonzero(alpha.max(axis=1) > 0.1), np.flatnonzero(alpha.max(axis=0) > 0.1)
    alpha = alpha[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    scale = height / alpha.shape[0]
    width = max(2, round(alpha.shape[1] * scale))
    return np.clip(cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR), 0, 1)


def _compose(
    alphas: list[np.ndarray], rng: np.random.Generator, height: int, margin: tuple[float, float]
) -> tuple[np.ndarray, list[Box]]:
    """Place digits' alphas left to right on one alpha plane; their boxes."""
    gaps = []
    for _ in alphas[1:]:
        touching = rng.random() < 0.08
        gaps.append(round(height * (rng.uniform(-0.04, 0.0) if touching else rng.uniform(0.08, 0.5))))
    left_margin = round(height * rng.uniform(*margin))
    width = left_margin * 2 + sum(a.shape[1] for a in alphas) + sum(gaps)
    page_height = round(height * rng.uniform(1.5, 2.6))
    plane = np.zeros((page_height, width), np.float32)
    top_base = round((page_height - height) * rng.uniform(0.3, 0.7))
    x, boxes = left_margin, []
    for index, alpha in enumerate(alphas):
        shift = round(height * rng.uniform(-0.06, 0.06))
        top = int(np.clip(top_base + shift + (height - alpha.shape[0]) // 2, 0, page_height - alpha.shape[0]))
        region = plane[top : top + alpha.shape[0], x : x + alpha.shape[1]]
        np.maximum(region, alpha, out=region)
        rows, columns = np.flatnonzero(alpha.max(axis=1) > 0.25), np.flatnonzero(alpha.max(axis=0) > 0.25)
        boxes.append(
            (
                x + int(columns[0]),
                top + int(rows[0]),
                int(columns[-1] - columns[0] + 1),
                int(rows[-1] - rows[0] + 1),
            )
        )
        x += alpha.shape[1] + (gaps[index] if index < len(gaps) else 0)
    return plane, boxes


def _photograph(plane: np.ndarray, rng: np.random.Generator, digit_height: int, baseline: int) -> np.ndarray:
    """Ink alpha on synthetic paper, lit, ruled, noisy, blurred and compressed: an RGB photo."""
    height, width = plane.shape
    chalk = rng.random() < 0.15
    if chalk:
        paper = np.array([rng.uniform(30, 70), rng.uniform(45, 85), rng.uniform(35, 70)], np.float32)
        ink = np.full(3, rng.uniform(190, 245), np.float32)
    else:
        tone = rng.uniform(175, 245)
        paper = np.array([tone, tone * rng.uniform(0.96, 1.0), tone * rng.uniform(0.88, 1.0)], np.float32)
        blue = rng.random() < 0.4
        ink = np.array([30, 40, 120] if blue else [rng.uniform(15, 70)] * 3, np.float32)
    image = np.broadcast_to(paper, (height, width, 3)).copy()
    if not chalk and rng.random() < 0.4:
        # Ruled lines, one under the digits, as on a notebook's page.
        spacing = digit_height * rng.uniform(1.1, 1.6)
        thickness = int(rng.integers(1, 4))
        colour = paper * np.array([0.75, 0.82, 0.95], np.float32) * rng.uniform(0.8, 1.0)
        first = baseline % spacing
        for y in np.arange(first, height, spacing):
            cv2.line(image, (0, int(y)), (width - 1, int(y)), colour.tolist(), thickness, cv2.LINE_AA)
    opacity = rng.uniform(0.75, 1.0)
    alpha = (plane * opacity)[:, :, None]
    image = image * (1 - alpha) + ink * alpha
    # Light falling off across the page, and sometimes a soft shadow.
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) + 1.0
    light = 1.0 - rng.uniform(0.0, 0.4) * ramp / 2.0
    if rng.random() < 0.3:
        edge = rng.uniform(0.2, 0.8) * width
        light *= 1.0 - rng.uniform(0.2, 0.45) / (1.0 + np.exp(-(xs - edge) / (0.05 * width)))
    image *= light[:, :, None]
    image += rng.normal(0, rng.uniform(1, 7), image.shape).astype(np.float32)
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.4))
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        _, encoded = cv2.imencode(
            ".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 91))]
        )
        image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(image)


def number_sample(
    digit_images: np.ndarray, digit_labels: np.ndarray, rng: np.random.Generator, kind: str
) -> NumberSample:
    """One number of 2 to 6 random digits from the given MNIST digits, as a photo or a wide canvas."""
    length = int(rng.integers(2, 7))
    chosen = rng.choice(len(digit_images), size=length, replace=False)
    if kind == "canvas":
        height = int(rng.integers(*CANVAS_DIGIT_HEIGHTS))
        alphas = [
            _digit_alpha(
                digit_images[i].astype(np.float32) / 255.0, rng, True, round(height * rng.uniform(0.85, 1.0))
            )
            for i in chosen
        ]
        plane, boxes = _compose(alphas, rng, height, (0.1, 0.4))
        image = np.zeros((*plane.shape, 4), np.uint8)
        image[:, :, 3] = np.rint(plane * 255).astype(np.uint8)
    else:
        height = int(rng.integers(*PHOTO_DIGIT_HEIGHTS))
        pen = rng.random() < 0.5
        alphas = [
            _digit_alpha(
                digit_images[i].astype(np.float32) / 255.0, rng, pen, round(height * rng.uniform(0.9, 1.1))
            )
            for i in chosen
        ]
        plane, boxes = _compose(alphas, rng, height, (0.3, 1.5))
        baseline = max(box[1] + box[3] for box in boxes)
        image = _photograph(plane, rng, height, baseline)
    text = "".join(str(int(digit_labels[i])) for i in chosen)
    return NumberSample(image=image, text=text, boxes=boxes, kind=kind)


def number_set(
    test_images: np.ndarray, test_labels: np.ndarray, count: int, part: str = "tuning"
) -> list[NumberSample]:
    """``count`` numbers of one part ("tuning" or "held-out") from MNIST's 10,000 test digits."""
    if part not in PARTS:
        raise ValueError(f"expected a part in {sorted(PARTS)}, got {part!r}")
    if count < 1:
        raise ValueError(f"expected at least one number, got {count}")
    seed, half = PARTS[part]
    middle = len(test_images) // 2
    source = slice(middle, None) if half else slice(0, middle)
    images, labels = test_images[source], test_labels[source]
    rng = np.random.default_rng(seed)
    kinds, shares = list(KINDS), list(KINDS.values())
    return [number_sample(images, labels, rng, str(rng.choice(kinds, p=shares))) for _ in range(count)]


def _iou(a: Box, b: Box) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap)


def match_boxes(true_boxes: list[Box], found_boxes: list[Box]) -> list[int | None]:
    """For each true box, the index of the found box that matches it (best overlap first), or None."""
    pairs = sorted(
        ((_iou(t, f), i, j) for i, t in enumerate(true_boxes) for j, f in enumerate(found_boxes)),
        reverse=True,
    )
    matched: list[int | None] = [None] * len(true_boxes)
    used = set()
    for overlap, i, j in pairs:
        if overlap < MATCH_IOU:
            break
        if matched[i] is None and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def digits_right(sample: NumberSample, found_boxes: list[Box], found_digits: list[int]) -> int:
    """How many of the sample's digits were found (by position) and read right."""
    matched = match_boxes(sample.boxes, found_boxes)
    return sum(
        j is not None and str(found_digits[j]) == truth for j, truth in zip(matched, sample.text, strict=True)
    )
