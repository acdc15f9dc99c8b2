"""Read a Keras ``CSVLogger`` history file (``epoch,loss,val_loss,...``; ``NA`` when missing).

Any metrics table whose first column is ``epoch`` (any case) is read so, whatever its delimiter
and column names (``Epoch;Train Loss;Final Test F1 Score``); one without an epoch column has one
epoch per row.

Keras epochs are already 0-based. A file written with ``append=True`` holds one run after another,
each restarting at epoch 0: the **last** run in the file is the one read, and a warning says how
many came before it.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "history.csv"
    >>> _ = path.write_text("epoch,loss,val_loss\\n0,1.0,1.2\\n1,0.5,NA\\n")
    >>> read_keras_csv(path, "history.csv").series
    {'loss': {0: 1.0, 1: 0.5}, 'val_loss': {0: 1.2}}
"""

from __future__ import annotations

import math
from itertools import chain
from pathlib import Path

from lightreg.diagnose.readers.limits import MAX_FILE_BYTES
from lightreg.diagnose.readers.table import epoch_column, open_table, to_float
from lightreg.diagnose.run import LogReadError, Run


def read_keras_csv(path: Path, rel: str, max_bytes: int = MAX_FILE_BYTES) -> Run:
    """Read one Keras history file into a :class:`Run` whose path is ``rel``, row by row.

    Raises:
        LogReadError: the file is empty, binary, over ``max_bytes``, plain text, or not a Keras
            history.

    Example:
        >>> read_keras_csv(Path("no/such/history.csv"), "history.csv")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    with open_table(path, max_bytes) as table:
        if table.kind != "keras_csv":
            raise LogReadError("not a Keras CSVLogger log: header does not start with epoch")
        has_epoch = epoch_column(table.header) == 0
        names = table.header[1:] if has_epoch else table.header
        columns: list[dict[int, float]] = [{} for _ in names]
        previous: int | None = None
        runs = 1
        rows = chain.from_iterable(zip(*block, strict=True) for block in table.blocks)
        for index, row in enumerate(rows):
            epoch = to_float(row[0]) if has_epoch else index
            if epoch is None or not math.isfinite(epoch):
                continue
            if previous is not None and int(epoch) <= previous:
                runs += 1
                columns = [{} for _ in columns]
            previous = int(epoch)
            for series, cell in zip(columns, row[1:] if has_epoch else row, strict=True):
                if (value := to_float(cell)) is not None:
                    series[previous] = value
    run = Run(path=rel, format="keras_csv", warnings=list(table.warnings))
    if not has_epoch:
        run.warnings.append("no epoch column: row i is epoch i")
    if runs > 1:
        run.warnings.append(f"file holds {runs} appended runs (epoch restarts at 0): read the last")
    for name, series in zip(names, columns, strict=True):
        if series:
            run.series[name] = series
    if not run.series:
        raise LogReadError("no metric values")
    return run
