"""``lightreg fit``: train a recipe, or continue an interrupted run, and print a summary.

Example:
    $ lightreg fit recipes/mlp.yaml --set trainer.max_epochs=20
    $ lightreg fit recipes/mlp.yaml --dry-run
    $ lightreg fit --resume runs/mlp/version_0
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lightreg.cli.console import err, out, safe, user_error
from lightreg.cli.lint_report import report_lint
from lightreg.cli.recipe_input import load_or_exit
from lightreg.run_files import RECIPE_FILE
from lightreg.text import printable

if TYPE_CHECKING:
    from lightreg.recipe import Recipe


def fit(
    recipe: Annotated[
        str | None, typer.Argument(help="Recipe file, or the name of a shipped recipe.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: --set trainer.max_epochs=20 (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the fully resolved recipe as YAML and exit.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(help="A run's version directory: continue it from its last.ckpt."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse to start when the recipe linter warns.")
    ] = False,
) -> None:
    """Train a model from a recipe; end with a summary of the run."""
    resolved = _resolve(recipe, set_ or [], resume)
    report_lint(resolved, strict)
    if dry_run:
        from lightreg.recipe import recipe_to_yaml

        print(recipe_to_yaml(resolved), end="")
        return
    from lightreg.preflight import preflight_problems

    problems = preflight_problems(resolved)
    if problems:
        user_error(problems)
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from lightreg.cli.summary import print_summary
    from lightreg.data.datasets import DataError
    from lightreg.runner import ResumeError, RunDirError, RunInterrupted
    from lightreg.runner import fit as run_fit

    route_library_warnings()
    try:
        result = run_fit(resolved, resume=resume)
    except (DataError, ResumeError, RunDirError) as exc:
        user_error([str(exc)])
    except MisconfigurationException as exc:  # Lightning's word on a Trainer setting
        user_error([f"trainer: {exc}"])
    except RunInterrupted as exc:
        err.print(f"[yellow]{safe(exc)}[/]", highlight=False)
        raise typer.Exit(code=130) from None
    if result is not None:
        print_summary(out, resolved, result)


def route_library_warnings() -> None:
    """Show the library's ``lightreg`` log warnings (e.g. OverfittingMonitor) as rich lines."""
    from rich.logging import RichHandler

    logger = logging.getLogger("lightreg")
    if not logger.handlers:
        handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
        handler.setLevel(logging.WARNING)
        handler.addFilter(_printable_record)
        logger.addHandler(handler)
        logger.propagate = False


def _printable_record(record: logging.LogRecord) -> bool:
    """Show a log line's control characters (a run name's ESC or newline) as visible text."""
    record.msg, record.args = printable(record.getMessage()), ()
    return True


def _resolve(recipe: str | None, overrides: list[str], resume: Path | None) -> Recipe:
    if resume is None:
        if recipe is None:
            user_error(["give a recipe file (e.g. recipes/mlp.yaml) or --resume RUN_DIR"])
        return load_or_exit(recipe, overrides)
    if recipe is not None or overrides:
        user_error(
            ["--resume continues a run exactly as its recipe.yaml says; drop RECIPE and --set"]
        )
    saved = resume / RECIPE_FILE
    if not saved.is_file():
        user_error(
            [f"{resume}: no {RECIPE_FILE}; expected a run directory written by lightreg fit"]
        )
    return load_or_exit(str(saved), [])
