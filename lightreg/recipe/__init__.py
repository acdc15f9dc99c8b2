"""The recipe: schema, presets, overrides and loading. Imports neither torch nor lightning.

Example:
    >>> from lightreg.recipe import load_recipe, RecipeError
"""

from lightreg.recipe.errors import RecipeError
from lightreg.recipe.load import (
    load_recipe,
    recipe_to_yaml,
    resolve_recipe,
    shipped_recipes,
)
from lightreg.recipe.schema import Recipe
from lightreg.run_files import RECIPE_FILE

__all__ = [
    "RECIPE_FILE",
    "Recipe",
    "RecipeError",
    "load_recipe",
    "recipe_to_yaml",
    "resolve_recipe",
    "shipped_recipes",
]
