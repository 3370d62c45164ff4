"""Read a whole number: find the digits in a photo or a wide drawing and classify each one.

The Draw page reads one digit on a clean square; a cheque, a form, a page of
handwriting or a whiteboard photo holds a number, on paper that is unevenly
lit, ruled and noisy. ``read_digits`` segments such an image into digits and
sends every digit through the same ``to_mnist`` and the same networks as the
Draw page. Segmentation is classical image processing, one function per step,
each tested on its own:

1. ``ink_strength``: grey levels, then the ink as its contrast against the
   local paper (a coarse morphological estimate of the paper's brightness),
   so shadows and gradients of light cancel; the ink's polarity (dark on light
   or light on dark) is decided by which tail of the contrast is heavier. A
   canvas with a transparent background gives its alpha channel instead.
2. ``binarise``: a threshold relative to the strongest ink, never below a
   floor, so that blank paper gives nothing rather than its noise.
3. ``remove_form_boxes``: a form's boxes around the digits go (found by
   their insides, quadrilateral holes holding a digit, or where a digit
   touches its box, by the box's thin sides and the lines joining their
   ends: ``remove_touched_boxes``); a page whose rules
   slant (``ruled_slant``, a photo taken askew) is turned level; then
   ``remove_ruled_lines``: long thin horizontal runs go, except where a
   stroke crosses them; ``remove_vertical_rules`` does the same for runs
   nearly the image's whole height (a form's columns), which no digit has.
4. ``find_pieces``: connected components; paper edges and frames (pieces
   lying along a side of the image) lose their band along that side, and
   what is left of them reaching a side goes too: a digit touching a
   table's edge stays.
5. ``group_pieces``: pieces that sit above one another belong to one digit
   (a 5's hat, a broken 4); specks and pieces much shorter than a digit go.
   ``left_out`` reports what was set aside here and in step 4, so that a
   reader can see why a mark was not read.
6. ``line_slant`` and ``turning``: a line of digits written at a slant (the
   median slope between neighbouring digits' centres) is turned level, and
   steps 4 and 5 run again on it, so that digits are cut upright and the
   line is read as one line; the boxes are carried back to the input.
7. ``join_fragments`` and ``split_wide``: neighbours that overlap in x are
   joined, and a group wide enough for touching digits is cut at the columns
   crossing the fewest strokes, each only where the saved networks (the
   *judge*) read the result better: more surely, and more like a digit at
   all by the digit score (two touching digits read surely as one still
   look like no digit).

A reading is *sure* of the whole number (``NumberReading.is_sure``) when the
chosen model and a second opinion, the most accurate other model, read the
same number and the product of both models' probabilities for its digits
reaches ``SURE_NUMBER``, and no 1 stands much taller than the digits beside it
(``TALL_ONE``: a line left standing); otherwise it names the digit to check.

Trade-offs. Everything runs on a copy scaled so its longer side is at most
``WORKING_SIDE`` pixels: a 12-megapixel photo costs what a 1,000-pixel one
does, and a digit must be at least about 1/90 of the image's longer side
tall to be read (11 pixels of the working copy: drawn digits 11 pixels tall
were read, 8 pixels tall were lost). Digits are assumed about the same
height, as in one written number, and every line of an image at one slant
(up to ``MAX_SLANT_DEGREES``; a slant under ``MIN_SLANT_DEGREES`` is left,
as two digits' centres alone wander by as much); several lines of numbers
are read in order, line by line, and ``text`` puts a space between lines.
A vertical rule shorter than the image (a margin line) is not removed, nor a
box drawn as thick as its digit's strokes: they read as 1s unless they touch
the image's edge.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from digitdraw.serving import images, inference
from digitdraw.serving.networks import MODEL_IDS, NUM_CLASSES
from digitdraw.serving.preprocess import IMAGE_SIZE, check_image, to_mnist

# The longer side of the copy that segmentation works on.
WORKING_SIDE = 1000
# The paper's brightness is estimated on a copy this many times smaller, with a window this
# fraction of that copy's longer side: wider than any stroke, narrower than a shadow's gradient.
BACKGROUND_SHRINK = 4
BACKGROUND_WINDOW_FRACTION = 1 / 8
# The ink's polarity is judged against the picture blurred with windows these fractions of its longer
# side. The narrow one takes out a shadow's edge, but a close-up's thick dark strokes make the paper
# just around them its brighter tail; the wide one is wider than any stroke, but a strong shadow is a
# tail of its own. Where the two disagree, the paper, most of the picture, is its median. With the
# narrow window alone, 99 of 1,147 tuning photos were read with their polarity reversed; with both, 3.
LIGHT_INK_WINDOW_FRACTIONS = (1 / 8, 1 / 2)
# Ink is taken as light only where its tail is this much heavier than the dark one: on blank paper the
# two are noise of one size, and light ink's amplified noise would make specks (with 1.0, 2 of 12 blank
# test pages were called light; with 1.25 none, and 3 tuning photos rather than 6 were misjudged).
LIGHT_TAIL = 1.25
# Paper estimated darker than this fraction of the page's usual paper, over a region wider than the
# estimate's window, is a table or a board beside the paper, not paper in shadow. Its inside would read as
# paper and leave a strip of "ink" along its border, read as a 1; it is added to the ink mask whole instead,
# so that the band goes with the page's edges (``find_pieces``). Chosen on the tuning parts (0.4, 0.5 and 0.6;
# 0.6 took shadows for tables).
TABLE_DARKNESS = 0.5
# Paper darker than this (out of 255) is taken as this bright: noise on black is not ink.
MIN_PAPER_BRIGHTNESS = 64
# Ink is anything this far (out of 255) from the paper's brightness, relative to the paper...
MIN_INK_CONTRAST = 48
# ...and at least this fraction of the strongest ink, so faint ruled lines and stains fall away.
INK_FRACTION_OF_PEAK = 0.4
# A horizontal run at least this fraction of the image's width (gaps of up to LINE_GAP bridged) is a rule.
LINE_FRACTION = 0.5
LINE_GAP = 9
LINE_SHRINK = 2
# A vertical run this fraction of the image's height is a rule: a digit's stroke is never that long.
VERTICAL_LINE_FRACTION = 0.85
# A rule may wander this many pixels of the narrowed copy (LINE_SHRINK) up or down along its length:
# a turned page's rules, laid level, and a form's columns seen in perspective are not one pixel
# straight. Tuned on the tuning parts (1, 2 and 3): with 2, and the columns always allowed it,
# count right 89.8% -> 90.4% on other hands' numbers, 86.0% -> 87.4% slanted.
RULE_WOBBLE = 2
# Rules found while allowing that cover more than this fraction of the picture are a texture's grain
# (a noisy photo: 31% of it), not a page's rules (some 30 rules of a notebook, 3 pixels thick, at 1,000
# pixels: 9%); they are searched for again without the wobble.
MAX_RULE_AREA = 0.15
# A form's box: a hole in the ink at least MIN_BOX_SIDE pixels across whose outline is a
# quadrilateral (corners found within BOX_CORNER_TOLERANCE of its perimeter), holding a digit
# (see remove_form_boxes); the band removed along it reaches BOX_BAND_FRACTION of its shorter
# side to either side, at least 2 pixels: past the box's line, of the box's own piece only.
BOX_CORNER_TOLERANCE = 0.04
MIN_BOX_SIDE = 12
BOX_BAND_FRACTION = 0.15
MIN_BOX_INK_INSIDE = 0.05
MIN_BOX_DIGIT_HEIGHT = 0.4
# A box its digit touches leaves no such hole, and is found by its lines instead (remove_touched_boxes):
# lines at most BOX_LINE_THICKNESS pixels thick, or half the strokes' width where that is more (a box
# is drawn thinner than the digits written in it); a side broken where a digit crosses it is bridged
# over BOX_SIDE_BRIDGE stroke widths, and over a longer break where ink runs along at least BOX_INKED
# of it (a digit lying along the side). Two sides of about one height (their ends within BOX_SKEW of
# it, for perspective), BOX_ASPECT_RANGE heights apart, are a box where a line at least
# BOX_LINE_COVERED of the way joins their tops and their bottoms, ink covers BOX_INKED of it, and ink
# fills at least MIN_BOX_INK_INSIDE of the inside, in strokes BOX_DIGIT_STROKE times as wide as the
# box's lines at least (a digit's loop holds none; thin 1s between two rules, or a square 0's slash,
# are no thicker than the lines). Lines are looked for BOX_LINE_REACH pixels either side of where the
# sides end. A mask with more than MAX_BOX_SIDES pieces of thin vertical line is a texture or a grid,
# and keeps its lines.
BOX_LINE_THICKNESS = 4
BOX_SIDE_BRIDGE = 2.0
BOX_INKED = 0.9
BOX_SKEW = 0.1
BOX_ASPECT_RANGE = (0.3, 3.0)
BOX_LINE_COVERED = 0.5
BOX_LINE_REACH = 3
BOX_DIGIT_STROKE = 1.5
MAX_BOX_SIDES = 64
# The paper kept around the ink when boxes are looked for: more than a box's line and its reach, for
# strokes up to 40 pixels wide.
BOX_MARGIN = 32
# A piece lying along this fraction of one side of the image is a paper edge or a frame, not ink.
EDGE_CONTACT_FRACTION = 0.5
# Digits touching such a piece are kept, less the piece's band and this fraction of the image's longer
# side beyond it (the band's ragged border).
EDGE_BAND_MARGIN = 0.01
# Relative to the height of a typical digit (see _digit_height): pieces smaller than this in both
# directions are specks; groups shorter than this are not digits (a dash, a dot, a lost stroke).
SPECK_FRACTION = 0.15
MIN_DIGIT_HEIGHT_FRACTION = 0.4
# Below this many pixels of the working copy a piece is noise whatever the digits' size.
MIN_PIECE_PIXELS = 3
MIN_DIGIT_PIXELS = 6
# Two pieces belong to one digit when one overlaps this much of the narrower's width and the
# vertical gap between them is at most this fraction of a digit's height.
MERGE_OVERLAP = 0.5
MERGE_GAP_FRACTION = 0.3
MERGE_HEIGHT = 1.7
# A digit is at most this wide for its height; a wider group holds touching digits, each about
# DIGIT_ASPECT times as wide as tall.
SPLIT_ASPECT = 2.0
DIGIT_ASPECT = 0.7
# Neighbours at most this far apart (a fraction of a digit's height), making a group at most this wide
# for its height, may be pieces of one digit: the networks decide.
JOIN_GAP_FRACTION = 0.05
JOIN_ASPECT = 1.0
# From this width for its height on, a group may hold touching digits: the networks decide.
# Each extra digit must raise the log of the product of the confidences by SPLIT_PENALTY. Both
# were tuned on the tuning parts of digitdraw.reading.numbers only (0.75/0.85/0.95 against 0.1, 0.25,
# 0.5, 0.75 and 1, with the digit score in the judge): lower penalties split single wide digits and
# cut pen-skipped ones, higher ones leave touching pairs whole.
CANDIDATE_ASPECT = 0.85
SPLIT_PENALTY = 0.5
# A group no wider than SURE_ASPECT times its height that the judge reads as one digit with at
# least SURE_WHOLE confidence is kept whole without judging any cut: it saves most of the
# judging, and on the tuning set (1.0 and 1.2 against 0.9 and 0.97) changed no reading; with the digit
# score in the judge, whose lowered value this is, 0.9 and 0.95 read the tuning parts alike.
SURE_ASPECT = 1.2
SURE_WHOLE = 0.9
# The judge lowers a crop's probability by exp(DIGIT_SCORE_WEIGHT * how far the digit score puts it below
# its threshold). Two touching digits are often read surely as one digit (a 10 as a 0, say), but they
# look like no digit: on the tuning parts every group holding two digits scored below the threshold,
# and 9% of groups holding one. Chosen on the tuning parts (0.3 against 0, 0.15, 0.5 and 1.0).
DIGIT_SCORE_WEIGHT = 0.3
# A group is cut into at most this many digits, however wide: it bounds the candidates to judge.
MAX_PARTS = 6
# More digits than this in one image are not a number; the largest are kept.
MAX_DIGITS = 200
# At most this many pieces are grouped into digits, the largest: grouping compares every pair, and a
# picture of 12,000 specks took two minutes to read.
MAX_PIECES = 2 * MAX_DIGITS
# At most this many marks set aside are reported (``left_out``), the largest.
MAX_LEFT_OUT = 50
# A line of digits slanting at least this much (``line_slant``) is turned level before it is cut; a
# slighter slant is read as it is, since two digits' centres alone wander by a few degrees.
MIN_SLANT_DEGREES = 4.0
# Neighbours further apart than this many digits' heights, or steeper than this, are not one line's.
SLANT_REACH = 2.5
MAX_SLANT_DEGREES = 45.0
# A page whose rules slant at least this much is turned level first: ``remove_ruled_lines`` follows a
# rule along one row of pixels, which a 2-pixel rule leaves within some 500 pixels at 0.2 degrees.
MIN_RULE_SLANT_DEGREES = 0.3
# Rules are searched for on a copy this many times smaller, then fitted to the ink within at least this
# many pixels of each rule found (the smaller copy's pixel, and its row above or below).
RULE_SHRINK = 4
RULE_REACH = 2 * RULE_SHRINK
# The second fit takes the ink within at least this many pixels of the first: a rule's own thickness.
RULE_TIGHT = 2
# A rule has ink near its line along at least this share of its way across the image, and that is at
# least this share of the ink around it (``ruled_slant`` says how near and how far around).
RULE_COVERAGE = 0.8
RULE_THIN = 0.6
# A rule runs off the picture: its ink reaches within this share of its way across of its ends (see
# ``ruled_slant``); a digit's stroke in a tightly cropped photo stops short of both.
RULE_END = 0.01
# A rule down the page is at most this share of the strokes' width thick.
RULE_STROKE = 0.75
# The longest this many of the straight lines found are fitted; each fit takes at most this many of the
# pixels near it, evenly spaced (the fit is as good, and a large blob costs no more).
MAX_RULES = 20
MAX_FIT_POINTS = 2000
# A whole number is called sure when the chosen model and its second opinion (the most accurate other
# model on MNIST's test set) read the same number and the product of both models' probabilities for
# its digits is at least this. A model's own product alone was not enough: numbers it read
# confidently and wrong kept it under 98% right on the held-out parts. Chosen on the tuning parts of
# both evaluation sets with model 4: the lowest of 0.9, 0.95, 0.98 and 0.99 at which at least 98.5%
# of the numbers called sure were right on each (docs/reading-numbers.md).
SURE_NUMBER = 0.95
# A 1 this many times taller than the other digits on its line (their median) is more likely a line (a
# rule, a box's side, a table's edge) than a digit: a number holding one is never sure.
TALL_ONE = 1.3

Box = tuple[int, int, int, int]  # x, y, width, height in pixels.


def to_gray(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """A uint8 grey image and whether its polarity is known to be light ink on dark (a canvas's alpha)."""
    image = check_image(image)
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = np.ascontiguousarray(image[:, :, 3])
        if alpha.min() < 255:
            return alpha, True  # A canvas: the alpha channel is the ink, whatever the brush's colour.
        image = image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY), False
    return np.ascontiguousarray(image.reshape(image.shape[:2])), False


def working_copy(gray: np.ndarray, side: int = WORKING_SIDE) -> tuple[np.ndarray, float]:
    """The grey image scaled down (area interpolation) to a longer side of at most ``side``; and the scale."""
    scale = min(1.0, side / max(gray.shape))
    if scale == 1.0:
        return gray, 1.0
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA), scale


def _odd(value: float) -> int:
    return max(1, int(value) // 2 * 2 + 1)


def light_ink(gray: np.ndarray) -> bool:
    """True when the ink is lighter than the paper (chalk on a board), judged by the heavier tail.

    Lighting is taken out first (the difference from a blurred copy), so a
    shadow is no tail; the ink is what lies far from the paper on one side.
    Two blurs vote (``LIGHT_INK_WINDOW_FRACTIONS``); the picture's median breaks a tie.
    """
    small = (gray if max(gray.shape) <= 400 else working_copy(gray, 400)[0]).astype(np.float32)
    votes = {
        _lighter_tail(small - cv2.blur(small, (window, window)))
        for window in (_odd(max(small.shape) * fraction) for fraction in LIGHT_INK_WINDOW_FRACTIONS)
    }
    return votes.pop() if len(votes) == 1 else _lighter_tail(small - float(np.median(small)))


def _lighter_tail(residual: np.ndarray) -> bool:
    low, high = np.percentile(residual, [0.2, 99.8])
    return bool(high > LIGHT_TAIL * -low)


def ink_strength(gray: np.ndarray, light: bool | None = None) -> np.ndarray:
    """Ink as uint8 contrast against the local paper, 0 (paper) to 255; ``light`` None means detect it.
    A table beside the paper is no ink here (``ink_and_table``)."""
    return ink_and_table(gray, light)[0]


def ink_and_table(gray: np.ndarray, light: bool | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``ink_strength``, and where a table or a board lies beside the paper (a 0/1 uint8 mask of the
    image's size; None where there is none), which segmentation takes as ink, whole.

    The table is kept out of the contrast: as ink there, it would be the strongest ink in the picture,
    and ``binarise`` would raise its threshold over faint strokes beside it.
    """
    if light is None:
        light = light_ink(gray)
    ink = gray if light else cv2.bitwise_not(gray)  # Ink bright, paper dark, from here on.
    height, width = ink.shape
    small_size = (max(1, width // BACKGROUND_SHRINK), max(1, height // BACKGROUND_SHRINK))
    small = cv2.resize(ink, small_size, interpolation=cv2.INTER_AREA)
    window = _odd(max(small_size) * BACKGROUND_WINDOW_FRACTION)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (window, window))
    # Opening takes the ink away and keeps the paper's slow changes; the blur smooths its blocks.
    opened = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel)
    paper = cv2.blur(opened, (window, window))
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    # A 3x3 blur first: pixel noise, amplified below where the paper is dim, must not read as ink.
    contrast = cv2.subtract(cv2.GaussianBlur(ink, (3, 3), 0), paper)
    small_table = _table(opened)
    table = None
    if small_table.any():
        table = cv2.resize(small_table, (width, height), interpolation=cv2.INTER_NEAREST)
        contrast[table > 0] = 0
    # Relative to how bright the paper is: ink on paper in shadow counts as much as in full light.
    # (In uint8 with OpenCV's saturating, rounding divide: a third of the time of float arithmetic.)
    brightness = cv2.max(cv2.bitwise_not(paper), MIN_PAPER_BRIGHTNESS)
    return cv2.divide(contrast, brightness, scale=255.0), table


def _table(opened: np.ndarray) -> np.ndarray:
    """Where the paper estimate (``opened``, ink bright) is far darker than most of the page's paper:
    a table or a board beside the paper, wider than any stroke, as a 0/1 uint8 mask of the same size."""
    level = float(np.median(opened))  # The paper: most of the picture.
    return ((255.0 - opened) < TABLE_DARKNESS * (255.0 - level)).astype(np.uint8)


def binarise(ink: np.ndarray) -> np.ndarray:
    """A 0/1 uint8 mask of the ink: at least ``MIN_INK_CONTRAST`` and ``INK_FRACTION_OF_PEAK`` of the peak."""
    candidates = ink[ink >= MIN_INK_CONTRAST]
    if candidates.size == 0:
        return np.zeros(ink.shape, np.uint8)
    peak = float(np.percentile(candidates, 99))
    threshold = max(MIN_INK_CONTRAST, INK_FRACTION_OF_PEAK * peak)
    return (ink >= threshold).astype(np.uint8)


def remove_ruled_lines(
    mask: np.ndarray, fraction: float = LINE_FRACTION, page: int | None = None, wobble: bool = False
) -> np.ndarray:
    """The mask without horizontal rules at least ``fraction`` of the page's width long (``page``; the
    mask's own width unless the page was turned onto a wider one), followed ``RULE_WOBBLE`` pixels up or
    down where they ``wobble`` (a page turned level, a column in perspective); where a stroke crosses a
    rule, the stroke stays whole."""
    height, width = mask.shape
    length = int((width if page is None else page) * fraction)
    # Only a row holding ink along at least half a rule's length can be part of one: most
    # images have none, and the long morphology below is then skipped.
    if length < 2 * LINE_GAP or mask.sum(axis=1, dtype=np.int32).max() < length // 2:
        return mask
    # Rules are searched for on a copy LINE_SHRINK times narrower (a column there is set if half
    # its pixels are), where the long opening costs half; the rules found are then exact ink.
    # (On the tuning set, 2 reads exactly as full width does; 4 lost two numbers of 400.)
    narrow = cv2.resize(
        mask * np.uint8(2), (max(1, width // LINE_SHRINK), height), interpolation=cv2.INTER_AREA
    )
    narrow = (narrow > 0).astype(np.uint8)
    if wobble:
        # A rule laid level by turning the page, or a column in perspective, wanders along its length
        # (RULE_WOBBLE). Only where asked, and checked below: on a textured photo, rows joined up and
        # down make rules of the texture and shatter its ink.
        narrow = cv2.dilate(narrow, np.ones((2 * RULE_WOBBLE + 1, 1), np.uint8))
    gap, run = max(1, LINE_GAP // LINE_SHRINK), max(1, length // LINE_SHRINK)
    bridged = cv2.morphologyEx(narrow, cv2.MORPH_CLOSE, np.ones((1, gap), np.uint8))
    found = cv2.morphologyEx(bridged, cv2.MORPH_OPEN, np.ones((1, run), np.uint8))
    if not found.any():
        return mask
    lines = cv2.resize(found, (width, height), interpolation=cv2.INTER_NEAREST) & mask
    if not lines.any():
        return mask
    if wobble and np.count_nonzero(lines) > MAX_RULE_AREA * lines.size:
        # A texture's grain, joined up and down, makes "rules" of a good part of the picture, and
        # removing them shatters it into thousands of pieces: no page is ruled so densely.
        return remove_ruled_lines(mask, fraction, page, wobble=False)
    # A rule is as thick as its vertical runs; ink in taller vertical runs is a stroke crossing it.
    thickness = _line_thickness(lines)
    crossing = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((thickness + 3, 1), np.uint8))
    return mask & ~(lines & ~crossing)


def ruled_slant(mask: np.ndarray) -> float:
    """The slant of a page's rules in degrees, as ``line_slant`` counts it; 0 where it has none.

    Rules across the page, or down it (a form's columns), at least ``LINE_FRACTION`` of its width or
    height long, are found on a copy ``RULE_SHRINK`` times smaller (a probabilistic Hough transform,
    cheap there); each is then fitted to the ink near it at full size, for the precision
    ``remove_ruled_lines`` needs. A rule runs off the picture, with ink nearly all along it, and is
    thin. The slant returned is the median of the rules' slants.
    """
    height, width = mask.shape
    size = (max(1, width // RULE_SHRINK), max(1, height // RULE_SHRINK))
    length = int(min(size) * LINE_FRACTION)
    if length < 2 * LINE_GAP // RULE_SHRINK or mask.sum(dtype=np.int64) < LINE_FRACTION * min(width, height):
        return 0.0
    # Any ink in a block of the smaller copy sets it, so that a rule one pixel thin stays whole there,
    # and a pixel to either side joins it, so that a rule's steps do not break it where it slants.
    shrunk = (cv2.resize(mask * np.uint8(255), size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    shrunk = cv2.dilate(shrunk, np.ones((3, 3), np.uint8))
    segments = cv2.HoughLinesP(
        shrunk,
        1,
        np.pi / 360,
        threshold=length // 2,
        minLineLength=length,
        maxLineGap=LINE_GAP // RULE_SHRINK,
    )
    if segments is None:
        return 0.0
    ys, xs = np.nonzero(mask)
    # A rule is as thick as the strokes, which a close-up makes thick: near a rule is within half a
    # stroke of its middle (and a pixel); around it, a stroke to either side (and the smaller copy's pixel).
    stroke = stroke_width(mask)
    tight, reach = max(RULE_TIGHT, stroke / 2 + 1), max(RULE_REACH, 2 * stroke)
    steepest = np.tan(np.radians(MAX_SLANT_DEGREES))
    slants: list[float] = []
    fitted: list[tuple[np.ndarray, np.ndarray]] = []
    segments = segments.reshape(-1, 4).astype(np.float64) * RULE_SHRINK
    longest = np.argsort(-np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1]))
    for x1, y1, x2, y2 in segments[longest[:MAX_RULES]]:
        across_the_page = abs(y2 - y1) <= steepest * abs(x2 - x1)
        if not across_the_page and abs(x2 - x1) > steepest * abs(y2 - y1):
            continue  # Neither across the page nor down it: no rule of a page turned by a slant we read.
        if (x2 < x1) if across_the_page else (y2 < y1):  # Rightwards across the page, downwards down it.
            x1, y1, x2, y2 = x2, y2, x1, y1
        ends = np.array([[x1, y1], [x2, y2]])
        if any(np.abs(_across(ends[:, 0], ends[:, 1], point, unit)).max() <= reach for point, unit in fitted):
            continue  # Another piece of a line already fitted: Hough finds a thick line many times.
        run = np.hypot(x2 - x1, y2 - y1)
        line = (np.array([x1, y1]), np.array([x2 - x1, y2 - y1]) / run)
        # One pass over all the ink for the pixels in a band along the whole line; the fits need no more.
        entry, way = _chord(*line, width, height)
        band, _ = _near(xs, ys, entry, line[1], way, 2 * reach)
        band_xs, band_ys = xs[band], ys[band]
        # Fitted to the ink near the segment found, then again to the ink near that fit alone: digits
        # standing on a rule pull the first fit a little their way.
        line = _fitted(band_xs, band_ys, *line, run, reach)
        line = _fitted(band_xs, band_ys, *line, run, tight) if line is not None else None
        if line is None:
            continue
        fitted.append(line)
        # A rule runs from edge to edge with ink all along: a line through the feet of digits side by
        # side, or through them and a piece of rule, does not.
        start, chord = _chord(*line, width, height)
        if chord < LINE_FRACTION * (width if across_the_page else height):
            continue
        near, along = _near(band_xs, band_ys, start, line[1], chord, tight)
        around, _ = _near(band_xs, band_ys, start, line[1], chord, reach)
        # And it is thin: the edge of a dark band (a table past the paper) is straight but thick, and
        # its slant is as uncertain as it is thick.
        thin = np.count_nonzero(near) >= RULE_THIN * np.count_nonzero(around)
        covered = np.unique(along[near].astype(np.int64))
        # A rule across may fade at one end with the light. One down the page, which a tall digit's
        # stroke can seem, must run off both ends, and be thinner than the strokes (a printed column).
        ends = (covered[0], chord - covered[-1]) if covered.size else (chord, chord)
        runs_off = (min(ends) if across_the_page else max(ends)) <= RULE_END * chord
        if not across_the_page and np.count_nonzero(near) > RULE_STROKE * stroke * max(covered.size, 1):
            continue
        if thin and runs_off and covered.size >= RULE_COVERAGE * chord:
            along_x, along_y = line[1]
            # A page turned by a slant turns a rule down it as much as one across it.
            slant = np.arctan2(along_y, along_x) if across_the_page else np.arctan2(-along_x, along_y)
            slants.append(float(np.degrees(slant)))
    slants = [slant for slant in slants if abs(slant) <= MAX_SLANT_DEGREES]
    return float(np.median(slants)) if slants else 0.0


def stroke_width(mask: np.ndarray) -> float:
    """The strokes' typical width in pixels: twice the ink's area over its outline (the ink pixels beside
    paper), as for a long stroke; 0 without ink."""
    outline = np.count_nonzero(mask & ~cv2.erode(mask, np.ones((3, 3), np.uint8)))
    return 2.0 * np.count_nonzero(mask) / outline if outline else 0.0


def _near(
    xs: np.ndarray, ys: np.ndarray, start: np.ndarray, direction: np.ndarray, length: float, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which ink pixels lie within ``reach`` of a segment (from ``start`` along the unit ``direction`` for
    ``length``), and how far along it each pixel lies."""
    along = (xs - start[0]) * direction[0] + (ys - start[1]) * direction[1]
    across = _across(xs, ys, start, direction)
    return (np.abs(across) <= reach) & (along >= 0) & (along <= length), along


def _fitted(
    xs: np.ndarray, ys: np.ndarray, start: np.ndarray, direction: np.ndarray, length: float, reach: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The straight line fitted (least squares) to the ink pixels within ``reach`` of a segment: its point
    nearest ``start`` and its unit direction, the segment's way; None where fewer than two pixels are near."""
    near, _ = _near(xs, ys, start, direction, length, reach)
    if np.count_nonzero(near) < 2:
        return None
    # Evenly thinned to at most MAX_FIT_POINTS: the fit is as good, and a large blob costs no more.
    chosen = np.flatnonzero(near)
    chosen = chosen[:: max(1, chosen.size // MAX_FIT_POINTS)]
    points = np.column_stack([xs[chosen], ys[chosen]]).astype(np.float32)
    fitted_x, fitted_y, origin_x, origin_y = cv2.fitLine(points, cv2.DIST_L2, 0, 0.01, 0.01).ravel()
    unit = np.array([fitted_x, fitted_y], np.float64)
    unit *= 1 if unit @ direction >= 0 else -1
    origin = np.array([origin_x, origin_y], np.float64)
    return origin + float((start - origin) @ unit) * unit, unit


def _across(xs: np.ndarray, ys: np.ndarray, point: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """How far each point (``xs``, ``ys``) lies to one side (+) or the other of the straight line through
    ``point`` along the unit ``direction``."""
    return (ys - point[1]) * direction[0] - (xs - point[0]) * direction[1]


def _chord(point: np.ndarray, direction: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """Where a straight line (through ``point`` along the unit ``direction``) enters an image of the
    given size, going its way, and how long it runs inside it."""
    low, high = -np.inf, np.inf
    for origin, step, size in zip(point, direction, (width, height), strict=True):
        if abs(step) < 1e-12:
            continue  # Parallel to this pair of sides: the other pair bounds it.
        ends = sorted(((0 - origin) / step, (size - origin) / step))
        low, high = max(low, ends[0]), min(high, ends[1])
    return point + low * direction, max(0.0, float(high - low))


def remove_vertical_rules(mask: np.ndarray, page: int | None = None, wobble: bool = False) -> np.ndarray:
    """The mask without vertical rules running nearly the page's whole height (``page``; the mask's own
    height unless the page was turned onto a taller one; ``wobble`` as for ``remove_ruled_lines``): a
    form's columns, a margin. A digit never does, since a photo holds some paper above and below its
    digits."""
    turned = remove_ruled_lines(np.ascontiguousarray(mask.T), VERTICAL_LINE_FRACTION, page, wobble)
    return np.ascontiguousarray(turned.T)


def remove_form_boxes(mask: np.ndarray) -> np.ndarray:
    """The mask without the boxes of a form drawn around the digits, also boxes side by side that share
    a side, and boxes seen in perspective.

    A box is known by its inside: a hole in the ink whose outline is a convex
    quadrilateral, holding a piece of ink of its own (the digit) at least
    ``MIN_BOX_INK_INSIDE`` of its area and ``MIN_BOX_DIGIT_HEIGHT`` of its height.
    A digit's own loop (a 0, a 6) holds at most a speck or a short stray stroke.
    Along the hole's outline, the band that reaches ``BOX_BAND_FRACTION`` of its
    shorter side to either side goes, of the piece the box is drawn in only: the
    box's sides, shared ones included, and none of the digit inside. A box that a
    digit touches is not a quadrilateral hole: ``remove_touched_boxes`` finds it by its lines. (Taking
    the whole piece the boxes were drawn in took the digits that touched their box with it.)
    """
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return mask
    labels, result = None, mask
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True):
        x, y, width, height = cv2.boundingRect(contour)
        if parent == -1 or min(width, height) < MIN_BOX_SIDE:
            continue  # Not a hole, or a small one.
        corners = cv2.approxPolyDP(contour, BOX_CORNER_TOLERANCE * cv2.arcLength(contour, True), True)
        if len(corners) != 4 or not cv2.isContourConvex(corners):
            continue
        if labels is None:  # Only for an image with a quadrilateral hole: most have none.
            labels = cv2.connectedComponents(mask, connectivity=8)[1]
        inside = np.zeros((height, width), np.uint8)
        cv2.fillPoly(inside, [contour - np.array([x, y])], 1)
        around = labels[tuple(contours[parent][0][0][::-1])]  # The piece the hole is in, at (row, column).
        window = labels[y : y + height, x : x + width]
        held = inside.astype(bool) & (window != 0) & (window != around)
        rows = np.flatnonzero(held.any(axis=1))
        if held.sum() < MIN_BOX_INK_INSIDE * inside.sum() or np.ptp(rows) + 1 < MIN_BOX_DIGIT_HEIGHT * height:
            continue  # A digit's loop (perhaps with a speck or a stray stroke in it), or an empty box.
        # The band along the hole's own outline, not its four corners: a box's sides are not quite straight.
        reach = max(2, round(BOX_BAND_FRACTION * min(width, height)))
        left, top = max(0, x - reach), max(0, y - reach)
        right, bottom = min(mask.shape[1], x + width + reach), min(mask.shape[0], y + height + reach)
        band = np.zeros((bottom - top, right - left), np.uint8)
        cv2.drawContours(band, [contour - np.array([left, top])], -1, 1, 2 * reach + 1)
        if result is mask:
            result = mask.copy()
        result[top:bottom, left:right] &= ~(band.astype(bool) & (labels[top:bottom, left:right] == around))
    return remove_touched_boxes(result)


def _thin_lines(mask: np.ndarray, length: int, thickness: int) -> np.ndarray:
    """The mask's horizontal lines: ink in rows at least ``length`` long (allowing ``RULE_WOBBLE`` pixels
    up or down), in vertical runs at most ``thickness`` pixels: where a stroke crosses, no line."""
    band = cv2.dilate(mask, np.ones((2 * RULE_WOBBLE + 1, 1), np.uint8))
    long = cv2.morphologyEx(band, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    thick = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((thickness + 1, 1), np.uint8))
    return long & mask & ~thick


def _coverage(near: np.ndarray, start: tuple[float, float], end: tuple[float, float]) -> float:
    """The share of the points from ``start`` to ``end`` (x, y) that ``near`` holds, one per column."""
    count = max(2, round(abs(end[0] - start[0])) + 1)
    xs = np.linspace(start[0], end[0], count).round().astype(int)
    ys = np.linspace(start[1], end[1], count).round().astype(int)
    return float(near[ys, xs].mean())


def _box_sides(vertical: np.ndarray, mask: np.ndarray, bridge: int) -> tuple[np.ndarray, list[list]]:
    """The vertical lines' pieces, labelled, and the sides they make, each [top x, top y, bottom x,
    bottom y, its pieces' labels]: breaks bridged where a stroke crosses or a digit lies along it."""
    bridged = cv2.morphologyEx(vertical, cv2.MORPH_CLOSE, np.ones((bridge, 1), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(bridged, connectivity=8)
    tall = [label for label in range(1, count) if stats[label, cv2.CC_STAT_HEIGHT] >= MIN_BOX_SIDE]
    if len(tall) > MAX_BOX_SIDES:  # A texture's grain, not a form: no page has so many boxes.
        return labels, []
    sides = []
    for label in tall:
        x, y, width, height = stats[label, :4]
        ys, xs = np.nonzero(labels[y : y + height, x : x + width] == label)
        top, bottom = ys.min(), ys.max()
        sides.append([xs[ys == top].mean() + x, y + top, xs[ys == bottom].mean() + x, y + bottom, [label]])
    # A side broken over a longer stretch where a digit lies along it: one column, ink all along the break.
    # Taken from the top down, each piece joins the side above it whose bottom is nearest.
    inked = cv2.dilate(mask, np.ones((1, 2 * BOX_LINE_REACH + 1), np.uint8)).T.astype(bool)
    chains: list[list] = []
    for piece in sorted(sides, key=lambda side: side[1]):
        above = [
            chain
            for chain in chains
            if chain[3] < piece[1]
            and abs(piece[0] - chain[2]) <= BOX_LINE_REACH + 1
            # Along the break, column by column of the turned mask: from one end to the other as (y, x).
            and _coverage(inked, (chain[3], chain[2]), (piece[1], piece[0])) >= BOX_INKED
        ]
        if above:
            chain = max(above, key=lambda chain: chain[3])
            chain[2:5] = [piece[2], piece[3], chain[4] + piece[4]]
        else:
            chains.append(piece)
    return labels, chains


def _draw_edge(
    edges: np.ndarray, lines: np.ndarray, start: tuple[float, float], end: tuple[float, float], thickness: int
) -> None:
    """Mark, in place, the line of ``lines`` that runs from ``start`` to ``end`` (x, y), ``thickness`` thick
    and wobbling: it is looked for ``BOX_LINE_REACH`` and a thickness above or below, since the sides'
    ends stop short of the line they meet."""
    reach = BOX_LINE_REACH + thickness
    shifts = [
        shift
        for shift in range(-reach, reach + 1)
        if min(start[1], end[1]) + shift >= 0 and max(start[1], end[1]) + shift < len(lines)
    ]  # Never empty: the ends lie in the picture, so a shift of 0 is one of them.
    best = max(
        shifts, key=lambda shift: _coverage(lines, (start[0], start[1] + shift), (end[0], end[1] + shift))
    )
    width = thickness + 2 * RULE_WOBBLE + 1
    cv2.line(
        edges, (round(start[0]), round(start[1] + best)), (round(end[0]), round(end[1] + best)), 1, width
    )


def remove_touched_boxes(mask: np.ndarray) -> np.ndarray:
    """The mask without the boxes of a form that its digits touch (or that overlap where they do): their
    thin lines go, and the digits' strokes where they cross or touch them stay.

    Two thin vertical sides of about one height, a box's width apart, whose tops
    and whose bottoms are joined by thin lines, with a digit's ink inside, are a
    box (see the constants above). A digit's own strokes are as thick as its pen,
    and never make such a rectangle with ink inside; a thin 0 drawn square holds none.
    """
    # Only where there is ink, and a margin of paper (the steps below treat the picture's edge as ink): a
    # photo is mostly paper, and every step costs by the pixel.
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return mask
    margin = BOX_MARGIN
    window = np.s_[
        max(0, rows[0] - margin) : rows[-1] + 1 + margin,
        max(0, columns[0] - margin) : columns[-1] + 1 + margin,
    ]
    crop = mask[window]
    cleaned = _without_touched_boxes(crop)
    if cleaned is crop:
        return mask
    result = mask.copy()
    result[window] = cleaned
    return result


def _without_touched_boxes(mask: np.ndarray) -> np.ndarray:
    """``remove_touched_boxes`` on a mask cropped to its ink; the very mask where nothing goes."""
    stroke = stroke_width(mask)
    thickness = max(BOX_LINE_THICKNESS, round(stroke / 2))
    vertical = np.ascontiguousarray(_thin_lines(np.ascontiguousarray(mask.T), MIN_BOX_SIDE, thickness).T)
    if not vertical.any():
        return mask
    labels, sides = _box_sides(vertical, mask, max(1, round(BOX_SIDE_BRIDGE * stroke)))
    # A box's side is straight: its line runs along most of the way between its ends (a loop's side bows).
    # Measured row by row on the turned masks, whose points are (y, x).
    along = np.ones((1, 2 * RULE_WOBBLE + 1), np.uint8)
    near_side = cv2.dilate(vertical, along).T.astype(bool)
    near_stroke = cv2.dilate(mask, along).T.astype(bool)

    def straight(side: list) -> bool:
        top, bottom = (side[1], side[0]), (side[3], side[2])
        return (
            _coverage(near_side, top, bottom) >= BOX_LINE_COVERED
            and _coverage(near_stroke, top, bottom) >= BOX_INKED
        )

    sides = sorted(
        (side for side in sides if side[3] - side[1] >= 2 * MIN_BOX_SIDE and straight(side)),
        key=lambda side: side[0],
    )
    if len(sides) < 2:
        return mask
    horizontal = _thin_lines(mask, MIN_BOX_SIDE, thickness)
    reach = np.ones((2 * (BOX_LINE_REACH + thickness) + 1, 1), np.uint8)
    near_line = cv2.dilate(horizontal, reach).astype(bool)
    near_ink = cv2.dilate(mask, reach).astype(bool)
    digits = mask & ~(vertical | horizontal)  # What may be a digit: all but the thin lines.
    filled = cv2.integral(digits)
    line_pixels = np.bincount(labels[vertical.astype(bool)], minlength=labels.max() + 1)
    found = np.zeros(labels.max() + 1, bool)
    edges_found = np.zeros_like(mask)
    for index, (top_x, top_y, bottom_x, bottom_y, first) in enumerate(sides):
        height = bottom_y - top_y
        skew = BOX_LINE_REACH + BOX_SKEW * height
        for other_top_x, other_top_y, other_bottom_x, other_bottom_y, second in sides[index + 1 :]:
            width = other_top_x - top_x
            if width > BOX_ASPECT_RANGE[1] * height:
                break  # Sides are in order of x: every later one is farther.
            if (
                width < BOX_ASPECT_RANGE[0] * height
                or max(abs(other_top_y - top_y), abs(other_bottom_y - bottom_y)) > skew
            ):
                continue
            edges = (
                ((top_x, top_y), (other_top_x, other_top_y)),
                ((bottom_x, bottom_y), (other_bottom_x, other_bottom_y)),
            )
            if any(
                _coverage(near_line, start, end) < BOX_LINE_COVERED
                or _coverage(near_ink, start, end) < BOX_INKED
                for start, end in edges
            ):
                continue
            # The inside, within the lines: a digit's ink fills some of it.
            left = round(max(top_x, bottom_x)) + thickness
            right = round(min(other_top_x, other_bottom_x)) - thickness
            upper = round(max(top_y, other_top_y)) + thickness
            lower = round(min(bottom_y, other_bottom_y)) - thickness
            if right <= left or lower <= upper:
                continue
            inside = filled[lower, right] - filled[upper, right] - filled[lower, left] + filled[upper, left]
            if inside < MIN_BOX_INK_INSIDE * (right - left) * (lower - upper):
                continue
            line = line_pixels[first + second].sum() / (height + other_bottom_y - other_top_y)
            if stroke_width(digits[upper:lower, left:right]) < BOX_DIGIT_STROKE * line:
                continue
            found[first + second] = True
            for start, end in edges:
                _draw_edge(edges_found, horizontal, start, end, thickness)
    if not found.any():
        return mask
    gone = (
        (found[labels] & vertical.astype(bool)) | (edges_found.astype(bool) & horizontal.astype(bool))
    ).view(np.uint8)
    # The corners, in neither a thin row nor a thin column, and the lines' frayed edges go with them; of
    # the digits' strokes, as thick as their pens in both directions, nothing.
    square = np.ones((2 * thickness + 1, 2 * thickness + 1), np.uint8)
    strokes = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((thickness + 1, thickness + 1), np.uint8))
    return mask & ~(cv2.dilate(gone, square) & ~strokes)


def _line_thickness(lines: np.ndarray) -> int:
    """The median thickness of the rules in a mask of rules: per column, pixels over vertical runs."""
    rows = np.flatnonzero(lines.any(axis=1))
    band = lines[rows[0] : rows[-1] + 1]  # Only the rows the rules are in: a few percent of the image.
    runs = np.count_nonzero(np.diff(band, axis=0, prepend=0) == 1, axis=0)
    pixels = band.sum(axis=0, dtype=np.int32)
    ruled = runs > 0
    return max(1, round(float(np.median(pixels[ruled] / runs[ruled]))))


@dataclass(frozen=True)
class Pieces:
    """Connected components of a mask: the label image and one row of stats per kept piece."""

    labels: np.ndarray  # int32 label image, as OpenCV numbered the components (pieces dropped included).
    ids: np.ndarray  # (N,) each kept piece's label in ``labels``.
    boxes: np.ndarray  # (N, 4) x, y, width, height.
    areas: np.ndarray  # (N,) pixels.
    # (K, 4) what was set aside for lying along a side of the image (a table's edge's band, a frame).
    edge_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))


def find_pieces(mask: np.ndarray) -> Pieces:
    """The mask's connected pieces, without specks of a few pixels and without paper edges and frames;
    what a digit touching an edge loses is only the edge's band (``without_edge_bands``)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    sides = _sides_along(labels, count)
    edge = sides.any(axis=0)
    bands = np.zeros((0, 4), np.int64)
    if edge.any():
        # Digits touching a table's edge hang off its band: they are kept once the band is gone.
        was_edge = np.concatenate([[False], edge])[_border(labels)]
        kept = without_edge_bands(mask, labels, sides)
        _, _, band_stats, _ = cv2.connectedComponentsWithStats(mask - kept, connectivity=8)
        bands = band_stats[1:, :4][band_stats[1:, 4] >= MIN_PIECE_PIXELS].astype(np.int64)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(kept, connectivity=8)
        edge = _sides_along(labels, count).any(axis=0)
        # What is left of an edge's piece and still reaches a side is more of the edge (a slanted
        # one's ragged border, the thin end of a wedge of table), not a digit hanging off it. A new
        # piece lies within one old piece, so its pixels on the border tell: read there alone.
        remains = np.zeros(count, bool)
        remains[_border(labels)[was_edge]] = True
        edge |= remains[1:]
    boxes, areas = stats[1:, :4].astype(np.int64), stats[1:, 4].astype(np.int64)
    large_enough = areas >= MIN_PIECE_PIXELS
    keep = large_enough & ~edge
    # The label image stays as it is (relabelling it costs a pass over every pixel); each digit
    # picks its own pieces' labels out of its box.
    ids = np.flatnonzero(keep) + 1
    return Pieces(
        labels=labels, ids=ids, boxes=boxes[keep], areas=areas[keep],
        edge_boxes=np.concatenate([bands, boxes[large_enough & edge]]),
    )  # fmt: skip


def without_edge_bands(mask: np.ndarray, labels: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """The mask without the bands of the pieces that lie along a side (``sides``, from ``_sides_along``):
    from that side inwards, the rows (columns) where that side's pieces cover ``EDGE_CONTACT_FRACTION``
    of the image's width (height), and ``EDGE_BAND_MARGIN`` more, of those pieces only. What hangs
    off a band, a digit touching a table's edge, stays."""
    height, width = mask.shape
    margin = max(1, round(EDGE_BAND_MARGIN * max(height, width)))
    removed = np.zeros(mask.shape, bool)
    lookup = np.zeros(sides.shape[1] + 1, bool)
    for side, along in enumerate(sides):  # Top, bottom, left, right.
        if not along.any():
            continue
        lookup[1:] = along
        on_side = lookup[labels]
        across = side < 2  # The top and bottom bands run across the image, the others down it.
        cover = np.count_nonzero(on_side, axis=1 if across else 0)
        cover = cover >= EDGE_CONTACT_FRACTION * (width if across else height)
        run = _run_from_start(cover[::-1] if side % 2 else cover)
        if not run:
            continue
        band = np.zeros(len(cover), bool)
        band[slice(-(run + margin), None) if side % 2 else slice(run + margin)] = True
        removed |= on_side & (band[:, None] if across else band[None, :])
    return np.where(removed, 0, mask).astype(np.uint8)


def _border(labels: np.ndarray) -> np.ndarray:
    """The labels along the image's four sides: top, bottom, left and right, in that order."""
    return np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])


def _run_from_start(flags: np.ndarray) -> int:
    """How many of the first flags are all True."""
    return int(np.argmin(flags)) if not flags.all() else len(flags)


def _sides_along(labels: np.ndarray, count: int) -> np.ndarray:
    """(4, pieces): whether each piece lies along a good part of the image's top, bottom, left and right
    side (``EDGE_CONTACT_FRACTION``): an edge, a frame."""
    height, width = labels.shape
    sides = ((labels[0], width), (labels[-1], width), (labels[:, 0], height), (labels[:, -1], height))
    return np.stack(
        [np.bincount(side, minlength=count)[1:] >= EDGE_CONTACT_FRACTION * length for side, length in sides]
    )


def _digit_height(boxes: np.ndarray, areas: np.ndarray) -> float:
    """The height of a typical digit: the upper quartile of the heights of the substantial pieces."""
    if len(boxes) == 0:
        return 0.0
    substantial = areas >= 0.1 * areas.max()
    return float(np.percentile(boxes[substantial, 3], 75))


def _union_box(boxes: np.ndarray) -> np.ndarray:
    left, top = boxes[:, 0].min(), boxes[:, 1].min()
    right, bottom = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
    return np.array([left, top, right - left, bottom - top])


def group_pieces(pieces: Pieces) -> list[list[int]]:
    """Piece indices grouped into digits: pieces stacked over one another join; specks and short groups go."""
    boxes, areas = pieces.boxes, pieces.areas
    height = _digit_height(boxes, areas)
    if height == 0:
        return []
    large = np.flatnonzero(
        np.maximum(boxes[:, 2], boxes[:, 3]) >= max(SPECK_FRACTION * height, MIN_PIECE_PIXELS)
    )
    # Grouping compares pairs of pieces: a picture of thousands of marks keeps its largest.
    large = large[np.argsort(-areas[large], kind="stable")[:MAX_PIECES]]
    indices = [int(i) for i in np.sort(large)]
    parent = {i: i for i in indices}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Largest first, so that a small piece joins the digit it belongs to, not another small piece.
    order = sorted(indices, key=lambda i: -areas[i])
    group_box = {i: boxes[i].copy() for i in indices}
    for position, i in enumerate(order):
        for j in order[:position]:
            a, b = root(i), root(j)
            if a != b and _belong_together(group_box[a], group_box[b], height):
                parent[a] = b
                group_box[b] = _union_box(np.stack([group_box[a], group_box[b]]))
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(root(i), []).append(i)
    return [
        members
        for top, members in groups.items()
        if group_box[top][3] >= max(MIN_DIGIT_HEIGHT_FRACTION * height, MIN_DIGIT_PIXELS)
    ]


def left_out(pieces: Pieces, groups: list[list[int]]) -> np.ndarray:
    """The boxes of the marks segmentation set aside, for a reader to see why: pieces along the image's
    edge, and pieces in no digit (too short beside the digits) that are no mere specks; at most
    ``MAX_LEFT_OUT``, the largest. Digits beyond ``MAX_DIGITS`` are not among them."""
    in_a_digit = np.zeros(len(pieces.boxes), bool)
    in_a_digit[[i for members in groups for i in members]] = True
    speck = SPECK_FRACTION * _digit_height(pieces.boxes, pieces.areas)
    stray = ~in_a_digit & (np.maximum(pieces.boxes[:, 2], pieces.boxes[:, 3]) >= max(speck, MIN_DIGIT_PIXELS))
    return _largest(np.concatenate([pieces.edge_boxes, pieces.boxes[stray]]).reshape(-1, 4))


def _largest(boxes: np.ndarray) -> np.ndarray:
    """The ``MAX_LEFT_OUT`` largest of some (N, 4) boxes by area, the largest first."""
    return boxes[np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")[:MAX_LEFT_OUT]]


def _belong_together(a: np.ndarray, b: np.ndarray, height: float) -> bool:
    """Whether two boxes are parts of one digit: overlapping in x, close in y, not taller than a digit."""
    overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    if overlap < MERGE_OVERLAP * min(a[2], b[2]):
        return False
    gap = max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3])
    joined = max(a[1] + a[3], b[1] + b[3]) - min(a[1], b[1])
    # Never taller than a digit and a half (of the taller piece, when the typical height is
    # underestimated because many digits broke apart): lines of writing stay apart.
    return gap <= MERGE_GAP_FRACTION * height and joined <= MERGE_HEIGHT * max(height, a[3], b[3])


def line_slant(pieces: Pieces, groups: list[list[int]]) -> float:
    """How steeply the lines of digits slant, in degrees: positive where a line falls to the right (the
    image's rows count downwards), 0 with fewer than two digits. The median slope from each digit's
    centre to that of its nearest neighbour on the right, so that one odd digit moves nothing."""
    boxes = np.array([_union_box(pieces.boxes[members]) for members in groups]).reshape(-1, 4)
    if len(boxes) < 2:
        return 0.0
    reach = SLANT_REACH * float(np.median(boxes[:, 3]))
    steepest = np.tan(np.radians(MAX_SLANT_DEGREES))
    centres_x, centres_y = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    slopes = []
    for index in range(len(boxes)):
        across, down = centres_x - centres_x[index], centres_y - centres_y[index]
        right = (across > 0) & (across <= reach) & (np.abs(down) <= steepest * across)
        if right.any():
            nearest = np.flatnonzero(right)[np.argmin(np.hypot(across[right], down[right]))]
            slopes.append(down[nearest] / across[nearest])
    return float(np.degrees(np.arctan(np.median(slopes)))) if slopes else 0.0


def turning(shape: tuple[int, int], degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The 2x3 affine map that turns an image of ``shape`` (height, width) so that a line slanting by
    ``degrees`` lies level, onto a canvas grown to hold all of it; and that canvas's (width, height)."""
    height, width = shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos)))
    matrix[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
    return matrix, size


def mapped_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The box around each box's four corners carried by a 2x3 affine map: (N, 4) x, y, width, height
    in, (N, 4) floats out."""
    x, y, width, height = np.asarray(boxes, np.float64).reshape(-1, 4).T
    corners = np.stack([[x, y], [x + width, y], [x + width, y + height], [x, y + height]])  # (4, 2, N)
    mapped = np.einsum("ij,cjn->cin", matrix[:, :2], corners) + matrix[:, 2, None]
    low, high = mapped.min(axis=0), mapped.max(axis=0)
    return np.stack([low[0], low[1], high[0] - low[0], high[1] - low[1]], axis=1)


def _turned(pieces: Pieces, degrees: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The mask of the kept pieces alone (no edges, frames or specks), turned so that a line slanting by
    ``degrees`` lies level; the map (``turning``) and the turned mask's size."""
    kept = np.zeros(int(pieces.labels.max()) + 1, np.uint8)
    kept[pieces.ids] = 1
    rotation, size = turning(pieces.labels.shape, degrees)
    return cv2.warpAffine(kept[pieces.labels], rotation, size, flags=cv2.INTER_NEAREST), rotation, size


def _then(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The 2x3 affine map that applies ``first``, then ``second``."""
    return (np.vstack([second, [0, 0, 1]]) @ np.vstack([first, [0, 0, 1]]))[:2]


@dataclass(frozen=True)
class Straightening:
    """How a slanted page or line of digits was turned level before it was cut, so that a reader can see
    it: by ``degrees``, back the other way."""

    degrees: float  # The slant of the page's rules and of the line (``ruled_slant``, ``line_slant``).
    input_size: tuple[int, int]  # The width and height of the image the reading was made from.
    scale: float  # The working copy's scale: the input's pixels times this.
    rotation: np.ndarray  # 2x3 affine map from the working copy to the straightened picture.
    size: tuple[int, int]  # The straightened picture's width and height.
    boxes: list[Box]  # Each digit's box in the straightened picture, in reading order.

    def picture(self, image: np.ndarray) -> np.ndarray:
        """The image the reading was made from (as ``read_digits`` takes it), turned level at working scale:
        what the digits were cut from. Past the image's edges it is white, or transparent for RGBA."""
        image = check_image(image)  # uint8
        if (image.shape[1], image.shape[0]) != self.input_size:
            width, height = self.input_size
            raise ValueError(
                f"expected the {width}x{height} image this reading was made from, "
                f"got one of {image.shape[1]}x{image.shape[0]}"
            )
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if self.scale < 1.0:
            size = (max(1, round(image.shape[1] * self.scale)), max(1, round(image.shape[0] * self.scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        border = (0, 0, 0, 0) if image.ndim == 3 and image.shape[2] == 4 else (255, 255, 255, 255)
        return cv2.warpAffine(image, self.rotation, self.size, flags=cv2.INTER_LINEAR, borderValue=border)

    def line(self, image: np.ndarray) -> tuple[np.ndarray, list[Box]]:
        """The straightened picture cut to its digits, with half a digit's height of it around them, and each
        digit's box in that cut: the straightened line, as a page shows it."""
        picture = self.picture(image)
        if not self.boxes:
            return picture, []
        boxes = np.array(self.boxes)
        margin = int(np.median(boxes[:, 3])) // 2
        left, top = np.maximum(0, boxes[:, :2].min(axis=0) - margin)
        right = min(self.size[0], int((boxes[:, 0] + boxes[:, 2]).max()) + margin)
        bottom = min(self.size[1], int((boxes[:, 1] + boxes[:, 3]).max()) + margin)
        shifted = [(x - int(left), y - int(top), w, h) for x, y, w, h in self.boxes]
        return picture[top:bottom, left:right], shifted


@dataclass(frozen=True)
class Digit:
    """One digit found at working scale: its box and its pixels (a mask the size of the box)."""

    box: np.ndarray  # x, y, width, height in the working copy.
    mask: np.ndarray  # uint8 0/1, the box's size.


def digits_of(pieces: Pieces, groups: list[list[int]]) -> list[Digit]:
    """Each group as a digit: its box and the mask of its own pieces (not its neighbours' ink)."""
    found = []
    for members in groups:
        box = _union_box(pieces.boxes[members])
        x, y, width, height = box
        window = pieces.labels[y : y + height, x : x + width]
        found.append(Digit(box=box, mask=np.isin(window, pieces.ids[members]).astype(np.uint8)))
    return found


def join(first: Digit, second: Digit) -> Digit:
    """Two digits' pixels as one digit."""
    box = _union_box(np.stack([first.box, second.box]))
    mask = np.zeros((box[3], box[2]), np.uint8)
    for digit in (first, second):
        x, y = digit.box[0] - box[0], digit.box[1] - box[1]
        region = mask[y : y + digit.box[3], x : x + digit.box[2]]
        np.maximum(region, digit.mask, out=region)
    return Digit(box=box, mask=mask)


def join_fragments(found: list[Digit], judge: Judge | None) -> list[Digit]:
    """Neighbours on one line that overlap in x and would make one digit of a digit's width, joined
    where the networks read the pair better as one digit (a 9 whose loop and stem came apart)."""
    if judge is None or len(found) < 2:
        return found
    height = float(np.median([digit.box[3] for digit in found]))
    order = [index for index, _ in reading_order([digit.box for digit in found])]
    result = [found[order[0]]]
    for index in order[1:]:
        digit, previous = found[index], result[-1]
        joined = join(previous, digit)
        gap = digit.box[0] - (previous.box[0] + previous.box[2])
        candidate = (
            gap <= JOIN_GAP_FRACTION * height
            and joined.box[2] <= JOIN_ASPECT * max(joined.box[3], height)
            and joined.box[3] <= 1.5 * height
        )
        if candidate:
            scores = np.log(np.maximum(judge([digit_image(d) for d in (previous, digit, joined)]), 1e-6))
            if scores[2] > scores[0] + scores[1]:
                result[-1] = joined
                continue
        result.append(digit)
    return result


def cut_at(digit: Digit, cuts: list[int]) -> list[Digit]:
    """A digit's mask cut at the given columns (relative to its box) into tightly boxed parts."""
    x, y, width, _ = digit.box
    result = []
    for start, stop in itertools.pairwise([0, *cuts, width]):
        part = digit.mask[:, start:stop]
        rows, columns = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
        if rows.size == 0:
            continue
        top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
        box = np.array([x + start + left, y + top, right - left, bottom - top])
        result.append(Digit(box=box, mask=np.ascontiguousarray(part[top:bottom, left:right])))
    return result


def cut_cost(mask: np.ndarray) -> np.ndarray:
    """Per column, the cost of cutting there: the strokes it crosses first, then how much ink.

    Strokes first: between two touching 0s the join is one thick stroke, while
    the middle of either 0 crosses two thin ones and holds less ink.
    """
    strokes = np.count_nonzero(np.diff(mask, axis=0, prepend=0) == 1, axis=0)
    return strokes.astype(np.int64) * (mask.shape[0] + 1) + mask.sum(axis=0)


def cut(digit: Digit, parts: int) -> list[Digit]:
    """A digit's mask cut into ``parts`` pieces at the cheapest columns near even positions."""
    width = int(digit.box[2])
    profile = cut_cost(digit.mask)
    cuts = [0]
    for k in range(1, parts):
        nominal = k * width / parts
        reach = width / (3 * parts)
        low, high = max(cuts[-1] + 1, int(nominal - reach)), min(width - 1, int(nominal + reach) + 1)
        if low >= high:
            continue
        window = profile[low:high]
        # The cheapest column; among equals, the one nearest the even position.
        candidates = np.flatnonzero(window == window.min()) + low
        cuts.append(int(candidates[np.argmin(np.abs(candidates - nominal))]))
    return cut_at(digit, cuts[1:])


def two_way_cuts(digit: Digit, count: int = 3) -> list[int]:
    """Up to ``count`` columns where a group of two touching digits may part: the cheapest columns
    (``cut_cost``) between a fifth and four fifths of its width, at least a tenth of its width apart."""
    width = int(digit.box[2])
    low, high = max(1, width // 5), min(width - 1, width - width // 5)
    if low >= high:
        return []
    profile = cut_cost(digit.mask)
    chosen: list[int] = []
    for column in np.argsort(profile[low:high], kind="stable") + low:
        if all(abs(int(column) - other) >= width / 10 for other in chosen):
            chosen.append(int(column))
            if len(chosen) == count:
                break
    return chosen


Judge = Callable[[list[np.ndarray]], np.ndarray]


def split_wide(digit: Digit, judge: Judge | None = None) -> list[Digit]:
    """A group wide enough to hold touching digits, split where the networks read it best.

    Each way of reading it (whole, or cut into two, three... at the columns
    crossing the fewest strokes, see ``cut_cost``) is scored by the product
    of the confidences ``judge`` gives its parts, less ``SPLIT_PENALTY`` per
    extra digit, so more digits must be more convincing, not merely as likely. A
    group wider than ``SPLIT_ASPECT`` times its height is never one digit.
    Without a judge the width alone decides.
    """
    width, height = digit.box[2:]
    if width < CANDIDATE_ASPECT * height:
        return [digit]
    most = min(MAX_PARTS, max(2, round(width / (DIGIT_ASPECT * height)) + 1))
    least = 2 if width > SPLIT_ASPECT * height else 1
    if judge is None:
        return cut(digit, min(MAX_PARTS, max(least, round(width / (DIGIT_ASPECT * height)))))
    options = [[digit]] if least == 1 else []
    if least == 1 and width <= SURE_ASPECT * height and judge([digit_image(digit)])[0] >= SURE_WHOLE:
        return [digit]  # Read as one digit with near certainty: no cut is judged (most groups).
    options += [cut_at(digit, [column]) for column in two_way_cuts(digit)]
    options += [cut(digit, parts) for parts in range(3, most + 1)]
    options = [option for option in options if option]
    crops = [digit_image(part) for option in options for part in option]
    scores = np.log(np.maximum(judge(crops), 1e-6))
    best, start = None, 0
    for option in options:
        score = float(scores[start : start + len(option)].sum()) - SPLIT_PENALTY * (len(option) - 1)
        start += len(option)
        if best is None or score > best[0]:
            best = (score, option)
    return best[1]


def digit_image(digit: Digit) -> np.ndarray:
    """A digit's pixels as white ink on black with a margin: what ``to_mnist`` is given.

    Binary rather than the soft ink: on the tuning set it read a quarter of a
    point more digits right, and ``to_mnist`` binarises at its working scale
    anyway, so soft edges are remade there.
    """
    margin = max(2, int(max(digit.box[2], digit.box[3])) // 8)
    return np.pad(digit.mask * np.uint8(255), margin)


def network_judge(root: Path | None = None) -> Judge | None:
    """How well each crop reads as one digit: the highest of its ten probabilities averaged over every saved
    model that loads, lowered where the digit score calls it no digit (``DIGIT_SCORE_WEIGHT``); None if no
    model loads."""
    models, _ = inference.load_models(None, root)
    if not models:
        return None

    def judge(crops: list[np.ndarray]) -> np.ndarray:
        inputs = np.stack([_model_input(crop) for crop in crops])
        shared: dict[str, dict[str, np.ndarray]] = {}  # The score's model-free parts, once for all models.
        probabilities, below = [], []
        for model in models.values():
            answers = inference.answer_with(model, inputs, shared, models, root)
            probabilities.append(answers.raw_probabilities)
            if answers.digit_scores is not None:
                below.append(np.minimum(answers.digit_scores - answers.threshold, 0.0))
        likely = np.mean(probabilities, axis=0).max(axis=1)
        if not below:  # No calibrated model: the probabilities alone.
            return likely
        return likely * np.exp(DIGIT_SCORE_WEIGHT * np.mean(below, axis=0))

    return judge


def _model_input(crop: np.ndarray) -> np.ndarray:
    image = to_mnist(crop)
    return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32) if image is None else image


def reading_order(boxes: list[np.ndarray]) -> list[tuple[int, int]]:
    """(index, line) for each box, line by line (top to bottom), left to right within a line."""
    lines: list[list[int]] = []
    spans: list[list[int]] = []  # Each line's top and bottom so far.
    for index in sorted(range(len(boxes)), key=lambda i: boxes[i][1] + boxes[i][3] / 2):
        y, height = boxes[index][1], boxes[index][3]
        for line, span in zip(lines, spans, strict=True):
            overlap = min(span[1], y + height) - max(span[0], y)
            if overlap >= 0.5 * min(height, span[1] - span[0]):
                line.append(index)
                span[0], span[1] = min(span[0], y), max(span[1], y + height)
                break
        else:
            lines.append([index])
            spans.append([y, y + height])
    order = sorted(range(len(lines)), key=lambda i: spans[i][0])
    return [
        (index, line) for line, i in enumerate(order) for index in sorted(lines[i], key=lambda j: boxes[j][0])
    ]


@dataclass(frozen=True)
class Segmentation:
    """The digits found in an image: boxes in the input's pixels, each digit's ink and its line."""

    boxes: list[Box]  # In the input's pixel coordinates, in reading order.
    crops: list[np.ndarray]  # Each digit's pixels (uint8, white on black) at working scale, for ``to_mnist``.
    lines: list[int]  # Which line of the image each digit is on, 0 first.
    size: tuple[int, int]  # The input's width and height.
    left_out: list[Box] = field(default_factory=list)  # Marks set aside (``left_out``), input pixels.
    straightening: Straightening | None = None  # How a slanted line was turned level, if it was.


def segment(image: np.ndarray, judge: Judge | None = None, working_side: int = WORKING_SIDE) -> Segmentation:
    """Find the digits in a photo or drawing (any size, grey/RGB/RGBA, either polarity).

    ``judge`` scores candidate digits when deciding whether a wide group is
    several touching digits (see ``split_wide``); ``read_digits`` passes the
    saved networks. ``working_side`` is the longer side of the working copy.
    """
    gray, light = to_gray(image)
    size = (gray.shape[1], gray.shape[0])
    small, scale = working_copy(gray, working_side)
    ink, table = ink_and_table(small, light=True if light else None)
    mask = binarise(ink)
    if table is not None:  # A table is ink, whole, so that it goes with the page's edges (find_pieces).
        mask |= table
    # Boxes first: a row of boxes has long top and bottom edges, which as ruled lines would go
    # first and leave the boxes' sides standing, to be read as 1s.
    mask = remove_form_boxes(mask)
    # Digits are cut in a frame turned level, if the page or the line slants: its map from the working
    # copy, its size and its slant; marks set aside before a turn, in the working copy's pixels.
    rotation, turned_size, degrees = None, None, 0.0
    aside = np.zeros((0, 4))
    rules = 0.0 if light else ruled_slant(mask)  # A canvas has no rules, nor a page to turn.
    if abs(rules) >= MIN_RULE_SLANT_DEGREES:
        # A page turned: its rules are laid level before they are removed, and the digits with them.
        pieces = find_pieces(mask)
        aside = pieces.edge_boxes.astype(np.float64)
        mask, rotation, turned_size = _turned(pieces, rules)
        degrees = rules
    turned = rotation is not None
    # A turned page's rules are as long as they were (measured against the page, not the larger canvas)
    # and wobble where they were laid level; a form's columns may wobble anyway, seen in perspective.
    mask = remove_ruled_lines(mask, page=small.shape[1], wobble=turned)
    mask = remove_vertical_rules(mask, page=small.shape[0], wobble=True)
    pieces = find_pieces(mask)
    groups = group_pieces(pieces)
    slant = line_slant(pieces, groups)
    if abs(slant) >= MIN_SLANT_DEGREES:
        # A line written at a slant. Edges and frames were judged before turning, while they still lay
        # along a side of the image.
        edges = pieces.edge_boxes.astype(np.float64)
        if rotation is not None:
            back = cv2.invertAffineTransform(rotation)
            edges = mapped_boxes(edges, back)
        aside = np.concatenate([aside, edges])
        mask, second, turned_size = _turned(pieces, slant)
        rotation = second if rotation is None else _then(rotation, second)
        degrees += slant
        pieces = find_pieces(mask)
        groups = group_pieces(pieces)
    joined = join_fragments(digits_of(pieces, groups), judge)
    found = [part for digit in joined for part in split_wide(digit, judge)]
    if len(found) > MAX_DIGITS:
        found = sorted(found, key=lambda d: -int(d.mask.sum()))[:MAX_DIGITS]
    order = reading_order([digit.box for digit in found])
    boxes = [found[index].box for index, _ in order]
    stray = left_out(pieces, groups)
    straightening = None
    if rotation is not None:
        back = cv2.invertAffineTransform(rotation)
        straightening = Straightening(
            degrees=degrees, input_size=size, scale=scale, rotation=rotation, size=turned_size,
            boxes=[tuple(int(v) for v in box) for box in boxes],
        )  # fmt: skip
        boxes = list(mapped_boxes(np.array(boxes), back))
        stray = _largest(np.concatenate([aside, mapped_boxes(stray, back)]))
    return Segmentation(
        boxes=[_to_input(box, scale, size) for box in boxes],
        crops=[digit_image(found[index]) for index, _ in order],
        lines=[line for _, line in order],
        size=size,
        left_out=[_to_input(box, scale, size) for box in stray],
        straightening=straightening,
    )


def _to_input(box: np.ndarray, scale: float, size: tuple[int, int]) -> Box:
    """A working-copy box in the input's pixel coordinates, inside the image."""
    x, y, width, height = (float(v) / scale for v in box)
    # A box carried back from a straightened picture may reach a little past the image's edges.
    left = min(max(0, int(np.floor(x))), size[0] - 1)
    top = min(max(0, int(np.floor(y))), size[1] - 1)
    right, bottom = min(int(np.ceil(x + width)), size[0]), min(int(np.ceil(y + height)), size[1])
    return (left, top, max(1, right - left), max(1, bottom - top))


@dataclass(frozen=True)
class NumberReading:
    """The digits of an image and every requested model's answer for each, in reading order."""

    boxes: list[Box]  # (x, y, width, height) per digit, in the input's pixel coordinates.
    lines: list[int]  # The line each digit is on, 0 first.
    images: np.ndarray  # (N, 28, 28) float32: each digit as the models saw it (through ``to_mnist``).
    probabilities: dict[int, np.ndarray] = field(default_factory=dict)  # Model id -> (N, 10).
    errors: dict[int, str] = field(default_factory=dict)  # Model id -> why it could not answer.
    size: tuple[int, int] = (0, 0)  # The input's width and height.
    # The networks' own probabilities before temperature scaling (what the drawings store keeps).
    raw_probabilities: dict[int, np.ndarray] = field(default_factory=dict)
    # Model id -> the model whose reading it is checked against for the whole number (``SURE_NUMBER``).
    second_opinions: dict[int, int] = field(default_factory=dict)
    left_out: list[Box] = field(default_factory=list)  # Marks set aside, not digits: (x, y, width, height).
    straightening: Straightening | None = None  # How a slanted line was turned level, if it was.

    def __len__(self) -> int:
        return len(self.boxes)

    def _probabilities(self, model_id: int) -> np.ndarray:
        if model_id not in self.probabilities:
            reason = self.errors.get(model_id, "it was not asked")
            raise ValueError(f"model {model_id} has no answers here: {reason}")
        return self.probabilities[model_id]

    def digits(self, model_id: int) -> list[int]:
        """Each digit as one model reads it, in reading order."""
        return [int(d) for d in np.argmax(self._probabilities(model_id), axis=1)] if len(self) else []

    def confidences(self, model_id: int) -> list[float]:
        """The probability one model gives each of its digits."""
        return [float(p) for p in np.max(self._probabilities(model_id), axis=1)] if len(self) else []

    def number_confidence(self, model_id: int) -> float:
        """How sure the reading is of the whole number: the product of every digit's probability by this
        model and by its second opinion, or 0 where the two read different numbers (this model's own
        product where it has no second opinion)."""
        if not len(self):
            return 0.0
        sure = float(np.prod(self._probabilities(model_id).max(axis=1)))
        other = self.second_opinion(model_id)
        if other is None:
            return sure
        if self.digits(other) != self.digits(model_id):
            return 0.0
        return sure * float(np.prod(self.probabilities[other].max(axis=1)))

    def second_opinion(self, model_id: int) -> int | None:
        """The model this one is checked against, if it answered here."""
        other = self.second_opinions.get(model_id)
        return other if other in self.probabilities else None

    def tall_ones(self, model_id: int) -> list[int]:
        """The digits this model reads as 1 that stand much taller than the others on their line
        (``TALL_ONE``), measured where the digits were cut (in the straightened picture, if any)."""
        boxes = self.boxes if self.straightening is None else self.straightening.boxes
        heights, lines = np.array([box[3] for box in boxes], np.float64), np.array(self.lines)
        tall = []
        for index, digit in enumerate(self.digits(model_id)):
            others = lines == lines[index]
            others[index] = False
            if digit == 1 and others.any() and heights[index] > TALL_ONE * np.median(heights[others]):
                tall.append(index)
        return tall

    def is_sure(self, model_id: int) -> bool:
        """Whether the whole number is read surely enough to be trusted (``SURE_NUMBER``); never without a
        second opinion, since a model's own product alone was not enough (see ``SURE_NUMBER``), nor with a
        1 that may be a line (``tall_ones``)."""
        return (
            self.second_opinion(model_id) is not None
            and self.number_confidence(model_id) >= SURE_NUMBER
            and not self.tall_ones(model_id)
        )

    def doubtful_digit(self, model_id: int) -> int | None:
        """The index of the digit that keeps the number from being sure: the first one the second opinion
        reads otherwise, else the first 1 that may be a line, else the least sure by both; None when the
        number is sure or empty."""
        if not len(self) or self.is_sure(model_id):
            return None
        sure = self._probabilities(model_id).max(axis=1)
        other = self.second_opinion(model_id)
        if other is not None:
            differ = np.flatnonzero(np.array(self.digits(other)) != np.array(self.digits(model_id)))
            if differ.size:
                return int(differ[0])
            sure = sure * self.probabilities[other].max(axis=1)
        tall = self.tall_ones(model_id)
        return tall[0] if tall else int(np.argmin(sure))

    def classification(self, index: int) -> inference.Classification:
        """One digit as a ``Classification``, as the Draw page gives one drawing (to keep it, say)."""
        return inference.Classification(
            image=self.images[index],
            steps=None,
            probabilities={m: p[index] for m, p in self.probabilities.items()},
            errors=dict(self.errors),
            raw_probabilities={m: p[index] for m, p in self.raw_probabilities.items()},
        )

    def text(self, model_id: int) -> str:
        """The number as one model reads it; lines of digits are separated by a space."""
        digits = self.digits(model_id)
        parts = []
        for index, digit in enumerate(digits):
            if index and self.lines[index] != self.lines[index - 1]:
                parts.append(" ")
            parts.append(str(digit))
        return "".join(parts)


def read_digits(
    image: np.ndarray | bytes | str | Path | BinaryIO,
    model_ids: Iterable[int] | None = None,
    root: Path | None = None,
    working_side: int = WORKING_SIDE,
) -> NumberReading:
    """Find the digits in a photo, scan or drawing and read them with the requested models (all when None).

    ``image`` is an array (grey, RGB or RGBA; uint8, bool or floats in
    [0, 1]) or an image file (bytes, a path or a file object), decoded by
    ``digitdraw.serving.images.load_image``. An image without digits gives an empty
    reading, not an error. Each model's second opinion (``second_opinions``) reads
    the digits too, asked for or not, so that the reading can say how sure it is
    of the whole number. ``working_side`` trades speed for small digits
    (see the module's docstring).
    """
    if isinstance(working_side, bool) or not isinstance(working_side, int | np.integer) or working_side < 1:
        raise ValueError(
            f"expected working_side as a whole number of pixels, at least 1, got {working_side!r}"
        )
    if model_ids is not None and (isinstance(model_ids, str | bytes) or not isinstance(model_ids, Iterable)):
        raise ValueError(f"expected model_ids as a list of model ids, or None for all, got {model_ids!r}")
    if not isinstance(image, np.ndarray):
        if not (isinstance(image, bytes | str | Path) or hasattr(image, "read")):
            raise ValueError(
                "expected an image array or an image file (bytes, a path or a file object), "
                f"got {type(image).__name__}"
            )
        image = images.load_image(image)
    found = segment(image, network_judge(root), working_side)
    ids = None if model_ids is None else list(model_ids)
    asked = inference.available_model_ids(root) if ids is None else ids
    opinions = second_opinions(asked, root)
    if ids is not None:  # The second opinions read the digits too, after the models asked for.
        ids += [m for m in dict.fromkeys(opinions.values()) if m not in ids]
    if not found.crops:
        _, errors = inference.load_classifiers(ids, root)
        empty = {m: np.zeros((0, NUM_CLASSES), np.float32) for m in asked if m not in errors}
        return NumberReading(
            boxes=[], lines=[], images=np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32), probabilities=empty,
            errors=errors, size=found.size, raw_probabilities=dict(empty), second_opinions=opinions,
            left_out=found.left_out, straightening=found.straightening,
        )  # fmt: skip
    batch = inference.classify_batch(found.crops, ids, root)
    keep = ~batch.blank  # A crop is never blank, but to_mnist is the judge of that.
    straightening = found.straightening
    if straightening is not None:
        kept_boxes = [box for box, k in zip(straightening.boxes, keep, strict=True) if k]
        straightening = dataclasses.replace(straightening, boxes=kept_boxes)
    return NumberReading(
        boxes=[box for box, k in zip(found.boxes, keep, strict=True) if k],
        lines=[line for line, k in zip(found.lines, keep, strict=True) if k],
        images=batch.images[keep],
        probabilities={m: p[keep] for m, p in batch.probabilities.items()},
        errors=batch.errors,
        size=found.size,
        raw_probabilities={m: p[keep] for m, p in batch.raw_probabilities.items()},
        second_opinions=opinions,
        left_out=found.left_out,
        straightening=straightening,
    )


def second_opinions(model_ids: Iterable[int], root: Path | None = None) -> dict[int, int]:
    """For each model, the most accurate other of the study's calibrated models that loads (by MNIST test
    accuracy), the pairing ``SURE_NUMBER`` was chosen with; none for a model when no other loads.

    Networks people trained are never a second opinion: one that scored higher on MNIST would
    change every pairing, and its probabilities may not be calibrated.
    """
    models, _ = inference.load_models(MODEL_IDS, root)
    models = {m: model for m, model in models.items() if model.calibration is not None}
    ranked = sorted(models, key=lambda m: -models[m].metrics.accuracy["test"])
    opinions = {}
    for model_id in model_ids:
        others = [m for m in ranked if m != model_id]
        if others:
            opinions[model_id] = others[0]
    return opinions
