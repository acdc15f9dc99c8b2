"""``lightreg validate``: check a recipe without training (imports neither torch nor lightning).

Example:
    $ lightreg validate recipes/mlp.yaml --set regularization.dropout=0.4
    $ lightreg validate recipes/mlp.yaml --strict   # lint warnings exit with code 2
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from lightreg.cli.console import out
from lightreg.cli.lint_report import report_lint
from lightreg.cli.recipe_input import load_or_exit
from lightreg.text import printable


def validate(
    recipe: Annotated[str, typer.Argument(help="Recipe file, or the name of a shipped recipe.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: --set regularization.dropout=0.4"),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with code 2 when the linter warns.")
    ] = False,
) -> None:
    """Check a recipe: every problem on its own line, exit code 2 if any; then lint it."""
    resolved = load_or_exit(recipe, set_ or [])
    report_lint(resolved, strict)
    out.print(
        f"[green]ok[/] {escape(printable(recipe))}: recipe '{resolved.name}' is valid",
        highlight=False,
        soft_wrap=True,
    )
