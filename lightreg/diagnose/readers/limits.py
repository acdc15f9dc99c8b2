"""Size limits on the files readers open, and the one-line refusal when a file is over one.

A log file (CSV table, event file, MLflow metric file) over ``max_file_bytes`` is refused before it
is read; the limit is raised with :attr:`lightreg.diagnose.engine.DiagnoseConfig.max_file_bytes`.

Example:
    >>> human_bytes(3 * 1024**3)
    '3.0 GiB'
    >>> str(TooLarge("metrics.csv", 2048, 1024))
    'metrics.csv is 2,048 bytes (2.0 KiB), over the 1,024 bytes (1.0 KiB) limit: raise DiagnoseConfig.max_file_bytes to read it'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from lightreg.diagnose.run import LogReadError

MAX_FILE_BYTES = 1 << 30
"""Default limit on one log file: 1 GiB (about 50 million CSV rows)."""

RAISE_THE_LIMIT = "raise DiagnoseConfig.max_file_bytes to read it"
"""How a refusal ends; a front end that sets the limit its own way replaces this text."""


def human_bytes(size: int) -> str:
    """``size`` in the largest binary unit under it, one decimal.

    Example:
        >>> human_bytes(512), human_bytes(1536)
        ('512 B', '1.5 KiB')
    """
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


class TooLarge(LogReadError):
    """A file over its size limit; the message names the file, its size, the limit and the remedy.

    ``remedy`` ends the line; the default names the :class:`DiagnoseConfig` field to raise.

    Example:
        >>> str(TooLarge("blob", 10, 4, "not read")).endswith("limit: not read")
        True
    """

    def __init__(
        self,
        name: str,
        size: int,
        limit: int,
        remedy: str = RAISE_THE_LIMIT,
    ) -> None:
        super().__init__(
            f"{name} is {size:,} bytes ({human_bytes(size)}), "
            f"over the {limit:,} bytes ({human_bytes(limit)}) limit: {remedy}"
        )


def file_size(path: Path) -> int:
    """The size of ``path`` in bytes, or :class:`LogReadError` naming why it is unknown.

    Example:
        >>> file_size(Path("no/such/metrics.csv"))
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: file not found
    """
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        raise LogReadError("file not found") from None
    except PermissionError:
        raise LogReadError("permission denied") from None


def check_size(path: Path, limit: int) -> int:
    """The size of ``path``, or :class:`TooLarge` when it is over ``limit`` bytes.

    Example:
        >>> check_size(Path("tests/fixtures/readers/lightning_csv/version_0/metrics.csv"), 10)
        Traceback (most recent call last):
        ...
        lightreg.diagnose.readers.limits.TooLarge: metrics.csv is 672 bytes (672 B), over the 10 bytes (10 B) limit: raise DiagnoseConfig.max_file_bytes to read it
    """
    size = file_size(path)
    if size > limit:
        raise TooLarge(path.name, size, limit)
    return size


def open_log(path: Path, max_bytes: int) -> tuple[BinaryIO, int]:
    """Open a log file for binary reading, with its size, once :func:`check_size` let it through.

    Raises:
        LogReadError: the file is missing, unreadable, a folder, or over ``max_bytes``.

    Example:
        >>> open_log(Path("lightreg"), 10)
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: is a folder
    """
    if path.is_dir():
        raise LogReadError("is a folder")
    size = check_size(path, max_bytes)
    try:
        return path.open("rb"), size
    except FileNotFoundError:
        raise LogReadError("file not found") from None
    except PermissionError:
        raise LogReadError("permission denied") from None
