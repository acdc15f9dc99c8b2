"""Run a planned sweep on a backend, keeping ``sweep.json`` current; then diagnose and rank it.

Example:
    >>> plan = plan_sweep("mlp", ["trainer.max_epochs=3"], ["none", "moderate"])  # doctest: +SKIP
    >>> state = SweepState.fresh(plan.default_dir / STATE_FILE, plan)  # doctest: +SKIP
    >>> run_sweep(plan, state, LocalBackend())  # doctest: +SKIP
    >>> [e.slug for e in rank(diagnose_sweep(state))]  # doctest: +SKIP
    ['moderate', 'none']
"""

from __future__ import annotations

import math
from pathlib import Path

from lightreg.diagnose.engine import DiagnoseConfig, diagnose_paths
from lightreg.recipe import recipe_to_yaml
from lightreg.sweep.backends import Backend, Job, JobResult, OnDone, SweepInterrupted
from lightreg.sweep.plan import SweepPlan
from lightreg.sweep.rank import Entry
from lightreg.sweep.state import RunState, SweepState
from lightreg.text import printable

BEST_RECIPE = "best_recipe.yaml"


def run_sweep(
    plan: SweepPlan, state: SweepState, backend: Backend, on_done: OnDone | None = None
) -> list[JobResult]:
    """Run every unfinished configuration of ``state``; interrupted runs continue from last.ckpt.

    ``state`` is saved before the runs start and after each one ends.

    Raises:
        SweepInterrupted: on Ctrl-C; ``state`` keeps the unfinished runs for ``--resume``.

    Example:
        >>> import tempfile
        >>> from lightreg.sweep.plan import plan_sweep
        >>> class DryRun:  # a stand-in backend that fails every job instead of training it
        ...     def run(self, jobs, on_done):
        ...         results = [JobResult(job.slug, None, "dry run") for job in jobs]
        ...         for result in results:
        ...             on_done(result)
        ...         return results
        >>> plan = plan_sweep("mlp", presets=["none"])
        >>> state = SweepState.fresh(Path(tempfile.mkdtemp()) / "sweep.json", plan)
        >>> [result.ok for result in run_sweep(plan, state, DryRun())]
        [False]
        >>> state.run("none").status, state.path.is_file()
        ('failed', True)
    """
    recipes = {c.slug: c.recipe for c in plan.configurations}
    jobs = []
    for run in state.unfinished():
        resume = run.partial_run()
        if resume is None:
            run.start()
        jobs.append(Job(run.slug, recipes[run.slug], resume))
    state.save()

    def finished(result: JobResult) -> None:
        run = state.run(result.slug)
        run.status = "done" if result.ok else "failed"
        run.run_dir = None if result.run_dir is None else str(result.run_dir)
        run.error = result.error
        state.save()
        if on_done is not None:
            on_done(result)

    try:
        return backend.run(jobs, finished)
    except KeyboardInterrupt:
        raise SweepInterrupted() from None


def _entry(run: RunState, config: DiagnoseConfig | None) -> Entry:
    if run.status != "done" or run.run_dir is None:
        verdict = "failed" if run.status == "failed" else "not_run"
        return Entry(run.slug, verdict, run_dir=run.run_dir, note=run.error or "")
    report = diagnose_paths([run.run_dir], config)
    if not report.diagnoses:
        reasons = [reason for _, reasons in report.empty_paths for reason in reasons]
        return Entry(run.slug, "failed", run_dir=run.run_dir, note="; ".join(reasons))
    diagnosis = report.diagnoses[0]
    best, curves = diagnosis.evidence.best_epoch, diagnosis.curves
    gap = diagnosis.evidence.loss_gap
    return Entry(
        run.slug,
        diagnosis.verdict,
        best_epoch=best,
        val_loss=curves.val.get(best, math.nan) if best is not None else math.nan,
        val_acc=curves.val_acc.get(best, math.nan) if best is not None else math.nan,
        gap=math.nan if gap is None else gap,
        run_dir=run.run_dir,
        note=diagnosis.prescription.summary,
    )


def diagnose_sweep(state: SweepState, config: DiagnoseConfig | None = None) -> list[Entry]:
    """One :class:`Entry` per configuration, in plan order, judged by the diagnose engine.

    Example:
        >>> diagnose_sweep(SweepState(Path("s.json"), [RunState("none", "r", "f")]))[0].verdict
        'not_run'
    """
    return [_entry(run, config) for run in state.runs]


def best_recipe_text(plan: SweepPlan, winner: Entry, path: Path) -> str:
    """The winner's recipe as YAML (base name, base progress bar), headed by where it came from.

    Example:
        >>> plan = plan_sweep("mlp", presets=["none"])  # doctest: +SKIP
        >>> text = best_recipe_text(plan, Entry("none", "good_fit"), Path("b.yaml"))  # doctest: +SKIP
        >>> text.splitlines()[0]  # doctest: +SKIP
        '# Best configuration of a lightreg sweep: none (regularization.preset=none)'
    """
    configuration = next(c for c in plan.configurations if c.slug == winner.slug)
    changes = " ".join(configuration.overrides)
    header = [
        f"# Best configuration of a lightreg sweep: {winner.slug} ({changes})",
        f"# Verdict: {winner.verdict}; best epoch: {winner.best_epoch}; run: {winner.run_dir}",
        f"# Train it: lightreg fit {path}",
    ]
    comments = "\n".join(printable(line) for line in header)  # a newline would end the comment
    return comments + "\n" + recipe_to_yaml(plan.recipe_to_share(configuration))


def write_best_recipe(plan: SweepPlan, state: SweepState, winner: Entry, folder: Path) -> Path:
    """Write ``best_recipe.yaml`` into ``folder`` and note it in ``state``.

    Example:
        >>> import tempfile
        >>> from lightreg.sweep.plan import plan_sweep
        >>> folder = Path(tempfile.mkdtemp())
        >>> plan = plan_sweep("mlp", presets=["none"])
        >>> state = SweepState.fresh(folder / "sweep.json", plan)
        >>> path = write_best_recipe(plan, state, Entry("none", "good_fit"), folder)
        >>> path.name, state.best_recipe == str(path)
        ('best_recipe.yaml', True)
    """
    path = folder / BEST_RECIPE
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(best_recipe_text(plan, winner, path), encoding="utf-8")
    state.best_recipe = str(path)
    state.save()
    return path
