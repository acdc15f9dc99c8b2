"""Prechelt's criteria at their edges: the cases mutation testing showed no test pinned down.

Every expected value is worked out by hand in the comment beside it.
"""

from __future__ import annotations

import math

import pytest

from lightreg.criteria import (
    generalization_loss,
    generalization_loss_series,
    progress_quotient,
    training_progress,
    up_count,
)


@pytest.mark.parametrize(
    ("val", "gl"),
    [
        ([0.5, 0.0], 0.0),  # best 0 and current 0: no loss of generalization
        ([0.0, 0.5], math.inf),  # best 0, current above it: GL has no finite value
        ([-1.0, -1.0], 0.0),  # a negative best (e.g. an NLL) held at the end
        ([-1.0, 0.0], math.inf),  # a negative best, current above it
    ],
)
def test_generalization_loss_with_a_non_positive_best(val: list[float], gl: float) -> None:
    assert generalization_loss(val) == gl


def test_generalization_loss_refuses_an_empty_sequence() -> None:
    with pytest.raises(ValueError, match=r"^`val_errors` must hold at least one value, got an"):
        generalization_loss([])


def test_generalization_loss_series_with_a_zero_best() -> None:
    # best so far: 1, 0, 0, 0 -> GL 0 (1/1), 0 (at the best), inf (0.5 above a zero best), 0.
    assert generalization_loss_series([1.0, 0.0, 0.5, 0.0]) == [0.0, 0.0, math.inf, 0.0]


def test_training_progress_default_strip_is_five() -> None:
    # The last 5 values are all 1.0: sum 5 / (5 * 1) - 1 = 0. A strip of 6 would give 1500.
    assert training_progress([10.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == 0.0


def test_training_progress_strip_of_one() -> None:
    # Window [2.0]: 1000 * (2 / (1 * 2) - 1) = 0.
    assert training_progress([4.0, 2.0], strip=1) == 0.0


@pytest.mark.parametrize(
    ("train", "progress"),
    [
        ([0.0, 0.0], 0.0),  # a window of zeros has stopped progressing
        ([-1.0, -1.0], 0.0),
        ([0.0, 0.5], math.inf),  # minimum 0, still moving: no finite ratio
        ([0.0, 1.5], math.inf),
    ],
)
def test_training_progress_with_a_non_positive_minimum(train: list[float], progress: float) -> None:
    assert training_progress(train, strip=2) == progress


def test_training_progress_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"^`strip` must be >= 1, got 0$"):
        training_progress([1.0], strip=0)
    with pytest.raises(ValueError, match=r"^`train_errors` needs at least 3 values, got 2$"):
        training_progress([1.0, 2.0], strip=3)


def test_progress_quotient_default_strip_and_stalled_training() -> None:
    # GL = 100 * (1.5 / 1.0 - 1) = 50. P_5 over the last five 1.0s = 0, so PQ = inf.
    # (A strip of 6 would give P = 1000 * (15 / 6 - 1) = 1500 and PQ = 1/30.)
    assert progress_quotient([1.0, 1.5], [10.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == math.inf


def test_progress_quotient_is_zero_when_both_terms_are() -> None:
    # GL 0 (single value) and P_5 0 (flat window): 0 / 0 is defined as 0 here.
    assert progress_quotient([1.0], [1.0] * 5) == 0.0


def test_up_count_default_strip_is_five() -> None:
    # Strip ends (k = 5) at indices 4 and 9: 1 -> 2 is one rise. With k = 6 only index 5 is
    # an end, so no rise could be counted.
    assert up_count([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0]) == 1


def test_up_count_strip_of_one() -> None:
    # 3 -> 1 falls, 1 -> 2 rises: one rise counted back from the end.
    assert up_count([3.0, 1.0, 2.0], strip=1) == 1


def test_up_count_refuses_a_zero_strip() -> None:
    with pytest.raises(ValueError, match=r"^`strip` must be >= 1, got 0$"):
        up_count([1.0, 2.0], strip=0)
