"""Sort logged points into a Run's epoch series and step series.

Every reader reduces a log to points ``(step, epoch or None, value)`` per metric name; the rules here
decide, the same way for every format, whether a metric is per-epoch or per-step.

Example:
    >>> split_points("val_loss", [(5, 0, 1.5), (11, 1, 0.5)])
    ({0: 1.5, 1: 0.5}, None)
    >>> split_points("train_loss", [(1, 0, 3.0), (3, 0, 2.0), (5, 1, 1.0)])
    (None, {1: 3.0, 3: 2.0, 5: 1.0})
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping

Point = tuple[int, "int | None", float]
"""One logged value: (step, 0-based epoch or None when unknown, value)."""

IGNORED = frozenset({"epoch", "step", "hp_metric"})
"""Names that are bookkeeping, not metrics: readers never put them in a series.

The one exception: when a run has per-step metrics whose epochs are known, readers put the mapping
step -> epoch into ``Run.step_series["epoch"]``, so the engine can average a per-step loss per
epoch."""


def split_points(
    name: str, points: Iterable[Point]
) -> tuple[dict[int, float] | None, dict[int, float] | None]:
    """Return ``(epoch series, step series)`` for one metric; exactly one of them is None.

    A metric is per-step when its name ends in ``_step``, when no point has an epoch, or when it
    has several values in an epoch: in any epoch but the last, or more than two in the last (one
    extra value in the last epoch is the re-validation that ``trainer.validate`` logs after fit).
    Per-epoch values that share an epoch keep the last one logged.

    Example:
        >>> split_points("lr-Adam", [(0, None, 0.1), (6, None, 0.05)])
        (None, {0: 0.1, 6: 0.05})
    """
    points = list(points)
    with_epoch = [p for p in points if p[1] is not None]
    if is_per_step(name, Counter(epoch for _, epoch, _ in with_epoch)):
        return None, {step: value for step, _, value in points}
    return {epoch: value for _, epoch, value in with_epoch}, None


def is_per_step(name: str, epoch_counts: Mapping[int, int]) -> bool:
    """Whether a metric with ``epoch_counts`` (epoch -> number of values) is logged per step.

    Example:
        >>> is_per_step("val_loss", {0: 1, 1: 1, 2: 2}), is_per_step("loss", {0: 3, 1: 3})
        (False, True)
    """
    if name.endswith("_step") or not epoch_counts:
        return True
    last = max(epoch_counts)
    return epoch_counts[last] > 2 or any(n > 1 for e, n in epoch_counts.items() if e != last)


def looks_per_step(name: str, count: int, sparsest: int) -> bool:
    """Without an ``epoch`` metric: whether a metric with ``count`` points is per-step.

    It is when its name ends in ``_step`` or it has more than twice as many points as the
    sparsest metric of the run (``sparsest``), as a per-batch loss beside per-epoch ones does.

    Example:
        >>> looks_per_step("loss", 1000, 10), looks_per_step("val_loss", 10, 10)
        (True, False)
    """
    return name.endswith("_step") or count > 2 * sparsest + 1


def epochs_from_tag(
    points_by_name: Mapping[str, list[tuple[int, float]]], epoch_points: list[tuple[int, float]]
) -> dict[str, list[Point]]:
    """Attach epochs to ``(step, value)`` points with the ``epoch`` metric logged beside them.

    A value belongs to the epoch logged at its step, or else to the latest epoch logged before it.
    A metric that never shares a step with the epoch metric (a learning-rate monitor with its own
    step, say) gets no epochs, so it stays per-step.

    Example:
        >>> epochs_from_tag({"val_loss": [(5, 1.5), (11, 0.5)]}, [(5, 0.0), (11, 1.0)])
        {'val_loss': [(5, 0, 1.5), (11, 1, 0.5)]}
    """
    epoch_at: dict[int, int] = {}
    for step, value in epoch_points:
        if math.isfinite(value):
            epoch_at[step] = int(value)
    steps = sorted(epoch_at)
    out: dict[str, list[Point]] = {}
    for name, points in points_by_name.items():
        if not any(step in epoch_at for step, _ in points):
            out[name] = [(step, None, value) for step, value in points]
            continue
        mapped: list[Point] = []
        for step, value in points:
            epoch = epoch_at.get(step)
            if epoch is None:
                i = bisect.bisect_right(steps, step)
                epoch = epoch_at[steps[i - 1]] if i else None
            mapped.append((step, epoch, value))
        out[name] = mapped
    return out


def steps_as_epochs(
    points_by_name: Mapping[str, list[tuple[int, float]]],
) -> dict[str, list[Point]]:
    """Read steps as epochs when a log has no ``epoch`` metric, for the metrics that look per-epoch.

    A metric that :func:`looks_per_step` gets no epochs.

    Example:
        >>> steps_as_epochs({"loss": [(0, 1.0), (1, 0.5)], "val_loss": [(0, 1.2), (1, 0.9)]})
        {'loss': [(0, 0, 1.0), (1, 1, 0.5)], 'val_loss': [(0, 0, 1.2), (1, 1, 0.9)]}
    """
    counts = [len(p) for n, p in points_by_name.items() if p and not n.endswith("_step")]
    sparsest = min(counts, default=0)
    out: dict[str, list[Point]] = {}
    for name, points in points_by_name.items():
        per_step = looks_per_step(name, len(points), sparsest)
        out[name] = [(step, None if per_step else step, value) for step, value in points]
    return out
