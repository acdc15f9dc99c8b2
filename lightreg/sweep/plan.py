"""Plan a sweep: the configurations of presets x grid, each resolved and validated up front.

``--presets`` is the chapter's "progressive regularization search" (none -> aggressive);
``--grid`` its Q13 lr x l2 x dropout search (a cartesian product of ``key.path=v1,v2`` axes).
Each configuration is the base recipe plus ``--set`` overrides, then its preset, then its grid
values (later ones win), plus two sweep-only overrides: its own run ``name``
(``<name>-<slug>``, so that parallel runs never race for a ``version_N`` folder) and
``trainer.enable_progress_bar=false``.

Example:
    >>> plan = plan_sweep("mlp", ["trainer.max_epochs=2"], ["none", "moderate"],
    ...                   ["optim.lr=1e-3,3e-3"])
    >>> [c.slug for c in plan.configurations]
    ['none-lr_1e-3', 'none-lr_3e-3', 'moderate-lr_1e-3', 'moderate-lr_3e-3']
    >>> plan.configurations[1].recipe.name, plan.configurations[1].recipe.optim.lr
    ('mlp-none-lr_3e-3', 0.003)
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightreg.presets import PRESETS
from lightreg.recipe import Recipe, RecipeError, recipe_to_yaml, resolve_recipe
from lightreg.recipe.load import parse_recipe_yaml, read_recipe_text
from lightreg.text import did_you_mean

SWEEP_ONLY = ("trainer.enable_progress_bar=false",)  # Lightning's bar would fight the sweep's
_MAX_NAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True)
class Configuration:
    """One point of the sweep.

    Attributes:
        slug: its short name, e.g. ``moderate-lr_3e-3``; unique within the sweep.
        overrides: what sets it apart from the base recipe (preset and grid values).
        recipe: the recipe it runs (own ``name``, progress bar off).
        fingerprint: a hash of ``recipe``, to tell whether a resumed sweep is the same sweep.

    Example:
        >>> plan_sweep("mlp", presets=["none"]).configurations[0].overrides
        ('regularization.preset=none',)
    """

    slug: str
    overrides: tuple[str, ...]
    recipe: Recipe
    fingerprint: str


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the base recipe, its configurations, and warnings worth printing.

    Example:
        >>> plan = plan_sweep("mlp", presets=["none", "aggressive"])
        >>> plan.base.name, len(plan.configurations), plan.default_dir
        ('mlp', 2, PosixPath('runs/mlp-sweep'))
    """

    base: Recipe
    configurations: list[Configuration]
    warnings: list[str] = field(default_factory=list)

    @property
    def default_dir(self) -> Path:
        """Where the sweep state and ``best_recipe.yaml`` go: ``<logging.dir>/<name>-sweep``.

        Example:
            >>> plan_sweep("mlp", ["logging.dir=out"], presets=["none"]).default_dir
            PosixPath('out/mlp-sweep')
        """
        return self.base.logging.dir / f"{self.base.name}-sweep"

    def recipe_to_share(self, configuration: Configuration) -> Recipe:
        """``configuration``'s recipe under the base name and progress-bar setting, to fit again.

        Example:
            >>> plan = plan_sweep("mlp", presets=["none"])
            >>> plan.recipe_to_share(plan.configurations[0]).name
            'mlp'
        """
        trainer = configuration.recipe.trainer.model_copy(
            update={"enable_progress_bar": self.base.trainer.enable_progress_bar}
        )
        return configuration.recipe.model_copy(update={"name": self.base.name, "trainer": trainer})


def split_values(text: str) -> list[str]:
    """Split a grid axis's values on the commas outside brackets.

    Example:
        >>> split_values("1e-3,3e-3"), split_values("[16],[32,16]")
        (['1e-3', '3e-3'], ['[16]', '[32,16]'])
    """
    values, depth, current = [], 0, ""
    for char in text:
        depth += (char in "[{") - (char in "]}")
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_grid(specs: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Grid axes ``key.path -> [value text, ...]`` and one line per malformed spec.

    Example:
        >>> parse_grid(["optim.lr=1e-3,3e-3", "oops"])
        ({'optim.lr': ['1e-3', '3e-3']}, ["--grid 'oops': expected key.path=v1,v2,... e.g. optim.lr=1e-3,3e-3"])
    """
    axes: dict[str, list[str]] = {}
    problems: list[str] = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        values = split_values(text)
        if not sep or not key:
            problems.append(f"--grid {spec!r}: expected key.path=v1,v2,... e.g. optim.lr=1e-3,3e-3")
        elif key in axes:
            problems.append(f"--grid {key}: given twice; list all its values once, comma-separated")
        elif "" in values:
            problems.append(f"--grid {key}: empty value in {text!r}")
        elif len(set(values)) < len(values):
            problems.append(f"--grid {key}: a value is repeated in {text!r}")
        else:
            axes[key] = values
    return axes, problems


def preset_problems(presets: Sequence[str]) -> list[str]:
    """One line per unknown or repeated preset name, with a did-you-mean hint.

    Example:
        >>> preset_problems(["none", "modrate"])
        ["--presets: unknown preset 'modrate'; did you mean 'moderate'? (presets: none, conservative, moderate, aggressive)"]
    """
    problems = []
    for position, name in enumerate(presets):
        if name not in PRESETS:
            hint = did_you_mean(name, list(PRESETS))
            problems.append(
                f"--presets: unknown preset {name!r}{hint} (presets: {', '.join(PRESETS)})"
            )
        elif name in presets[:position]:
            problems.append(f"--presets: {name!r} is given twice")
    return problems


def _axis_labels(keys: Sequence[str]) -> dict[str, str]:
    """Each grid key's label in a slug: its last part, or the whole path where that is ambiguous."""
    leaves = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: leaf if leaves.count(leaf) == 1 else key.replace(".", "_")
        for key, leaf in zip(keys, leaves, strict=True)
    }


def _slug(preset: str | None, point: Sequence[tuple[str, str]], labels: dict[str, str]) -> str:
    parts = [preset] if preset is not None else []
    parts += [f"{labels[key]}_{_UNSAFE.sub('_', value).strip('_') or 'x'}" for key, value in point]
    return "-".join(parts)


def _run_name(base: str, slug: str) -> str:
    name = f"{base}-{slug}"
    if len(name) <= _MAX_NAME:
        return name
    return f"{base[: _MAX_NAME - 12]}-{hashlib.sha1(slug.encode()).hexdigest()[:11]}"


def _fingerprint(recipe: Recipe) -> str:
    return hashlib.sha256(recipe_to_yaml(recipe).encode()).hexdigest()[:16]


def _combinations(
    presets: Sequence[str], axes: dict[str, list[str]]
) -> list[tuple[str, tuple[str, ...]]]:
    """``(slug, overrides)`` for every preset x grid point, slugs made unique."""
    labels = _axis_labels(list(axes))
    points = list(itertools.product(*[[(key, v) for v in axes[key]] for key in axes]))
    result: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for preset in presets or [None]:
        for point in points:
            slug = _slug(preset, point, labels)
            unique, n = slug, 1
            while unique in seen:
                n += 1
                unique = f"{slug}-{n}"
            seen.add(unique)
            preset_override = () if preset is None else (f"regularization.preset={preset}",)
            result.append((unique, preset_override + tuple(f"{k}={v}" for k, v in point)))
    return result


def single_process_problems(recipe: Recipe) -> list[str]:
    """Why ``recipe`` cannot train as one run of a sweep or autofit (multi-device strategies would
    relaunch the calling process), one line per problem.

    Example:
        >>> single_process_problems(Recipe(name="x", trainer={"devices": 2}))
        ['trainer.devices: a sweep run uses one device, got 2']
    """
    devices = recipe.trainer.devices
    one = devices == 1 or (isinstance(devices, list) and len(devices) == 1)
    problems = [] if one else [f"trainer.devices: a sweep run uses one device, got {devices!r}"]
    if recipe.trainer.num_nodes != 1:
        problems.append(
            f"trainer.num_nodes: a sweep run uses one node, got {recipe.trainer.num_nodes}"
        )
    return problems


def _summarize(problems: dict[str, list[str]], total: int) -> list[str]:
    """One line per distinct problem, saying which configurations it hits."""
    lines = []
    for line, slugs in problems.items():
        if len(slugs) == total:
            lines.append(f"{line} (every configuration)")
        else:
            shown = ", ".join(slugs[:3]) + (", ..." if len(slugs) > 3 else "")
            lines.append(f"{line} (in {len(slugs)} of {total} configurations: {shown})")
    return lines


def _duplicates(base: Recipe, configurations: Sequence[Configuration]) -> list[str]:
    """Warnings for configurations that resolve to the very same recipe."""
    first: dict[str, str] = {}
    warnings = []
    for configuration in configurations:
        text = recipe_to_yaml(configuration.recipe.model_copy(update={"name": base.name}))
        if text in first:
            warnings.append(
                f"configurations {first[text]!r} and {configuration.slug!r} resolve to the same "
                "recipe (a preset only fills the keys the recipe leaves out)"
            )
        else:
            first[text] = configuration.slug
    return warnings


def plan_sweep(
    source: str | Path,
    overrides: Sequence[str] = (),
    presets: Sequence[str] = (),
    grid: Sequence[str] = (),
) -> SweepPlan:
    """Resolve and validate every configuration of ``presets`` x ``grid`` over a recipe file.

    Args:
        source: a recipe file, or the name of a shipped recipe.
        overrides: ``--set key.path=value`` overrides applied to the base recipe.
        presets: regularization preset names (``lightreg.presets.PRESETS``).
        grid: ``key.path=v1,v2,...`` axes, combined as a cartesian product.

    Raises:
        RecipeError: every problem at once, one line each (bad presets, grid specs, or values
            that some configurations cannot take, naming the key path).

    Example:
        >>> plan_sweep("mlp", grid=["regularization.dropout=0.2,1.5"])
        Traceback (most recent call last):
        ...
        lightreg.recipe.errors.RecipeError: regularization.dropout: input should be less than 1 (got 1.5) (in 1 of 2 configurations: dropout_1.5)
    """
    axes, problems = parse_grid(grid)
    problems += preset_problems(presets)
    if not presets and not grid:
        problems.append("nothing to sweep: give --presets and/or --grid")
    try:
        text, origin = read_recipe_text(source)
        raw: dict[str, Any] = parse_recipe_yaml(text, origin)
    except RecipeError as exc:
        raise RecipeError(problems + exc.problems) from None
    try:
        base = resolve_recipe(raw, overrides)
    except RecipeError as exc:
        raise RecipeError(problems + [f"{origin}: {line}" for line in exc.problems]) from None
    if problems:
        raise RecipeError(problems)
    configurations: list[Configuration] = []
    failures: dict[str, list[str]] = {}
    combinations = _combinations(presets, axes)
    for slug, extra in combinations:
        name = f"name={_run_name(base.name, slug)}"
        try:
            recipe = resolve_recipe(raw, [*overrides, *extra, *SWEEP_ONLY, name])
        except RecipeError as exc:
            for line in exc.problems:
                failures.setdefault(line, []).append(slug)
            continue
        for line in single_process_problems(recipe):
            failures.setdefault(line, []).append(slug)
        configurations.append(Configuration(slug, extra, recipe, _fingerprint(recipe)))
    if failures:
        raise RecipeError(_summarize(failures, len(combinations)))
    return SweepPlan(base, configurations, _duplicates(base, configurations))
