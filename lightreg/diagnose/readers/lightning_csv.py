"""Read a Lightning ``CSVLogger`` run: ``version_N/metrics.csv`` plus its config.

Training and validation metrics sit on different rows with the same step; they are merged by
epoch. Column names are kept as logged (``train_loss_epoch``, ``val_loss/dataloader_idx_1``,
``train_loss_0``): the engine decides what a name means. Per-step columns (``*_step``, or several
values per epoch) and rows without an epoch (LearningRateMonitor's ``lr-Adam``) go to
``Run.step_series``; see :func:`lightreg.diagnose.readers.series.split_points`. Per-step
metrics get ``Run.step_series["epoch"]`` (step -> epoch) from the ``epoch`` column, also for rows
without an epoch (``logger.log_metrics`` at ``global_step``): see
:func:`~lightreg.diagnose.readers.series.attach_step_epochs`.

Example:
    >>> run = read_lightning_csv(Path("tests/fixtures/readers/lightning_csv/version_0"), ".")
    >>> run.series["val_loss"][0] > run.series["val_loss"][3]
    True
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from itertools import compress, repeat
from pathlib import Path
from typing import Any, overload

from lightreg.diagnose.readers.hparams import find_config
from lightreg.diagnose.readers.limits import MAX_FILE_BYTES
from lightreg.diagnose.readers.series import IGNORED, MetricStream, Thinned, attach_step_epochs
from lightreg.diagnose.readers.table import epoch_column, open_table, to_float
from lightreg.diagnose.run import LogReadError, Run


def _as_int(cell: str) -> int | None:
    """A step or epoch cell as an int: a finite number, cut to an int; else None."""
    value = to_float(cell)
    return int(value) if value is not None and math.isfinite(value) else None


def _epochs(cells: list[str]) -> tuple[list[int | None], bool]:
    """An epoch column (few distinct cells, each parsed once), and whether every epoch is known.

    Example:
        >>> _epochs(["0", "0", "", "1"])
        ([0, 0, None, 1], False)
    """
    if cells.count(cells[0]) == len(cells):  # one epoch all through the block, as is usual
        epoch = _as_int(cells[0])
        return [epoch] * len(cells), epoch is not None
    parsed = {cell: _as_int(cell) for cell in set(cells)}
    return list(map(parsed.__getitem__, cells)), None not in parsed.values()


class _Steps(Sequence[int]):
    """The steps of a block's rows (or of those a mask selects), parsed only where sliced.

    A metric's points are thinned (one in ``stride`` kept) before anything asks for their steps,
    so most step cells of a long run are never parsed. A cell that is no number stands for its
    row's index in the table; without a step column, every row does.
    """

    def __init__(self, cells: list[str] | None, rows: range, mask: list[Any] | None = None):
        self.cells, self.base, self.mask = cells, rows, mask

    def rows(self) -> Sequence[int]:
        """The table indices of the rows."""
        return self.base if self.mask is None else list(compress(self.base, self.mask))

    def __len__(self) -> int:
        return len(self.rows()) if self.cells is None else len(self.cells)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> list[int]: ...

    def __getitem__(self, index: int | slice) -> int | list[int]:
        if isinstance(index, int):
            return self[index : index + 1 or None][0]
        if self.cells is None:
            return list(self.rows()[index])
        cells = self.cells[index]
        try:
            return list(map(int, cells))
        except ValueError:
            rows = self.rows()[index]
            steps = map(_as_int, cells)
            return [row if step is None else step for step, row in zip(steps, rows, strict=True)]

    def select(self, mask: list[Any]) -> _Steps:
        """The steps of the rows where ``mask`` is true (of a block's steps, not a selection).

        Example:
            >>> _Steps(["5", "x", "7"], range(10, 13)).select([1, 1, 0])[:]
            [5, 11]
        """
        cells = None if self.cells is None else list(compress(self.cells, mask))
        return _Steps(cells, self.base, mask)


def _known(epochs: list[int | None]) -> list[bool]:
    """Which ``epochs`` are known (not None), computed in C."""
    return list(map(operator.is_not, epochs, repeat(None)))


def _values(
    cells: list[str], steps: _Steps, epochs: list[int | None], stream: MetricStream
) -> None:
    """Add a metric column's non-empty cells that are numbers to ``stream``."""
    filled = list(filter(None, cells)) if "" in cells else cells
    if not filled:
        return
    try:
        values = list(map(float, filled))
    except ValueError:  # some cell is no number: find them one by one
        numbers = [to_float(cell) for cell in cells]
        known = _known(numbers)
        values = list(compress(numbers, known))
        stream.add_many(steps.select(known), list(compress(epochs, known)), values)
        return
    if len(filled) == len(cells):
        stream.add_many(steps, epochs, values)
    else:
        stream.add_many(steps.select(cells), list(compress(epochs, cells)), values)


def read_lightning_csv(
    folder: Path, rel: str, file: Path | None = None, max_bytes: int = MAX_FILE_BYTES
) -> Run:
    """Read ``folder/metrics.csv`` (or ``file``) into a :class:`Run` whose path is ``rel``.

    The table is streamed, a block of rows at a time; memory follows the epochs kept, not
    the file (see :class:`~lightreg.diagnose.readers.series.MetricStream`).

    Raises:
        LogReadError: the file is empty, binary, over ``max_bytes``, not a Lightning table, or
            holds no values.

    Example:
        >>> read_lightning_csv(Path("no/such/version_0"), "version_0")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    with open_table(file or folder / "metrics.csv", max_bytes) as table:
        if table.kind != "lightning_csv":
            raise LogReadError("not a Lightning CSVLogger log: no step column")
        epoch_col = epoch_column(table.header)
        step_col = next((i for i, n in enumerate(table.header) if n.lower() == "step"), None)
        kept = [
            (i, name)
            for i, name in enumerate(table.header)
            if name and name not in IGNORED and i not in (epoch_col, step_col)
        ]
        streams = {name: MetricStream() for _, name in kept}
        columns = [(i, streams[name]) for i, name in kept]
        epoch_rows = Thinned(2)
        first_row = 0
        for cells in table.blocks:
            count = len(cells[0])
            epochs, all_known = (
                _epochs(cells[epoch_col]) if epoch_col is not None else ([None] * count, False)
            )
            step_cells = cells[step_col] if step_col is not None else None
            steps = _Steps(step_cells, range(first_row, first_row + count))
            if not all_known:
                known = _known(epochs)
                epoch_rows.extend(steps.select(known), list(compress(epochs, known)))
            else:
                epoch_rows.extend(steps, epochs)
            for i, stream in columns:
                _values(cells[i], steps, epochs, stream)
            first_row += count
    run = Run(path=rel, format="lightning_csv", warnings=list(table.warnings))
    per_step: list[MetricStream] = []
    for name, stream in streams.items():
        if not stream.points.seen:
            continue
        series, step_series = stream.split(name)
        if series is not None:
            run.series[name] = series
        if step_series is not None:
            run.step_series[name] = step_series
            per_step.append(stream)
            note = stream.thinning_note(name)
            if note is not None:
                run.warnings.append(note)
    if not run.series and not run.step_series:
        raise LogReadError("no metric values")
    if run.step_series:
        epoch_of_step = dict(epoch_rows.rows())
        if epoch_rows.stride > 1:  # a sample: give every step kept its epoch
            for stream in per_step:
                kept_steps, kept_epochs, _ = stream.points.columns
                pairs = zip(kept_steps, kept_epochs, strict=True)
                epoch_of_step.update(compress(pairs, _known(kept_epochs)))
        attach_step_epochs(run, epoch_of_step)
    run.config, run.config_source, config_warnings = find_config(folder)
    run.warnings.extend(config_warnings)
    return run
