"""``lightreg autofit``'s decisions, without training: patches, stop rules, selection, state."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import lightreg.runner
from lightreg.autofit import (
    AutofitError,
    AutofitInterrupted,
    AutofitState,
    Candidate,
    Settings,
    Stop,
    candidates,
    canonical,
    pick,
    ranked_patches,
    recipe_diff,
    run_autofit,
    start_autofit,
    stop_after,
)
from lightreg.autofit.stop import score
from lightreg.diagnose.advice import Change, Prescription
from lightreg.recipe import Recipe, load_recipe, recipe_to_yaml, resolve_recipe
from lightreg.run_files import claim_next_dir
from lightreg.sweep.backends import Job, JobResult, SweepInterrupted, run_job


def test_a_job_can_leave_the_test_split_alone(monkeypatch):
    seen = {}

    def fake_fit(recipe, *, resume=None, test=True):
        seen["test"] = test
        raise RuntimeError("stop here")

    monkeypatch.setattr(lightreg.runner, "fit", fake_fit)
    result = run_job(Job("x", Recipe(name="x"), test=False))
    assert result.error == "RuntimeError: stop here"
    assert seen == {"test": False}
    run_job(Job("x", Recipe(name="x")))
    assert seen == {"test": True}


# --- the loop on scripted runs: the real engine, state and decisions, no training -------------


def recipe(tmp_path: Path, **sections) -> Recipe:
    raw = {"name": "t", "logging": {"dir": str(tmp_path / "runs")}, "trainer": {"max_epochs": 8}}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return resolve_recipe(raw)


def overfit(offset: float = 0.0) -> list[float]:
    return [v + offset for v in (1.0, 0.8, 0.7, 0.65, 0.7, 0.8, 0.9, 1.0)]


def good(offset: float = 0.0) -> list[float]:
    return [v + offset for v in (1.0, 0.82, 0.68, 0.6, 0.56, 0.55, 0.555, 0.56)]


LATE_BEST = [0.9, 0.7, 0.6, 0.55, 0.5, 0.6, 0.7, 0.8]  # 3 epochs past the best: no early stopping
TRAIN = [1.0, 0.8, 0.65, 0.55, 0.5, 0.47, 0.45, 0.44]
NAN = float("nan")


@dataclass
class Scripted:
    """A backend that writes a scripted metrics.csv (and the real recipe.yaml) for each job."""

    curve: Callable[[Recipe], list[float] | str]
    jobs: list[Job] = field(default_factory=list)

    def run(self, jobs, on_done):
        results = []
        for job in jobs:
            self.jobs.append(job)
            curve = self.curve(job.recipe)
            if curve == "interrupt":
                raise SweepInterrupted()
            run_dir = claim_next_dir(job.recipe.logging.dir / job.recipe.name, "version_")
            (run_dir / "recipe.yaml").write_text(recipe_to_yaml(job.recipe))
            if curve == "crash":
                result = JobResult(job.slug, None, "RuntimeError: boom")
            else:
                train = TRAIN if not any(map(math.isnan, curve)) else [1.0, 0.9, NAN, NAN]
                rows = ["epoch,step,train_loss,train_acc,val_loss,val_acc"]
                rows += [
                    f"{e},{10 * e + 9},{t},{1 - t / 2},{v},{1 - v / 2}"
                    for e, (t, v) in enumerate(zip(train, curve, strict=False))
                ]
                (run_dir / "metrics.csv").write_text("\n".join(rows) + "\n")
                result = JobResult(job.slug, run_dir)
            on_done(result)
            results.append(result)
        return results


def autofit(tmp_path, curve, settings=None, *, monkeypatch=None, **sections):
    state = start_autofit(recipe(tmp_path, **sections), settings or Settings())
    backend = Scripted(curve)
    run_autofit(state, backend)
    assert all(job.test is False for job in backend.jobs)  # no round ever scores the test split
    return state, backend


@pytest.fixture(autouse=True)
def no_test_split(monkeypatch):
    """The final test scoring, recorded: scripted runs have no checkpoints to score."""
    calls: list[Path] = []

    def scored(run_dir: Path) -> dict[str, float]:
        calls.append(run_dir)
        return {"test_acc": 0.5, "test_loss": 1.0}

    monkeypatch.setattr(lightreg.runner, "evaluate_test", scored)
    return calls


def regularized(r: Recipe) -> bool:
    return r.regularization.dropout > 0


def test_overfitting_is_patched_until_a_good_fit_then_test_is_scored_once(tmp_path, no_test_split):
    state, backend = autofit(tmp_path, lambda r: good() if regularized(r) else overfit())
    assert [job.slug for job in backend.jobs] == ["round_0", "round_1"]
    first, second = state.rounds
    assert first.kept_trial.outcome.verdict == "overfitting"
    assert second.kept_trial.outcome.verdict == "good_fit"
    assert state.stop == Stop("good_fit", "round 1 is a good fit")
    patch = {change["key"]: change["new"] for change in second.trials[0].patch}
    assert patch["regularization.dropout"] == 0.2 and patch["regularization.weight_decay"] == 1e-4
    assert second.decision.startswith("round 1: overfitting since epoch 4 of 8 (GL 54%) -> ")
    assert "regularization.dropout 0 -> 0.2 (severe overfitting)" in second.decision
    assert state.selected() is second
    assert no_test_split == [state.folder / "round_1" / "version_0"]
    assert state.test == {"test_acc": 0.5, "test_loss": 1.0}

    saved = json.loads(state.path.read_text())
    assert saved["selected_round"] == 1 and saved["stop"]["rule"] == "good_fit"
    assert saved["rounds"][1]["trials"][0]["outcome"]["val_loss"] == 0.55
    assert saved["total_epochs"] == 16
    assert AutofitState.load(state.folder).to_dict() == saved
    best = load_recipe(state.folder / "best_recipe.yaml")
    assert best.name == "t" and best.regularization.dropout == 0.2
    assert best.trainer.enable_progress_bar  # the recipe's own setting, not the runs'
    assert "+  dropout: 0.2" in recipe_diff(state)


def test_selection_reads_the_validation_split_only(tmp_path, monkeypatch):
    """Test scores that contradict validation ones change nothing, and are read once, at the end."""
    scored: list[Path] = []

    def adversarial(run_dir: Path) -> dict[str, float]:
        scored.append(run_dir)
        return {"test_acc": 0.99 if "round_0" in str(run_dir) else 0.01}

    monkeypatch.setattr(lightreg.runner, "evaluate_test", adversarial)
    state, _ = autofit(tmp_path, lambda r: good() if regularized(r) else overfit(-0.2))
    # round 0 has the lowest validation loss (0.45), round 1 is the good fit (0.55): round 0 wins
    assert state.stop.rule == "good_fit"
    assert state.selected().number == 0
    assert scored == [state.folder / "round_0" / "version_0"]

    monkeypatch.setattr(lightreg.runner, "evaluate_test", adversarial)
    state, _ = autofit(tmp_path, lambda r: good() if regularized(r) else overfit())
    assert state.selected().number == 1  # the test split would pick round 0 (0.99)
    assert scored[1:] == [state.folder / "round_1" / "version_0"]
    assert state.test == {"test_acc": 0.01}


def test_no_improvement_for_two_rounds_stops(tmp_path):
    state, _ = autofit(tmp_path, lambda r: overfit(r.regularization.dropout))
    assert [round_.number for round_ in state.rounds] == [0, 1, 2]
    assert state.stop == Stop(
        "no_improvement", "the validation loss has not improved for 2 rounds (best: round 0)"
    )
    assert state.selected().number == 0


def test_the_epoch_budget_is_never_exceeded(tmp_path):
    state, _ = autofit(
        tmp_path, lambda r: overfit(-r.regularization.dropout / 10), Settings(epochs_budget=20)
    )
    assert len(state.rounds) == 2 and state.epochs_used == 16
    assert state.stop == Stop(
        "budget", "the epoch budget is spent: 4 epochs left, the next round needs 8"
    )


def test_rounds_limit(tmp_path):
    state, _ = autofit(
        tmp_path, lambda r: overfit(-r.regularization.dropout / 10), Settings(rounds=2)
    )
    assert len(state.rounds) == 2 and state.stop == Stop("rounds", "--rounds 2 spent")


def test_a_crashed_round_is_rolled_back_to_the_best_round_with_an_untried_patch(tmp_path):
    state, backend = autofit(tmp_path, lambda r: "crash" if regularized(r) else overfit())
    zero, one, two = state.rounds
    assert one.kept is None and one.trials[0].status == "failed"
    assert one.trials[0].error == "RuntimeError: boom"
    assert two.source == 0
    assert two.decision.startswith("round 2: round 1 failed, rolled back to round 0 (overfitting")
    # the best-ranked patch of round 0 not tried yet: its prescription without the last change
    assert len(two.trials[0].patch) == len(one.trials[0].patch) - 1
    assert state.stop.rule == "no_improvement" and state.selected() is zero


def test_a_diverged_round_is_rolled_back_and_a_repeated_recipe_stops_the_loop(tmp_path):
    # tabular data, batch norm on, weight decay at its cap: the prescription is one change
    sections = {
        "data": {"dataset": "wine"},
        "regularization": {"dropout": 0.55, "weight_decay": 0.01},
    }
    state, _ = autofit(
        tmp_path,
        lambda r: [NAN] * 4 if r.regularization.dropout == 0.6 else LATE_BEST,
        **sections,
    )
    assert [len(round_.trials[0].patch) for round_ in state.rounds] == [0, 1]
    assert state.rounds[1].trials[0].outcome.verdict == "diverging"
    assert state.rounds[1].kept is None
    assert state.stop == Stop(
        "repeat", "every patch of round 0's prescription gives a recipe already tried"
    )


def test_candidates_run_side_by_side_and_the_best_validation_is_kept(tmp_path):
    def curve(r: Recipe) -> list[float]:
        if not regularized(r):
            return overfit()
        return good(-0.1) if r.early_stopping.patience == 10 else good()

    state, backend = autofit(tmp_path, curve, Settings(candidates=2))
    assert [job.slug for job in backend.jobs] == ["round_0", "round_1-1", "round_1-2"]
    second = state.rounds[1]
    assert "-> 2 candidates: [1] " in second.decision
    assert len(second.trials[0].patch) == len(second.trials[1].patch) + 1
    assert second.kept == 1  # the prefix without the patience change scored lower


def test_an_interrupted_autofit_resumes_without_redoing_finished_rounds(tmp_path):
    state = start_autofit(recipe(tmp_path), Settings())
    stopping = Scripted(lambda r: "interrupt" if regularized(r) else overfit())
    with pytest.raises(AutofitInterrupted, match="resume with: lightreg autofit --resume"):
        run_autofit(state, stopping)
    saved = AutofitState.load(state.folder)
    assert saved.rounds[0].done and saved.rounds[1].trials[0].status == "running"
    again = Scripted(lambda r: good() if regularized(r) else overfit())
    run_autofit(saved, again)
    assert [job.slug for job in again.jobs] == ["round_1"]
    assert saved.stop.rule == "good_fit" and saved.selected().number == 1


# --- the pure rules ---------------------------------------------------------------------------


def candidate(fingerprint: str, epochs: int = 8) -> Candidate:
    return Candidate((), Recipe(name="x", trainer={"max_epochs": epochs}), fingerprint)


def test_pick_repeat_rollback_budget_and_no_patch():
    ranked = [candidate("a"), candidate("b"), candidate("c")]
    assert pick(ranked, {"a": 1}, source=2, count=1, epochs_left=None) == Stop(
        "repeat", "round 2's prescription gives round 1's recipe again"
    )
    assert pick(ranked, {"a": 1}, source=2, count=2, epochs_left=None, rollback=True) == ranked[1:]
    assert pick(ranked, {}, source=2, count=3, epochs_left=17) == ranked[:2]
    assert pick(ranked, {}, source=2, count=3, epochs_left=7).rule == "budget"
    assert pick([], {}, source=3, count=1, epochs_left=None) == Stop(
        "no_patch", "round 3's prescription changes nothing in the recipe"
    )
    assert (
        pick(
            ranked, {"a": 0, "b": 1, "c": 1}, source=2, count=1, epochs_left=None, rollback=True
        ).rule
        == "repeat"
    )


def test_stop_after_counts_rolled_back_rounds_as_not_improving():
    assert stop_after("overfitting", [score(0.5, 0.8), None], 6) is None
    assert (
        stop_after("overfitting", [score(0.5, 0.8), None, score(0.6, 0.9)], 6).rule
        == "no_improvement"
    )
    assert stop_after("overfitting", [score(0.5, 0.8), score(0.4, 0.8)], 6) is None
    by_acc = stop_after(
        "overfitting", [score(0.5, 0.8, "val_acc"), score(0.6, 0.9, "val_acc")], 6, "val_acc"
    )
    assert by_acc is None  # a higher accuracy is an improvement when ranking by it


def test_ranked_patches_are_the_prescription_then_shorter_prefixes():
    changes = (
        Change(("regularization", "augment"), None, "moderate"),
        Change(("regularization", "dropout"), 0.0, 0.3),
        Change(("regularization", "weight_decay"), 0.0, 1e-4),
    )
    patches = ranked_patches(Prescription("overfitting", changes))
    assert patches == [changes, changes[:2], changes[:1]]
    found = candidates(canonical(Recipe(name="x")), Prescription("overfitting", changes))
    assert [c.recipe.regularization.dropout for c in found] == [0.3, 0.3, 0.0]
    assert len({c.fingerprint for c in found}) == 3


def test_a_folder_that_is_not_an_autofit_is_refused(tmp_path):
    with pytest.raises(AutofitError, match="not an autofit folder"):
        AutofitState.load(tmp_path)
    (tmp_path / "autofit.json").write_text('{"runs": []}')
    with pytest.raises(AutofitError, match="not written by lightreg autofit"):
        AutofitState.load(tmp_path)
    (tmp_path / "autofit.json").write_text('{"kind": "lightreg autofit", "rounds": 3}')
    with pytest.raises(AutofitError, match="not a readable autofit state"):
        AutofitState.load(tmp_path)
