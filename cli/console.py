"""Shared rich consoles and the one way the CLI reports a user's mistake.

Example:
    >>> from lightreg.cli.console import user_error
    >>> user_error(["recipe.yaml: no such file"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

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


def user_error(lines: Iterable[str], code: int = 2) -> NoReturn:
    """Print each problem on one stderr line and exit with ``code``, never a traceback.

    The lines are shown literally: ``lightreg[ray]`` or ``[16]`` is not rich markup.

    Example:
        >>> try:
        ...     user_error(["recipe.yaml: no such file"])  # prints "error: recipe.yaml: ..." on stderr
        ... except typer.Exit as exc:
        ...     print(exc.exit_code)
        2
    """
    for line in lines:
        err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)
