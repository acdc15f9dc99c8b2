"""Stream a CSV metrics table (Lightning or Keras CSVLogger): a header, then blocks of rows.

Handles what real files do: ``\\r\\n`` line ends (Python's csv writer default), a last row cut
short by a killed run, a binary or plain-text file under a metrics name. Nothing holds the whole
file: about :data:`BLOCK_BYTES` of it are parsed at a time, as the reader asks for them, lines are
bounded (:data:`MAX_LINE_BYTES`), and a file over its size limit is refused before it is opened
(:mod:`~lightreg.diagnose.readers.limits`).

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "history.csv"
    >>> _ = path.write_bytes(b"epoch,loss\\r\\n0,1.5\\r\\n1,0.")
    >>> with open_table(path) as table:
    ...     table.header, list(table.blocks), table.warnings
    (['epoch', 'loss'], [[['0'], ['1.5']], [['1'], ['0.']]], ['last line has no line end (cut short?)'])
"""

from __future__ import annotations

import csv
import operator
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO, Literal

from lightreg.diagnose.readers.limits import MAX_FILE_BYTES, human_bytes, open_log
from lightreg.diagnose.run import LogReadError

TableKind = Literal["lightning_csv", "keras_csv"]
DELIMITERS = ",\t;|"
"""The delimiters a metrics table may use."""
SNIFF_ROWS = 200
"""Rows :func:`sniff` looks at."""
CONSISTENT = 0.8
"""Share of rows with the header's width, and of a numeric column's filled cells that are numbers."""
MISSING = frozenset({"", "na", "n/a", "none", "null", "-"})
"""Cells that mean "no value" (lower case)."""
Block = list[list[str]]
"""Rows of a table as columns: ``block[i][j]`` is cell ``i`` of row ``j``."""
HEAD_BYTES = 65536
"""Bytes checked for NUL (a binary file) before a table is parsed."""
BLOCK_BYTES = 1 << 20
"""Bytes read, decoded and split into rows at a time (readers then work on columns, in C)."""
MAX_LINE_BYTES = 1 << 20
"""A longer line is no metrics row: the table is refused rather than held in memory."""


@dataclass(frozen=True)
class Layout:
    """What :func:`sniff` found: which logger's table, and its delimiter.

    Example:
        >>> Layout("keras_csv", "\\t").delimiter
        '\\t'
    """

    kind: TableKind
    delimiter: str


@dataclass
class Table:
    """A CSV table being read: ``blocks`` yields its well-formed rows once, a :data:`Block` of
    columns at a time; ``warnings`` say what was dropped, complete once ``blocks`` is exhausted.

    ``kind`` is the logger :func:`sniff` recognised.

    Example:
        >>> Table(header=["epoch", "loss"], blocks=iter([[["0"], ["1.0"]]])).column("loss")
        1
    """

    header: list[str]
    blocks: Iterable[Block]
    warnings: list[str] = field(default_factory=list)
    kind: TableKind = "keras_csv"

    def column(self, name: str) -> int | None:
        """The index of column ``name``, or None.

        Example:
            >>> table = Table(header=["epoch", "loss"], blocks=[])
            >>> table.column("epoch"), table.column("acc")
            (0, None)
        """
        return self.header.index(name) if name in self.header else None


def _is_blank(handle: BinaryIO, head: bytes) -> bool:
    """Whether the file holds only whitespace (read block by block past ``head``)."""
    block = head
    while block:
        if block.strip():
            return False
        block = handle.read(HEAD_BYTES)
    return True


def decode_head(head: bytes) -> str:
    """The text of a file's first bytes (a character cut at the end is left out).

    Raises:
        LogReadError: the bytes are binary (a NUL, or not UTF-8).

    Example:
        >>> decode_head("epoch,loss é".encode()[:-1])
        'epoch,loss '
    """
    if b"\x00" in head:
        raise LogReadError("not a metrics log: binary data")
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:
            raise LogReadError("not a metrics log: binary data") from None
        return head[: err.start].decode("utf-8-sig")


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise LogReadError("not a metrics log: binary data") from None


def _chunks(handle: BinaryIO, tail: list[str]) -> Iterator[str]:
    """The file's text, about :data:`BLOCK_BYTES` at a time, each piece ending with a line end.

    A last line without a line end is put in ``tail`` instead (a run killed mid-write leaves one).
    """
    encoding = "utf-8-sig"  # a BOM is dropped from the first piece only
    rest = b""
    while block := handle.read(BLOCK_BYTES):
        data = rest + block
        end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        if not end and len(data) > MAX_LINE_BYTES:
            raise LogReadError(
                f"not a metrics log: a line longer than {human_bytes(MAX_LINE_BYTES)}"
            )
        rest = data[end:]
        if end:
            yield _decode(data[:end], encoding)
            encoding = "utf-8"
    if rest:
        lines = _decode(rest, encoding).splitlines() or [""]
        yield "\n".join(lines[:-1])
        tail.append(lines[-1])


def _columns(lines: list[str], quoted: bool, width: int, delimiter: str) -> tuple[Block, int]:
    """The columns of the rows of ``lines`` that are ``width`` cells wide, and how many others.

    Without quotes a row's cells are its line split at the delimiter, so the rows of a block are
    split at once and sliced into columns: no object per row.
    """
    if quoted:
        rows = [row for row in csv.reader(lines, delimiter=delimiter) if row]
        good = [row for row in rows if len(row) == width]
        return [list(map(itemgetter(i), good)) for i in range(width)], len(rows) - len(good)
    lines = list(filter(None, lines))
    delimiters = list(map(str.count, lines, repeat(delimiter)))
    good_lines = lines
    if delimiters.count(width - 1) != len(lines):
        good_lines = list(compress(lines, map(operator.eq, delimiters, repeat(width - 1))))
    cells = delimiter.join(good_lines).split(delimiter) if good_lines else []
    return [cells[i::width] for i in range(width)], len(lines) - len(good_lines)


def _good_blocks(
    chunks: Iterable[str], width: int, tail: list[str], delimiter: str, warnings: list[str]
) -> Iterator[Block]:
    """Blocks of the rows ``width`` cells wide; a short last row without a line end is dropped,
    other bad rows are counted."""
    bad = 0
    try:
        for text in chunks:
            block, dropped = _columns(text.splitlines(), '"' in text, width, delimiter)
            bad += dropped
            if block and block[0]:
                yield block
        last = next((row for row in csv.reader(tail, delimiter=delimiter) if row), None)
    except csv.Error as err:
        raise LogReadError(f"not a metrics log: {err}") from None
    if last is not None and len(last) < width:
        warnings.append("last row cut short (run killed mid-write?): dropped")
    elif last is not None:
        warnings.append("last line has no line end (cut short?)")
        if len(last) == width:
            yield [[cell] for cell in last]
        else:
            bad += 1
    if bad:
        warnings.append(f"{bad} rows with a wrong number of cells: dropped")


@contextmanager
def open_table(path: Path, max_bytes: int = MAX_FILE_BYTES) -> Iterator[Table]:
    """Open a CSV table for streaming, or raise :class:`LogReadError` saying why it is not one.

    :func:`sniff` decides from the first :data:`HEAD_BYTES` whether it is a metrics table, and
    its delimiter. Rows with the wrong number of cells are dropped and counted; the last row is dropped when it has no line end and too few
    cells (the run was killed while writing it).

    Example:
        >>> with open_table(Path("no/such/metrics.csv")) as table:
        ...     pass
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    handle, _ = open_log(path, max_bytes)
    with handle:
        head = handle.read(HEAD_BYTES)
        if _is_blank(handle, head):
            raise LogReadError("empty file")
        if b"\x00" in head:
            raise LogReadError("not a metrics log: binary data")
        layout = sniff(decode_head(head), complete=len(head) < HEAD_BYTES)
        delimiter = layout.delimiter
        handle.seek(0)
        tail: list[str] = []
        chunks = _chunks(handle, tail)
        text = next(chunks, "")
        if not text:  # one line, without a line end
            text, tail[:] = "".join(tail), []
        ends = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
        header_line, text = text[: min(ends, default=len(text))], text[min(ends, default=0) :]
        try:
            header = [
                name.strip() for name in next(csv.reader([header_line], delimiter=delimiter), [])
            ]
        except csv.Error as err:
            raise LogReadError(f"not a metrics log: {err}") from None
        table = Table(header, [], kind=layout.kind)
        table.blocks = _good_blocks(
            chain([text], chunks), len(header), tail, delimiter, table.warnings
        )
        yield table


def _split(lines: list[str], delimiter: str) -> list[list[str]]:
    try:
        return [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=delimiter)]
    except csv.Error as err:
        raise LogReadError(f"not a metrics log: {err}") from None


def _delimiter(lines: list[str]) -> str | None:
    """The delimiter that splits the header in two or more cells and most rows in as many.

    :class:`csv.Sniffer`'s guess is tried first (it weighs quotes and how often each character
    appears), then each of :data:`DELIMITERS`.
    """
    try:
        guess = csv.Sniffer().sniff("\n".join(lines[:SNIFF_ROWS]), DELIMITERS).delimiter
    except csv.Error:
        guess = ""
    for delimiter in dict.fromkeys([guess, *DELIMITERS]):
        if not delimiter or delimiter not in lines[0]:
            continue
        header, *rows = _split(lines, delimiter)
        width = len(header)
        if rows and len(rows[-1]) < width:  # a last row cut short by a killed run
            rows.pop()
        if width >= 2 and sum(len(row) == width for row in rows) >= CONSISTENT * len(rows):
            return delimiter
    return None


def _is_number(cell: str) -> bool:
    return to_float(cell) is not None


def _numeric_columns(header: list[str], rows: list[list[str]]) -> int:
    """How many columns hold numbers in most of their filled cells (missing markers aside)."""
    count = 0
    for i in range(len(header)):
        cells = [row[i] for row in rows if len(row) == len(header)]
        filled = [cell for cell in cells if cell.lower() not in MISSING]
        if filled and sum(map(_is_number, filled)) >= CONSISTENT * len(filled):
            count += 1
    return count


def epoch_column(header: Sequence[str]) -> int | None:
    """The index of the epoch column (``epoch``, any case), or None.

    Example:
        >>> epoch_column(["created_at", "Epoch", "loss"]), epoch_column(["loss"])
        (1, None)
    """
    names = [name.strip().lower() for name in header]
    return names.index("epoch") if "epoch" in names else None


def sniff(head: str, complete: bool = True) -> Layout:
    """Say whether the first lines of a file are a metrics table, its delimiter and its logger.

    The body decides, not the header's words: a delimiter (``,``, tab, ``;`` or ``|``) that
    splits the header and most rows into the same two or more cells, and mostly numeric columns
    (at least two, and at least half of them; a ``created_at`` or phase column is allowed).
    ``complete`` is False when ``head`` is cut from a longer file (its last line is then left
    out). A table with a ``step`` column, or an epoch column that is not the first, is a
    Lightning ``CSVLogger`` (or older ``TestTubeLogger``) table; else it is read as Keras'
    history: rows are epochs.

    Raises:
        LogReadError: with the reason it is no metrics table.

    Example:
        >>> sniff("Epoch;Train Loss;Final Test F1 Score\\n0;1.5;0.61\\n1;0.9;0.72\\n")
        Layout(kind='keras_csv', delimiter=';')
        >>> sniff("name,value\\nlr,0.1\\nopt,sgd\\n")
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: not a metrics log: 0 of 2 columns hold numbers
    """
    lines = [line for line in head.splitlines() if line.strip()]
    if not complete and len(lines) > 1:
        lines.pop()  # may be cut short by the sample's end
    if not lines:
        raise LogReadError("empty file")
    lines = lines[: SNIFF_ROWS + 1]
    delimiter = _delimiter(lines)
    if delimiter is None:
        raise LogReadError("not a metrics log: plain text")
    header, *rows = _split(lines, delimiter)
    if not rows:
        if any(len(name.split()) > 1 for name in header):  # nothing else to go by
            raise LogReadError("not a metrics log: plain text")
        raise LogReadError("no metric values")
    numeric = _numeric_columns(header, rows)
    if numeric < 2 or 2 * numeric < len(header):
        raise LogReadError(f"not a metrics log: {numeric} of {len(header)} columns hold numbers")
    names = [name.lower() for name in header]
    epoch = epoch_column(header)
    lightning = "step" in names or "created_at" in names or (epoch is not None and epoch > 0)
    return Layout("lightning_csv" if lightning else "keras_csv", delimiter)


def to_float(cell: str) -> float | None:
    """A cell's value: a float (``nan``/``inf`` kept), or None when missing or not a number.

    Missing cells (Lightning writes empty ones, Keras ``NA``; also ``N/A``, ``None``, ``null``)
    are exactly the strings ``float`` refuses, so they cost no lookup.

    Example:
        >>> to_float("nan"), to_float("NA"), to_float(" 1e-3 "), to_float("")
        (nan, None, 0.001, None)
    """
    if not cell:
        return None
    try:
        return float(cell)
    except ValueError:
        return None
