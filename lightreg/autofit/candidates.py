"""The recipes a round may try: the diagnose prescription's patch, then shorter prefixes of it.

The diagnose engine lists a prescription's changes in the chapter's decision order (for
overfitting: augmentation, batch norm, dropout, weight decay, then early stopping; see
:mod:`lightreg.diagnose.advice`), one step per knob. Candidate 1 applies them all: it is the
patch ``lightreg diagnose --write-recipe`` writes (the same :func:`~lightreg.diagnose.patch.apply_changes`
on the same :class:`~lightreg.diagnose.advice.Change` list). Candidate ``k`` applies the first
``n - k + 1`` of the ``n`` changes: the same steps, stopped earlier in the decision order. So every
candidate is a move a person following the chapter could make, and no knob ever takes a step the
engine did not prescribe.

Example:
    >>> from lightreg.diagnose.advice import Change, Prescription
    >>> rx = Prescription("overfitting", (Change(("regularization", "dropout"), 0.0, 0.3),
    ...                                   Change(("regularization", "weight_decay"), 0.0, 1e-4)))
    >>> [[c.describe() for c in patch] for patch in ranked_patches(rx)]
    [['regularization.dropout 0 -> 0.3', 'regularization.weight_decay 0 -> 0.0001'], ['regularization.dropout 0 -> 0.3']]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from lightreg.diagnose.advice import Change, Prescription
from lightreg.diagnose.patch import apply_changes
from lightreg.recipe import Recipe, RecipeError, recipe_to_yaml, resolve_recipe


def ranked_patches(prescription: Prescription) -> list[tuple[Change, ...]]:
    """The prescription's changes, then each shorter prefix of them: best-ranked first.

    Example:
        >>> ranked_patches(Prescription("good fit"))
        []
    """
    changes = prescription.changes
    return [changes[:size] for size in range(len(changes), 0, -1)]


def canonical(recipe: Recipe) -> dict[str, Any]:
    """The fully resolved recipe as a plain dict (what ``recipe.yaml`` holds).

    Example:
        >>> canonical(Recipe(name="x"))["trainer"]["max_epochs"]
        30
    """
    return recipe.model_dump(mode="json")


def fingerprint(recipe: Recipe) -> str:
    """A short hash of the resolved recipe: two patches that give the same recipe share it.

    Example:
        >>> fingerprint(Recipe(name="x")) == fingerprint(resolve_recipe({"name": "x"}))
        True
    """
    return hashlib.sha256(recipe_to_yaml(recipe).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Candidate:
    """One recipe to try: the patch of the source round's recipe, the result, its fingerprint.

    Example:
        >>> candidate = Candidate((), Recipe(name="x"), "abc")
        >>> candidate.cost
        30
    """

    patch: tuple[Change, ...]
    recipe: Recipe
    fingerprint: str

    @property
    def cost(self) -> int:
        """The most epochs it can take (``trainer.max_epochs``).

        Example:
            >>> Candidate((), Recipe(name="x", trainer={"max_epochs": 5}), "abc").cost
            5
        """
        return self.recipe.trainer.max_epochs


def candidates(source: dict[str, Any], prescription: Prescription) -> list[Candidate]:
    """The distinct valid recipes of :func:`ranked_patches` applied to ``source``, best first.

    A patch whose recipe equals a better-ranked one's, or that the schema refuses, is left out.

    Example:
        >>> rx = Prescription("overfitting", (Change(("regularization", "dropout"), 0.0, 0.3),))
        >>> [c.recipe.regularization.dropout for c in candidates(canonical(Recipe(name="x")), rx)]
        [0.3]
    """
    found: list[Candidate] = []
    for patch in ranked_patches(prescription):
        try:
            recipe = resolve_recipe(apply_changes(source, patch))
        except (RecipeError, ValueError):
            continue
        mark = fingerprint(recipe)
        if all(mark != other.fingerprint for other in found):
            found.append(Candidate(patch, recipe, mark))
    return found
