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
        "diverge_ratio, strip, trend_alpha, improving_noise, noise_window, diverge_points, "
        "diverge_noise, lr_annealed, chance_tolerance; "
        "threshold 'gl_threshold' needs a number, got 'abc'; "
        "unknown threshold 'min_epoch'; did you mean 'min_epochs'?"
    )


def test_float_override_keeps_its_fraction() -> None:
    assert Thresholds().with_overrides({"gl_threshold": "2.5"}).gl_threshold == 2.5


def test_noise_thresholds_may_be_zero_and_fractions_may_be_one() -> None:
    t = Thresholds(improving_noise=0.0, diverge_noise=0.0, trend_alpha=1.0, lr_annealed=1.0)
    assert (t.improving_noise, t.diverge_noise, t.trend_alpha, t.lr_annealed) == (0, 0, 1, 1)


def test_new_threshold_errors() -> None:
    with pytest.raises(ValueError) as info:
        Thresholds(trend_alpha=1.5, lr_annealed=0.0, noise_window=0, diverge_noise=-1.0)
    assert str(info.value) == (
        "`noise_window` must be > 0, got 0; `lr_annealed` must be > 0, got 0.0; "
        "`diverge_noise` must be >= 0, got -1.0; `trend_alpha` must be <= 1, got 1.5"
    )
    assert Thresholds().with_overrides({"diverge_points": "3"}).diverge_points == 3
    with pytest.raises(ValueError, match="'diverge_points' needs an integer"):
        Thresholds().with_overrides({"diverge_points": "2.5"})


# --- relative_slope ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0, 1.5), (1, 0.5)], -1.0),  # slope -1, median |value| 1
        ([(0, 2.0), (1, 1.5), (2, 1.0)], -0.5 / 1.5),  # slope -0.5, median 1.5
        ([(0, 3.0), (1, 2.5), (2, 2.0), (3, 1.5), (4, 9.0)], -0.5 / 2.5),  # outlier ignored
        ([(0, 1.0)], None),  # one point has no slope
        ([(3, 1.0), (3, 2.0)], None),  # no spread in epochs
        ([(0, 0.0), (1, 0.0)], None),  # zero median: no relative scale
        ([(0, -1.0), (1, 1.0)], 2.0),  # slope 2 over a median |value| of 1, not a mean of 0
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
    # Last 5 val points (epochs 3..7) 2, 2.5, 3, 2.5, 3: the ten pairwise slopes sorted are
    # -0.5, 0, 0, 1/6, 1/6, 0.25, 0.5 x4: Theil-Sen slope (1/6 + 1/4) / 2 = 5/24, median 2.5.
    # Train 5, 4, 3, 2, 1: slope -1, median 3.
    assert e.val_slope == pytest.approx(5 / 24 / 2.5)
    assert e.train_slope == pytest.approx(-1.0 / 3.0)
    # Mann-Kendall over the val window: 6 rises, 2 falls, 2 ties: S = 4; a fall is unlikely.
    assert e.val_p_falling > 0.5
    assert e.val_change == pytest.approx(4 * 5 / 24)
    assert e.nonfinite_epoch is None
    assert (e.lr_metric, e.final_lr, e.peak_lr, e.schedule_ended) == (None, None, None, False)


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
    # Before the last two: 1.0, 0.5, 0.6; differences -0.5, 0.1, median -0.2, MAD 0.3:
    # noise 1.4826 * 0.3 / sqrt(2) = 0.31. Line: max(1, 2 * 0.5, 0.5 + 5 * 0.31) = 2.07 < 3.
    judgement = judge(curves([1.0, 0.5, 0.6, 3.0, 40.0], [1.0, 0.6, 0.7, 0.7, 0.7]))
    assert judgement.reasons == (
        "train_loss exploded: its last 2 values are all >= 3, above its start 1, "
        "2x its minimum 0.5, and that minimum + 5 x noise 0.31",
    )


def test_validation_loss_explodes_when_no_training_loss_is_logged() -> None:
    judgement = judge(curves(None, [1.0, 0.5, 3.0, 3.5]))
    assert judgement.verdict == "diverging"
    assert judgement.reasons[0].startswith("val_loss exploded: its last 2 values are all >= 3,")


NOISY_HEAD = [2.0, 1.0, 1.5, 1.0]  # differences -1, 0.5, -0.5: MAD 0.5, noise 0.524


@pytest.mark.parametrize(
    ("train", "overrides", "diverging"),
    [
        ([1.0, 5.0, 6.0], {}, True),  # 5 and 6 > max(start 1, 2 x 1)
        ([1.0, 5.0], {}, False),  # nothing before the last two points
        ([1.0], {}, False),
        ([1.0, 0.4, 3.0], {}, False),  # one high point is a spike, not a rise
        ([1.0, 0.4, 3.0], {"diverge_points": 1}, True),  # unless one point is enough
        ([1.0, 0.4, 3.0, 3.0], {}, True),
        ([1.0, 0.4, 0.5, 3.0, 3.0], {"diverge_points": 3}, False),  # 0.5 is not up
        ([5.0, 0.4, 3.0, 3.0], {}, False),  # ends below its start
        ([1.0, 0.9, 1.1, 1.2], {}, False),  # above its start, under 2x its minimum
        ([1.0, 0.4, 1.0, 1.0], {}, False),  # back exactly at its start
        ([1.5, 1.0, 2.0, 2.0], {}, False),  # exactly 2x its minimum
        ([1.0, 0.25, 1.5, 1.5], {}, True),  # 1.5 > 2 * 0.25
        ([0.0, 0.0, 1.0, 1.0], {}, True),  # from zero to one
        ([0.0, 0.0, 1e-12, 1e-12], {}, False),  # a rise of 1e-12 is float noise
        ([1.0, 1.0, 1.0 + 1e-13, 1.0 + 1e-13], {"diverge_ratio": 1.0}, False),
        ([*NOISY_HEAD, 3.0, 3.0], {}, False),  # 3 < 1 + 5 x 0.524
        ([*NOISY_HEAD, 3.0, 3.0], {"diverge_noise": 1.0}, True),  # 3 > 1 + 0.524
        ([*NOISY_HEAD, 4.0, 4.0], {}, True),  # 4 > 3.62
        # The noise before the rise, over the last noise_window points only:
        ([1.0, 3.0, 0.5, 2.5, 0.5, 0.5, 0.5, 3.0, 3.0], {}, False),  # noise 2.1 over all 7
        ([1.0, 3.0, 0.5, 2.5, 0.5, 0.5, 0.5, 3.0, 3.0], {"noise_window": 3}, True),  # 0 over 3
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

FALLING = [1.5, 1.0, 0.5]  # slope -0.5 over a median of 1.0: exactly -50 % per epoch


def test_still_improving_reason_gives_the_numbers() -> None:
    # Exactly min_epochs=3 validation points are enough to judge. Mann-Kendall cannot reach
    # p < 0.05 with 3 points (S = -3, p = 0.15); a fall at every step is all they can show.
    judgement = judge(curves(FALLING, FALLING))
    assert judgement.verdict == "still_improving"
    assert judgement.reasons == (
        "validation loss still falling 50.0%/epoch over the last 3 points (Theil-Sen; fell at "
        "every step, p=0.15), 1 in all against noise 0; best epoch 2",
    )


def test_slope_at_the_improving_threshold_is_not_still_improving() -> None:
    judgement = judge(curves(FALLING, FALLING), Thresholds(improving_slope=0.5))
    assert judgement.verdict == "good_fit"
    assert judgement.reasons == ("no overfitting, divergence, plateau or open trend",)


def test_a_flat_validation_loss_is_not_still_improving() -> None:
    # Val slope is about -0.03 % per epoch with its best at the end: well inside +-1 %.
    assert judge(curves([1.0, 0.5, 0.3, 0.2], [1.0, 1.0, 1.0, 0.999])).verdict == "good_fit"


# 2.0, 1.75, 1.5, 1.625, 1.0: one rise among ten pairs, S = -8, p = 0.043. Theil-Sen slope
# -0.25 (the median of the ten pairwise slopes), median value 1.625; the line 2 - 0.25 x falls 1.0
# over the window. Residuals 0, 0, 0, 0.375, 0: their MAD is 0, so the noise is the mean absolute
# deviation 0.075 x 1.2533 = 0.094.
ONE_RISE = [2.0, 1.75, 1.5, 1.625, 1.0]


@pytest.mark.parametrize(
    ("overrides", "verdict"),
    [
        ({}, "still_improving"),
        ({"trend_alpha": 0.04}, "good_fit"),  # p = 0.043 is no longer significant
        ({"improving_noise": 11.0}, "good_fit"),  # fall 1.0 < 11 x noise 0.094
        ({"improving_noise": 10.0}, "still_improving"),  # fall 1.0 > 10 x noise 0.094
        ({"improving_slope": 0.16}, "good_fit"),  # -0.25 / 1.625 = -15.4 %/epoch
    ],
)
def test_still_improving_needs_significance_and_a_fall_above_the_noise(overrides, verdict) -> None:
    judgement = judge(curves(ONE_RISE, ONE_RISE), Thresholds(**overrides))
    assert judgement.verdict == verdict
    e = judgement.evidence
    assert e.val_p_falling == pytest.approx(0.0433, abs=1e-4)
    assert e.val_slope == pytest.approx(-0.25 / 1.625) and e.val_change == pytest.approx(-1.0)
    assert e.val_noise == pytest.approx(0.075 * 1.2533)


def test_a_p_value_at_trend_alpha_is_not_significant() -> None:
    p = judge(curves(ONE_RISE, ONE_RISE)).evidence.val_p_falling
    assert judge(curves(ONE_RISE, ONE_RISE), Thresholds(trend_alpha=p)).verdict == "good_fit"


def test_the_best_point_must_lie_in_the_trend_window() -> None:
    # The last five fall at every step, but the best (0.1 at epoch 0) is older: no open trend.
    val = [0.1, 1.0, 0.9, 0.8, 0.7, 0.6]
    judgement = judge(curves([1.0, 0.8, 0.7, 0.6, 0.5, 0.4], val), Thresholds(gl_threshold=1e9))
    assert judgement.verdict == "good_fit"
    widened = judge(curves([1.0, 0.8, 0.7, 0.6, 0.5, 0.4], val), Thresholds(trend_window=6))
    assert widened.evidence.best_epoch == 0 and widened.verdict != "still_improving"


@pytest.mark.parametrize(
    ("final_lr", "overrides", "ended"),
    [
        (0.005, {}, True),  # 5 % of its peak: exactly lr_annealed
        (0.0051, {}, False),
        (0.05, {"lr_annealed": 0.5}, True),
        (0.0, {}, True),
    ],
)
def test_schedule_ended_at_the_threshold(final_lr, overrides, ended) -> None:
    scripted = curves(FALLING, FALLING)
    scripted.lr_metric, scripted.lr = "lr-Adam", {0: 0.01, 10: 0.1, 20: final_lr}
    judgement = judge(scripted, Thresholds(**overrides))
    assert judgement.evidence.schedule_ended is ended
    assert judgement.evidence.peak_lr == 0.1 and judgement.evidence.final_lr == final_lr
    assert ("had annealed" in judgement.reasons[0]) is ended


def test_a_zero_learning_rate_throughout_has_not_ended() -> None:
    scripted = curves(FALLING, FALLING)
    scripted.lr_metric, scripted.lr = "lr-Adam", {0: 0.0, 1: 0.0}
    assert judge(scripted).evidence.schedule_ended is False


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
    # Train slope: Theil-Sen 0.125 per epoch over a median of 1.75: +7.14 %/epoch (rising).
    train = [1.5, 1.625, 1.75, 1.875, 2.0]
    judgement = judge(curves(train, [2.0] * 5, [0.36] * 5, [0.36] * 5))
    assert judgement.reasons == (
        "train accuracy 0.360 < 0.7, plateaued (+7.14%/epoch), small train-val gap",
    )


def test_underfitting_with_a_single_training_point() -> None:
    judgement = judge(curves([1.0], [1.0, 1.0, 1.0]))
    assert judgement.evidence.train_slope is None
    assert judgement.reasons == (
        "train loss still 100% of its first value, plateaued (+0.00%/epoch), small train-val gap",
    )


def test_loss_ratio_is_last_over_first() -> None:
    # 1.52 / 2.0 = 76 %; over the last five (1.5 x4, 1.52) most pairwise slopes are 0: +0.00 %.
    train = [2.0, 1.6, 1.5, 1.5, 1.5, 1.5, 1.52]
    judgement = judge(curves(train, train))
    assert judgement.reasons == (
        "train loss still 76% of its first value, plateaued (+0.00%/epoch), small train-val gap",
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
        (
            [1.0, 0.5, 0.3],
            None,
            3,
            "no validation loss; the training loss shows no divergence and with no class count "
            "known, no chance level to compare it with",
        ),
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


# --- no validation: chance level ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("train", "overrides", "verdict"),
    [
        ([1.5] * 5, {"chance_tolerance": 0.09}, "underfitting"),  # |1.5 - ln 4| / ln 4 = 8.2 %
        ([1.5] * 5, {"chance_tolerance": 0.08}, "insufficient_data"),
        ([1.5] * 5, {}, "insufficient_data"),  # default 5 %
        ([1.5, 1.44, 1.39, 1.34, 1.29], {"chance_tolerance": 0.09}, "insufficient_data"),  # falls
        (
            [1.5, 1.44, 1.39, 1.34, 1.29],
            {"chance_tolerance": 0.09, "plateau_slope": 0.04},
            "underfitting",
        ),
    ],
)
def test_chance_level_without_validation(train, overrides, verdict) -> None:
    scripted = curves(train, None)
    scripted.num_classes = 4
    assert judge(scripted, Thresholds(**overrides)).verdict == verdict


def test_chance_level_reasons() -> None:
    scripted = curves([1.5, 1.375, 1.375, 1.375, 1.375], None)
    scripted.num_classes = 4
    assert judge(scripted).reasons == (
        "train loss 1.375 stuck at chance level ln(4) = 1.386, plateaued (+0.00%/epoch); "
        "no validation loss",
    )
    scripted.train = {0: 1.0, 1: 0.5, 2: 0.25}
    assert judge(scripted).reasons == (
        "no validation loss; the training loss shows no divergence and is not stuck at chance "
        "level ln(4)",
    )
