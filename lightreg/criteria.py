"""Prechelt's early-stopping criteria, as pure functions on plain float sequences.

Lutz Prechelt, "Early Stopping - But When?" (1998), https://doi.org/10.1007/3-540-49430-8_3.
Shared by :class:`lightreg.callbacks.OverfittingMonitor` (live, during training) and by
``lightreg diagnose`` (after the fact); it imports neither torch nor lightning.

Example:
    >>> generalization_loss([1.0, 0.8, 0.9])
    12.5
    >>> round(training_progress([1.0, 0.9, 0.8, 0.7, 0.6]), 3)
    333.333
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "generalization_loss",
    "generalization_loss_series",
    "training_progress",
    "progress_quotient",
    "up_count",
]


def generalization_loss(val_errors: Sequence[float]) -> float:
    """``GL(t) = 100 * (E_va(t) / min_{t'<=t} E_va(t') - 1)`` for the last epoch ``t``.

    Args:
        val_errors: validation error per epoch, oldest first (at least one value).

    Raises:
        ValueError: when ``val_errors`` is empty.

    Example:
        >>> generalization_loss([2.0, 1.0, 1.5])
        50.0
    """
    if not val_errors:
        raise ValueError("`val_errors` must hold at least one value, got an empty sequence")
    best = min(val_errors)
    current = val_errors[-1]
    if best <= 0:
        return 0.0 if current <= best else math.inf
    return 100.0 * (current / best - 1.0)


def generalization_loss_series(val_errors: Sequence[float]) -> list[float]:
    """GL at every epoch: element ``t`` is ``generalization_loss(val_errors[: t + 1])``.

    Example:
        >>> generalization_loss_series([1.0, 0.5, 0.75])
        [0.0, 0.0, 50.0]
    """
    series: list[float] = []
    best = math.inf
    for value in val_errors:
        best = min(best, value)
        if best <= 0:
            series.append(0.0 if value <= best else math.inf)
        else:
            series.append(100.0 * (value / best - 1.0))
    return series


def training_progress(train_errors: Sequence[float], strip: int = 5) -> float:
    """``P_k(t) = 1000 * (sum(strip) / (k * min(strip)) - 1)`` over the last ``strip`` epochs.

    High while training error still falls fast; near zero once it has flattened.

    Args:
        train_errors: training error per epoch, oldest first.
        strip: the strip length ``k`` (Prechelt used 5).

    Raises:
        ValueError: when ``strip < 1`` or fewer than ``strip`` values are given.

    Example:
        >>> training_progress([1.0, 1.0, 1.0], strip=3)
        0.0
    """
    if strip < 1:
        raise ValueError(f"`strip` must be >= 1, got {strip}")
    if len(train_errors) < strip:
        raise ValueError(f"`train_errors` needs at least {strip} values, got {len(train_errors)}")
    window = list(train_errors[-strip:])
    low = min(window)
    if low <= 0:
        return 0.0 if max(window) <= 0 else math.inf
    return 1000.0 * (sum(window) / (strip * low) - 1.0)


def progress_quotient(
    val_errors: Sequence[float], train_errors: Sequence[float], strip: int = 5
) -> float:
    """``PQ(t) = GL(t) / P_k(t)``: generalization loss per unit of training progress.

    Returns ``inf`` when training has stopped progressing (``P_k = 0``) while GL > 0,
    and 0.0 when both are zero.

    Example:
        >>> round(progress_quotient([1.0, 1.2], [1.0, 0.9, 0.8, 0.7, 0.6]), 4)
        0.06
    """
    gl = generalization_loss(val_errors)
    progress = training_progress(train_errors, strip)
    if progress == 0:
        return 0.0 if gl == 0 else math.inf
    return gl / progress


def up_count(val_errors: Sequence[float], strip: int = 5) -> int:
    """How many successive strips, counted back from the last strip end, saw validation error rise.

    Prechelt's ``UP_s`` stops when this count reaches ``s``. The error is compared at strip
    ends (epochs ``k-1, 2k-1, ...``, 0-based); only complete strips count.

    Raises:
        ValueError: when ``strip < 1``.

    Example:
        >>> up_count([5, 4, 3, 4, 5, 6], strip=1)
        3
        >>> up_count([3, 2, 1, 0, 1, 2, 3, 4], strip=2)
        2
    """
    if strip < 1:
        raise ValueError(f"`strip` must be >= 1, got {strip}")
    ends = [val_errors[i] for i in range(strip - 1, len(val_errors), strip)]
    count = 0
    for previous, current in zip(reversed(ends[:-1]), reversed(ends[1:]), strict=True):
        if current > previous:
            count += 1
        else:
            break
    return count
