"""Robust trends on short, noisy curves: Theil-Sen slope, Mann-Kendall test, noise level.

A loss logged once per epoch gives a handful of noisy points. A least-squares slope over five of
them reads a bounce as a trend; the tools here do not:

- the Theil-Sen slope (Sen 1968, https://doi.org/10.1080/01621459.1968.10480934) is the median
  of the slopes between every pair of points, so one outlier cannot tilt it;
- the Mann-Kendall test (Mann 1945; Kendall 1975) asks whether later points are lower (or
  higher) than earlier ones more often than chance allows; the one-sided p-value comes from the
  normal approximation of its statistic ``S`` with the tie-corrected variance and a continuity
  correction (within 0.013 of the exact p-value for 4 to 11 points without ties);
- noise is a robust standard deviation: ``1.4826 * MAD`` (the mean absolute deviation times
  1.2533 when the MAD is 0, as with values logged to few digits) of the residuals around a trend
  line (:attr:`Trend.noise`), or of a series' successive differences divided by ``sqrt(2)``
  (:func:`noise`: a steady trend moves every difference alike, so it does not count as noise).

Pure Python (no numpy, no scipy): ``lightreg diagnose`` starts fast and its series are short.

Example:
    >>> t = trend([(0, 1.00), (1, 0.93), (2, 0.90), (3, 0.84), (4, 0.80)])
    >>> round(t.slope, 3), round(t.p_falling, 3), t.p_falling < 0.05 < t.p_rising
    (-0.05, 0.014, True)
    >>> round(noise([0.74, 0.72, 0.75, 0.71, 0.73, 0.70]), 4)
    0.021
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

MAD_TO_SIGMA = 1.4826
"""``1 / Phi^-1(3/4)``: a Gaussian's standard deviation from its median absolute deviation."""
MEAN_AD_TO_SIGMA = 1.2533
"""``sqrt(pi / 2)``: a Gaussian's standard deviation from its mean absolute deviation."""


def robust_sd(values: Sequence[float]) -> float:
    """A standard deviation that outliers barely move: ``1.4826 * MAD`` (0.0 for no values).

    When more than half the values sit at the median (MAD 0, as with values logged to a few
    digits), the mean absolute deviation stands in: ``1.2533 * mean |x - median|``.

    Example:
        >>> robust_sd([1.0, 2.0, 3.0, 4.0, 100.0])
        1.4826
        >>> round(robust_sd([5.0, 5.0, 5.0, 6.0, 4.0]), 4)
        0.5013
    """
    if not values:
        return 0.0
    center = statistics.median(values)
    deviations = [abs(value - center) for value in values]
    mad = statistics.median(deviations)
    if mad > 0:
        return MAD_TO_SIGMA * mad
    return MEAN_AD_TO_SIGMA * statistics.fmean(deviations)


def theil_sen(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """``(slope, intercept)`` of the Theil-Sen line through ``(x, y)`` points, or None.

    None when fewer than two points have distinct ``x``.

    Example:
        >>> theil_sen([(0, 2.0), (1, 1.5), (2, 1.0), (3, 0.5), (4, 9.0)])  # an outlier: slope kept
        (-0.5, 2.0)
    """
    slopes = [(y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in combinations(points, 2) if x2 != x1]
    if not slopes:
        return None
    slope = statistics.median(slopes)
    return slope, statistics.median(y - slope * x for x, y in points)


def mann_kendall_s(values: Sequence[float]) -> tuple[int, float]:
    """Mann-Kendall ``S`` (rises minus falls over all ordered pairs) and its variance under H0.

    The variance carries the correction for ties.

    Example:
        >>> mann_kendall_s([3.0, 2.0, 2.0, 1.0])
        (-5, 7.666666666666667)
    """
    s = sum((b > a) - (b < a) for a, b in combinations(values, 2))
    n = len(values)
    ties = [count for count in _counts(values) if count > 1]
    variance = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    return s, variance


def _counts(values: Sequence[float]) -> list[int]:
    counts: dict[float, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return list(counts.values())


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def noise(values: Sequence[float]) -> float:
    """Robust standard deviation of the noise around a smooth curve (0.0 for under 3 values).

    :func:`robust_sd` of the successive differences, divided by ``sqrt(2)``: each difference of
    two independent noisy points has twice the noise variance, and a steady trend shifts all
    differences alike.

    Example:
        >>> noise([2.0, 1.5, 1.0, 0.5, 0.0])  # a straight line has no noise
        0.0
    """
    if len(values) < 3:
        return 0.0
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    return robust_sd(steps) / math.sqrt(2.0)


@dataclass(frozen=True)
class Trend:
    """A robust trend over a window of ``(epoch, value)`` points.

    Attributes:
        slope: Theil-Sen slope, value per epoch.
        intercept: Theil-Sen intercept (value at epoch 0).
        first / last: the first and last epoch of the window.
        level: the median of the absolute values (the scale of a relative slope).
        p_falling / p_rising: one-sided Mann-Kendall p-values for a falling / rising series.
        noise: :func:`robust_sd` of the residuals around the line.

    Example:
        >>> t = trend([(0, 2.0), (1, 1.8), (2, 1.6), (3, 1.4)])
        >>> t.fitted(3), round(t.change, 3), round(t.relative_slope, 4)
        (1.4, -0.6, -0.1176)
    """

    slope: float
    intercept: float
    first: float
    last: float
    level: float
    p_falling: float
    p_rising: float
    noise: float

    def fitted(self, x: float) -> float:
        """The trend line's value at epoch ``x``.

        Example:
            >>> Trend(-0.5, 2.0, 0, 2, 1.0, 0.5, 0.5, 0.0).fitted(2)
            1.0
        """
        return self.intercept + self.slope * x

    @property
    def change(self) -> float:
        """How much the trend line moves across the window (negative: falls).

        Example:
            >>> Trend(-0.5, 2.0, 0, 2, 1.0, 0.5, 0.5, 0.0).change
            -1.0
        """
        return self.slope * (self.last - self.first)

    @property
    def relative_slope(self) -> float | None:
        """The slope divided by :attr:`level`: relative change per epoch (None for a zero level).

        Example:
            >>> Trend(-0.5, 2.0, 0, 2, 0.0, 0.5, 0.5, 0.0).relative_slope is None
            True
        """
        return self.slope / self.level if self.level else None


def trend(points: Sequence[tuple[int, float]]) -> Trend | None:
    """Theil-Sen slope and Mann-Kendall p-values of ``points`` (None under two distinct epochs).

    Example:
        >>> t = trend([(0, 0.74), (1, 0.72), (2, 0.75), (3, 0.71), (4, 0.73)])
        >>> t.p_falling > 0.05  # a bounce, not a fall
        True
    """
    line = theil_sen(points)
    if line is None:
        return None
    ordered = sorted(points)
    values = [value for _, value in ordered]
    s, variance = mann_kendall_s(values)
    if variance > 0:
        sd = math.sqrt(variance)
        p_falling, p_rising = _normal_cdf((s + 1) / sd), 1.0 - _normal_cdf((s - 1) / sd)
    else:
        p_falling = p_rising = 1.0
    slope, intercept = line
    return Trend(
        slope=slope,
        intercept=intercept,
        first=ordered[0][0],
        last=ordered[-1][0],
        level=statistics.median(abs(value) for value in values),
        p_falling=min(1.0, p_falling),
        p_rising=min(1.0, p_rising),
        noise=robust_sd([value - (intercept + slope * x) for x, value in ordered]),
    )
