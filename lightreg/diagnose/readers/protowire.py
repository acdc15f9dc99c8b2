"""A minimal protobuf wire-format decoder: varints, fixed32/64 and length-delimited fields.

Enough to read TensorBoard's ``Event`` / ``Summary`` / ``TensorProto`` messages without
importing ``google.protobuf`` or tensorboard's generated code.

Example:
    >>> list(fields(b"\\x10\\x96\\x01\\x2a\\x02hi", 0, 7))
    [(2, 0, 150), (5, 2, (5, 7))]
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a valid protobuf message.

    Example:
        >>> list(fields(b"\\x0a\\x05ab", 0, 4))
        Traceback (most recent call last):
        ...
        lightreg.diagnose.readers.protowire.WireError: field 1 runs past the message end
    """


def varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return ``(value, position after it)``.

    Example:
        >>> varint(b"\\xac\\x02", 0, 2)
        (300, 2)
    """
    result = shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            break
    raise WireError("bad varint")


def fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int | tuple[int, int]]]:
    """Yield ``(field number, wire type, value)`` for each field of the message in ``buf[pos:end]``.

    The value is an int for varints, the raw little-endian int for fixed32/fixed64, and the
    ``(start, end)`` span of the payload for length-delimited fields.

    Example:
        >>> list(fields(b"\\x15\\x00\\x00\\x80\\x3f", 0, 5))
        [(2, 5, 1065353216)]
    """
    while pos < end:
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = varint(buf, pos, end)
            yield number, wire, value
            continue
        size = {FIXED64: 8, FIXED32: 4}.get(wire)
        if wire == LENGTH:
            size, pos = varint(buf, pos, end)
        elif size is None:
            raise WireError(f"field {number} has unsupported wire type {wire}")
        if pos + size > end:
            raise WireError(f"field {number} runs past the message end")
        if wire == LENGTH:
            yield number, wire, (pos, pos + size)
        else:
            yield number, wire, int.from_bytes(buf[pos : pos + size], "little")
        pos += size
