"""Scores of a network's answers against a reference: the accuracy margin against the exact binomial."""

from __future__ import annotations

import math

import pytest

from digitdraw.learning.evaluate import accuracy_margin


def _coverage(count: int, margin: float, accuracy: float = 0.5) -> float:
    """The exact binomial chance that an accuracy measured on ``count`` items lies within ``margin``."""
    log_choose = math.lgamma(count + 1)
    return sum(
        math.exp(
            log_choose
            - math.lgamma(right + 1)
            - math.lgamma(count - right + 1)
            + right * math.log(accuracy)
            + (count - right) * math.log(1 - accuracy)
        )
        for right in range(count + 1)
        # The tolerance only keeps a bound such as 0.5 + 0.049 from missing 0.549 by a rounding.
        if abs(right / count - accuracy) <= margin + 1e-12
    )


@pytest.mark.parametrize("count", [30, 100, 400, 2_000])
def test_the_margin_holds_about_95_in_100_measured_accuracies_where_they_vary_most(count):
    margin = accuracy_margin(count)
    assert margin == pytest.approx(1.96 * 0.5 / math.sqrt(count))
    # The normal approximation against the exact binomial, at an accuracy of one half.
    assert 0.94 <= _coverage(count, margin) <= 0.97
    # Nearer 0 or 1 an accuracy varies less: the margin holds more of them.
    assert _coverage(count, margin, accuracy=0.9) >= 0.95


def test_a_margin_on_very_few_is_wide_and_none_is_refused():
    assert accuracy_margin(1) == 0.98 and accuracy_margin(4) == 0.49
    for bad in (0, -3, 2.5, True, "4"):
        with pytest.raises(ValueError, match="at least one item"):
            accuracy_margin(bad)
