"""Rank sweep runs: by verdict tier first, then by a validation metric.

The rule (a pure function; ``docs/sweep.md`` documents it):

1. Verdict tier: ``good_fit`` and ``still_improving`` (healthy) come first; then
   ``overfitting`` and ``underfitting``; then ``insufficient_data`` (too few epochs to judge);
   then ``diverging``; runs that failed or never finished come last.
2. Within a tier: the lower best validation loss (``by="val_loss"``, the default; the validation
   loss is plain cross-entropy whatever the label smoothing, so it compares across
   configurations), or the higher validation accuracy at that epoch (``by="val_acc"``). The other
   metric breaks ties; a missing (NaN) value sorts last.
3. Still tied: the order of the plan (presets as given, then the grid's order).

Example:
    >>> rows = [Entry("a", "overfitting", val_loss=0.2), Entry("b", "good_fit", val_loss=0.5),
    ...         Entry("c", "good_fit", val_loss=0.4), Entry("d", "failed")]
    >>> [e.slug for e in rank(rows)]
    ['c', 'b', 'a', 'd']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

RankBy = Literal["val_loss", "val_acc"]
TIERS: dict[str, int] = {
    "good_fit": 0,
    "still_improving": 0,
    "overfitting": 1,
    "underfitting": 1,
    "insufficient_data": 2,
    "diverging": 3,
}
FAILED_TIER = 4


@dataclass(frozen=True)
class Entry:
    """One sweep run as ranked and shown.

    Attributes:
        slug: the configuration's name.
        verdict: the diagnose verdict, or ``failed`` / ``not_run``.
        best_epoch: the epoch of the lowest validation loss (0-based).
        val_loss / val_acc: validation loss and accuracy at ``best_epoch``.
        gap: final validation minus training loss, as the diagnose engine measures it.
        run_dir: the run's folder.
        note: the diagnosis summary, or why the run failed.

    Example:
        >>> Entry("none", "good_fit", val_loss=0.3).tier
        0
    """

    slug: str
    verdict: str
    best_epoch: int | None = None
    val_loss: float = math.nan
    val_acc: float = math.nan
    gap: float = math.nan
    run_dir: str | None = None
    note: str = ""

    @property
    def tier(self) -> int:
        """0 (healthy) to 4 (failed or not run); see the module docstring.

        Example:
            >>> Entry("a", "diverging").tier, Entry("b", "not_run").tier
            (3, 4)
        """
        return TIERS.get(self.verdict, FAILED_TIER)


def _low_first(value: float) -> float:
    return math.inf if math.isnan(value) else value


def rank_key(entry: Entry, by: RankBy = "val_loss") -> tuple[int, float, float]:
    """The sort key of ``entry``: tier, then the chosen metric, then the other one.

    Example:
        >>> rank_key(Entry("x", "overfitting", val_loss=0.5, val_acc=0.9), by="val_acc")
        (1, -0.9, 0.5)
    """
    loss, acc = _low_first(entry.val_loss), _low_first(-entry.val_acc)
    return (entry.tier, loss, acc) if by == "val_loss" else (entry.tier, acc, loss)


def rank(entries: Sequence[Entry], by: RankBy = "val_loss") -> list[Entry]:
    """``entries`` best first (a stable sort: ties keep their order).

    Raises:
        ValueError: when ``by`` is neither ``val_loss`` nor ``val_acc``.

    Example:
        >>> rows = [Entry("a", "good_fit", val_acc=0.8), Entry("b", "good_fit", val_acc=0.9)]
        >>> [e.slug for e in rank(rows, by="val_acc")]
        ['b', 'a']
    """
    if by not in ("val_loss", "val_acc"):
        raise ValueError(f"`by` can be val_loss or val_acc, got {by!r}")
    return sorted(entries, key=lambda entry: rank_key(entry, by))
