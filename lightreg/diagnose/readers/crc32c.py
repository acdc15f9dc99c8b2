"""CRC-32C (Castagnoli), as TFRecord / TensorBoard event files use it, without a C extension.

No CRC-32C package is installed (``google-crc32c`` would be the one to add), so:

* :func:`crc32c` is a plain table-driven loop, for the few bytes of a record header;
* :func:`crc32c_many` checks many records at once with numpy. A CRC is linear over GF(2), so a
  record's CRC is the XOR of one table value per byte, where the table depends only on the
  byte's distance from the record's end. That turns the byte-serial loop into a gather and an
  XOR-reduction over all records of the same length at once.

Example:
    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    >>> masked_crc32c(b"")
    2726488792
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_POLY = 0x82F63B78
BLOCK = 128
"""Longest record checked in one gather; longer ones are chained block by block."""


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


TABLE = _make_table()


def crc32c(data: bytes | memoryview, crc: int = 0) -> int:
    """The CRC-32C of ``data``, continuing from ``crc``.

    Example:
        >>> crc32c(b"6789", crc32c(b"12345")) == crc32c(b"123456789")
        True
    """
    crc ^= 0xFFFFFFFF
    table = TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """TFRecord's masking of a CRC: rotate right by 15 bits, add a constant.

    Example:
        >>> mask(0)
        2726488792
    """
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc32c(data: bytes | memoryview) -> int:
    """The masked CRC-32C that a TFRecord stores after its length and after its data.

    Example:
        >>> masked_crc32c(b"\\x00" * 8) == mask(crc32c(b"\\x00" * 8))
        True
    """
    return mask(crc32c(data))


class _Tables:
    """numpy tables for :func:`crc32c_many`, built on first use (numpy costs ~0.1 s to import)."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        table = np.array(TABLE, dtype=np.uint32)
        # by_distance[k][b]: a byte b followed by k zero bytes, from a zero state.
        by_distance = np.empty((BLOCK, 256), dtype=np.uint32)
        by_distance[0] = table
        for k in range(1, BLOCK):
            prev = by_distance[k - 1]
            by_distance[k] = table[prev & 0xFF] ^ (prev >> 8)
        # reversed so that row j serves the j-th byte of a BLOCK-long right-aligned window
        self.flat = np.ascontiguousarray(by_distance[::-1]).ravel()
        # init[n]: the state 0xFFFFFFFF after n zero bytes.
        init = [0xFFFFFFFF]
        for _ in range(BLOCK):
            s = init[-1]
            init.append(TABLE[s & 0xFF] ^ (s >> 8))
        self.init = np.array(init, dtype=np.uint32)
        # skip[i][b]: the state byte b at position i after BLOCK zero bytes (Z^BLOCK by bytes).
        self.skip = [[self._zeros(b << (8 * i), BLOCK) for b in range(256)] for i in range(4)]

    @staticmethod
    def _zeros(state: int, count: int) -> int:
        for _ in range(count):
            state = TABLE[state & 0xFF] ^ (state >> 8)
        return state

    def skip_block(self, state: int) -> int:
        """The state after BLOCK zero bytes."""
        s = self.skip
        return (
            s[0][state & 0xFF]
            ^ s[1][(state >> 8) & 0xFF]
            ^ s[2][(state >> 16) & 0xFF]
            ^ s[3][state >> 24]
        )


_tables: _Tables | None = None


def _get_tables() -> _Tables:
    global _tables
    if _tables is None:
        _tables = _Tables()
    return _tables


def _linear(buf: np.ndarray, ends: np.ndarray, width: int) -> np.ndarray:
    """XOR of per-byte table values of the ``width`` bytes before each end (zero initial state)."""
    t = _get_tables()
    np = t.np
    out = np.empty(len(ends), dtype=np.uint32)
    rows = max(1, (1 << 21) // width)
    cols = np.arange(BLOCK - width, BLOCK, dtype=np.int32) * 256
    windows = np.lib.stride_tricks.sliding_window_view(buf, width)
    for lo in range(0, len(ends), rows):
        chunk = windows[ends[lo : lo + rows] - width]
        index = chunk.astype(np.int32)
        index += cols
        out[lo : lo + rows] = np.bitwise_xor.reduce(t.flat[index], axis=1)
    return out


def crc32c_many(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The CRC-32C of each ``buf[start:start + length]`` (a uint8 array), as a uint32 array.

    Example:
        >>> import numpy as np
        >>> buf = np.frombuffer(b"123456789" * 50, dtype=np.uint8)
        >>> got = crc32c_many(buf, np.array([0, 9]), np.array([9, 441]))
        >>> [int(c) for c in got] == [crc32c(b"123456789"), crc32c(b"123456789" * 49)]
        True
    """
    t = _get_tables()
    np = t.np
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.uint32)
    short = lengths <= BLOCK
    for width in np.unique(lengths[short]).tolist():
        which = np.flatnonzero(lengths == width)
        state = t.init[width]
        if width:
            state = state ^ _linear(buf, starts[which] + width, width)
        out[which] = state ^ np.uint32(0xFFFFFFFF)
    for i in np.flatnonzero(~short).tolist():
        start, length = int(starts[i]), int(lengths[i])
        head = length % BLOCK
        state = int(t.init[head])
        if head:
            state ^= int(_linear(buf, np.array([start + head]), head)[0])
        ends = np.arange(start + head + BLOCK, start + length + 1, BLOCK)
        for block in _linear(buf, ends, BLOCK).tolist():
            state = t.skip_block(state) ^ block
        out[i] = state ^ 0xFFFFFFFF
    return out


def mask_many(crcs: np.ndarray) -> np.ndarray:
    """:func:`mask` on a uint32 array.

    Example:
        >>> import numpy as np
        >>> int(mask_many(np.array([0], dtype=np.uint32))[0]) == mask(0)
        True
    """
    np = _get_tables().np
    c = crcs.astype(np.uint64)
    return ((((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF).astype(np.uint32)
