"""Load a recipe: read YAML safely, apply ``--set`` overrides, expand the preset, validate.

YAML goes through :func:`lightreg.safe_yaml.load_yaml`: no code runs, and a file over 1 MiB, a
duplicate key, an alias bomb or nesting beyond 100 levels is refused with one line.

Example:
    >>> recipe = load_recipe("mlp", ["trainer.max_epochs=3"])
    >>> recipe.trainer.max_epochs
    3
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lightreg.presets import expand_preset
from lightreg.recipe.errors import RecipeError, format_validation_error
from lightreg.recipe.overrides import apply_overrides
from lightreg.recipe.schema import Recipe
from lightreg.safe_yaml import RefusedYAMLError, load_yaml, read_text
from lightreg.text import did_you_mean, printable


def shipped_recipes() -> dict[str, str]:
    """Name -> YAML text of every recipe shipped inside the package (``lightreg.recipes``).

    Example:
        >>> "mlp" in shipped_recipes()
        True
    """
    folder = resources.files("lightreg.recipes")
    return {
        entry.name.removesuffix(".yaml"): entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    }


def read_recipe_text(source: str | Path) -> tuple[str, str]:
    """The YAML text of a recipe file, or of a shipped recipe by name; and where it came from.

    Raises:
        RecipeError: when it is neither an existing file nor a shipped recipe's name, or when the
            file cannot be read or is over the size limit (refused from its size alone).

    Example:
        >>> text, origin = read_recipe_text("mlp")
        >>> origin
        "shipped recipe 'mlp'"
    """
    path = Path(source)
    if path.is_file():
        origin = printable(str(path))
        try:
            return read_text(path, origin), origin
        except RefusedYAMLError as exc:
            raise RecipeError([str(exc)]) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise RecipeError(
                [f"{origin}: cannot read ({exc.__class__.__name__}: {reason})"]
            ) from None
    shipped = shipped_recipes()
    name = path.name.removesuffix(".yaml")
    if str(source) in shipped or (not path.parent.parts and name in shipped):
        return shipped[name], f"shipped recipe '{name}'"
    hint = did_you_mean(name, list(shipped))
    raise RecipeError(
        [
            f"{printable(str(source))}: no such recipe file{hint} "
            f"(shipped recipes: {', '.join(shipped)})"
        ]
    )


def parse_recipe_yaml(text: str, origin: str) -> dict[str, Any]:
    """Parse recipe YAML within the limits of ``load_yaml``; the result must be a mapping.

    Example:
        >>> parse_recipe_yaml("{name: x, trainer: {max_epochs: 2}}", "inline")
        {'name': 'x', 'trainer': {'max_epochs': 2}}
        >>> try:
        ...     parse_recipe_yaml("- x", "inline")
        ... except RecipeError as exc:
        ...     print(exc.problems[0])
        inline: expected a mapping of sections, got list
    """
    try:
        raw = load_yaml(text, origin)
    except RefusedYAMLError as exc:
        raise RecipeError([str(exc)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = printable(getattr(exc, "problem", None) or str(exc).splitlines()[0])[:200]
        raise RecipeError([f"{origin}:{where}: not valid YAML ({problem})"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError([f"{origin}: expected a mapping of sections, got {type(raw).__name__}"])
    return raw


def resolve_recipe(raw: dict[str, Any], overrides: Sequence[str] = ()) -> Recipe:
    """Overrides, then preset, then validation: the raw dict becomes a :class:`Recipe`.

    Raises:
        RecipeError: every problem at once, one line each.

    Example:
        >>> recipe = resolve_recipe({"name": "x"}, ["optim.lr=0.01"])
        >>> recipe.optim.lr
        0.01
    """
    patched, problems = apply_overrides(raw, overrides)
    try:
        recipe = Recipe.model_validate(expand_preset(patched))
    except ValidationError as exc:
        problems += format_validation_error(exc, Recipe)
    else:
        if isinstance(recipe.regularization.augment, list):
            from lightreg.data.augment import augmentation_problems

            problems += augmentation_problems(
                recipe.regularization.augment, image_shape=recipe.data.image_shape
            )
    if problems:
        raise RecipeError(problems)
    return recipe


def load_recipe(source: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override, expand and validate a recipe file (or shipped recipe name).

    Raises:
        RecipeError: one line per problem, naming key paths and values.

    Example:
        >>> load_recipe("mlp", ["trainer.max_epochs=3"]).trainer.max_epochs
        3
    """
    text, origin = read_recipe_text(source)
    raw = parse_recipe_yaml(text, origin)
    try:
        return resolve_recipe(raw, overrides)
    except RecipeError as exc:
        raise RecipeError([f"{origin}: {line}" for line in exc.problems]) from None


def recipe_to_yaml(recipe: Recipe) -> str:
    """The fully resolved recipe as YAML (what ``--dry-run`` prints and runs save).

    Example:
        >>> "max_epochs: 30" in recipe_to_yaml(Recipe(name="x"))
        True
    """
    data = recipe.model_dump(mode="json")
    data["model"] = {"type": data["model"].pop("type"), **data["model"]}
    return yaml.safe_dump(data, sort_keys=False)
