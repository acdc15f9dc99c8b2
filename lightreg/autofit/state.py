"""``autofit.json``: the machine-readable log of an autofit, rewritten after every run.

One file per autofit folder (``<logging.dir>/<name>/autofit_N/``). Per round: the decision that
made it (the log line), the round it came from, its wall time, which trial was kept, and per
trial (one, or ``--candidates K``) the recipe patch, the resolved recipe, the run folder, and what
the diagnose engine found (verdict, summary, reasons, prescription, best epoch, validation loss
and accuracy at it, epochs run). Then why the loop stopped, the selected round, and its test
scores. Paths are relative to the autofit folder, so the folder can be moved.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> state = AutofitState(folder, "mlp", [], Settings(rounds=3), [])
    >>> state.save()
    >>> AutofitState.load(folder).settings.rounds
    3
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from lightreg.autofit.stop import STOP_RULES, Score, Stop, best, score
from lightreg.diagnose.advice import Change
from lightreg.run_files import LAST_CHECKPOINT
from lightreg.sweep.rank import RankBy

AUTOFIT_FILE = "autofit.json"
KIND = "lightreg autofit"
MAX_STATE_BYTES = 64 * 2**20
TrialStatus = Literal["pending", "running", "done", "failed"]


class AutofitError(Exception):
    """An autofit folder that cannot be read or continued; the message says why.

    Example:
        >>> str(AutofitError("runs/x: not an autofit folder"))
        'runs/x: not an autofit folder'
    """


@dataclass(frozen=True)
class Settings:
    """The loop's limits.

    Attributes:
        rounds: the most rounds, round 0 (the recipe as given) included.
        epochs_budget: the most epochs all runs together may take (None: no limit).
        candidates: runs per round after round 0 (the best-ranked distinct patches).
        rank_by: the validation metric that selects (``val_loss``: the lowest best validation
            loss; ``val_acc``: the highest validation accuracy at that epoch).

    Raises:
        ValueError: naming the setting and what it must be.

    Example:
        >>> Settings(rounds=0)
        Traceback (most recent call last):
        ...
        ValueError: --rounds must be at least 1, got 0
    """

    rounds: int = 6
    epochs_budget: int | None = None
    candidates: int = 1
    rank_by: RankBy = "val_loss"

    def __post_init__(self) -> None:
        problems = [
            f"--{name} must be at least 1, got {value}"
            for name, value in (("rounds", self.rounds), ("candidates", self.candidates))
            if value < 1
        ]
        if self.epochs_budget is not None and self.epochs_budget < 1:
            problems.append(
                f"--epochs-budget must be a positive number of epochs, got {self.epochs_budget}"
            )
        if self.rank_by not in get_args(RankBy):
            problems.append(f"--rank-by can be val_loss or val_acc, got {self.rank_by!r}")
        if problems:
            raise ValueError("; ".join(problems))


def change_record(change: Change) -> dict[str, Any]:
    """A change as JSON: dotted key, old and new value, note.

    Example:
        >>> change_record(Change(("regularization", "dropout"), 0.0, 0.3, "moderate"))
        {'key': 'regularization.dropout', 'old': 0.0, 'new': 0.3, 'note': 'moderate'}
    """
    return {"key": ".".join(change.key), "old": change.old, "new": change.new, "note": change.note}


def describe_patch(patch: list[dict[str, Any]]) -> str:
    """A recorded patch as one line, in the diagnose engine's words.

    Example:
        >>> describe_patch([{"key": "regularization.dropout", "old": 0.0, "new": 0.3, "note": ""}])
        'regularization.dropout 0 -> 0.3'
        >>> describe_patch([])
        'the recipe as given'
    """
    if not patch:
        return "the recipe as given"
    changes = [Change(tuple(c["key"].split(".")), c["old"], c["new"], c["note"]) for c in patch]
    return "; ".join(change.describe() for change in changes)


@dataclass
class Outcome:
    """What the diagnose engine found in a finished run (validation split only).

    Example:
        >>> Outcome("overfitting", "overfitting since epoch 5 of 8 (GL 38%)", epochs=8).usable
        False
    """

    verdict: str
    summary: str
    reasons: list[str] = field(default_factory=list)
    prescription: list[str] = field(default_factory=list)
    best_epoch: int | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    epochs: int = 0

    @property
    def usable(self) -> bool:
        """Whether the run can be kept: it did not diverge and has a validation loss.

        Example:
            >>> Outcome("diverging", "", val_loss=0.5).usable, Outcome("good_fit", "", val_loss=0.5).usable
            (False, True)
        """
        return self.verdict != "diverging" and self.val_loss is not None


@dataclass
class Trial:
    """One run of a round: its patch of the source round's recipe, the recipe, how it went.

    Example:
        >>> Trial("round_1", [], {"name": "x"}, "fp").status
        'pending'
    """

    slug: str
    patch: list[dict[str, Any]]
    recipe: dict[str, Any]
    fingerprint: str
    status: TrialStatus = "pending"
    run_dir: str | None = None
    error: str | None = None
    outcome: Outcome | None = None

    @property
    def usable(self) -> bool:
        """Finished, not diverged, scored on the validation split.

        Example:
            >>> Trial("round_1", [], {}, "fp", status="failed").usable
            False
        """
        return self.status == "done" and self.outcome is not None and self.outcome.usable

    def score(self, by: RankBy) -> Score | None:
        """The validation sort key (lower is better), None when the trial cannot be kept.

        Example:
            >>> trial = Trial("r", [], {}, "fp", "done", outcome=Outcome("good_fit", "", val_loss=0.4))
            >>> trial.score("val_loss")
            (0.4, inf)
        """
        if not self.usable or self.outcome is None:
            return None
        return score(self.outcome.val_loss, self.outcome.val_acc, by)

    def partial_run(self, folder: Path) -> Path | None:
        """The newest run folder an interrupted run of this trial left with a ``last.ckpt``.

        Example:
            >>> Trial("round_1", [], {}, "fp", status="running").partial_run(Path("/no/such"))
        """
        if self.status != "running":
            return None
        runs = (folder / self.slug).glob("version_*")
        numbered = sorted(
            (int(run.name.removeprefix("version_")), run)
            for run in runs
            if run.name.removeprefix("version_").isdigit()
        )
        return next(
            (run for _, run in reversed(numbered) if (run / LAST_CHECKPOINT).is_file()), None
        )


@dataclass
class Round:
    """A round: the decision that made it, its trials, and which one was kept.

    Attributes:
        number: 0 for the recipe as given.
        source: the round whose prescription made this one (None for round 0).
        decision: the log line ("round 2: overfitting ... -> regularization.dropout 0.2 -> 0.3").
        trials: one per candidate.
        kept: the position of the kept trial (best validation metric), None when every trial
            failed or diverged (the round is rolled back).
        done: every trial ended and the round was judged.
        wall_time: seconds spent running its trials.

    Example:
        >>> Round(0, None, "round 0: the recipe as given", []).kept_trial is None
        True
    """

    number: int
    source: int | None
    decision: str
    trials: list[Trial]
    kept: int | None = None
    done: bool = False
    wall_time: float = 0.0

    @property
    def kept_trial(self) -> Trial | None:
        """The kept trial, or None (rolled back, or not judged yet).

        Example:
            >>> Round(1, 0, "", [Trial("round_1", [], {}, "fp")], kept=0).kept_trial.slug
            'round_1'
        """
        return None if self.kept is None else self.trials[self.kept]

    def trial(self, slug: str) -> Trial:
        """The trial named ``slug``.

        Example:
            >>> Round(1, 0, "", [Trial("round_1", [], {}, "fp")]).trial("round_1").fingerprint
            'fp'
        """
        return next(trial for trial in self.trials if trial.slug == slug)

    def judge(self, by: RankBy) -> None:
        """Keep the trial with the best validation metric; mark the round done.

        Example:
            >>> a = Trial("a", [], {}, "1", "done", outcome=Outcome("overfitting", "", val_loss=0.5))
            >>> b = Trial("b", [], {}, "2", "done", outcome=Outcome("good_fit", "", val_loss=0.4))
            >>> round_ = Round(1, 0, "", [a, b])
            >>> round_.judge("val_loss")
            >>> round_.kept_trial.slug
            'b'
        """
        self.kept = best([trial.score(by) for trial in self.trials])
        self.done = True


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _trial(data: dict[str, Any]) -> Trial:
    outcome = data.pop("outcome")
    return Trial(**data, outcome=None if outcome is None else Outcome(**outcome))


def _round(data: dict[str, Any]) -> Round:
    return Round(**{**data, "trials": [_trial(trial) for trial in data["trials"]]})


@dataclass
class AutofitState:
    """Everything an autofit did, saved as ``autofit.json`` in ``folder``.

    Example:
        >>> AutofitState(Path("runs/x/autofit_0"), "mlp", [], Settings(), []).path
        PosixPath('runs/x/autofit_0/autofit.json')
    """

    folder: Path
    recipe: str
    overrides: list[str]
    settings: Settings
    rounds: list[Round]
    stop: Stop | None = None
    test: dict[str, float] | None = None

    @property
    def path(self) -> Path:
        """Where the state is saved.

        Example:
            >>> AutofitState(Path("f"), "mlp", [], Settings(), []).path.name
            'autofit.json'
        """
        return self.folder / AUTOFIT_FILE

    @property
    def epochs_used(self) -> int:
        """Epochs run by every trial so far (failed ones included).

        Example:
            >>> trial = Trial("round_0", [], {}, "fp", "done", outcome=Outcome("good_fit", "", epochs=7))
            >>> AutofitState(Path("f"), "mlp", [], Settings(), [Round(0, None, "", [trial])]).epochs_used
            7
        """
        return sum(
            trial.outcome.epochs
            for round_ in self.rounds
            for trial in round_.trials
            if trial.outcome is not None
        )

    @property
    def wall_time(self) -> float:
        """Seconds spent running trials.

        Example:
            >>> AutofitState(Path("f"), "mlp", [], Settings(), [Round(0, None, "", [], wall_time=2.5)]).wall_time
            2.5
        """
        return sum(round_.wall_time for round_ in self.rounds)

    def scores(self) -> list[Score | None]:
        """Each judged round's kept score (None: rolled back).

        Example:
            >>> AutofitState(Path("f"), "mlp", [], Settings(), []).scores()
            []
        """
        by = self.settings.rank_by
        return [
            None if round_.kept_trial is None else round_.kept_trial.score(by)
            for round_ in self.rounds
            if round_.done
        ]

    def selected(self) -> Round | None:
        """The round with the best validation metric (the earliest of equals), None if none scored.

        Example:
            >>> AutofitState(Path("f"), "mlp", [], Settings(), []).selected() is None
            True
        """
        position = best(self.scores())
        return None if position is None else self.rounds[position]

    def tried(self) -> dict[str, int]:
        """Fingerprint -> the first round that tried that recipe.

        Example:
            >>> state = AutofitState(Path("f"), "mlp", [], Settings(), [Round(0, None, "", [Trial("round_0", [], {}, "fp")])])
            >>> state.tried()
            {'fp': 0}
        """
        seen: dict[str, int] = {}
        for round_ in self.rounds:
            for trial in round_.trials:
                seen.setdefault(trial.fingerprint, round_.number)
        return seen

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (NaN and inf as null).

        Example:
            >>> AutofitState(Path("f"), "mlp", [], Settings(), []).to_dict()["kind"]
            'lightreg autofit'
        """
        selected = self.selected()
        rounds = [asdict(round_) for round_ in self.rounds]
        for round_ in rounds:
            for trial in round_["trials"]:
                outcome = trial["outcome"]
                if outcome is not None:
                    outcome["val_loss"] = _number(outcome["val_loss"])
                    outcome["val_acc"] = _number(outcome["val_acc"])
        return {
            "kind": KIND,
            "version": 1,
            "recipe": self.recipe,
            "overrides": self.overrides,
            "settings": asdict(self.settings),
            "rounds": rounds,
            "stop": None if self.stop is None else asdict(self.stop),
            "selected_round": None if selected is None else selected.number,
            "test": self.test,
            "total_epochs": self.epochs_used,
            "wall_time": self.wall_time,
        }

    def save(self) -> None:
        """Write ``autofit.json`` atomically (a crash leaves the old file or the new one).

        Example:
            >>> import tempfile
            >>> state = AutofitState(Path(tempfile.mkdtemp()), "mlp", [], Settings(), [])
            >>> state.save()
            >>> json.loads(state.path.read_text())["selected_round"] is None
            True
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".json.tmp")
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        partial.write_text(text + "\n", encoding="utf-8")
        os.replace(partial, self.path)

    @classmethod
    def load(cls, folder: Path) -> AutofitState:
        """Read the state of the autofit in ``folder``.

        Raises:
            AutofitError: when ``folder`` holds no ``autofit.json`` written by autofit.

        Example:
            >>> AutofitState.load(Path("/no/such"))
            Traceback (most recent call last):
            ...
            lightreg.autofit.state.AutofitError: /no/such: not an autofit folder (no autofit.json)
        """
        path = folder / AUTOFIT_FILE
        if not path.is_file():
            raise AutofitError(f"{folder}: not an autofit folder (no {AUTOFIT_FILE})")
        try:
            with path.open("rb") as handle:
                text = handle.read(MAX_STATE_BYTES + 1)
            data = json.loads(text)
        except (OSError, ValueError, RecursionError) as exc:
            raise AutofitError(f"{path}: cannot read it ({exc})") from None
        if len(text) > MAX_STATE_BYTES or not isinstance(data, dict) or data.get("kind") != KIND:
            raise AutofitError(f"{path}: not written by lightreg autofit")
        try:
            stop = data["stop"]
            if stop is not None and stop["rule"] not in STOP_RULES:
                raise ValueError(f"unknown stop rule {stop['rule']!r}")
            return cls(
                folder,
                data["recipe"],
                list(data["overrides"]),
                Settings(**data["settings"]),
                [_round(round_) for round_ in data["rounds"]],
                None if stop is None else Stop(**stop),
                data["test"],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AutofitError(
                f"{path}: not a readable autofit state ({type(exc).__name__}: {exc})"
            ) from None
