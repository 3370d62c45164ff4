"""Training-time augmentation, so that the models have seen digits that look drawn.

People draw digits rotated, slanted, shifted, larger or smaller and with a
thicker or thinner pen than MNIST's writers did; these transforms show the
networks such digits during training. They act on 28x28 images, after the
preprocessing that inference applies, so training and inference stay matched.

Every epoch gets fresh samples of 50,000 images, so speed matters, and the
choices below were measured on this project's 2-core machine. A plain loop
of ``cv2.warpAffine`` calls, one per image, took 0.37 s for 50,000 images,
against 0.68 s for a vectorised alternative (one ``cv2.remap`` over the batch
laid out as a tall image), so the loop stays. Stroke width is changed with
one dilation and one erosion of that tall image: 0.29 s, against 0.50 s for
the same operation in NumPy.

Two transforms go beyond the study's recipe, both off in the default
``AugmentConfig`` (so the study's images come out bit for bit as before).
Elastic distortion (Simard, Steinkraus and Platt, 2003): a random displacement
field per image, smoothed by a Gaussian of width ``elastic_sigma`` and scaled by
``elastic_alpha``, bends strokes the way a hand wobbles. The fields are blurred
as one tall image with enough zero rows between tiles that none leaks into the
next (the same as blurring each alone), and each image is resampled with its
own ``cv2.remap``. Thicker changes of stroke width (``thickness_pixels`` above
1) dilate or erode with a larger square. ``experiments/recipes.py`` measured
each; only the thicker changes went into the improved recipe
(``IMPROVED_AUGMENTATION``): elastic distortion lowered the accuracy on the
validation-side sets that choose.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from digitdraw.serving.preprocess import IMAGE_SIZE


@dataclass(frozen=True)
class AugmentConfig:
    """The largest transformation of each kind; each image draws uniformly within."""

    rotation_degrees: float = 8.0
    shear: float = 0.15
    scale: tuple[float, float] = (0.9, 1.1)
    shift_pixels: float = 1.0
    thicken_probability: float = 0.2
    thin_probability: float = 0.15
    # Strokes grow or shrink by 1 to this many pixels; 1 is the study's single 2x2 step.
    thickness_pixels: int = 1
    # Share of images bent by an elastic distortion (0: none, the study's recipe).
    elastic_probability: float = 0.0
    elastic_alpha: float = 34.0  # Simard et al.'s scale, in pixels, for 28x28 digits.
    elastic_sigma: float = 4.0  # Their smoothing, in pixels.
    # Each image's width is multiplied by a factor drawn log-uniformly from this range, its height
    # kept: (1, 1), the study's recipe, leaves the aspect ratio alone.
    width_scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.thickness_pixels < 1:
            raise ValueError(f"thickness_pixels must be at least 1, got {self.thickness_pixels}")
        for name in ("thicken_probability", "thin_probability", "elastic_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be from 0 to 1, got {getattr(self, name)}")
        if self.thicken_probability + self.thin_probability > 1.0:
            raise ValueError("thicken_probability and thin_probability must add up to at most 1")
        low, high = self.width_scale
        if not 0 < low <= high:
            raise ValueError(
                f"width_scale must be a range of positive factors, low first, got {self.width_scale}"
            )
        if self.elastic_alpha < 0 or self.elastic_sigma <= 0:
            raise ValueError(
                f"elastic_alpha must be at least 0 and elastic_sigma above 0, "
                f"got {self.elastic_alpha} and {self.elastic_sigma}"
            )


# Each technique's setting as the ablation (experiments/recipes.py) tries it.
ELASTIC_SHARE = 0.5  # Half the images bent.
THICKER_PIXELS = 2  # Strokes thickened or thinned by 1 or 2 pixels.
WIDER_OR_NARROWER = (0.8, 1.25)  # Digits up to a quarter wider or a fifth narrower, height kept.
# The improved recipe's augmentation (``config.IMPROVED_RECIPE``), chosen by the ablation on
# validation-side sets: the study's, with strokes thickened or thinned by up to 2 pixels.
IMPROVED_AUGMENTATION = AugmentConfig(thickness_pixels=THICKER_PIXELS)


def random_affine_matrices(
    count: int, rng: np.random.Generator, config: AugmentConfig, size: int = IMAGE_SIZE
) -> np.ndarray:
    """Random forward affine maps, (count, 2, 3) in ``cv2.warpAffine``'s convention, about the centre."""
    angle = np.deg2rad(rng.uniform(-config.rotation_degrees, config.rotation_degrees, count))
    shear = rng.uniform(-config.shear, config.shear, count)
    scale = rng.uniform(*config.scale, count)
    shift = rng.uniform(-config.shift_pixels, config.shift_pixels, (count, 2))
    # Drawn only when asked for, and last, so that the study's images come out bit for bit as before.
    low, high = config.width_scale
    width = np.exp(rng.uniform(np.log(low), np.log(high), count)) if low < high else np.full(count, low)
    # linear = scale * R(angle) @ [[1, shear], [0, 1]] @ [[width, 0], [0, 1]], applied about the image
    # centre, then shifted.
    cos, sin = np.cos(angle), np.sin(angle)
    matrices = np.empty((count, 2, 3))
    matrices[:, 0, 0] = scale * cos * width
    matrices[:, 0, 1] = scale * (cos * shear - sin)
    matrices[:, 1, 0] = scale * sin * width
    matrices[:, 1, 1] = scale * (sin * shear + cos)
    centre = np.full(2, (size - 1) / 2)
    matrices[:, :, 2] = centre + shift - matrices[:, :, :2] @ centre
    return matrices


def random_affine(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Rotate, shear, scale and shift every image of an (N, 28, 28) float32 batch about its centre."""
    count, height, width = images.shape
    matrices = random_affine_matrices(count, rng, config, width)
    moved = np.empty_like(images)
    for index in range(count):
        moved[index] = cv2.warpAffine(images[index], matrices[index], (width, height), flags=cv2.INTER_LINEAR)
    return moved


def _tall(images: np.ndarray, separator: float, rows: int = 1) -> np.ndarray:
    """The batch as one tall 2-D image, each tile below ``rows`` separator rows of the given value,
    and as many after the last tile."""
    count, height, width = images.shape
    tiles = np.full((count, height + rows, width), separator, np.float32)
    tiles[:, rows:] = images
    tall = tiles.reshape(count * (height + rows), width)
    return np.concatenate([tall, np.full((rows, width), separator, np.float32)])


def _untall(tall: np.ndarray, count: int, rows: int) -> np.ndarray:
    """The tiles of a tall image made by ``_tall``, as an (N, height, width) batch."""
    width = tall.shape[1]
    return tall[: len(tall) - rows].reshape(count, -1, width)[:, rows:]


def change_stroke_width(images: np.ndarray, pixels: int) -> np.ndarray:
    """Every image dilated (``pixels`` > 0) or eroded (< 0) by a square of side ``abs(pixels) + 1``,
    exactly as OpenCV does each image alone."""
    count, size = len(images), abs(pixels)
    if count == 0 or size == 0:
        return images.copy()
    kernel = np.ones((size + 1, size + 1), np.uint8)
    # One OpenCV call for the whole batch. The kernel reaches at most ``size``
    # rows up or down, so that many rows of zeros (for dilation) or ones (for
    # erosion) between tiles give exactly what dilating or eroding each alone would.
    if pixels > 0:
        return _untall(cv2.dilate(_tall(images, 0.0, size), kernel), count, size)
    return _untall(cv2.erode(_tall(images, 1.0, size), kernel), count, size)


def random_stroke_width(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Thicken or thin the strokes of a random share of the images by 1 to ``thickness_pixels`` pixels
    (dilation or erosion by a square of side pixels + 1)."""
    count = len(images)
    choice = rng.uniform(size=count)
    # Drawn only beyond the study's single step, so that its recipe's random stream stays as it was.
    if config.thickness_pixels > 1:
        amounts = rng.integers(1, config.thickness_pixels + 1, count)
    else:
        amounts = np.ones(count, np.int64)
    signs = np.where(choice < config.thicken_probability, 1, 0)
    signs = np.where(choice > 1.0 - config.thin_probability, -1, signs)
    out = images.copy()
    for change in np.unique(signs * amounts):
        if change != 0:
            chosen = np.flatnonzero(signs * amounts == change)
            out[chosen] = change_stroke_width(images[chosen], int(change))
    return out


def gaussian_kernel_size(sigma: float) -> int:
    """The kernel side OpenCV picks for a float image blurred with this sigma and ``ksize`` (0, 0)."""
    return round(sigma * 8 + 1) | 1


def smooth_fields(fields: np.ndarray, sigma: float) -> np.ndarray:
    """Blur every (H, W) field of an (N, H, W) batch with a Gaussian, zero outside each field,
    as ``cv2.GaussianBlur(field, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)`` does alone."""
    count = len(fields)
    side = gaussian_kernel_size(sigma)
    rows = side // 2
    tall = _tall(np.ascontiguousarray(fields, np.float32), 0.0, rows)
    blurred = cv2.GaussianBlur(tall, (side, side), sigma, borderType=cv2.BORDER_CONSTANT)
    return _untall(blurred, count, rows)


def elastic_displacements(
    count: int, rng: np.random.Generator, config: AugmentConfig, size: int = IMAGE_SIZE
) -> np.ndarray:
    """Random smooth displacement fields (count, 2, size, size), in pixels: x then y."""
    noise = rng.uniform(-1.0, 1.0, (count * 2, size, size)).astype(np.float32)
    return config.elastic_alpha * smooth_fields(noise, config.elastic_sigma).reshape(count, 2, size, size)


def elastic_distort(images: np.ndarray, displacements: np.ndarray) -> np.ndarray:
    """Resample each image at its pixel grid moved by its displacement field (bilinear, zero outside)."""
    count, height, width = images.shape
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    moved = np.empty_like(images)
    for index in range(count):
        map_x = grid_x + displacements[index, 0]
        map_y = grid_y + displacements[index, 1]
        moved[index] = cv2.remap(
            images[index], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    return moved


def random_elastic(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Bend a random share (``elastic_probability``) of an (N, 28, 28) batch by elastic distortion."""
    if config.elastic_probability <= 0.0:
        return images  # The study's recipe: no random numbers drawn either.
    chosen = np.flatnonzero(rng.uniform(size=len(images)) < config.elastic_probability)
    out = images.copy()
    out[chosen] = elastic_distort(images[chosen], elastic_displacements(len(chosen), rng, config))
    return out


def augment(
    images: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """A freshly transformed copy of an (N, 28, 28) float32 batch in [0, 1]."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
    images = np.ascontiguousarray(images, dtype=np.float32)
    moved = random_elastic(random_affine(images, rng, config), rng, config)
    return np.clip(random_stroke_width(moved, rng, config), 0.0, 1.0)
