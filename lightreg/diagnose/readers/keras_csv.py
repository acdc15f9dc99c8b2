"""Read a Keras ``CSVLogger`` history file (``epoch,loss,val_loss,...``; ``NA`` when missing).

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
from pathlib import Path

from lightreg.diagnose.readers.table import parse_table, read_text, table_kind, to_float
from lightreg.diagnose.run import LogReadError, Run


def read_keras_csv(path: Path, rel: str) -> Run:
    """Read one Keras history file into a :class:`Run` whose path is ``rel``.

    Raises:
        LogReadError: the file is empty, binary, plain text, or not a Keras history.

    Example:
        >>> read_keras_csv(Path("no/such/history.csv"), "history.csv")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    text = read_text(path)
    if table_kind(text.split("\n", 1)[0].strip()) != "keras_csv":
        raise LogReadError("not a Keras CSVLogger log: header does not start with epoch")
    table = parse_table(text)
    rows: list[tuple[int, list[str]]] = []
    for row in table.rows:
        epoch = to_float(row[0])
        if epoch is not None and math.isfinite(epoch):
            rows.append((int(epoch), row))
    starts = [i for i in range(1, len(rows)) if rows[i][0] <= rows[i - 1][0]]
    run = Run(path=rel, format="keras_csv", warnings=list(table.warnings))
    if starts:
        run.warnings.append(
            f"file holds {len(starts) + 1} appended runs (epoch restarts at 0): read the last"
        )
        rows = rows[starts[-1] :]
    for i, name in enumerate(table.header[1:], start=1):
        series = {epoch: v for epoch, row in rows if (v := to_float(row[i])) is not None}
        if series:
            run.series[name] = series
    if not run.series:
        raise LogReadError("no metric values")
    return run
