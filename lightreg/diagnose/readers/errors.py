"""The error record for a run (or file) that could not be read.

Example:
    >>> ReadError("version_3", "empty file")
    ReadError(path='version_3', reason='empty file')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReadError:
    """A log that could not be read, and why.

    Attributes:
        path: the run folder or file, relative to the PATH given (as ``Run.path`` is).
        reason: one line, e.g. ``"empty file"`` or ``"bad CRC in record 12 (truncated tail?)"``.

    Example:
        >>> ReadError(".", "not a metrics log: plain text").reason
        'not a metrics log: plain text'
    """

    path: str
    reason: str
