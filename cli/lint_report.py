"""Print a recipe's lint findings for ``validate`` and ``fit``; ``--strict`` makes them fatal.

Example:
    >>> from lightreg.recipe import Recipe
    >>> report_lint(Recipe(name="x"), strict=True)  # no findings: prints nothing, returns
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightreg.cli.console import err, safe, user_error

if TYPE_CHECKING:
    from lightreg.recipe import Recipe


def report_lint(recipe: Recipe, strict: bool) -> None:
    """One yellow ``warning:`` line on stderr per finding; with ``strict``, exit code 2 if any.

    The linter (and pydantic) is imported here, not at start-up, to keep ``lightreg`` fast.

    Example:
        >>> from lightreg.recipe import Recipe
        >>> report_lint(Recipe(name="x"), strict=True)  # no findings: prints nothing, returns
    """
    from lightreg.recipe.lint import lint_recipe

    findings = lint_recipe(recipe)
    for finding in findings:
        err.print(
            f"warning: {safe(finding.message)}", style="yellow", highlight=False, soft_wrap=True
        )
    if strict and findings:
        user_error(
            [f"{len(findings)} lint warning(s) and --strict is on; fix them or drop --strict"]
        )
