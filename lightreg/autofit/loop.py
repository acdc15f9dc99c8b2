"""The autofit loop: fit, diagnose, apply the prescription, refit, until a stop rule holds.

Round 0 trains the recipe as given. After each round the diagnose engine (the one behind
``lightreg diagnose``) judges the kept run, and its prescription's patch (the one
``--write-recipe`` writes) makes the next round's recipe; with ``candidates > 1`` the round
tries that many distinct patches side by side (:mod:`lightreg.autofit.candidates`) on a sweep
backend, and keeps the one with the best validation metric. A round whose runs all fail or
diverge is rolled back: the next round goes on from the best round so far, with the best
patches of its prescription not tried yet. :mod:`lightreg.autofit.stop` says when it ends.

Honesty: every run trains with ``fit(test=False)``; selection reads validation scores only. The
test split is scored once, after the loop, for the selected round
(:func:`lightreg.runner.evaluate_test`).

Files, in ``<logging.dir>/<name>/autofit_N/``: one run folder per trial
(``round_R/version_0``, or ``round_R-K/version_0`` with candidates), ``autofit.json``,
``best_recipe.yaml`` and the HTML report, all rewritten after every round.

Example:
    >>> from lightreg.recipe import load_recipe
    >>> from lightreg.sweep import LocalBackend
    >>> state = start_autofit(load_recipe("mlp_baseline"), Settings(rounds=4))  # doctest: +SKIP
    >>> run_autofit(state, LocalBackend(), report=state.folder / REPORT_FILE)  # doctest: +SKIP
    >>> state.stop.rule, state.selected().number, state.test["test_acc"]  # doctest: +SKIP
    ('good_fit', 2, 0.95)
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lightreg.autofit.candidates import Candidate, candidates, canonical, fingerprint
from lightreg.autofit.state import (
    AutofitError,
    AutofitState,
    Outcome,
    Round,
    Settings,
    Trial,
    change_record,
    describe_patch,
)
from lightreg.autofit.stop import Stop, pick, stop_after
from lightreg.diagnose.engine import Diagnosis, diagnose_paths
from lightreg.recipe import Recipe, recipe_to_yaml, resolve_recipe
from lightreg.run_files import claim_next_dir
from lightreg.sweep.backends import Backend, Job, JobResult, SweepInterrupted
from lightreg.sweep.driver import BEST_RECIPE
from lightreg.text import printable

REPORT_FILE = "report.html"
OnRound = Callable[[AutofitState, Round], None]


class AutofitInterrupted(Exception):
    """The user stopped the loop (Ctrl-C); what finished is saved and ``folder`` can be resumed.

    Example:
        >>> str(AutofitInterrupted(Path("runs/mlp/autofit_0")))
        'interrupted; resume with: lightreg autofit --resume runs/mlp/autofit_0'
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        super().__init__(f"interrupted; resume with: lightreg autofit --resume {folder}")


def start_autofit(
    recipe: Recipe, settings: Settings, *, source: str = "", overrides: Sequence[str] = ()
) -> AutofitState:
    """Claim ``<logging.dir>/<name>/autofit_N/`` and save round 0 (the recipe as given) in it.

    Example:
        >>> import tempfile
        >>> recipe = Recipe(name="x", logging={"dir": tempfile.mkdtemp()})
        >>> state = start_autofit(recipe, Settings())
        >>> state.folder.name, state.rounds[0].trials[0].slug, state.path.is_file()
        ('autofit_0', 'round_0', True)
    """
    folder = claim_next_dir(recipe.logging.dir / recipe.name, "autofit_")
    trial = Trial("round_0", [], canonical(recipe), fingerprint(recipe))
    state = AutofitState(folder, source or recipe.name, list(overrides), settings, [])
    state.rounds.append(Round(0, None, "round 0: the recipe as given", [trial]))
    state.save()
    return state


def run_recipe(state: AutofitState, trial: Trial) -> Recipe:
    """The recipe a trial's run trains: its own, named after the trial, inside the autofit folder.

    Lightning's progress bar is off, as in a sweep; nothing else differs from the trial's recipe.

    Example:
        >>> state = AutofitState(Path("runs/x/autofit_0"), "x", [], Settings(), [])
        >>> recipe = run_recipe(state, Trial("round_1", [], {"name": "x"}, "fp"))
        >>> recipe.name, str(recipe.logging.dir), recipe.trainer.enable_progress_bar
        ('round_1', 'runs/x/autofit_0', False)
    """
    recipe = resolve_recipe(trial.recipe)
    logging = recipe.logging.model_copy(update={"dir": state.folder})
    trainer = recipe.trainer.model_copy(update={"enable_progress_bar": False})
    return recipe.model_copy(update={"name": trial.slug, "logging": logging, "trainer": trainer})


def run_autofit(
    state: AutofitState,
    backend: Backend,
    *,
    report: Path | None = None,
    on_round_start: OnRound | None = None,
    on_round_end: OnRound | None = None,
) -> AutofitState:
    """Run (or continue) the loop until a stop rule holds; then score the selected round's test split.

    A round left unfinished by an interruption is continued: finished trials are kept, an
    interrupted run continues from its ``last.ckpt``. ``autofit.json`` is saved after every run,
    ``best_recipe.yaml`` and ``report`` (when given) after every round.

    Raises:
        AutofitInterrupted: on Ctrl-C.
        AutofitError: when the selected run cannot be scored on the test split.

    Example:
        >>> run_autofit(state, LocalBackend(), report=state.folder / REPORT_FILE)  # doctest: +SKIP
    """
    diagnoses: dict[str, Diagnosis] = {}
    try:
        while state.stop is None:
            current = state.rounds[-1]
            if not current.done:
                if on_round_start is not None:
                    on_round_start(state, current)
                _run_round(state, current, backend, diagnoses)
                _write_outputs(state, report, diagnoses)
                if on_round_end is not None:
                    on_round_end(state, current)
            step = _next_step(state, diagnoses)
            if isinstance(step, Stop):
                state.stop = step
            else:
                state.rounds.append(step)
            state.save()
        _score_test(state)
        _write_outputs(state, report, diagnoses)
    except (KeyboardInterrupt, SweepInterrupted):
        raise AutofitInterrupted(state.folder) from None
    return state


def _run_round(
    state: AutofitState, round_: Round, backend: Backend, diagnoses: dict[str, Diagnosis]
) -> None:
    jobs = []
    for trial in round_.trials:
        if trial.status in ("done", "failed"):
            continue
        resume = trial.partial_run(state.folder)
        trial.status = "running"
        jobs.append(Job(trial.slug, run_recipe(state, trial), resume, test=False))
    state.save()
    mark = time.monotonic()

    def finished(result: JobResult) -> None:
        nonlocal mark
        _record(state, round_.trial(result.slug), result, diagnoses)
        now = time.monotonic()
        round_.wall_time += now - mark
        mark = now
        state.save()

    backend.run(jobs, finished)
    round_.judge(state.settings.rank_by)
    state.save()


def _record(
    state: AutofitState, trial: Trial, result: JobResult, diagnoses: dict[str, Diagnosis]
) -> None:
    """A finished trial's status, run folder and diagnosis (a failed one's epochs, if logged)."""
    where = (
        result.run_dir if result.ok and result.run_dir is not None else state.folder / trial.slug
    )
    report = diagnose_paths([where])
    found = report.diagnoses[-1] if report.diagnoses else None
    trial.error = result.error
    if result.ok and result.run_dir is not None:
        trial.run_dir = str(Path(result.run_dir).relative_to(state.folder))
        if found is None:
            reasons = [reason for _, reasons in report.empty_paths for reason in reasons]
            trial.error = f"no readable metrics ({'; '.join(reasons) or 'nothing logged'})"
    trial.status = "done" if trial.error is None else "failed"
    if found is not None:
        diagnoses[found.run.path] = found
        trial.outcome = _outcome(found)


def _outcome(diagnosis: Diagnosis) -> Outcome:
    best, curves = diagnosis.evidence.best_epoch, diagnosis.curves
    return Outcome(
        verdict=diagnosis.verdict,
        summary=diagnosis.prescription.summary,
        reasons=list(diagnosis.judgement.reasons),
        prescription=diagnosis.prescription.lines(),
        best_epoch=best,
        val_loss=None if best is None else curves.val.get(best),
        val_acc=None if best is None else curves.val_acc.get(best),
        epochs=diagnosis.evidence.epochs,
    )


def _diagnosis(
    state: AutofitState, trial: Trial, diagnoses: dict[str, Diagnosis]
) -> Diagnosis | None:
    """A finished trial's diagnosis, read again from its run folder after a resume."""
    if trial.run_dir is None:
        return None
    path = state.folder / trial.run_dir
    if str(path) not in diagnoses:
        found = diagnose_paths([path]).diagnoses
        if not found:
            return None
        diagnoses[str(path)] = found[-1]
    return diagnoses[str(path)]


def _source(state: AutofitState) -> tuple[Round, Trial, bool] | Stop:
    """Where the next round starts: the last kept run; after a roll-back, the best round's."""
    last = state.rounds[-1]
    if last.kept_trial is not None:
        return last, last.kept_trial, False
    best = state.selected()
    if best is not None and best.kept_trial is not None:
        return best, best.kept_trial, True
    judged = [trial for trial in last.trials if trial.outcome is not None and trial.run_dir]
    if judged:  # diverged with no good round before: its prescription is the way out
        return last, judged[0], False
    errors = "; ".join(sorted({trial.error or "failed" for trial in last.trials}))
    return Stop("failed", f"round {last.number} failed and no round before it succeeded: {errors}")


def _next_step(state: AutofitState, diagnoses: dict[str, Diagnosis]) -> Round | Stop:
    last = state.rounds[-1]
    kept = last.kept_trial
    verdict = None if kept is None or kept.outcome is None else kept.outcome.verdict
    settings = state.settings
    stop = stop_after(verdict, state.scores(), settings.rounds, settings.rank_by)
    if stop is not None:
        return stop
    source = _source(state)
    if isinstance(source, Stop):
        return source
    round_, trial, rollback = source
    diagnosis = _diagnosis(state, trial, diagnoses)
    if diagnosis is None:
        return Stop("failed", f"round {round_.number}: its run can no longer be read")
    budget = settings.epochs_budget
    chosen = pick(
        candidates(trial.recipe, diagnosis.prescription),
        state.tried(),
        source=round_.number,
        count=settings.candidates,
        epochs_left=None if budget is None else budget - state.epochs_used,
        rollback=rollback,
    )
    if isinstance(chosen, Stop):
        return chosen
    number = len(state.rounds)
    return Round(
        number,
        round_.number,
        _decision(number, round_, trial, chosen, rollback, last),
        [_trial(number, position, len(chosen), c) for position, c in enumerate(chosen, 1)],
    )


def _trial(number: int, position: int, count: int, candidate: Candidate) -> Trial:
    slug = f"round_{number}" if count == 1 else f"round_{number}-{position}"
    patch = [change_record(change) for change in candidate.patch]
    return Trial(slug, patch, canonical(candidate.recipe), candidate.fingerprint)


def _decision(
    number: int, source: Round, trial: Trial, chosen: list[Candidate], rollback: bool, last: Round
) -> str:
    """The log line: ``round 2: overfitting since epoch 9 of 20 (GL 31%) -> dropout 0.2 -> 0.3``."""
    why = trial.outcome.summary if trial.outcome is not None else "no diagnosis"
    if rollback:
        failed = all(t.status == "failed" for t in last.trials)
        what = "failed" if failed else "diverged"
        why = f"round {last.number} {what}, rolled back to round {source.number} ({why})"
    patches = [describe_patch([change_record(c) for c in candidate.patch]) for candidate in chosen]
    if len(patches) == 1:
        return f"round {number}: {why} -> {patches[0]}"
    listed = " | ".join(f"[{position}] {patch}" for position, patch in enumerate(patches, 1))
    return f"round {number}: {why} -> {len(patches)} candidates: {listed}"


def _score_test(state: AutofitState) -> None:
    """The one test-split evaluation: the selected round's run, after the loop stopped."""
    from lightreg import runner

    selected = state.selected()
    if state.test is not None or selected is None or selected.kept_trial is None:
        return
    run_dir = selected.kept_trial.run_dir
    try:
        state.test = runner.evaluate_test(state.folder / str(run_dir))
    except runner.ResumeError as exc:
        raise AutofitError(str(exc)) from None
    state.save()


def _write_outputs(
    state: AutofitState, report: Path | None, diagnoses: dict[str, Diagnosis]
) -> None:
    selected = state.selected()
    if selected is not None and selected.kept_trial is not None:
        path = state.folder / BEST_RECIPE
        text = best_recipe_text(state, selected.number, selected.kept_trial, path)
        path.write_text(text, encoding="utf-8")
    if report is not None:
        _write_report(state, report, diagnoses)


def best_recipe_text(state: AutofitState, number: int, trial: Trial, path: Path) -> str:
    """Round ``number``'s kept recipe as YAML, headed by where it came from and how to train it.

    Example:
        >>> trial = Trial("round_0", [], Recipe(name="x").model_dump(mode="json"), "fp")
        >>> state = AutofitState(Path("a"), "x", [], Settings(), [])
        >>> best_recipe_text(state, 0, trial, Path("a/best_recipe.yaml")).splitlines()[0]
        '# Selected round of lightreg autofit: round 0 (the recipe as given)'
    """
    outcome = trial.outcome
    verdict = "-" if outcome is None else outcome.verdict
    header = [
        f"# Selected round of lightreg autofit: round {number} ({describe_patch(trial.patch)})",
        f"# Chosen on the validation split only; verdict: {verdict}; run: {state.folder / str(trial.run_dir)}",
        f"# Train it: lightreg fit {path}",
    ]
    comments = "\n".join(printable(line) for line in header)
    return comments + "\n" + recipe_to_yaml(resolve_recipe(trial.recipe))


def recipe_diff(state: AutofitState) -> str:
    """The selected round's recipe against round 0's, as a unified diff of their YAML.

    Example:
        >>> recipe_diff(AutofitState(Path("a"), "x", [], Settings(), []))
        ''
    """
    selected = state.selected()
    if not state.rounds or selected is None or selected.kept_trial is None:
        return ""
    first = recipe_to_yaml(resolve_recipe(state.rounds[0].trials[0].recipe)).splitlines()
    chosen = recipe_to_yaml(resolve_recipe(selected.kept_trial.recipe)).splitlines()
    lines = difflib.unified_diff(first, chosen, "round 0", f"round {selected.number}", lineterm="")
    return "\n".join(lines)


def decision_lines(state: AutofitState) -> list[str]:
    """Every round's decision, then why the loop stopped and what it selected.

    Example:
        >>> decision_lines(AutofitState(Path("a"), "x", [], Settings(), [Round(0, None, "round 0: the recipe as given", [])]))
        ['round 0: the recipe as given']
    """
    lines = [round_.decision for round_ in state.rounds]
    if state.stop is not None:
        lines.append(f"stopped ({state.stop.rule}): {state.stop.message}")
        selected = state.selected()
        lines.append(
            "no round to select: every round failed or diverged"
            if selected is None
            else f"selected: round {selected.number} (best {state.settings.rank_by})"
        )
    return lines


def _write_report(state: AutofitState, path: Path, diagnoses: dict[str, Diagnosis]) -> None:
    from lightreg.diagnose.report import ReportEntry, write_report

    entries = []
    for round_ in state.rounds:
        for trial in round_.trials:
            diagnosis = _diagnosis(state, trial, diagnoses)
            if diagnosis is not None:
                label = trial.slug.replace("round_", "round ").replace("-", " candidate ")
                entries.append(ReportEntry(label, diagnosis.run, diagnosis))
    write_report(
        path,
        entries,
        title=f"lightreg autofit: {state.recipe} ({state.folder})",
        decisions=decision_lines(state),
        recipe_diff=recipe_diff(state),
    )
