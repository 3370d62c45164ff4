"""Training-time augmentation, so that the models have seen digits that look drawn.

People draw digits rotated, slanted, shifted, larger or smaller and with a
thicker or thinner pen than MNIST's writers did; these transforms show the
networks such digits during training. They act on 28x28 images, after the
preprocessing that inference applies, so training and inference stay matched.

Speed matters because every epoch gets fresh samples: instead of one
``cv2.warpAffine`` call per image, one ``cv2.remap`` call transforms the whole
batch, laid out as one tall image. MNIST digits have empty borders, so the
little interpolation that reaches a neighbouring tile reads zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_REMAP_CHUNK = 1000


@dataclass(frozen=True)
class AugmentConfig:
    """The largest transformation of each kind; each image draws uniformly within."""

    rotation_degrees: float = 8.0
    shear: float = 0.15
    scale: tuple[float, float] = (0.9, 1.1)
    shift_pixels: float = 1.0
    thicken_probability: float = 0.2
    thin_probability: float = 0.15


def random_affine(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Rotate, shear, scale and shift every image of an (N, 28, 28) float32 batch about its centre."""
    count, height, width = images.shape
    angle = np.deg2rad(rng.uniform(-config.rotation_degrees, config.rotation_degrees, count))
    shear = rng.uniform(-config.shear, config.shear, count)
    scale = rng.uniform(*config.scale, count)
    shift = rng.uniform(-config.shift_pixels, config.shift_pixels, (count, 2))

    # The forward map is A = scale * R(angle) @ [[1, shear], [0, 1]]; remap needs
    # its inverse, which takes each output pixel back to where it came from.
    cos, sin = np.cos(angle), np.sin(angle)
    forward = np.empty((count, 2, 2))
    forward[:, 0, 0] = scale * cos
    forward[:, 0, 1] = scale * (cos * shear - sin)
    forward[:, 1, 0] = scale * sin
    forward[:, 1, 1] = scale * (sin * shear + cos)
    inverse = np.linalg.inv(forward).astype(np.float32)

    centre = np.array([(width - 1) / 2, (height - 1) / 2], np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    offsets = np.stack([xs - centre[0], ys - centre[1]])  # (2, H, W)
    offsets = offsets[None] - shift[:, :, None, None].astype(np.float32)
    source = np.einsum("nij,njhw->nihw", inverse, offsets) + centre[None, :, None, None]
    map_x, map_y = source[:, 0], source[:, 1]
    # Points that fall outside their own tile are sent far away, to read zero.
    outside = (map_x < -1) | (map_x > width) | (map_y < -1) | (map_y > height)
    map_x = np.where(outside, -10.0, map_x).astype(np.float32)
    map_y = np.where(outside, -10.0, map_y).astype(np.float32)
    moved = np.empty_like(images)
    # remap refuses images taller than 32767 rows, so tiles go in chunks.
    for start in range(0, count, _REMAP_CHUNK):
        stop = min(start + _REMAP_CHUNK, count)
        rows = (np.arange(stop - start, dtype=np.float32) * height)[:, None, None]
        chunk_y = np.where(outside[start:stop], -10.0, map_y[start:stop] + rows)
        moved[start:stop] = cv2.remap(
            images[start:stop].reshape(-1, width),
            map_x[start:stop].reshape(-1, width),
            chunk_y.astype(np.float32).reshape(-1, width),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        ).reshape(stop - start, height, width)
    return moved


def random_stroke_width(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Thicken or thin the strokes of a random share of the images by about one pixel."""
    count, height, width = images.shape
    tall = images.reshape(count * height, width)
    kernel = np.ones((2, 2), np.uint8)
    thick = cv2.dilate(tall, kernel).reshape(images.shape)
    thin = cv2.erode(tall, kernel).reshape(images.shape)
    choice = rng.uniform(size=count)[:, None, None]
    out = np.where(choice < config.thicken_probability, thick, images)
    return np.where(choice > 1.0 - config.thin_probability, thin, out)


def augment(
    images: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """A freshly transformed copy of an (N, 28, 28) float32 batch in [0, 1]."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
    images = np.ascontiguousarray(images, dtype=np.float32)
    return np.clip(random_stroke_width(random_affine(images, rng, config), rng, config), 0.0, 1.0)
