"""Split a TFRecord file (TensorBoard's event files) into records and check their CRCs, chunk by chunk.

Layout of a record: uint64 length, masked CRC-32C of the length bytes, the data, masked CRC-32C of
the data. A bad length CRC, a length that runs past the end of the file, or a truncated tail ends
the read (what came before is kept); a record whose data CRC is wrong is skipped and the read goes
on, since its length was sound.

The file is read :data:`CHUNK_BYTES` at a time, never whole: a length is checked against its CRC
and against what is left of the file before anything is allocated for it, and a record longer
than :data:`MAX_RECORD_BYTES` (no scalar event is) is skipped unread.

Example:
    >>> import io, struct
    >>> from lightreg.diagnose.readers.crc32c import masked_crc32c
    >>> head = struct.pack("<Q", 2)
    >>> rec = head + struct.pack("<I", masked_crc32c(head)) + b"hi" + struct.pack("<I", masked_crc32c(b"hi"))
    >>> warnings = []
    >>> [r.starts.tolist() for r in read_records(io.BytesIO(rec + rec[:5]), 23, warnings)], warnings
    ([[12]], ['truncated tail: last 5 bytes ignored'])
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from lightreg.diagnose.readers.crc32c import crc32c_many, mask_many, masked_crc32c

if TYPE_CHECKING:
    import numpy as np

PADDING = 256
"""Zero bytes appended to the buffer so that fixed-width gathers near the end stay in bounds."""
CHUNK_BYTES = 16 << 20
"""Bytes of a file framed and decoded at a time."""
MAX_RECORD_BYTES = 16 << 20
"""A longer record is skipped unread: a scalar event takes tens of bytes."""
_HEAD = struct.Struct("<QI")


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
    """The sound records of a chunk: ``buf[starts[i]:starts[i] + lengths[i]]`` is record i's data.

    ``data`` is the chunk, ``buf`` the same bytes as uint8 plus :data:`PADDING` zero bytes;
    ``end`` is where its last whole record ends, ``count`` how many records it framed (good or
    not) and ``bad`` which of those (numbered in the file) failed their data CRC.

    Example:
        >>> frame_records(b"").starts.tolist()
        []
    """

    data: bytes
    buf: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    end: int = 0
    count: int = 0
    bad: list[int] = field(default_factory=list)


def _walk_from(data: bytes, pos: int, starts: list[int], lengths: list[int], stop: int) -> int:
    """Frame records one by one from ``pos`` until ``stop`` (or the data) ends; return the end."""
    size = len(data)
    while pos + 12 <= size and pos < stop:
        length, stored = _HEAD.unpack_from(data, pos)
        end = pos + length + 16
        if end > size or masked_crc32c(data[pos : pos + 8]) != stored:
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


def frame_records(data: bytes, first: int = 0) -> Records:
    """Frame the whole records at the start of ``data``; keep those whose CRCs are right.

    Framing stops at a header whose length CRC is wrong or whose record runs past ``data``
    (``Records.end`` says where). ``first`` is the file's number for the first record.

    Example:
        >>> frame_records(b"\\x00" * 3).end
        0
    """
    import numpy as np

    buf = np.frombuffer(data + bytes(PADDING), dtype=np.uint8)
    starts, lengths, end = _walk(data, buf)
    heads = starts - 12
    words = np.lib.stride_tricks.sliding_window_view(buf, 4)
    stored = words[heads + 8].copy().view("<u4").ravel()
    bad = np.flatnonzero(mask_many(crc32c_many(buf, heads, np.full(len(heads), 8))) != stored)
    if len(bad):  # a run framed in bulk holds a bad length: stop before it
        end = int(heads[bad[0]])
        starts, lengths = starts[: bad[0]], lengths[: bad[0]]
    stored = words[starts + lengths].copy().view("<u4").ravel()
    good = mask_many(crc32c_many(buf, starts, lengths)) == stored
    failed = (np.flatnonzero(~good) + first).tolist()
    return Records(data, buf, starts[good], lengths[good], end, len(starts), failed)


def _check_head(handle: BinaryIO, pos: int, size: int, index: int) -> tuple[int, str | None]:
    """The length of the record at ``pos``, and why the read stops there (None: it may go on)."""
    handle.seek(pos)
    head = handle.read(12)
    if len(head) < 12:
        return 0, f"truncated tail: last {size - pos} bytes ignored"
    length, stored = _HEAD.unpack(head)
    sound = masked_crc32c(head[:8]) == stored
    left = size - pos - 12
    if length + 4 > left:
        if not sound:
            return length, f"truncated tail: last {size - pos} bytes ignored"
        return length, (
            f"record {index} claims {length:,} bytes, more than the {left:,} left in the file: "
            "stopped there"
        )
    if not sound:
        return length, f"bad length CRC in record {index}: stopped there"
    return length, None


def read_records(handle: BinaryIO, size: int, warnings: list[str]) -> Iterator[Records]:
    """The sound records of an open file of ``size`` bytes, chunk by chunk.

    ``warnings`` gets what was dropped (a stop, a truncated tail, bad data CRCs, skipped long
    records) by the time the iteration ends.

    Example:
        >>> import io
        >>> warnings = []
        >>> list(read_records(io.BytesIO(b"\\x00" * 3), 3, warnings)), warnings
        ([], ['truncated tail: last 3 bytes ignored'])
    """
    pos = index = bad_count = 0
    bad: list[int] = []  # the first few, to name them
    while pos < size:
        handle.seek(pos)
        records = frame_records(handle.read(CHUNK_BYTES), index)
        if not records.count:  # the record at pos is unsound or longer than a chunk
            length, why = _check_head(handle, pos, size, index)
            if why is not None:
                warnings.append(why)
                break
            if length > MAX_RECORD_BYTES:
                warnings.append(
                    f"record {index} is {length:,} bytes, longer than any scalar event: skipped"
                )
                pos, index = pos + length + 16, index + 1
                continue
            handle.seek(pos)
            records = frame_records(handle.read(length + 16), index)
            if not records.count:  # pragma: no cover - a sound head always frames
                break
        bad += records.bad[: 6 - len(bad)]
        bad_count += len(records.bad)
        yield records
        pos, index = pos + records.end, index + records.count
    if bad_count:
        listed = ", ".join(map(str, bad[:5])) + (", ..." if bad_count > 5 else "")
        warnings.append(f"bad CRC in record{'s' if bad_count > 1 else ''} {listed}: skipped")
