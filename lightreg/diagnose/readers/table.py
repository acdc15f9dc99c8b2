"""Read a CSV metrics table (Lightning or Keras CSVLogger) into a header and rows of cells.

Handles what real files do: ``\\r\\n`` line ends (Python's csv writer default), a last row cut
short by a killed run, a binary or plain-text file under a metrics name.

Example:
    >>> table = parse_table("epoch,loss\\r\\n0,1.5\\r\\n1,0.")
    >>> table.header, table.rows, table.warnings
    (['epoch', 'loss'], [['0', '1.5'], ['1', '0.']], ['last line has no line end (cut short?)'])
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lightreg.diagnose.run import LogReadError

TableKind = Literal["lightning_csv", "keras_csv"]
MISSING = frozenset({"", "NA", "N/A", "None", "null"})
"""Cells that mean 'no value' (Lightning writes empty cells, Keras writes ``NA``)."""


@dataclass
class Table:
    """A parsed CSV table.

    Example:
        >>> Table(header=["epoch", "loss"], rows=[["0", "1.0"]]).column("loss")
        1
    """

    header: list[str]
    rows: list[list[str]]
    warnings: list[str] = field(default_factory=list)

    def column(self, name: str) -> int | None:
        """The index of column ``name``, or None.

        Example:
            >>> table = Table(header=["epoch", "loss"], rows=[])
            >>> table.column("epoch"), table.column("acc")
            (0, None)
        """
        return self.header.index(name) if name in self.header else None


def read_log_bytes(path: Path) -> bytes:
    """A log file's bytes, or :class:`LogReadError` naming why they cannot be read.

    Example:
        >>> read_log_bytes(Path("no/such/metrics.csv"))
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LogReadError("file not found") from None
    except PermissionError:
        raise LogReadError("permission denied") from None
    except IsADirectoryError:
        raise LogReadError("is a folder") from None
    if not data.strip():
        raise LogReadError("empty file")
    return data


def read_text(path: Path) -> str:
    """Read a log file as text, or raise :class:`LogReadError` saying why it is not one.

    Example:
        >>> read_text(Path("no/such/metrics.csv"))
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    data = read_log_bytes(path)
    if b"\x00" in data[:65536]:
        raise LogReadError("not a metrics log: binary data")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LogReadError("not a metrics log: binary data") from None


def table_kind(header_line: str) -> TableKind:
    """Say which logger wrote a CSV header line, or raise :class:`LogReadError` if none did.

    Lightning's CSVLogger always writes a ``step`` column; Keras' header is ``epoch`` then keys.

    Example:
        >>> table_kind("epoch,loss,val_loss")
        'keras_csv'
        >>> table_kind("epoch,step,train_loss")
        'lightning_csv'
    """
    delimiter = "\t" if "\t" in header_line and "," not in header_line else ","
    names = [cell.strip() for cell in header_line.split(delimiter)]
    if len(names) < 2 or any(len(name.split()) > 2 for name in names):
        raise LogReadError("not a metrics log: plain text")
    if "step" in names:
        return "lightning_csv"
    if names[0] == "epoch":
        return "keras_csv"
    raise LogReadError("not a metrics log: CSV without an epoch or step column")


def parse_table(text: str) -> Table:
    """Split CSV text into header and rows; drop malformed rows with a warning.

    The last row is dropped when it has no line end and too few cells (the run was killed while
    writing it); other rows with the wrong number of cells are dropped and counted.

    Example:
        >>> parse_table("epoch,step,loss\\n0,1,0.5\\n1,2").warnings
        ['last row cut short (run killed mid-write?): dropped']
    """
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    lines = text.splitlines()
    cut = not text.endswith(("\n", "\r"))
    records = list(csv.reader(lines, delimiter=delimiter))
    header = [name.strip() for name in records[0]]
    rows = [row for row in records[1:] if row]
    warnings: list[str] = []
    if cut and rows:
        if len(rows[-1]) < len(header):
            rows.pop()
            warnings.append("last row cut short (run killed mid-write?): dropped")
        else:
            warnings.append("last line has no line end (cut short?)")
    good = [row for row in rows if len(row) == len(header)]
    if len(good) < len(rows):
        warnings.append(f"{len(rows) - len(good)} rows with a wrong number of cells: dropped")
    return Table(header, good, warnings)


def to_float(cell: str) -> float | None:
    """A cell's value: a float (``nan``/``inf`` kept), or None when missing or not a number.

    Example:
        >>> to_float("nan"), to_float("NA"), to_float("1e-3")
        (nan, None, 0.001)
    """
    cell = cell.strip()
    if cell in MISSING:
        return None
    try:
        return float(cell)
    except ValueError:
        return None
