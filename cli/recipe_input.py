"""Load a recipe for a CLI command, turning every recipe problem into exit-code-2 lines.

Example:
    >>> recipe = load_or_exit("recipes/mlp.yaml", [])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lightreg.cli.console import user_error

if TYPE_CHECKING:
    from lightreg.recipe import Recipe


def load_or_exit(source: str, overrides: Sequence[str]) -> Recipe:
    """The validated recipe, or one stderr line per problem and exit code 2.

    pydantic and the schema are imported here, not at start-up, to keep ``lightreg`` fast.

    Example:
        >>> load_or_exit("mlp", ["trainer.max_epochs=2"]).trainer.max_epochs
        2
    """
    from lightreg.recipe import RecipeError, load_recipe

    try:
        return load_recipe(source, overrides)
    except RecipeError as exc:
        user_error(exc.problems)
