"""``lightreg sweep``: run presets x grid configurations of a recipe, diagnose, rank, keep the best.

Example:
    $ lightreg sweep recipes/mlp.yaml --presets none,conservative,moderate,aggressive
    $ lightreg sweep recipes/mlp.yaml --grid optim.lr=1e-3,3e-3 regularization.dropout=0.2,0.4
    $ lightreg sweep recipes/mlp.yaml --presets none,moderate --parallel 2 --resume
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from lightreg.cli.console import VERDICT_STYLE, err, out, safe, user_error

if TYPE_CHECKING:
    from lightreg.sweep import Entry, SweepPlan, SweepState
    from lightreg.sweep.backends import Backend
    from lightreg.sweep.rank import RankBy


def sweep(
    recipe: Annotated[str, typer.Argument(help="Recipe file, or the name of a shipped recipe.")],
    more_grid: Annotated[
        list[str] | None,
        typer.Argument(
            help="More grid axes after --grid: --grid optim.lr=1e-3,3e-3 regularization.l2=0,1e-4",
            show_default=False,
        ),
    ] = None,
    presets: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated presets to compare: none,conservative,moderate,aggressive."
        ),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(help="A grid axis key.path=v1,v2 (repeatable); all axes are combined."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key of the base recipe (repeatable)."),
    ] = None,
    parallel: Annotated[int, typer.Option(min=1, help="Runs at a time.")] = 1,
    backend: Annotated[
        Literal["local", "ray"],
        typer.Option(help="local processes, or Ray Tune (needs the ray extra)."),
    ] = "local",
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Sweep folder (state, best_recipe.yaml); default <logging.dir>/<name>-sweep.",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the sweep in the sweep folder.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Start anew over an existing sweep and best_recipe.yaml."),
    ] = False,
    rank_by: Annotated[
        Literal["val_loss", "val_acc"], typer.Option(help="Order within a verdict tier.")
    ] = "val_loss",
) -> None:
    """Compare regularization presets and/or a grid of settings; write the best recipe."""
    from lightreg.recipe import RecipeError
    from lightreg.sweep import STATE_FILE, BackendError, SweepInterrupted, plan_sweep

    if more_grid and not grid:
        user_error([f"unexpected argument {more_grid[0]!r}; grid axes go after --grid"])
    try:
        plan = plan_sweep(
            recipe, set_ or [], _split_presets(presets), [*(grid or []), *(more_grid or [])]
        )
    except RecipeError as exc:
        user_error(exc.problems)
    folder = out_dir or plan.default_dir
    if resume and force:
        user_error(["--resume continues a sweep, --force starts a new one: choose one"])
    if resume and not (folder / STATE_FILE).is_file():
        user_error([f"{folder}: no {STATE_FILE} to resume; run without --resume"])
    with ExitStack() as held:
        _hold(held, folder)
        state = _open_state(plan, folder / STATE_FILE, resume, force)
        try:
            runner = _backend(backend, parallel, folder)
        except BackendError as exc:
            user_error([str(exc)])
        for warning in plan.warnings:
            err.print(f"[yellow]warning:[/] {safe(warning)}", highlight=False, soft_wrap=True)
        done = len(state.runs) - len(state.unfinished())
        out.print(
            f"sweep {safe(plan.base.name)}: {len(state.runs)} configurations, "
            f"{done} done already; backend {backend}, {parallel} at a time; "
            f"folder {safe(folder)}",
            highlight=False,
            soft_wrap=True,
        )
        try:
            _run_with_progress(plan, state, runner)
        except SweepInterrupted:
            err.print(
                "[yellow]interrupted; rerun the same command with --resume to finish[/]",
                highlight=False,
            )
            raise typer.Exit(code=130) from None
        _report(plan, state, folder, rank_by)


def _hold(held: ExitStack, folder: Path) -> None:
    """Make the sweep folder and hold it until ``held`` closes; one line when that fails."""
    from lightreg.sweep import hold_folder

    try:
        held.enter_context(hold_folder(folder))
    except OSError as exc:
        user_error([f"{folder}: cannot make the sweep folder ({exc.strerror or exc})"])
    except ValueError as exc:
        user_error([str(exc)])


def _split_presets(text: str | None) -> list[str]:
    return [] if text is None else [name.strip() for name in text.split(",")]


def _open_state(plan: SweepPlan, path: Path, resume: bool, force: bool) -> SweepState:
    from lightreg.sweep import BEST_RECIPE, SweepState

    if resume:
        try:
            state = SweepState.load(path)
        except ValueError as exc:
            user_error([str(exc)])
        problems = state.mismatches(plan)
        if problems:
            user_error([*problems, "--resume needs the arguments the sweep started with"])
    else:
        if path.is_file() and not force:
            user_error(
                [
                    f"{path.parent}: a sweep is already here; --resume to continue it, --force to restart"
                ]
            )
        state = SweepState.fresh(path, plan)
    best = path.parent / BEST_RECIPE
    if best.exists() and not force and state.best_recipe != str(best):
        user_error([f"{best} exists; --force to overwrite it, or --out another folder"])
    return state


def _backend(name: str, parallel: int, folder: Path) -> Backend:
    from lightreg.sweep import LocalBackend, RayBackend

    return RayBackend(folder / "ray", parallel) if name == "ray" else LocalBackend(parallel)


def _run_with_progress(plan: SweepPlan, state: SweepState, runner: Backend) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from lightreg.sweep import JobResult, run_sweep

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    done = len(state.runs) - len(state.unfinished())
    with Progress(*columns, console=out) as progress:
        name = safe(plan.base.name)
        task = progress.add_task(f"sweep {name}", total=len(state.runs), completed=done)

        def on_done(result: JobResult) -> None:
            slug = safe(result.slug)
            if not result.ok:
                progress.console.print(
                    f"[red]{slug}: failed:[/] {safe(result.error or '')}",
                    highlight=False,
                    soft_wrap=True,
                )
            progress.update(task, advance=1, description=f"sweep {name} ({slug})")

        run_sweep(plan, state, runner, on_done)


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _report(plan: SweepPlan, state: SweepState, folder: Path, rank_by: RankBy) -> None:
    from rich import box
    from rich.table import Table

    from lightreg.sweep import diagnose_sweep, rank, write_best_recipe
    from lightreg.sweep.rank import FAILED_TIER

    entries = rank(diagnose_sweep(state), rank_by)
    title = f"lightreg sweep: {safe(plan.base.name)} (ranked by verdict, then {rank_by})"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("#", "configuration", "verdict", "best", "val loss", "val acc", "gap"):
        name = column == "configuration"
        table.add_column(
            column,
            justify="left" if name or column == "verdict" else "right",
            no_wrap=not name,
            overflow="fold",
            min_width=13 if name else None,
        )
    for position, entry in enumerate(entries, 1):
        style = VERDICT_STYLE.get(entry.verdict, "")
        table.add_row(
            str(position),
            safe(entry.slug),
            f"[{style}]{entry.verdict}[/]" if style else safe(entry.verdict),
            "-" if entry.best_epoch is None else str(entry.best_epoch),
            _fmt(entry.val_loss),
            _fmt(entry.val_acc),
            _fmt(entry.gap),
        )
    out.print(table)
    out.print(
        "best: the epoch (0-based) of the lowest validation loss; gap: final validation minus training loss",
        highlight=False,
    )
    _report_failures(entries)
    winner = entries[0] if entries and entries[0].tier < FAILED_TIER else None
    if winner is None:
        user_error(["no run finished; no best recipe to write"], code=1)
    path = write_best_recipe(plan, state, winner, folder)
    out.print(
        f"winner: {safe(winner.slug)} (run {safe(winner.run_dir)}) -> {safe(path)}",
        highlight=False,
        soft_wrap=True,
    )
    failed = sum(entry.tier == FAILED_TIER for entry in entries)
    if failed:
        user_error([f"{failed} of {len(entries)} runs failed; rerun them with --resume"], code=1)


def _report_failures(entries: list[Entry]) -> None:
    for entry in entries:
        if entry.verdict in ("failed", "not_run"):
            err.print(
                f"[red]{safe(entry.slug)}:[/] {safe(entry.note or entry.verdict)}",
                highlight=False,
                soft_wrap=True,
            )
