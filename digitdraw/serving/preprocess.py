"""Turn a drawing (canvas, photo or upload) into a 28x28 image prepared the way MNIST was.

MNIST digits were binary scans, size-normalised to fit a 20x20 box with
anti-aliasing, then placed in a 28x28 field so that their centre of mass sits
at the centre. We follow that recipe with OpenCV, adding two steps that
matter for drawn digits:

- Stroke-width normalisation. A canvas stroke is as wide as the brush,
  whatever the size of the digit, so a small digit drawn with a thick brush
  would otherwise shrink into a blob and a large one drawn with a thin brush
  into a hairline. We measure the stroke width at a fixed working scale and
  thicken or thin the strokes to the width MNIST's pens had.
- Deskewing by image moments, which removes slant. The models are trained on
  MNIST run through this same function, so they never see slanted digits and
  must always be given deskewed ones: the trade-off is that every input,
  training images included, has to pass through here.

Downsampling uses area interpolation from a binary image at 8x the final
scale, which reproduces MNIST's soft edges rather than the jagged ones that
resize-then-threshold gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

import cv2
import numpy as np

# The model input is MNIST's own format: a 28x28 image.
IMAGE_SIZE = 28
# The Draw page's canvas: 10 screen pixels per field pixel. The ink step is shown at this size too.
CANVAS_SIZE = 10 * IMAGE_SIZE
BOX_SIZE = 20
# Strokes are normalised on a canvas whose longer side is this many pixels:
# 8x the 20-pixel box, so the final area-downsampling anti-aliases well.
WORKING_SIZE = BOX_SIZE * 8
# The median MNIST stroke, measured with _stroke_width on the test set, is 2.2
# pixels wide in the 20-pixel box (the middle 80% lie between 1.6 and 3.0).
TARGET_STROKE_FRACTION = 2.2 / BOX_SIZE
# Pixels fainter than this fraction of the strongest ink are background noise.
INK_THRESHOLD = 0.2
# Below this peak ink (out of 1) the image counts as blank.
BLANK_PEAK = 0.1
# Deskewing shears by at most this much; steeper slants are drawings, not slant.
MAX_SKEW = 1.0
# The steps that can be switched off, in the order they run: crop to the ink's box, normalise the
# stroke width, deskew, scale to fit the 20x20 box, centre by centre of mass. All are on by default.
PREPROCESSING_STEPS = ("crop", "stroke", "deskew", "scale", "centre")


@dataclass(frozen=True)
class Steps:
    """How a drawing became the model's input; every array is float32 in [0, 1]."""

    ink: np.ndarray  # The drawing as ink strength, white ink on black, at most 280 pixels wide.
    # At working scale: the ink's bounding box (without "crop", the whole image), strokes normalised
    # (with "stroke"), deskewed (with "deskew").
    cropped: np.ndarray
    # Fitted into the 20x20 box (without "scale", at its size relative to the image), aspect ratio kept.
    resized: np.ndarray
    centred: np.ndarray  # The 28x28 model input, centred by centre of mass (without "centre", its box).
    stroke_width: float  # The measured stroke width, in pixels of the working scale.


def _check_image(image: object) -> np.ndarray:
    """Return the image as a uint8 ndarray or raise ValueError saying what was expected.

    This is the one door into the preprocessing: whatever passes it is a
    uint8 array of shape (H, W) or (H, W, 1|3|4), which every step below can
    take. No step hands OpenCV an image together with a plain number in an
    arithmetic call: OpenCV reads a column of at most four values as a
    Scalar, so ``cv2.absdiff(image, 3.0)`` fails on a 4x1 image. Pixel maps
    are lookup tables instead (``cv2.LUT``), which take any shape.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array image, got {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"expected a non-empty image, got shape {image.shape}")
    channels_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    if not channels_ok:
        raise ValueError(
            f"expected a 2-D grayscale image or a 3-D image with 1, 3 or 4 channels, got shape {image.shape}"
        )
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError("expected finite pixel values, got NaN or infinity")
        if image.min() < 0.0 or image.max() > 1.0:
            raise ValueError("expected float pixel values in [0, 1]")
        return np.rint(image.astype(np.float32) * 255).astype(np.uint8)
    raise ValueError(f"expected a uint8, bool or float image, got dtype {image.dtype}")


def check_image(image: object) -> np.ndarray:
    """Any image this module accepts as a uint8 (H, W) or (H, W, 1|3|4) array; ValueError otherwise."""
    return _check_image(image)


def ink_map(image: np.ndarray) -> np.ndarray:
    """Ink strength as uint8 (white ink on black, 0 to 255) for any supported image and polarity.

    Kept in uint8 at full size, so that even a photo of 8000x8000 pixels is
    cropped quickly; only the crop is converted to float.
    """
    image = _check_image(image)
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = np.ascontiguousarray(image[:, :, 3])
        if alpha.min() < 255:
            # A canvas with a transparent background: the alpha channel is the ink,
            # whatever colour the brush had.
            return alpha
        image = image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 3:
        gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    else:
        gray = np.ascontiguousarray(image.reshape(image.shape[0], image.shape[1]))
    # The background is whatever fills the border; ink is what differs from it.
    border = np.concatenate([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]])
    background = int(np.median(border))
    return cv2.LUT(gray, _ink_table(background)).reshape(gray.shape)


def _ink_table(background: int) -> np.ndarray:
    """The 256-entry map from gray level to ink strength for one background level.

    Ink is the distance from the background, stretched so that ink as strong
    as the background allows reads as 255. Computed in float32 and rounded
    half to even, it gives exactly what ``cv2.absdiff`` followed by
    ``cv2.convertScaleAbs`` gave (checked for every background level), in
    one pass instead of two.
    """
    distance = np.abs(np.arange(256, dtype=np.float32) - background)
    span = max(background, 255 - background)
    if span > 0:
        distance *= np.float32(255.0 / span)
    return np.clip(np.rint(distance), 0, 255).astype(np.uint8)


def _stroke_width(mask: np.ndarray) -> float:
    """Estimate stroke width as 2 * area / perimeter, exact for long uniform strokes."""
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(contour, True) for contour in contours)
    area = float(np.count_nonzero(mask))
    return 2.0 * area / perimeter if perimeter > 0 else 0.0


def _normalise_strokes(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Thicken or thin a binary working-scale mask to MNIST's relative stroke width."""
    width = _stroke_width(mask)
    target = TARGET_STROKE_FRACTION * WORKING_SIZE
    # Morphology changes the width by twice the kernel radius.
    radius = round((target - width) / 2.0)
    if radius == 0 or width == 0.0:
        return mask, width
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1,) * 2)
    if radius > 0:
        return cv2.dilate(mask, kernel), width
    thinned = cv2.erode(mask, kernel)
    # Thinning a blob can erase it; an over-thick digit beats no digit.
    return (thinned if thinned.any() else mask), width


def _fit_into_box(image: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is ``box`` pixels, keeping the aspect ratio."""
    height, width = image.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place a digit in the 28x28 field with its centre of mass at the centre."""
    height, width = digit.shape
    moments = cv2.moments(digit)
    if moments["m00"] > 0:
        centre_x, centre_y = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    else:
        centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    # Whole-pixel shifts, as MNIST did; clamped so the digit never leaves the field.
    left = int(np.clip(round((IMAGE_SIZE - 1) / 2 - centre_x), 0, IMAGE_SIZE - width))
    top = int(np.clip(round((IMAGE_SIZE - 1) / 2 - centre_y), 0, IMAGE_SIZE - height))
    field = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    field[top : top + height, left : left + width] = digit
    return field


def _deskew(mask: np.ndarray) -> np.ndarray:
    """Shear a binary mask along x about its centre of mass so that its main axis is vertical.

    The shear zeroes the second-order moment mu11, as in LeCun et al.'s
    deskewed MNIST experiments; slant is the largest variation between
    writers, and a network that never has to learn it spends its capacity on
    the shapes instead.
    """
    moments = cv2.moments(mask, binaryImage=True)
    if moments["mu02"] < 1e-2:
        return mask
    skew = float(np.clip(moments["mu11"] / moments["mu02"], -MAX_SKEW, MAX_SKEW))
    centre_y = moments["m01"] / moments["m00"]
    height, width = mask.shape
    # x_new = x - skew * (y - centre_y) + shift, with the shift and the extra
    # width chosen so that no row falls off either side.
    shift = max(skew * (height - 1 - centre_y), -skew * centre_y)
    grow = int(np.ceil(abs(skew) * (height - 1))) + 1
    matrix = np.float32([[1, -skew, skew * centre_y + shift], [0, 1, 0]])
    sheared = cv2.warpAffine(mask.astype(np.float32), matrix, (width + grow, height), flags=cv2.INTER_LINEAR)
    return (sheared >= 0.5).astype(np.uint8)


def _centre_box(digit: np.ndarray) -> np.ndarray:
    """Place a digit in the 28x28 field with the middle of its box at the centre (no centre of mass)."""
    height, width = digit.shape
    field = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    top, left = (IMAGE_SIZE - height) // 2, (IMAGE_SIZE - width) // 2
    field[top : top + height, left : left + width] = digit
    return field


def _check_steps(steps: Collection[str]) -> frozenset[str]:
    chosen = frozenset(steps) if not isinstance(steps, str) else frozenset([steps])
    unknown = chosen - set(PREPROCESSING_STEPS)
    if unknown:
        raise ValueError(
            f"expected preprocessing steps among {list(PREPROCESSING_STEPS)}, got {sorted(unknown)}"
        )
    return chosen


def preprocess_steps(image: np.ndarray, steps: Collection[str] = PREPROCESSING_STEPS) -> Steps | None:
    """Every intermediate step of ``to_mnist``, or None when the image holds no ink.

    ``steps`` names the optional steps to apply (all by default, which is what
    the models were trained on). Without "crop" the whole image is kept;
    without "stroke" or "deskew" that step is skipped; without "scale" the
    digit keeps its size relative to the whole image instead of filling the
    20x20 box; without "centre" the middle of its box, not its centre of
    mass, goes to the centre of the field.
    """
    chosen = _check_steps(steps)
    ink = ink_map(image)
    peak = int(ink.max())
    if peak < BLANK_PEAK * 255:
        return None
    _, mask = cv2.threshold(ink, INK_THRESHOLD * peak, 1, cv2.THRESH_BINARY)
    if "crop" in chosen:
        x, y, width, height = cv2.boundingRect(mask)
    else:
        x, y, (height, width) = 0, 0, ink.shape
    crop = ink[y : y + height, x : x + width]

    # Bring the crop to the working scale, then binarise: the area-downsampling
    # below produces the anti-aliasing, so nothing is lost here.
    working = _fit_into_box(crop, WORKING_SIZE).astype(np.float32) / peak
    binary = (working >= 0.5).astype(np.uint8)
    if not binary.any():
        binary = (working > 0).astype(np.uint8)
    pad = WORKING_SIZE // 8  # Room for strokes to grow without touching the edge.
    binary = cv2.copyMakeBorder(binary, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    if "stroke" in chosen:
        normalised, stroke_width = _normalise_strokes(binary)
    else:
        normalised, stroke_width = binary, _stroke_width(binary)
    deskewed = _deskew(normalised) if "deskew" in chosen else normalised
    if "crop" in chosen:
        x, y, width, height = cv2.boundingRect(deskewed)
    else:
        # The whole image again: the padding off, so the digit keeps its size relative to the image.
        x, y = pad, pad
        height, width = deskewed.shape[0] - 2 * pad, deskewed.shape[1] - 2 * pad
    cropped = deskewed[y : y + height, x : x + width].astype(np.float32)

    if "scale" in chosen:
        box = BOX_SIZE
    else:
        # The digit's own size: field pixels per working pixel, as the whole image maps onto the field.
        per_working_pixel = (IMAGE_SIZE / max(ink.shape)) * (max(crop.shape) / max(working.shape))
        box = int(np.clip(round(max(cropped.shape) * per_working_pixel), 1, IMAGE_SIZE))
    # Area interpolation can overshoot 1 by a rounding error; the contract is [0, 1].
    resized = np.clip(_fit_into_box(cropped, box), 0.0, 1.0)
    centred = _centre_by_mass(resized) if "centre" in chosen else _centre_box(resized)
    # The ink is kept at display size: the app shows it, nothing computes with it.
    # Striding first keeps a huge photo cheap; a preview does not need every pixel.
    stride = max(1, max(ink.shape) // (2 * CANVAS_SIZE))
    display = ink[::stride, ::stride]
    if max(display.shape) > CANVAS_SIZE:
        display = _fit_into_box(display, CANVAS_SIZE)
    return Steps(
        ink=display.astype(np.float32) / peak,
        cropped=cropped,
        resized=resized,
        centred=centred,
        stroke_width=stroke_width,
    )


def to_mnist(image: np.ndarray, steps: Collection[str] = PREPROCESSING_STEPS) -> np.ndarray | None:
    """A (28, 28) float32 MNIST-style image in [0, 1], or None for a blank image.

    ``steps`` leaves optional steps out (see ``preprocess_steps``); the models expect all of them.
    """
    result = preprocess_steps(image, steps)
    return None if result is None else result.centred


def fingerprint() -> str:
    """A hash of what this module does to a fixed set of drawings.

    Saved with every trained model: models must be retrained when the
    preprocessing they were trained through changes its output, and only then
    (editing a comment here changes nothing).
    """
    probes = []
    for size, stroke, angle in ((CANVAS_SIZE, 18, 0), (CANVAS_SIZE, 6, 20), (64, 9, -15), (900, 120, 35)):
        canvas = np.zeros((size, size), np.uint8)
        centre, axes = (size // 2, size // 2), (size // 5, size // 3)
        cv2.ellipse(canvas, centre, axes, angle, 30, 330, 255, stroke, cv2.LINE_AA)
        cv2.line(canvas, (size // 4, size // 5), (3 * size // 4, 4 * size // 5), 255, stroke, cv2.LINE_AA)
        probes += [canvas, 255 - canvas, np.dstack([np.zeros((size, size, 3), np.uint8), canvas])]
    digest = hashlib.sha256()
    for probe in probes:
        digest.update(np.round(to_mnist(probe), 4).tobytes())
    return digest.hexdigest()
