"""When autofit stops, and which candidates the next round tries: pure functions of the records.

Rules, checked after every round in this order (the first that holds ends the loop):

1. ``good_fit``: the round's kept run is judged a good fit.
2. ``no_improvement``: the validation metric has not improved for
   :data:`NO_IMPROVEMENT_ROUNDS` rounds (a round rolled back counts as not improving).
3. ``rounds``: ``--rounds`` rounds are done (round 0 included).
4. Planning the next round (:func:`pick`): ``no_patch`` when the prescription changes nothing in the
   recipe; ``repeat`` when it gives a recipe already tried (after a roll-back: when every patch of
   the best round's prescription was tried); ``budget`` when the next candidate's
   ``trainer.max_epochs`` exceeds the epochs left in ``--epochs-budget``.

The loop also stops with ``failed`` when a round fails before any round succeeded and left
nothing to go on from.

Example:
    >>> scores = [score(0.9, 0.7), score(0.5, 0.8), score(0.6, 0.8), None]
    >>> stop_after(None, scores, max_rounds=6).message
    'the validation loss has not improved for 2 rounds (best: round 1)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lightreg.autofit.candidates import Candidate
from lightreg.sweep.rank import Entry, RankBy, rank_key

NO_IMPROVEMENT_ROUNDS = 2
StopRule = Literal["good_fit", "no_improvement", "rounds", "budget", "repeat", "no_patch", "failed"]
STOP_RULES: tuple[StopRule, ...] = (
    "good_fit",
    "no_improvement",
    "rounds",
    "budget",
    "repeat",
    "no_patch",
    "failed",
)
Score = tuple[float, float]
_METRIC = {"val_loss": "validation loss", "val_acc": "validation accuracy"}


@dataclass(frozen=True)
class Stop:
    """Why the loop ended: the rule and one line naming the rounds and numbers behind it.

    Example:
        >>> Stop("rounds", "--rounds 6 spent").rule
        'rounds'
    """

    rule: StopRule
    message: str


def score(val_loss: float | None, val_acc: float | None, by: RankBy = "val_loss") -> Score:
    """The sort key of a validation result (lower is better), as the sweep ranks within a tier.

    ``by="val_loss"``: the lower loss, then the higher accuracy; ``by="val_acc"`` the reverse.
    A missing value sorts last.

    Example:
        >>> score(0.4, 0.9) < score(0.5, 0.95), score(0.4, 0.9, "val_acc") > score(0.5, 0.95, "val_acc")
        (True, True)
    """
    loss = math.nan if val_loss is None else val_loss
    acc = math.nan if val_acc is None else val_acc
    _, first, second = rank_key(Entry("", "good_fit", val_loss=loss, val_acc=acc), by)
    return first, second


def best(scores: Sequence[Score | None]) -> int | None:
    """The position of the best score (the first of equals); None when every one is missing.

    Example:
        >>> best([None, (0.5, -0.8), (0.4, -0.7), (0.4, -0.7)]), best([None])
        (2, None)
    """
    present = [(value, position) for position, value in enumerate(scores) if value is not None]
    return min(present)[1] if present else None


def rounds_without_improvement(scores: Sequence[Score | None]) -> int:
    """Rounds since the best one (since round 0 when no round has a score).

    Example:
        >>> rounds_without_improvement([(0.5, -0.8), (0.4, -0.8), None]), rounds_without_improvement([None, None])
        (1, 1)
    """
    position = best(scores)
    return len(scores) - 1 - (0 if position is None else position)


def stop_after(
    last_verdict: str | None,
    scores: Sequence[Score | None],
    max_rounds: int,
    by: RankBy = "val_loss",
) -> Stop | None:
    """Rules 1-3 after a round: ``scores`` holds one entry per round so far (None: rolled back).

    Example:
        >>> stop_after("good_fit", [score(0.5, 0.8)], max_rounds=6).rule
        'good_fit'
        >>> stop_after("overfitting", [score(0.5, 0.8)], max_rounds=1).message
        '--rounds 1 spent'
        >>> stop_after("overfitting", [score(0.5, 0.8)], max_rounds=6) is None
        True
    """
    last = len(scores) - 1
    if last_verdict == "good_fit":
        return Stop("good_fit", f"round {last} is a good fit")
    waited = rounds_without_improvement(scores)
    if waited >= NO_IMPROVEMENT_ROUNDS:
        position = best(scores)
        where = "no round scored" if position is None else f"best: round {position}"
        return Stop(
            "no_improvement", f"the {_METRIC[by]} has not improved for {waited} rounds ({where})"
        )
    if len(scores) >= max_rounds:
        return Stop("rounds", f"--rounds {max_rounds} spent")
    return None


def pick(
    ranked: Sequence[Candidate],
    tried: Mapping[str, int],
    *,
    source: int,
    count: int,
    epochs_left: int | None,
    rollback: bool = False,
) -> list[Candidate] | Stop:
    """Rule 4: the next round's candidates from round ``source``'s ranked ones, or why none.

    Args:
        ranked: the candidates of the source round's prescription, best first.
        tried: fingerprint -> the round that tried that recipe.
        source: the round whose prescription ``ranked`` comes from.
        count: the most candidates to take (``--candidates``).
        epochs_left: what is left of ``--epochs-budget`` (None: no budget). Candidates are taken
            in rank order while their ``trainer.max_epochs`` fit in it.
        rollback: the source is the best round after a round was rolled back: its prescription
            was followed already, so the best untried patches are taken instead of stopping.

    Example:
        >>> from lightreg.recipe import Recipe
        >>> one = Candidate((), Recipe(name="x", trainer={"max_epochs": 8}), "fp1")
        >>> pick([one], {"fp1": 1}, source=2, count=1, epochs_left=None).message
        "round 2's prescription gives round 1's recipe again"
        >>> pick([one], {}, source=2, count=1, epochs_left=5).message
        'the epoch budget is spent: 5 epochs left, the next round needs 8'
    """
    if not ranked:
        return Stop("no_patch", f"round {source}'s prescription changes nothing in the recipe")
    if not rollback and ranked[0].fingerprint in tried:
        again = tried[ranked[0].fingerprint]
        return Stop("repeat", f"round {source}'s prescription gives round {again}'s recipe again")
    fresh = [candidate for candidate in ranked if candidate.fingerprint not in tried]
    if not fresh:
        return Stop(
            "repeat", f"every patch of round {source}'s prescription gives a recipe already tried"
        )
    chosen: list[Candidate] = []
    left = math.inf if epochs_left is None else epochs_left
    for candidate in fresh[:count]:
        if candidate.cost > left:
            break
        chosen.append(candidate)
        left -= candidate.cost
    if not chosen:
        return Stop(
            "budget",
            f"the epoch budget is spent: {epochs_left} epochs left, "
            f"the next round needs {fresh[0].cost}",
        )
    return chosen
