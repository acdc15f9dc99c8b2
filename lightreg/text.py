"""Plain-text helpers for user-facing messages: did-you-mean, bounded repr, terminal-safe text.

Every message that shows a user's word or value goes through these, so that a hint has one
format, a huge value never gets its full ``repr()`` built, and a name holding escape sequences or
newlines reaches the terminal as visible text. No third-party imports: the diagnose path and the
library may both use it.

Example:
    >>> did_you_mean("dpp", ["ddp", "fsdp"])
    "; did you mean 'ddp'?"
    >>> short_repr(list(range(1000)), limit=30)
    '[0, 1, 2, 3, 4, 5, ...]'
    >>> printable("run\\x1b[31m\\n")
    'run\\\\x1b[31m\\\\n'
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from typing import Any

_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {127: "\\x7f"}
_CONTROL |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_CONTROL |= {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}  # C1 controls: 0x9b is a CSI
_CONTROL |= {c: f"\\u{c:04x}" for c in range(0xD800, 0xE000)}  # lone surrogates: unwritable
_CONTROL |= {0xDC00 + b: f"\\x{b:02x}" for b in range(0x80, 0x100)}  # undecodable bytes in names


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""`` when none is close.

    Example:
        >>> did_you_mean("dropuot", ["dropout", "l2"])
        "; did you mean 'dropout'?"
        >>> did_you_mean("zzz", ["dropout"])
        ''
    """
    words = [str(c) for c in choices]
    close = difflib.get_close_matches(printable(str(word)[:200]), words, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def short_repr(value: Any, limit: int = 60) -> str:
    """A ``repr`` of at most ``limit`` characters, built without the full ``repr`` of ``value``.

    Nested containers are cut by depth and length before anything is formatted, so a value that a
    YAML alias bomb made (billions of elements by reference) costs a few microseconds.

    Example:
        >>> short_repr("x" * 100, limit=20)
        "'xxxxxxx...xxxxxxxx'"
        >>> short_repr({"a": [1, 2]})
        "{'a': [1, 2]}"
    """
    shortener = reprlib.Repr()
    shortener.maxlevel = 3
    shortener.maxlist = shortener.maxtuple = shortener.maxdict = shortener.maxset = 6
    shortener.maxstring = shortener.maxother = shortener.maxlong = limit
    text = printable(shortener.repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def printable(text: str) -> str:
    """``text`` with control characters (escape sequences, newlines, NUL) shown as ``\\xNN``.

    A name's undecodable bytes (``os.fsdecode`` turns byte ``0xff`` into ``"\\udcff"``) are shown as
    ``\\xff`` too: they cannot be written to a UTF-8 terminal or file.

    Example:
        >>> printable("a\\tb")
        'a\\\\tb'
        >>> printable("bad\\udcff")
        'bad\\\\xff'
    """
    return text.translate(_CONTROL)
