"""How closely two float32 computations of the same numbers must agree: the one tolerance that tests
comparing two code paths (NumPy against Keras, one batch size against another) derive from the arithmetic,
instead of a number tuned to the processor the test was written on.

A float32 rounding is off by at most EPS (1.19e-7) relative. A sum of n products rounds n times, so two
evaluations of it in any order (another BLAS, another blocking, FMA or not) differ by at most about
n * EPS relative to the size of its terms: not to the sum, which may cancel to near zero, so the absolute
part of the tolerance is taken relative to the largest value compared. Typical errors grow like
sqrt(n) * EPS, but a test must pass on every processor, so the worst case is used.
"""

from __future__ import annotations

import numpy as np

EPS = float(np.finfo(np.float32).eps)
# Per layer, beyond its sum: the bias add and the activation (exp, tanh, erf differ by an ulp or two
# between NumPy and Keras's kernels).
PER_LAYER = 4


def rtol(terms: int) -> float:
    """The worst-case relative difference of two float32 evaluations of a sum of ``terms`` products."""
    return terms * EPS


def chain_terms(architecture) -> list[int]:
    """For each layer's output, the roundings on its path from the input: the fan-in of every weighted
    layer so far (a dense layer's inputs, a convolution's kernel area times channels), plus PER_LAYER
    each. A relative error passes through a layer roughly unchanged, so these add up; a pool only picks
    (an average pool's few additions are within PER_LAYER)."""
    shapes = architecture.shapes
    total, terms = 0, []
    for layer, shape in zip(architecture.layers, shapes):
        if layer.kind == "dense":
            total += int(np.prod(shape)) + PER_LAYER
        elif layer.kind == "conv":
            total += layer.kernel[0] * layer.kernel[1] * shape[-1] + PER_LAYER
        terms.append(total)
    return terms


def assert_close(actual, expected, terms: int, scale: float | None = None) -> None:
    """``actual`` equals ``expected`` to within rtol(terms), relative to each value and to ``scale`` (by
    default the largest |expected|), which stands for the size of the terms a near-zero sum came from."""
    tolerance = rtol(terms)
    expected = np.asarray(expected)
    scale = float(np.abs(expected).max(initial=0.0)) if scale is None else float(scale)
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale)


def assert_probabilities_close(actual, expected, logits, terms: int) -> None:
    """Softmax outputs of logits that two float32 paths computed to within rtol(terms): a change dz in the
    logits moves p_i by p_i * (dz_i - sum_j p_j dz_j), at most 2 * max|dz|, so the scale is 2 * max|logit|."""
    tolerance = rtol(terms)
    scale = 2 * float(np.abs(np.asarray(logits)).max())
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale)
