"""``lightreg autofit``: fit, diagnose, apply the prescription, refit, until it fits.

Example:
    $ lightreg autofit recipes/mlp_baseline.yaml
    $ lightreg autofit mlp_baseline --rounds 4 --epochs-budget 160 --candidates 2 --parallel 2
    $ lightreg autofit --resume runs/mlp_baseline/autofit_0
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from lightreg.cli.console import VERDICT_STYLE, err, out, safe, user_error

if TYPE_CHECKING:
    from lightreg.autofit import AutofitState, Round, Trial
    from lightreg.sweep.backends import Backend

_COLUMNS = (  # name, width (None: the rest of the line), justify
    ("round", 5, "right"),
    ("change", None, "left"),
    ("verdict", 15, "left"),
    ("best", 4, "right"),
    ("val loss", 8, "right"),
    ("val acc", 7, "right"),
    ("epochs", 6, "right"),
    ("time", 5, "right"),
)


def autofit(
    recipe: Annotated[
        str | None, typer.Argument(help="Recipe file, or the name of a shipped recipe.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key of round 0's recipe (repeatable)."),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="Most rounds, round 0 included. (default 6)")
    ] = None,
    epochs_budget: Annotated[
        int | None,
        typer.Option(
            help="Most epochs of all runs together; a round that may not fit is not started."
        ),
    ] = None,
    candidates: Annotated[
        int | None,
        typer.Option(help="Patches tried side by side per round, best-ranked first. (default 1)"),
    ] = None,
    backend: Annotated[
        Literal["local", "ray"],
        typer.Option(help="local processes, or Ray Tune (needs the ray extra)."),
    ] = "local",
    parallel: Annotated[int, typer.Option(help="Candidate runs at a time.")] = 1,
    resume: Annotated[
        Path | None,
        typer.Option(help="An autofit folder: continue it from its last completed round."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="The HTML report. (default: report.html in the autofit folder)"),
    ] = None,
    rank_by: Annotated[
        Literal["val_loss", "val_acc"] | None,
        typer.Option(help="The validation metric that selects. (default val_loss)"),
    ] = None,
) -> None:
    """Train, diagnose, apply the prescription and train again, until the run fits.

    Selection reads the validation split only; the test split is scored once, at the end.
    """
    given = {"rounds": rounds, "epochs_budget": epochs_budget, "candidates": candidates}
    given = {
        key: value for key, value in {**given, "rank_by": rank_by}.items() if value is not None
    }
    problems = _settings_problems(given)
    if resume is not None and (recipe is not None or set_):
        problems.append(
            "--resume continues an autofit as its autofit.json says; drop RECIPE and --set"
        )
    if resume is None and recipe is None:
        problems.append(
            "give a recipe file (e.g. recipes/mlp_baseline.yaml) or --resume AUTOFIT_DIR"
        )
    if report is not None and not report.parent.is_dir():
        problems.append(f"--report: {report.parent} is not a folder")
    runner, backend_problems = _backend(backend, parallel)
    problems += backend_problems
    if problems or runner is None:
        user_error(problems)
    if resume is not None:
        state = _load(resume, given)
    else:
        state = _start(str(recipe), set_ or [], given)
    _run(state, runner, report, backend, parallel)


def _settings_problems(given: dict[str, Any]) -> list[str]:
    from lightreg.autofit import Settings

    try:
        Settings(**given)
    except ValueError as exc:
        return str(exc).split("; ")
    return []


def _backend(name: str, parallel: int) -> tuple[Backend | None, list[str]]:
    """The runner for the candidates; the Ray one's storage is set once the folder exists."""
    from lightreg.sweep import BackendError, LocalBackend, RayBackend

    try:
        runner = RayBackend(Path("ray"), parallel) if name == "ray" else LocalBackend(parallel)
    except BackendError as exc:
        return None, [str(exc)]
    return runner, []


def _start(source: str, overrides: list[str], given: dict[str, Any]) -> AutofitState:
    from lightreg.autofit import Settings, start_autofit
    from lightreg.cli.lint_report import report_lint
    from lightreg.cli.recipe_input import load_or_exit
    from lightreg.preflight import preflight_problems
    from lightreg.sweep.plan import single_process_problems

    resolved = load_or_exit(source, overrides)
    report_lint(resolved, strict=False)
    settings = Settings(**given)
    problems = preflight_problems(resolved) + single_process_problems(resolved)
    budget, first = settings.epochs_budget, resolved.trainer.max_epochs
    if budget is not None and budget < first:
        problems.append(
            f"--epochs-budget {budget} is less than round 0's trainer.max_epochs ({first})"
        )
    if problems:
        user_error(problems)
    try:
        return start_autofit(resolved, settings, source=source, overrides=overrides)
    except OSError as exc:
        user_error(
            [
                f"logging.dir {resolved.logging.dir}: cannot create the autofit folder ({exc.strerror or exc})"
            ]
        )


def _load(folder: Path, given: dict[str, Any]) -> AutofitState:
    from lightreg.autofit import AutofitError, AutofitState, Settings

    try:
        state = AutofitState.load(folder)
    except AutofitError as exc:
        user_error([str(exc)])
    state.settings = Settings(**{**asdict(state.settings), **given})
    return state


def _run(
    state: AutofitState, runner: Backend, report: Path | None, backend: str, parallel: int
) -> None:
    import dataclasses

    from lightreg.autofit import REPORT_FILE, AutofitError, AutofitInterrupted, run_autofit
    from lightreg.cli.fit import route_library_warnings
    from lightreg.sweep import RayBackend, hold_folder

    if isinstance(runner, RayBackend):
        runner = dataclasses.replace(runner, storage=state.folder / "ray")
    report = report or state.folder / REPORT_FILE
    settings = state.settings
    budget = "none" if settings.epochs_budget is None else f"{settings.epochs_budget} epochs"
    out.print(
        f"autofit {safe(state.recipe)}: up to {settings.rounds} rounds, {settings.candidates} "
        f"candidate(s) a round, epoch budget {budget}; backend {backend}, {parallel} at a time; "
        f"folder {safe(state.folder)}",
        highlight=False,
        soft_wrap=True,
    )
    route_library_warnings()
    _print_rows([], header=True)
    for round_ in state.rounds:
        if round_.done:
            _print_round(state, round_)
    with ExitStack() as held:
        try:
            held.enter_context(hold_folder(state.folder))
        except ValueError:
            user_error([f"{state.folder}: another autofit is running in this folder"])
        except OSError as exc:
            user_error([f"{state.folder}: cannot open the folder ({exc.strerror or exc})"])
        try:
            run_autofit(
                state,
                runner,
                report=report,
                on_round_start=_print_decision,
                on_round_end=_print_round,
            )
        except AutofitInterrupted as exc:
            err.print(f"[yellow]{safe(exc)}[/]", highlight=False, soft_wrap=True)
            raise typer.Exit(code=130) from None
        except AutofitError as exc:
            user_error([str(exc)], code=1)
    _print_summary(state, report)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _print_rows(rows: list[list[str]], header: bool = False) -> None:
    """Rows of the round table; every call lays the columns out alike, so rows line up."""
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD,
        show_header=header,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0),
        expand=True,
    )
    for name, width, justify in _COLUMNS:
        table.add_column(
            name,
            width=width,
            ratio=1 if width is None else None,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=width is not None,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _print_decision(state: AutofitState, round_: Round) -> None:
    if round_.number > 0:
        out.print(f"[dim]{safe(round_.decision)}[/]", highlight=False, soft_wrap=True)


def _print_round(state: AutofitState, round_: Round) -> None:
    rows = [_row(round_, trial, len(round_.trials)) for trial in round_.trials]
    rows[-1][-1] = f"{round_.wall_time:.0f}s"
    _print_rows(rows)
    if round_.kept is None:
        out.print(
            f"[yellow]round {round_.number} rolled back: every run failed or diverged[/]",
            highlight=False,
        )


def _row(round_: Round, trial: Trial, count: int) -> list[str]:
    label = str(round_.number) if count == 1 else trial.slug.removeprefix("round_")
    kept = count > 1 and round_.kept is not None and round_.trials[round_.kept] is trial
    change = safe(_short(trial.patch))
    outcome = trial.outcome
    verdict = "failed" if trial.status == "failed" else (outcome.verdict if outcome else "-")
    style = VERDICT_STYLE.get(verdict, "")
    if trial.status == "failed":
        change += f" [red]({safe(trial.error or 'failed')})[/]"
    return [
        f"[bold]{label}*[/]" if kept else label,
        change,
        f"[{style}]{verdict}[/]" if style else verdict,
        "-" if outcome is None or outcome.best_epoch is None else str(outcome.best_epoch),
        _fmt(None if outcome is None else outcome.val_loss),
        _fmt(None if outcome is None else outcome.val_acc),
        "-" if outcome is None else str(outcome.epochs),
        "",
    ]


def _short(patch: list[dict[str, Any]]) -> str:
    """A patch in a few words: each changed knob's name and new value (the log line has it all).

    >>> _short([{"key": "early_stopping.enabled", "new": True}, {"key": "model.hidden", "new": [8]}])
    'early_stopping=true, hidden=[8]'
    """
    if not patch:
        return "the recipe as given"
    from lightreg.diagnose.advice import format_value

    return ", ".join(
        f"{_knob(change['key'])}="
        + (change["new"] if isinstance(change["new"], str) else format_value(change["new"]))
        for change in patch
    )


def _knob(key: str) -> str:
    """A key's last part, or its section where that part names no knob (``x.enabled`` is ``x``)."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "enabled" and len(parts) > 1 else parts[-1]


def _print_summary(state: AutofitState, report: Path) -> None:
    from lightreg.sweep.driver import BEST_RECIPE

    stop = state.stop
    if stop is not None:
        out.print(f"stopped ({stop.rule}): {safe(stop.message)}", highlight=False, soft_wrap=True)
    selected = state.selected()
    minutes = state.wall_time / 60
    spent = (
        f"{len(state.rounds)} round(s), {state.epochs_used} epochs, {minutes:.1f} min of training"
    )
    if selected is None or selected.kept_trial is None:
        out.print(f"spent: {spent}", highlight=False)
        user_error(["no round to select: every round failed or diverged"], code=1)
    trial = selected.kept_trial
    outcome = trial.outcome
    test = state.test or {}
    out.print(
        f"[bold]selected: round {selected.number}[/] (val loss {_fmt(outcome.val_loss if outcome else None)}, "
        f"val acc {_fmt(outcome.val_acc if outcome else None)}); "
        f"test accuracy [bold]{_fmt(test.get('test_acc'))}[/], test loss {_fmt(test.get('test_loss'))} "
        "(the test split scored once, for this round only)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(f"spent: {spent}", highlight=False)
    for name, path in (
        ("best recipe", state.folder / BEST_RECIPE),
        ("log", state.path),
        ("report", report),
        ("run", state.folder / str(trial.run_dir)),
    ):
        if path.exists():
            out.print(f"{name}: {safe(path)}", highlight=False, soft_wrap=True)
