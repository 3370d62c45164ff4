"""Why this digit and not that one: which pixels of the 28x28 input a network's answer rests on.

Two views, each a 28x28 map over the input, for any network the app serves:

- Gradient x input: each pixel's value times the gradient of a class's logit
  with respect to it. It is one backward pass (exact, checked against finite
  differences), so it is cheap enough for every model on every drawing; it
  is a first-order picture, and it is zero wherever there is no ink, so it
  cannot say that ink *missing* somewhere mattered.
- Occlusion: blank a square patch (set it to the background, 0), slide it
  over the image, and record how much each class's probability falls. It
  needs no gradient and does see the effect of a whole stroke, at the cost
  of one forward pass per patch position; all positions go through the
  network as one batch (at most 144 images for 7x7 patches at stride 2, the
  last row and column of patches moved in to cover the field's edge), which
  is what makes it interactive. A patch over empty background changes
  nothing and is not run at all, so where nothing was blanked the map reads
  exactly 0.

"Why X rather than Y" is the difference of the two classes' maps: for
gradient x input that is the gradient x input of the logit difference,
exactly; for occlusion, how much more the patch supported X than Y.
"""

from __future__ import annotations

import numpy as np

from digitdraw.explaining.inside import input_gradients
from digitdraw.serving.networks import NUM_CLASSES, Network, check_class

# The study of occlusion maps in the issue: 7x7 patches (a quarter of the field), every other pixel.
OCCLUSION_PATCH, OCCLUSION_STRIDE = 7, 2


def _check(network: Network, image: np.ndarray, *classes: int) -> np.ndarray:
    for digit in classes:
        check_class(digit)
    return network.check_image(image)


def gradient_times_input(network: Network, image: np.ndarray, target: int) -> np.ndarray:
    """Each pixel's value times d(logit of ``target``)/d(pixel): 28x28, positive where ink argued for it."""
    image = _check(network, image, target)
    direction = np.zeros((1, NUM_CLASSES), np.float32)
    direction[0, target] = 1.0
    return image * input_gradients(network, image[None], direction)[0]


def contrast_gradient_times_input(network: Network, image: np.ndarray, chosen: int, other: int) -> np.ndarray:
    """Gradient x input of ``logit[chosen] - logit[other]``: positive where ink argues for ``chosen``
    rather than ``other``. Equal to the difference of the two classes' gradient x input maps."""
    image = _check(network, image, chosen, other)
    direction = np.zeros((1, NUM_CLASSES), np.float32)
    direction[0, chosen] += 1.0
    direction[0, other] -= 1.0
    return image * input_gradients(network, image[None], direction)[0]


def occluded_images(
    image: np.ndarray, patch: int = OCCLUSION_PATCH, stride: int = OCCLUSION_STRIDE
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Every copy of the image with one patch blanked, and each patch's top-left corner."""
    height, width = image.shape
    if not 1 <= patch <= min(height, width) or stride < 1:
        raise ValueError(f"expected a patch of 1-{min(height, width)} pixels and a stride >= 1")
    tops = list(range(0, height - patch + 1, stride))
    lefts = list(range(0, width - patch + 1, stride))
    # Cover the last rows and columns too when the stride does not land on them.
    if tops[-1] != height - patch:
        tops.append(height - patch)
    if lefts[-1] != width - patch:
        lefts.append(width - patch)
    corners = [(top, left) for top in tops for left in lefts]
    batch = np.repeat(image[None], len(corners), axis=0)
    for index, (top, left) in enumerate(corners):
        batch[index, top : top + patch, left : left + patch] = 0.0
    return batch, corners


def occlusion(
    network: Network, image: np.ndarray, patch: int = OCCLUSION_PATCH, stride: int = OCCLUSION_STRIDE
) -> np.ndarray:
    """How much each class's probability falls when the pixels around each pixel are blanked: (10, 28, 28).

    Each pixel gets the mean fall over the patches that cover it (positive: that ink supported the
    class). All occluded images run through the network in one batch.
    """
    image = _check(network, image)
    batch, corners = occluded_images(image, patch, stride)
    # A patch over empty background blanks nothing: its fall is exactly zero, and it is not run.
    changes = np.array([image[top : top + patch, left : left + patch].any() for top, left in corners])
    falls = np.zeros((len(corners), NUM_CLASSES), np.float32)
    if changes.any():
        # The unchanged image runs in the same batch, so that rounding cannot tell it apart.
        probabilities = network.predict_proba(np.concatenate([image[None], batch[changes]]))
        falls[changes] = probabilities[0] - probabilities[1:]
    total = np.zeros((NUM_CLASSES, *image.shape), np.float32)
    covered = np.zeros(image.shape, np.float32)
    for (top, left), fall in zip(corners, falls):
        total[:, top : top + patch, left : left + patch] += fall[:, None, None]
        covered[top : top + patch, left : left + patch] += 1.0
    return total / covered


def contrast_occlusion(maps: np.ndarray, chosen: int, other: int) -> np.ndarray:
    """From ``occlusion``'s maps: how much more each patch supported ``chosen`` than ``other``."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or len(maps) != NUM_CLASSES:
        raise ValueError(f"expected occlusion maps of shape (10, H, W), got {maps.shape}")
    return maps[check_class(chosen)] - maps[check_class(other)]
