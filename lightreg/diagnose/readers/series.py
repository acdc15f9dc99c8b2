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
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, repeat
from typing import Any

from lightreg.diagnose.run import Run

Point = tuple[int, "int | None", float]
"""One logged value: (step, 0-based epoch or None when unknown, value)."""

IGNORED = frozenset({"epoch", "step", "hp_metric"})
"""Names that are bookkeeping, not metrics: readers never put them in a series.

The one exception: when a run has per-step metrics whose epochs are known, readers put the mapping
step -> epoch into ``Run.step_series["epoch"]``, so the engine can average a per-step loss per
epoch."""

STEPS_AS_EPOCHS = "steps read as epochs"
"""How a reader's warning ends when a log without epochs has its steps read as epochs."""

MAX_STEP_POINTS = 50_000
"""Per-step values kept per metric: past twice this many, one value in 2, then in 4, ... is kept.

So a run's memory follows its epochs, not its file: epoch values are always all kept, and a per-step
series (only ever averaged per epoch) keeps an even sample, as TensorBoard keeps a sample of 10,000
scalars per tag."""


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


def epochs_at_steps(steps: Iterable[int], known: Mapping[int, int]) -> dict[int, int]:
    """Step -> epoch for each of ``steps``, from ``known`` (step -> epoch where an epoch was logged).

    A step gets the epoch logged at it, else the first epoch whose last known step is at or after
    it: epoch-level values (validation, ``*_epoch``) are logged at an epoch's last step, so a
    training step between two of them belongs to the later epoch. Steps after the last known one
    get none.

    Example:
        >>> epochs_at_steps([0, 3, 5, 7, 11, 12], {5: 0, 11: 1})
        {0: 0, 3: 0, 5: 0, 7: 1, 11: 1}
    """
    last: dict[int, int] = {}
    for step, epoch in known.items():
        last[epoch] = max(step, last.get(epoch, step))
    ends = sorted((step, epoch) for epoch, step in last.items())
    end_steps = [step for step, _ in ends]
    out: dict[int, int] = {}
    for step in steps:
        epoch = known.get(step)
        if epoch is None:
            i = bisect.bisect_left(end_steps, step)
            if i == len(ends):
                continue
            epoch = ends[i][1]
        out[step] = epoch
    return out


def _epochs_from_epoch_level(run: Run) -> dict[int, int]:
    """Without any epoch record: the steps at which the epoch-level series were logged, as epochs.

    Readers read steps as epochs then (:func:`steps_as_epochs`). When the run also has per-step
    series and those steps are not already 0, 1, 2, ... but span the per-step ones (global steps,
    as a ``SummaryWriter`` or ``log_metrics`` at ``global_step`` writes), epoch ``i`` is the
    ``i``-th such step: the series are renumbered and a warning says so. Else nothing is known.
    """
    logged = sorted({step for points in run.series.values() for step in points})
    per_step = [max(p) for name, p in run.step_series.items() if p and name != "epoch"]
    if not logged or not per_step or logged == list(range(len(logged))):
        return {}
    if 2 * logged[-1] < max(per_step):  # epoch numbers beside global steps: no common axis
        return {}
    rank = {step: i for i, step in enumerate(logged)}
    run.series = {
        name: {rank[step]: value for step, value in points.items()}
        for name, points in run.series.items()
    }
    run.warnings = [w for w in run.warnings if not w.endswith(STEPS_AS_EPOCHS)]
    run.warnings.append(
        "no epoch record: epoch i is the i-th step with epoch-level values (validation)"
    )
    return rank


def attach_step_epochs(run: Run, known: Mapping[int, int] | None) -> None:
    """Give the run's per-step series their epochs: ``run.step_series["epoch"]`` (step -> epoch).

    ``known`` is what the log says (an ``epoch`` column, tag or metric: step -> epoch), or None
    when it has no epoch record, in which case the steps of the epoch-level values stand in (see
    :func:`_epochs_from_epoch_level`). Every step of a per-step series gets an epoch by
    :func:`epochs_at_steps`, so that the engine can average a per-step loss per epoch. One rule for
    every reader.

    Example:
        >>> run = Run("r", "tensorboard", {"val_loss": {5: 1.0, 11: 0.5}},
        ...           step_series={"loss": {1: 3.0, 5: 2.0, 8: 1.0, 11: 0.5}})
        >>> attach_step_epochs(run, None)
        >>> run.series, run.step_series["epoch"]
        ({'val_loss': {0: 1.0, 1: 0.5}}, {1: 0, 5: 0, 8: 1, 11: 1})
    """
    steps = sorted({s for name, p in run.step_series.items() if name != "epoch" for s in p})
    if not steps:
        return
    if not known:
        known = _epochs_from_epoch_level(run)
    mapping = epochs_at_steps(steps, known)
    if mapping:
        run.step_series["epoch"] = mapping


def thinning_stride(count: int) -> int:
    """The stride :class:`Thinned` ends with after ``count`` items: a power of two.

    Example:
        >>> thinning_stride(10), thinning_stride(2 * MAX_STEP_POINTS)
        (1, 2)
    """
    stride = 1
    while -(-count // stride) >= 2 * MAX_STEP_POINTS:
        stride *= 2
    return stride


def thinning_note(name: str, seen: int, stride: int) -> str:
    """The warning for a per-step series of ``seen`` values of which 1 in ``stride`` was kept.

    Example:
        >>> thinning_note("loss", 200_000, 2)
        "'loss': 200,000 per-step values, 1 in 2 kept"
    """
    return f"'{name}': {seen:,} per-step values, 1 in {stride} kept"


class Thinned:
    """Parallel columns counted as they stream by, of which every ``stride``-th row is kept (fewer
    than twice the cap).

    When the kept rows reach ``2 * MAX_STEP_POINTS``, every second one is dropped and the stride
    doubles, so the sample stays even over the whole stream: its rows are those whose index is a
    multiple of :func:`thinning_stride`. Columns, not tuples: a kept row costs no object of its own.

    Example:
        >>> sample = Thinned(2)
        >>> sample.extend([0, 1, 2], ["a", "b", "c"])
        >>> sample.extend([3], ["d"])
        >>> sample.rows(), sample.stride, sample.seen
        ([(0, 'a'), (1, 'b'), (2, 'c'), (3, 'd')], 1, 4)
    """

    def __init__(self, width: int) -> None:
        self.columns: list[list[Any]] = [[] for _ in range(width)]
        self.stride = 1
        self.seen = 0

    def extend(self, *columns: Sequence[Any]) -> None:
        """Count the rows of ``columns``, keeping those whose index in the stream is a multiple of
        the stride.

        Example:
            >>> sample = Thinned(1)
            >>> sample.stride = 2
            >>> sample.extend("abcde")
            >>> sample.columns
            [['a', 'c', 'e']]
        """
        start = (-self.seen) % self.stride
        for kept, new in zip(self.columns, columns, strict=True):
            kept.extend(new[start :: self.stride])
        self.seen += len(columns[0])
        while len(self.columns[0]) >= 2 * MAX_STEP_POINTS:
            for kept in self.columns:
                del kept[1::2]
            self.stride *= 2

    def rows(self) -> list[tuple[Any, ...]]:
        """The kept rows, as tuples.

        Example:
            >>> Thinned(2).rows()
            []
        """
        return list(zip(*self.columns, strict=True))


class MetricStream:
    """One metric's points, gathered as a log streams by: what :func:`split_points` needs, bounded.

    Per-epoch values (the last one of each epoch) and the number of values per epoch are kept
    exactly; the points themselves, needed only when the metric turns out per-step, are
    :class:`Thinned`.

    Example:
        >>> stream = MetricStream()
        >>> stream.add_many([5, 11], [0, 1], [1.5, 0.5])
        >>> stream.split("val_loss")
        ({0: 1.5, 1: 0.5}, None)
    """

    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.counts: Counter[int] = Counter()
        self.points = Thinned(3)

    def add_many(
        self, steps: Sequence[int], epochs: Sequence[int | None], values: Sequence[float]
    ) -> None:
        """Add points ``(steps[i], epochs[i], values[i])`` in logging order.

        Example:
            >>> stream = MetricStream()
            >>> stream.add_many([3, 4], [None, 0], [0.1, 0.2])
            >>> stream.points.rows(), stream.counts, stream.last
            ([(3, None, 0.1), (4, 0, 0.2)], Counter({0: 1}), {0: 0.2})
        """
        if None in epochs:
            known = list(map(operator.is_not, epochs, repeat(None)))
            epochs_known = list(compress(epochs, known))
            self.last.update(zip(epochs_known, compress(values, known), strict=True))
            self.counts.update(epochs_known)
        else:
            self.last.update(zip(epochs, values, strict=True))
            self.counts.update(epochs)
        self.points.extend(steps, epochs, values)

    def split(self, name: str) -> tuple[dict[int, float] | None, dict[int, float] | None]:
        """:func:`split_points` of the points added (the step series from the sample kept).

        Example:
            >>> stream = MetricStream()
            >>> stream.add_many([1, 3, 5], [0, 0, 1], [3.0, 2.0, 1.0])
            >>> stream.split("train_loss")
            (None, {1: 3.0, 3: 2.0, 5: 1.0})
        """
        if is_per_step(name, self.counts):
            steps, _, values = self.points.columns
            return None, dict(zip(steps, values, strict=True))
        return dict(self.last), None

    def thinning_note(self, name: str) -> str | None:
        """The warning for a per-step series that was thinned, else None.

        Example:
            >>> MetricStream().thinning_note("loss") is None
            True
        """
        if self.points.stride == 1:
            return None
        return thinning_note(name, self.points.seen, self.points.stride)
