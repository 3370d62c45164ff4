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

That set flatters: its digits are MNIST's, the hands the networks learned
from. ``other_hands_number_set`` builds the same kinds of numbers from digits
MNIST never saw (the 43 people of scikit-learn's scans and Hershey-font
digits, ``learning.evalsets``), on harder pages (``HARD``): neighbours
touching or overlapping one gap in seven, a pen skip across one digit in five
numbers, vertical rules and form boxes, a dark table edge, and perspective up
to about 10 degrees; ``SLANTED`` writes the same numbers at a slant of up to
20 degrees either way, or turns the whole page, rules and edges with it.
Its parts split each source in halves as well.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from digitdraw.learning import evalsets
from digitdraw.learning.drawn import DrawnStyle, draw_like_canvas
from digitdraw.reading.read import mapped_boxes, turning
from digitdraw.serving.preprocess import IMAGE_SIZE

TUNING_SEED = 0
HELD_OUT_SEED = 1
PARTS = {"tuning": (TUNING_SEED, 0), "held-out": (HELD_OUT_SEED, 1)}  # Seed, half of the MNIST test set.
# Shares of each kind of sample.
KINDS = {"photo": 0.75, "canvas": 0.25}
# Digit heights in pixels: in photos from MNIST's own size up; on canvases as people draw them.
PHOTO_DIGIT_HEIGHTS = (IMAGE_SIZE, 150)
CANVAS_DIGIT_HEIGHTS = (120, 220)
# The other hands' sets: Hershey digits per part, from seeds of their own (the held-out one never tuned on),
# and an offset that keeps their numbers' draws apart from the MNIST-built set's.
OTHER_HANDS_HERSHEY = 500
OTHER_HANDS_SEEDS = {"tuning": 303, "held-out": 404}
OTHER_HANDS_SEED_OFFSET = 1000
# A box that overlaps a true digit's box by at least this much (intersection over union) found it.
MATCH_IOU = 0.3

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class PageStyle:
    """How hard a set's pages are: the chances of each trouble real pages have."""

    touching: float = 0.08  # A gap closed, or a little overlapping.
    pen_skip: float = 0.0  # A thin gap across one digit of the number.
    rules: float = 0.0  # Vertical rules between the digits, or a form's box around each.
    table_edge: float = 0.0  # A dark band along one side of the photo.
    perspective_degrees: float = 0.0  # The page tilted away by up to this much.
    overlap: float = 0.04  # Touching neighbours overlap by up to this fraction of the digits' height.
    slant_degrees: float = 0.0  # The line of digits written at a slant of up to this much, either way.


EASY = PageStyle()
HARD = PageStyle(
    touching=1 / 7, pen_skip=0.2, rules=0.25, table_edge=0.2, perspective_degrees=10.0, overlap=0.1
)
# The hard pages with every number at a slant: written so on a level page, or the photo's whole page
# turned, as by a phone held askew.
SLANTED = dataclasses.replace(HARD, slant_degrees=20.0)


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
    alphas: list[np.ndarray],
    rng: np.random.Generator,
    height: int,
    margin: tuple[float, float],
    style: PageStyle = EASY,
) -> tuple[np.ndarray, list[Box]]:
    """Place digits' alphas left to right on one alpha plane; their boxes."""
    gaps = []
    for _ in alphas[1:]:
        touching = rng.random() < style.touching
        gaps.append(
            round(height * (rng.uniform(-style.overlap, 0.0) if touching else rng.uniform(0.08, 0.5)))
        )
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


def _photograph(
    plane: np.ndarray,
    rng: np.random.Generator,
    digit_height: int,
    baseline: int,
    style: PageStyle = EASY,
    boxes: list[Box] | None = None,
) -> np.ndarray:
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
    if boxes and style.rules and rng.random() < style.rules:
        _rules(image, boxes, rng, ink)
    opacity = rng.uniform(0.75, 1.0)
    alpha = (plane * opacity)[:, :, None]
    image = image * (1 - alpha) + ink * alpha
    if style.table_edge and rng.random() < style.table_edge:
        _table_edge(image, rng)
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


def _pen_skip(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit with a thin gap across it, where the pen skipped."""
    skipped = alpha.copy()
    height, width = alpha.shape
    thickness = max(1, round(height * rng.uniform(0.03, 0.06)))
    if rng.random() < 0.5:
        row = int(rng.integers(height // 4, max(height // 4 + 1, 3 * height // 4)))
        skipped[row : row + thickness, :] = 0
    else:
        column = int(rng.integers(width // 4, max(width // 4 + 1, 3 * width // 4)))
        skipped[:, column : column + thickness] = 0
    return skipped


def _tilted(plane: np.ndarray, boxes: list[Box], rng: np.random.Generator, degrees: float):
    """The plane seen at a slant (a perspective of up to ``degrees``), and its boxes where they went."""
    height, width = plane.shape
    reach = np.tan(np.radians(rng.uniform(0, degrees))) * 0.5
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    moved = (
        corners + rng.uniform(-reach, reach, (4, 2)).astype(np.float32) * np.float32([width, height]) * 0.5
    )
    homography = cv2.getPerspectiveTransform(corners, moved)
    tilted = cv2.warpPerspective(plane, homography, (width, height))
    new_boxes = []
    for x, y, w, h in boxes:
        points = np.float32([[[x, y]], [[x + w, y]], [[x + w, y + h]], [[x, y + h]]])
        mapped = cv2.perspectiveTransform(points, homography).reshape(-1, 2)
        left, top = np.clip(mapped.min(axis=0), 0, [width - 1, height - 1])
        right, bottom = np.clip(mapped.max(axis=0), 0, [width - 1, height - 1])
        new_boxes.append((int(left), int(top), max(1, int(right - left)), max(1, int(bottom - top))))
    return tilted, new_boxes


def turned(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned so that a level line in it slants by ``degrees`` (positive: falling to the right),
    on a canvas grown to hold it, and the 2x3 map that turned it. An ink plane (2-D) grows with no ink;
    a photo with its own edges carried on, as if the paper were larger."""
    matrix, size = turning(image.shape[:2], -degrees)
    border = cv2.BORDER_REPLICATE if image.ndim == 3 else cv2.BORDER_CONSTANT
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=border), matrix


def _slanted(image: np.ndarray, boxes: list[Box], rng: np.random.Generator, degrees: float):
    """The image turned by up to ``degrees`` either way (``turned``), and the box around each turned box."""
    image, matrix = turned(image, -rng.uniform(-degrees, degrees))
    new_boxes = []
    for x, y, width, height in mapped_boxes(np.array(boxes), matrix):
        left, top = int(np.floor(x)), int(np.floor(y))
        new_boxes.append((left, top, int(np.ceil(x + width)) - left, int(np.ceil(y + height)) - top))
    return image, new_boxes


def _rules(image: np.ndarray, boxes: list[Box], rng: np.random.Generator, ink: np.ndarray) -> None:
    """Vertical rules between the digits, or a form's box around each, in place."""
    colour = (ink * rng.uniform(0.6, 1.0) + 255 * 0.3).clip(0, 255).tolist()
    thickness = int(rng.integers(1, 4))
    height = image.shape[0]
    if rng.random() < 0.5:
        for (x, _, w, _), (next_x, _, _, _) in itertools.pairwise(boxes):
            middle = (x + w + next_x) // 2
            cv2.line(image, (middle, 0), (middle, height - 1), colour, thickness, cv2.LINE_AA)
    else:
        pad = max(3, round(max(box[3] for box in boxes) * 0.12))
        for x, y, w, h in boxes:
            cv2.rectangle(
                image, (x - pad, y - pad), (x + w + pad, y + h + pad), colour, thickness, cv2.LINE_AA
            )


def _table_edge(image: np.ndarray, rng: np.random.Generator) -> None:
    """A dark band along one side, where the table shows past the paper, in place."""
    height, width = image.shape[:2]
    side = int(rng.integers(4))
    depth = rng.uniform(0.04, 0.12)
    colour = np.float32([rng.uniform(20, 70), rng.uniform(15, 55), rng.uniform(10, 45)])
    if side == 0:
        image[: max(1, round(height * depth))] = colour
    elif side == 1:
        image[-max(1, round(height * depth)) :] = colour
    elif side == 2:
        image[:, : max(1, round(width * depth))] = colour
    else:
        image[:, -max(1, round(width * depth)) :] = colour


def number_sample(
    digit_images: np.ndarray | list[np.ndarray],
    digit_labels: np.ndarray,
    rng: np.random.Generator,
    kind: str,
    style: PageStyle = EASY,
    redraw: bool = True,
) -> NumberSample:
    """One number of 2 to 6 random digits from the given digits (light ink on dark, uint8), as a photo or a
    wide canvas. ``redraw`` lets some be redrawn as pen strokes (MNIST-sized digits only)."""
    length = int(rng.integers(2, 7))
    chosen = rng.choice(len(digit_images), size=length, replace=False)
    # Each trouble draws from the generator only where the style has it: the easy set stays as it was.
    skipped = int(rng.integers(length)) if style.pen_skip and rng.random() < style.pen_skip else -1

    def alpha_of(order: int, index: int, pen: bool, height: int) -> np.ndarray:
        alpha = _digit_alpha(digit_images[index].astype(np.float32) / 255.0, rng, pen, height)
        return _pen_skip(alpha, rng) if order == skipped else alpha

    if kind == "canvas":
        height = int(rng.integers(*CANVAS_DIGIT_HEIGHTS))
        alphas = [
            alpha_of(order, i, redraw, round(height * rng.uniform(0.85, 1.0)))
            for order, i in enumerate(chosen)
        ]
        plane, boxes = _compose(alphas, rng, height, (0.1, 0.4), style)
        if style.slant_degrees:
            plane, boxes = _slanted(plane, boxes, rng, style.slant_degrees)
        image = np.zeros((*plane.shape, 4), np.uint8)
        image[:, :, 3] = np.rint(plane * 255).astype(np.uint8)
    else:
        height = int(rng.integers(*PHOTO_DIGIT_HEIGHTS))
        pen = redraw and rng.random() < 0.5
        alphas = [
            alpha_of(order, i, pen, round(height * rng.uniform(0.9, 1.1))) for order, i in enumerate(chosen)
        ]
        plane, boxes = _compose(alphas, rng, height, (0.3, 1.5), style)
        # Half the slanted photos are of a page turned, its rules and edges with it; half of a number
        # written at a slant on a level page.
        page_turned = bool(style.slant_degrees) and rng.random() < 0.5
        if style.slant_degrees and not page_turned:
            plane, boxes = _slanted(plane, boxes, rng, style.slant_degrees)
        if style.perspective_degrees:
            plane, boxes = _tilted(plane, boxes, rng, style.perspective_degrees)
        baseline = max(box[1] + box[3] for box in boxes)
        image = _photograph(plane, rng, height, baseline, style, boxes)
        if page_turned:
            image, boxes = _slanted(image, boxes, rng, style.slant_degrees)
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


def other_hands_digits(part: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Digits by hands MNIST never saw, light ink on dark (uint8): one half of scikit-learn's 1,797 scans by
    43 people (the first for tuning, the second held out) and 500 Hershey-font digits drawn from the part's
    own seed."""
    if part not in PARTS:
        raise ValueError(f"expected a part in {sorted(PARTS)}, got {part!r}")
    half = PARTS[part][1]
    scans, scan_labels = evalsets.scanned_digits()
    middle = len(scans) // 2
    source = slice(middle, None) if half else slice(0, middle)
    glyphs, glyph_labels = evalsets.hershey_digits(OTHER_HANDS_HERSHEY, OTHER_HANDS_SEEDS[part])
    images = [*scans[source], *(glyph[:, :, 3] for glyph in glyphs)]
    return images, np.concatenate([scan_labels[source], glyph_labels])


def other_hands_number_set(count: int, part: str = "tuning", style: PageStyle = HARD) -> list[NumberSample]:
    """``count`` numbers of one part from digits by other hands, on hard pages (``HARD``, or ``SLANTED``):
    photos and wide canvases in the same shares as ``number_set``."""
    if count < 1:
        raise ValueError(f"expected at least one number, got {count}")
    images, labels = other_hands_digits(part)
    rng = np.random.default_rng(PARTS[part][0] + OTHER_HANDS_SEED_OFFSET)
    kinds, shares = list(KINDS), list(KINDS.values())
    return [
        number_sample(images, labels, rng, str(rng.choice(kinds, p=shares)), style, redraw=False)
        for _ in range(count)
    ]


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
