"""Read a Lightning ``CSVLogger`` run: ``version_N/metrics.csv`` plus its config.

Training and validation metrics sit on different rows with the same step; they are merged by
epoch. Column names are kept as logged (``train_loss_epoch``, ``val_loss/dataloader_idx_1``,
``train_loss_0``): the engine decides what a name means. Per-step columns (``*_step``, or several
values per epoch) and rows without an epoch (LearningRateMonitor's ``lr-Adam``) go to
``Run.step_series``; see :func:`lightreg.diagnose.readers.series.split_points`. The ``epoch``
column becomes ``Run.step_series["epoch"]`` (step -> epoch) when there are per-step metrics.

Example:
    >>> run = read_lightning_csv(Path("tests/fixtures/readers/lightning_csv/version_0"), ".")
    >>> run.series["val_loss"][0] > run.series["val_loss"][3]
    True
"""

from __future__ import annotations

import math
from pathlib import Path

from lightreg.diagnose.readers.hparams import find_config
from lightreg.diagnose.readers.series import IGNORED, Point, split_points
from lightreg.diagnose.readers.table import parse_table, read_text, table_kind, to_float
from lightreg.diagnose.run import LogReadError, Run


def read_lightning_csv(folder: Path, rel: str, file: Path | None = None) -> Run:
    """Read ``folder/metrics.csv`` (or ``file``) into a :class:`Run` whose path is ``rel``.

    Raises:
        LogReadError: the file is empty, binary, not a Lightning table, or holds no values.

    Example:
        >>> read_lightning_csv(Path("no/such/version_0"), "version_0")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    table = parse_table(read_text(file or folder / "metrics.csv"))
    if table_kind(",".join(table.header)) != "lightning_csv":
        raise LogReadError("not a Lightning CSVLogger log: no step column")
    epoch_col, step_col = table.column("epoch"), table.column("step")
    points: dict[str, list[Point]] = {
        name: [] for name in table.header if name not in IGNORED and name
    }
    columns = [(i, points[name]) for i, name in enumerate(table.header) if name in points]
    epoch_of_step: dict[int, int] = {}
    for row_index, row in enumerate(table.rows):
        epoch = to_float(row[epoch_col]) if epoch_col is not None else None
        step = to_float(row[step_col]) if step_col is not None else None
        step_int = int(step) if step is not None and math.isfinite(step) else row_index
        epoch_int = int(epoch) if epoch is not None and math.isfinite(epoch) else None
        if epoch_int is not None:
            epoch_of_step[step_int] = epoch_int
        for i, sink in columns:
            value = to_float(row[i])
            if value is not None:
                sink.append((step_int, epoch_int, value))
    run = Run(path=rel, format="lightning_csv", warnings=list(table.warnings))
    for name, named_points in points.items():
        if not named_points:
            continue
        series, steps = split_points(name, named_points)
        if series is not None:
            run.series[name] = series
        if steps is not None:
            run.step_series[name] = steps
    if not run.series and not run.step_series:
        raise LogReadError("no metric values")
    if run.step_series and epoch_of_step:
        run.step_series["epoch"] = epoch_of_step
    run.config, run.config_source, config_warnings = find_config(folder)
    run.warnings.extend(config_warnings)
    return run
