"""The verdict rules at their boundaries: the cases mutation testing showed no test pinned down.

Every expected value is worked out by hand in the comment beside it. Boundaries use numbers that
are exact in binary (0.25, 0.5, 1.5) so "at the threshold" really is at it.
"""

from __future__ import annotations

import math

import pytest

from lightreg.diagnose.metrics import Curves
from lightreg.diagnose.rules import Evidence, Thresholds, collect_evidence, judge, relative_slope


def curves(train, val, train_acc=None, val_acc=None, comparable=True) -> Curves:
    """Curves from plain lists (epoch = index); None leaves a series out."""

    def series(values):
        return dict(enumerate(values)) if values is not None else {}

    return Curves(
        "train_loss" if train is not None else None,
        "val_loss" if val is not None else None,
        series(train),
        series(val),
        "train_acc" if train_acc else None,
        "val_acc" if val_acc else None,
        series(train_acc),
        series(val_acc),
        comparable=comparable,
    )


FLAT = [1.0] * 5


# --- Thresholds -------------------------------------------------------------------------------


def test_slope_thresholds_may_be_zero() -> None:
    t = Thresholds(improving_slope=0.0, plateau_slope=0.0)
    assert (t.improving_slope, t.plateau_slope) == (0.0, 0.0)


def test_threshold_errors_are_listed_together() -> None:
    with pytest.raises(ValueError) as info:
        Thresholds(min_epochs=0, strip=0, plateau_slope=-0.5)
    assert str(info.value) == (
        "`min_epochs` must be > 0, got 0; `strip` must be > 0, got 0; "
        "`plateau_slope` must be >= 0, got -0.5"
    )


def test_override_errors_are_listed_together() -> None:
    with pytest.raises(ValueError) as info:
        Thresholds().with_overrides({"zzz": 1, "gl_threshold": "abc", "min_epoch": 2})
    assert str(info.value) == (
        "unknown threshold 'zzz'; known: min_epochs, gl_threshold, overfit_patience, acc_gap, "
        "severe_gl, severe_acc_gap, trend_window, improving_slope, plateau_slope, "
        "underfit_ratio, underfit_acc, underfit_gap, near_perfect_acc, near_zero_loss, "
        "diverge_ratio, strip; "
        "threshold 'gl_threshold' needs a number, got 'abc'; "
        "unknown threshold 'min_epoch'; did you mean 'min_epochs'?"
    )


def test_float_override_keeps_its_fraction() -> None:
    assert Thresholds().with_overrides({"gl_threshold": "2.5"}).gl_threshold == 2.5


# --- relative_slope ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0, 1.5), (1, 0.5)], -1.0),  # slope -1, mean |value| 1
        ([(0, 2.0), (1, 1.8), (2, 1.6)], -0.2 / 1.8),  # slope -0.2, mean 1.8
        ([(0, 1.0)], None),  # one point has no slope
        ([(3, 1.0), (3, 2.0)], None),  # no spread in epochs
        ([(0, 0.0), (1, 0.0)], None),  # zero mean: no relative scale
    ],
)
def test_relative_slope(points, expected) -> None:
    assert relative_slope(points) == (None if expected is None else pytest.approx(expected))


# --- Evidence ---------------------------------------------------------------------------------


def test_evidence_in_full() -> None:
    train = [8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    val = [8.0, 6.0, 4.0, 2.0, 2.5, 3.0, 2.5, 3.0]
    e = collect_evidence(
        Curves(
            "train_loss",
            "val_loss",
            dict(enumerate(train)),
            dict(enumerate(val)),
            "train_acc",
            "val_acc",
            {0: 0.5, 7: 0.9},
            {0: 0.5, 7: 0.6},
            comparable=True,
        ),
        Thresholds(),
    )
    assert (e.epochs, e.best_epoch, e.final_train_loss, e.final_val_loss) == (8, 3, 1.0, 3.0)
    # GL series from the best 2.0: 0, 0, 0, 0, 25, 50, 25, 50; the last 4 exceed 5 %.
    assert (e.gl, e.max_gl, e.overfit_since, e.overfit_points) == (50.0, 50.0, 4, 4)
    # P_5 over 5, 4, 3, 2, 1: 1000 * (15 / (5 * 1) - 1) = 2000, so PQ = 50 / 2000.
    assert e.pq == pytest.approx(0.025)
    assert e.loss_gap == 2.0
    assert (e.final_train_acc, e.final_val_acc) == (0.9, 0.6)
    assert e.acc_gap == pytest.approx(0.3)
    # Last 5 val points (epochs 3..7): slope 2 / 10 = 0.2, mean 2.6. Train: slope -1, mean 3.
    assert e.val_slope == pytest.approx(0.2 / 2.6)
    assert e.train_slope == pytest.approx(-1.0 / 3.0)
    assert e.nonfinite_epoch is None


def test_non_finite_gl_and_accuracy_are_left_out() -> None:
    # Best val 0, last 0.5: GL is infinite, reported as None. A NaN accuracy gives no gap.
    e = collect_evidence(
        Curves(val={0: 0.0, 1: 0.0, 2: 0.5}, train_acc={0: math.nan}, val_acc={0: 0.5}),
        Thresholds(),
    )
    assert (e.gl, e.max_gl, e.final_train_acc, e.acc_gap) == (None, None, None, None)
    assert e.final_val_acc == 0.5


def test_accuracy_gap_needs_both_accuracies() -> None:
    e = collect_evidence(Curves(train_acc={0: 0.9}), Thresholds())
    assert (e.final_train_acc, e.final_val_acc, e.acc_gap) == (0.9, None, None)


def test_pq_uses_the_configured_strip() -> None:
    # GL = 100 * (1.0 / 0.8 - 1) = 25; P_3 over 0.6, 0.5, 0.4 = 1000 * (1.5 / 1.2 - 1) = 250.
    judgement = judge(curves([1.0, 0.6, 0.5, 0.4], [1.0, 0.8, 0.9, 1.0]), Thresholds(strip=3))
    assert judgement.evidence.pq == pytest.approx(0.1)


# --- diverging --------------------------------------------------------------------------------


def test_non_finite_reason_names_only_the_non_finite_series() -> None:
    judgement = judge(curves([1.0, 0.8, math.nan, math.nan], [1.0, 0.9, 0.8, 0.7]))
    assert judgement.reasons == ("train_loss not finite from epoch 2",)


def test_non_finite_reason_names_both_series() -> None:
    judgement = judge(curves([1.0, 0.8, math.nan], [1.0, math.inf, math.inf]))
    assert judgement.reasons == ("train_loss and val_loss not finite from epoch 1",)


def test_exploded_reason_gives_the_numbers() -> None:
    judgement = judge(curves([1.0, 0.5, 0.6, 3.0, 40.0], [1.0, 0.6, 0.7, 0.7, 0.7]))
    assert judgement.reasons == (
        "train_loss exploded: 40 at the end, above its start 1 and 2x its minimum 0.5",
    )


def test_validation_loss_explodes_when_no_training_loss_is_logged() -> None:
    judgement = judge(curves(None, [1.0, 0.5, 3.0]))
    assert judgement.verdict == "diverging"
    assert judgement.reasons == (
        "val_loss exploded: 3 at the end, above its start 1 and 2x its minimum 0.5",
    )


@pytest.mark.parametrize(
    ("train", "overrides", "diverging"),
    [
        ([1.0, 5.0], {}, True),  # two points are enough: 5 > 1 and 5 > 2 * 1
        ([1.0], {}, False),  # one point cannot explode
        ([1.0, 0.4, 3.0], {}, True),  # judged by the last point, not the one before it
        ([5.0, 0.4, 3.0], {}, False),  # ends below its start (the second value does not count)
        ([1.0, 0.5, 0.8], {}, False),  # recovered, but still below its start
        ([1.0, 0.9, 1.1], {}, False),  # above its start, under 2x its minimum
        ([1.0, 0.4, 1.0], {}, False),  # back exactly at its start
        ([1.5, 1.0, 2.0], {}, False),  # exactly 2x its minimum
        ([1.0, 0.25, 1.5], {}, True),  # 1.5 > 2 * 0.25
        ([0.0, 1.0], {}, True),  # from zero to one
        ([0.0, 1e-12], {}, False),  # a rise of 1e-12 is float noise
        ([1.0, 1.0 + 1e-13], {"diverge_ratio": 1.0}, False),  # noise above a ratio of 1
    ],
)
def test_when_a_loss_explodes(train: list[float], overrides: dict, diverging: bool) -> None:
    verdict = judge(curves(train, None), Thresholds(**overrides)).verdict
    assert (verdict == "diverging") is diverging


# --- overfitting ------------------------------------------------------------------------------


def test_gl_at_the_threshold_is_not_overfitting() -> None:
    # GL series 0, 50, 50, 50: none exceeds a threshold of exactly 50.
    judgement = judge(
        curves([1.0, 0.8, 0.6, 0.5], [1.0, 1.5, 1.5, 1.5]), Thresholds(gl_threshold=50.0)
    )
    assert (judgement.evidence.overfit_since, judgement.evidence.overfit_points) == (None, 0)
    assert judgement.verdict == "good_fit"


def test_accuracy_gap_at_the_threshold_is_not_overfitting() -> None:
    # 0.75 - 0.5 = 0.25, not above acc_gap=0.25; 0.75 >= underfit_acc, so no underfitting either.
    judgement = judge(curves(FLAT, FLAT, [0.75] * 5, [0.5] * 5), Thresholds(acc_gap=0.25))
    assert judgement.verdict == "good_fit"


def test_overfitting_reason_gives_the_numbers() -> None:
    judgement = judge(curves([1.0, 0.6, 0.4, 0.3, 0.25], [1.0, 0.8, 0.9, 1.0, 1.2]))
    assert judgement.reasons == (
        "GL 50.0% > 5% for the last 3 validation points (since epoch 2); best epoch 1",
    )


# --- still improving --------------------------------------------------------------------------

FALLING = [1.5, 1.0, 0.5]  # slope -0.5 over a mean of 1.0: exactly -50 % per epoch


def test_still_improving_reason_gives_the_numbers() -> None:
    # Exactly min_epochs=3 validation points are enough to judge.
    judgement = judge(curves(FALLING, FALLING))
    assert judgement.verdict == "still_improving"
    assert judgement.reasons == (
        "validation loss still falling 50.0%/epoch over the last 3 points, "
        "best at the end (epoch 2)",
    )


def test_slope_at_the_improving_threshold_is_not_still_improving() -> None:
    judgement = judge(curves(FALLING, FALLING), Thresholds(improving_slope=0.5))
    assert judgement.verdict == "good_fit"
    assert judgement.reasons == ("no overfitting, divergence, plateau or open trend",)


def test_a_flat_validation_loss_is_not_still_improving() -> None:
    # Val slope is about -0.03 % per epoch with its best at the end: well inside +-1 %.
    assert judge(curves([1.0, 0.5, 0.3, 0.2], [1.0, 1.0, 1.0, 0.999])).verdict == "good_fit"


# --- underfitting -----------------------------------------------------------------------------


def test_a_falling_training_loss_is_not_a_plateau() -> None:
    # Train slope -0.05 over a mean of 0.9 (-5.6 %/epoch), high and close to val: still learning.
    judgement = judge(curves([1.0, 0.95, 0.9, 0.85, 0.8], [0.85] * 5))
    assert judgement.verdict == "good_fit"


def test_slope_at_the_plateau_threshold_is_a_plateau() -> None:
    t = Thresholds(plateau_slope=0.5, underfit_ratio=0.3, improving_slope=1.0)
    judgement = judge(curves(FALLING, FALLING), t)
    assert judgement.verdict == "underfitting"
    # 0.5 / 1.5 = 33 % of the first value; slope exactly -50 %/epoch.
    assert judgement.reasons == (
        "train loss still 33% of its first value, plateaued (-50.00%/epoch), small train-val gap",
    )


@pytest.mark.parametrize(
    ("loss", "overrides"),
    [
        (0.004, {}),  # below near_zero_loss=0.01
        (0.5, {"near_zero_loss": 0.5}),  # exactly at it
    ],
)
def test_a_near_zero_plateau_is_not_underfitting(loss: float, overrides: dict) -> None:
    assert judge(curves([loss] * 5, [loss] * 5), Thresholds(**overrides)).verdict == "good_fit"


@pytest.mark.parametrize(
    ("acc", "overrides", "verdict"),
    [
        (0.36, {}, "underfitting"),
        (0.7, {}, "good_fit"),  # exactly underfit_acc
        (0.8, {}, "good_fit"),  # above underfit_acc, below near-perfect
        (0.95, {"underfit_acc": 0.99}, "good_fit"),  # near-perfect under a stricter underfit_acc
    ],
)
def test_underfitting_by_accuracy(acc: float, overrides: dict, verdict: str) -> None:
    judgement = judge(curves(FLAT, FLAT, [acc] * 5, [acc] * 5), Thresholds(**overrides))
    assert judgement.verdict == verdict


def test_underfitting_reason_from_accuracy_gives_the_slope() -> None:
    # Train slope: (2 * 1.41 - 2 * 1.40) / 10 = 0.002 over a mean of 1.402: +0.14 %/epoch.
    judgement = judge(curves([1.40, 1.40, 1.40, 1.40, 1.41], [1.40] * 5, [0.36] * 5, [0.36] * 5))
    assert judgement.reasons == (
        "train accuracy 0.360 < 0.7, plateaued (+0.14%/epoch), small train-val gap",
    )


def test_underfitting_with_a_single_training_point() -> None:
    judgement = judge(curves([1.0], [1.0, 1.0, 1.0]))
    assert judgement.evidence.train_slope is None
    assert judgement.reasons == (
        "train loss still 100% of its first value, plateaued (+0.00%/epoch), small train-val gap",
    )


def test_loss_ratio_is_last_over_first() -> None:
    # 1.52 / 2.0 = 76 %; slope over the last five: 2 * 0.02 / 10 = 0.004 over 1.504 = +0.27 %.
    train = [2.0, 1.6, 1.5, 1.5, 1.5, 1.5, 1.52]
    judgement = judge(curves(train, train))
    assert judgement.reasons == (
        "train loss still 76% of its first value, plateaued (+0.27%/epoch), small train-val gap",
    )


def test_loss_ratio_at_the_threshold_is_underfitting() -> None:
    train = [2.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    judgement = judge(curves(train, train))
    assert judgement.verdict == "underfitting"
    assert judgement.evidence.epochs == 6
    assert judgement.reasons == (
        "train loss still 50% of its first value, plateaued (+0.00%/epoch), small train-val gap",
    )


def test_a_negative_loss_that_starts_at_zero_has_no_ratio() -> None:
    # A Gaussian NLL going 0 -> -0.5 and staying: the ratio to a zero start is taken as 0.
    nll = [0.0, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5]
    assert judge(curves(nll, nll)).verdict == "good_fit"


@pytest.mark.parametrize(
    ("train", "val", "overrides", "verdict"),
    [
        (1.0, 2.0, {}, "good_fit"),  # gap 1.0 / 2.0 = 50 % of val: not a small gap
        (2.0, 2.1, {}, "underfitting"),  # gap 0.1 / 2.1 = 4.8 %
        (0.75, 1.0, {"underfit_gap": 0.25}, "underfitting"),  # exactly at the limit
    ],
)
def test_underfitting_needs_a_small_loss_gap(train, val, overrides, verdict) -> None:
    judgement = judge(curves([train] * 5, [val] * 5), Thresholds(**overrides))
    assert judgement.verdict == verdict


def test_incomparable_losses_without_accuracy_can_underfit() -> None:
    assert judge(curves(FLAT, FLAT, comparable=False)).verdict == "underfitting"


@pytest.mark.parametrize(
    ("overrides", "verdict"),
    [
        ({"acc_gap": 0.5}, "good_fit"),  # accuracy gap 0.25 > underfit_gap 0.1
        ({"acc_gap": 0.5, "underfit_gap": 0.25}, "underfitting"),  # exactly at the limit
    ],
)
def test_incomparable_losses_use_the_accuracy_gap(overrides: dict, verdict: str) -> None:
    judgement = judge(
        curves(FLAT, FLAT, [0.5] * 5, [0.25] * 5, comparable=False), Thresholds(**overrides)
    )
    assert judgement.verdict == verdict


# --- judge ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("train", "val", "epochs", "reason"),
    [
        (None, None, 0, "no training or validation loss found"),
        ([1.0, 0.5, 0.3], None, 3, "no validation loss"),
        ([1.0, 0.5], [1.0, 0.6], 2, "2 validation point(s), fewer than min_epochs=3"),
        (
            None,
            [1.0, 0.9, 0.89, 0.89, 0.89],
            5,
            "no training loss: a good fit and underfitting look alike",
        ),
        (
            [1.0, 0.5, 0.3, 0.2, 0.19, 0.19, 0.19],
            [1.0, 0.55, 0.35, 0.25, 0.24, 0.24, 0.241],
            7,
            "no overfitting, divergence, plateau or open trend",
        ),
    ],
)
def test_every_verdict_carries_its_evidence_and_reason(train, val, epochs, reason) -> None:
    judgement = judge(curves(train, val))
    assert isinstance(judgement.evidence, Evidence)
    assert judgement.evidence.epochs == epochs
    assert judgement.reasons == (reason,)
