"""Robust trend tools against scipy's reference implementations (scipy: a test-only import)."""

from __future__ import annotations

import math
import random

import pytest

from lightreg.diagnose.trend import mann_kendall_s, noise, robust_sd, theil_sen, trend


def series(rng: random.Random, n: int) -> list[float]:
    return [round(rng.random(), 3) for _ in range(n)]


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13])
def test_theil_sen_slope_matches_scipy(n: int) -> None:
    from scipy.stats import theilslopes

    rng = random.Random(n)
    for _ in range(20):
        values = series(rng, n)
        slope, _ = theil_sen(list(enumerate(values)))
        assert slope == pytest.approx(theilslopes(values, range(n)).slope, abs=1e-12)


def test_mann_kendall_p_is_within_0_013_of_the_exact_p() -> None:
    from scipy.stats import kendalltau

    rng = random.Random(0)
    for n in range(4, 12):
        for _ in range(30):
            values = [rng.random() for _ in range(n)]  # no ties: the exact test applies
            t = trend(list(enumerate(values)))
            falling = kendalltau(range(n), values, alternative="less", method="exact").pvalue
            rising = kendalltau(range(n), values, alternative="greater", method="exact").pvalue
            assert abs(t.p_falling - falling) < 0.013 and abs(t.p_rising - rising) < 0.013


def test_mann_kendall_tie_correction_matches_the_textbook_variance() -> None:
    # Ties {2.0: 2, 5.0: 3}; n = 7: (7*6*19 - 2*1*9 - 3*2*11) / 18 = (798 - 18 - 66) / 18.
    s, variance = mann_kendall_s([1.0, 2.0, 2.0, 5.0, 5.0, 5.0, 0.0])
    assert variance == pytest.approx(714 / 18)
    assert s == 11 - 6  # the first six: 11 rising pairs, 4 tied; 6 falling ones to the last 0


def test_a_constant_series_has_no_trend() -> None:
    t = trend([(0, 1.0), (1, 1.0), (2, 1.0)])
    assert (t.slope, t.p_falling, t.p_rising, t.noise) == (0.0, 1.0, 1.0, 0.0)
    assert trend([(4, 1.0), (4, 2.0)]) is None


def test_noise_estimates_the_sd_of_noise_around_a_trend() -> None:
    rng = random.Random(1)
    values = [5.0 - 0.3 * i + rng.gauss(0.0, 0.1) for i in range(4000)]
    assert noise(values) == pytest.approx(0.1, rel=0.05)
    fitted = trend(list(enumerate(values[:400])))
    assert fitted.noise == pytest.approx(0.1, rel=0.15)
    assert fitted.slope == pytest.approx(-0.3, abs=0.002)


def test_robust_sd_ignores_outliers_and_survives_a_zero_mad() -> None:
    assert robust_sd([1.0, 2.0, 3.0, 4.0, 1e9]) == pytest.approx(1.4826)
    # Most values equal (a loss logged to few digits): the mean absolute deviation stands in.
    assert robust_sd([0.043, 0.043, 0.043, 0.044, 0.042]) == pytest.approx(1.2533 * 0.0004)
    assert robust_sd([]) == 0.0 and noise([1.0, 9.0]) == 0.0


def test_relative_slope_is_per_median_value() -> None:
    t = trend([(0, 2.0), (1, 1.5), (2, 1.0)])
    assert t.relative_slope == pytest.approx(-0.5 / 1.5)
    assert t.change == pytest.approx(-1.0) and t.fitted(2) == pytest.approx(1.0)
    # S = -3, variance 3 * 2 * 11 / 18: p = Phi((-3 + 1) / sqrt(11 / 3)), continuity-corrected.
    assert t.p_falling == pytest.approx(0.5 * math.erfc(2 / math.sqrt(11 / 3) / math.sqrt(2)))
