"""Shared rich consoles, the one way the CLI reports a user's mistake, and :func:`safe`.

Every string that comes from the user's disk or command line (paths, run and metric names,
messages quoting them) goes through :func:`safe` before it reaches rich: markup is escaped and
control characters are made visible, so a folder named ``x[/bold]`` or ``a\\x1b[31m`` is shown as
it is instead of crashing the table, hiding a hyperlink or recolouring the terminal.

Example:
    >>> from lightreg.cli.console import safe, user_error
    >>> safe("runs/x[/bold]")
    'runs/x\\\\[/bold]'
    >>> user_error(["recipe.yaml: no such file"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from lightreg.text import printable

VERDICT_STYLE = {
    "good_fit": "green",
    "still_improving": "cyan",
    "overfitting": "bold red",
    "underfitting": "yellow",
    "insufficient_data": "dim",
    "diverging": "bold magenta",
    "failed": "bold red",
    "not_run": "dim",
}
"""How every table colours a verdict (diagnose, sweep)."""

out = Console()
err = Console(stderr=True)


def safe(text: object) -> str:
    """``text`` ready for any rich markup string: markup escaped, control characters visible.

    Use it on every user-supplied part of a table cell, panel title or message; the result shows
    literally, whatever ``text`` holds (``[link=...]``, escape sequences, newlines, bytes that
    are not UTF-8).

    Example:
        >>> safe("[link=http://e]y")
        '\\\\[link=http://e]y'
        >>> safe("a\\x1b[31mb\\n")
        'a\\\\x1b[31mb\\\\n'
    """
    return escape(printable(str(text)))


def user_error(lines: Iterable[str], code: int = 2) -> NoReturn:
    """Print each problem on one stderr line and exit with ``code``, never a traceback.

    The lines are shown literally (through :func:`safe`): ``lightreg[ray]`` or ``[16]`` is not
    rich markup, and a control character in a quoted name is shown as ``\\xNN``.

    Example:
        >>> try:
        ...     user_error(["recipe.yaml: no such file"])  # prints "error: recipe.yaml: ..." on stderr
        ... except typer.Exit as exc:
        ...     print(exc.exit_code)
        2
    """
    for line in lines:
        err.print(f"[bold red]error:[/] {safe(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)
