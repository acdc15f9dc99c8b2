"""Split a TFRecord file (TensorBoard's event files) into records and check their CRCs.

Layout of a record: uint64 length, masked CRC-32C of the length bytes, the data, masked CRC-32C of
the data. A bad length CRC or a truncated tail ends the read (what came before is kept); a record
whose data CRC is wrong is skipped and the read goes on, since its length was sound.

Example:
    >>> import struct
    >>> from lightreg.diagnose.readers.crc32c import masked_crc32c
    >>> head = struct.pack("<Q", 2)
    >>> rec = head + struct.pack("<I", masked_crc32c(head)) + b"hi" + struct.pack("<I", masked_crc32c(b"hi"))
    >>> records = split_records(rec + rec[:5])
    >>> records.starts.tolist(), records.warnings
    ([12], ['truncated tail: last 5 bytes ignored'])
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lightreg.diagnose.readers.crc32c import crc32c_many, mask_many, masked_crc32c

if TYPE_CHECKING:
    import numpy as np

PADDING = 256
"""Zero bytes appended to the buffer so that fixed-width gathers near the end stay in bounds."""


def looks_like_records(head: bytes) -> bool:
    """Whether a file's first 12 bytes are a record header whose length CRC is right.

    Example:
        >>> looks_like_records(b"epoch,step,loss\\n")
        False
    """
    if len(head) < 12:
        return False
    (stored,) = struct.unpack_from("<I", head, 8)
    return masked_crc32c(head[:8]) == stored


@dataclass
class Records:
    """The sound records of a file: ``buf[starts[i]:starts[i] + lengths[i]]`` is record i's data.

    ``buf`` is the whole file as uint8 plus :data:`PADDING` zero bytes.

    Example:
        >>> split_records(b"").starts.tolist()
        []
    """

    buf: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    warnings: list[str] = field(default_factory=list)


def _walk_from(data: bytes, pos: int, starts: list[int], lengths: list[int], stop: int) -> int:
    """Frame records one by one from ``pos`` until ``stop`` (or the data) ends; return the end."""
    unpack = struct.Struct("<Q").unpack_from
    size = len(data)
    while pos + 12 <= size and pos < stop:
        (length,) = unpack(data, pos)
        end = pos + length + 16
        if end > size:
            break
        starts.append(pos + 12)
        lengths.append(length)
        pos = end
    return pos


def _walk(data: bytes, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Frame all records: (data starts, lengths, end of the last whole record).

    Equivalent to following the lengths one by one, but in bulk: records that start an Event
    (``0x09``, its wall_time) are found at once, and a run of them is taken whole while each one's
    length leads to the next. Where that chain breaks, records are framed one by one until it
    picks up again.
    """
    import numpy as np

    size = len(data)
    heads = np.flatnonzero(buf[12:size] == 0x09)
    lengths = np.lib.stride_tricks.sliding_window_view(buf, 8)[heads].copy().view("<u8").ravel()
    fits = (lengths < min(size, 1 << 16)) & (lengths >= 9)  # rare false heads: 6 zero bytes
    heads, lengths = heads[fits], lengths[fits].astype(np.int64)
    ends = heads + lengths + 16
    fits = ends <= size
    heads, lengths, ends = heads[fits], lengths[fits], ends[fits]
    breaks = np.flatnonzero(heads[1:] != ends[:-1])
    parts_start: list[np.ndarray] = []
    parts_length: list[np.ndarray] = []
    pos = 0
    while pos + 12 <= size:
        i = int(np.searchsorted(heads, pos))
        if i < len(heads) and heads[i] == pos:
            b = int(np.searchsorted(breaks, i))
            j = int(breaks[b]) if b < len(breaks) else len(heads) - 1
            parts_start.append(heads[i : j + 1] + 12)
            parts_length.append(lengths[i : j + 1])
            pos = int(ends[j])
            continue
        starts: list[int] = []
        found: list[int] = []
        stop = int(heads[i]) if i < len(heads) else size
        new_pos = _walk_from(data, pos, starts, found, stop)
        parts_start.append(np.array(starts, dtype=np.int64))
        parts_length.append(np.array(found, dtype=np.int64))
        if new_pos == pos:
            break
        pos = new_pos
    empty = np.zeros(0, dtype=np.int64)
    return (
        np.concatenate(parts_start) if parts_start else empty,
        np.concatenate(parts_length) if parts_length else empty,
        pos,
    )


def split_records(data: bytes) -> Records:
    """Frame ``data`` into records, keeping those whose CRCs are right (warnings say the rest).

    Example:
        >>> split_records(b"\\x00" * 3).warnings
        ['truncated tail: last 3 bytes ignored']
    """
    import numpy as np

    buf = np.frombuffer(data + bytes(PADDING), dtype=np.uint8)
    starts, lengths, end = _walk(data, buf)
    warnings: list[str] = []
    heads = starts - 12
    words = np.lib.stride_tricks.sliding_window_view(buf, 4)
    stored = words[heads + 8].copy().view("<u4").ravel()
    bad = np.flatnonzero(mask_many(crc32c_many(buf, heads, np.full(len(heads), 8))) != stored)
    if len(bad):
        first = int(bad[0])
        warnings.append(f"bad length CRC in record {first}: stopped there")
        starts, lengths = starts[:first], lengths[:first]
    elif end < len(data):
        warnings.append(f"truncated tail: last {len(data) - end} bytes ignored")
    stored = words[starts + lengths].copy().view("<u4").ravel()
    good = mask_many(crc32c_many(buf, starts, lengths)) == stored
    if not good.all():
        bad = np.flatnonzero(~good)
        listed = ", ".join(map(str, bad[:5].tolist())) + (", ..." if len(bad) > 5 else "")
        warnings.append(f"bad CRC in record{'s' if len(bad) > 1 else ''} {listed}: skipped")
        starts, lengths = starts[good], lengths[good]
    return Records(buf, starts, lengths, warnings)
