"""``lightreg recipes``: list, show and copy the recipes shipped with lightreg.

Imports neither torch nor lightning; the recipe package is imported when a command runs.

Example:
    $ lightreg recipes list
    $ lightreg recipes show cnn
    $ lightreg recipes copy cnn my_cnn.yaml && lightreg fit my_cnn.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lightreg.cli.console import out, safe, user_error

recipes_app = typer.Typer(
    help="List, show and copy the shipped recipes.", no_args_is_help=True, add_completion=False
)


def _shipped() -> dict[str, str]:
    from lightreg.recipe import shipped_recipes

    return shipped_recipes()


def _description(text: str) -> str:
    """The recipe's first line without its ``#``, when that line is a comment."""
    first = text.partition("\n")[0]
    return first.removeprefix("#").strip() if first.startswith("#") else ""


def _text_or_exit(name: str) -> tuple[str, str]:
    """The shipped recipe's name and YAML text, or exit code 2 with a did-you-mean hint."""
    from lightreg.text import did_you_mean

    shipped = _shipped()
    key = name.removesuffix(".yaml")
    if key not in shipped:
        user_error(
            [
                f"no shipped recipe '{name}'{did_you_mean(key, list(shipped))} "
                f"(shipped recipes: {', '.join(shipped)})"
            ]
        )
    return key, shipped[key]


@recipes_app.command("list")
def list_recipes() -> None:
    """List the shipped recipes: name and what each is for.

    Example:
        $ lightreg recipes list
    """
    table = Table("name", "description", box=None, pad_edge=False)
    for name, text in _shipped().items():
        table.add_row(safe(name), safe(_description(text)))
    out.print(table)


@recipes_app.command("show")
def show_recipe(
    name: Annotated[str, typer.Argument(help="A shipped recipe's name, e.g. mlp.")],
) -> None:
    """Print a shipped recipe's YAML exactly as shipped.

    Example:
        $ lightreg recipes show mlp > my.yaml
    """
    _, text = _text_or_exit(name)
    sys.stdout.write(text)


@recipes_app.command("copy")
def copy_recipe(
    name: Annotated[str, typer.Argument(help="A shipped recipe's name, e.g. mlp.")],
    dest: Annotated[Path, typer.Argument(help="File to write, or a folder to write NAME.yaml in.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite DEST if it exists.")] = False,
) -> None:
    """Copy a shipped recipe to a file you can edit, then train with ``lightreg fit DEST``.

    Example:
        $ lightreg recipes copy mlp my.yaml --force
    """
    key, text = _text_or_exit(name)
    target = dest / f"{key}.yaml" if dest.is_dir() else dest
    if target.exists() and not force:
        user_error([f"{target}: already exists; pass --force to overwrite it"])
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        user_error([f"{target}: cannot write ({exc.strerror or exc})"])
    out.print(
        f"wrote {safe(target)}; train with: lightreg fit {safe(target)}",
        highlight=False,
        soft_wrap=True,
    )
