"""The rich summary table printed at the end of ``lightreg fit``.

Example:
    >>> from rich.console import Console  # doctest: +SKIP
    >>> print_summary(Console(), recipe, result)  # doctest: +SKIP
"""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from lightreg.cli.console import safe
from lightreg.recipe import Recipe
from lightreg.runner import FitResult


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_summary(console: Console, recipe: Recipe, result: FitResult) -> None:
    """Epochs, best epoch, train/val/test loss and accuracy, the gap, and where the logs are.

    Example:
        >>> from lightreg.runner import fit  # doctest: +SKIP
        >>> print_summary(Console(), recipe, fit(recipe))  # doctest: +SKIP
    """
    table = Table(
        title=f"lightreg fit: {safe(recipe.name)}",
        show_header=True,
        header_style="bold",
    )
    table.add_column("")
    table.add_column("train", justify="right")
    table.add_column("val", justify="right")
    table.add_column("test", justify="right")
    table.add_column("train-val gap", justify="right")
    table.add_row(
        "loss",
        _fmt(result.metric("train_eval_loss")),
        _fmt(result.metric("val_loss")),
        _fmt(result.metric("test_loss")),
        _fmt(result.gap_loss),
    )
    table.add_row(
        "accuracy",
        _fmt(result.metric("train_eval_acc")),
        _fmt(result.metric("val_acc")),
        _fmt(result.metric("test_acc")),
        _fmt(result.gap_acc),
    )
    console.print(table)
    stop = "stopped early" if result.stopped_early else "ran to max_epochs"
    best = "-" if result.best_epoch is None else str(result.best_epoch)
    scored = "the final weights" if result.best_epoch is None else "the best weights"
    console.print(
        f"epochs run: {result.epochs_run} of {result.max_epochs} ({stop}); "
        f"best epoch: {best} (0-based, by {safe(recipe.early_stopping.monitor)}); the table scores "
        f"{scored} (train: the training split again, without augmentation)",
        highlight=False,
    )
    if result.diverged_epoch is not None:
        console.print(
            f"[bold red]diverged:[/] a loss became NaN or infinite at epoch "
            f"{result.diverged_epoch}; try a lower optim.lr or gradient clipping",
            highlight=False,
        )
    if result.replicas > 1:
        agree = "identical" if result.replicas_identical else "[red]DIFFERENT[/]"
        console.print(
            f"replicas: {result.replicas} processes, final weights {agree} "
            f"(sha256 {result.weights_digest[:12]})",
            highlight=False,
        )
    console.print(f"logs and checkpoints: {safe(result.run_dir)}", highlight=False, soft_wrap=True)
