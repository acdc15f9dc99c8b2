"""Apply a prescription's changes to a lightreg recipe, and write the patched recipe.

The changes are the same :class:`~lightreg.diagnose.advice.Change` list the prescription text is
made from, so what is written is exactly what was printed.

Example:
    >>> from lightreg.diagnose.advice import Change
    >>> apply_changes({"regularization": {"dropout": 0.3}},
    ...               [Change(("regularization", "dropout"), 0.3, 0.4),
    ...                Change(("trainer", "max_epochs"), 30, 60)])
    {'regularization': {'dropout': 0.4}, 'trainer': {'max_epochs': 60}}
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightreg.diagnose.advice import Change


def apply_changes(recipe: dict[str, Any], changes: Iterable[Change]) -> dict[str, Any]:
    """A deep copy of ``recipe`` with every change's key set to its new value.

    Missing sections are created; key order is kept, new keys go last.

    Raises:
        ValueError: when a key path runs through a value that is not a mapping.

    Example:
        >>> apply_changes({}, [Change(("optim", "lr"), 0.001, 0.0001)])
        {'optim': {'lr': 0.0001}}
    """
    patched = copy.deepcopy(recipe)
    for change in changes:
        node = patched
        for part in change.key[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"cannot set {'.'.join(change.key)}: '{part}' is not a mapping")
        node[change.key[-1]] = copy.deepcopy(change.new)
    return patched


def write_recipe(
    recipe: dict[str, Any], changes: Iterable[Change], out: Path, *, force: bool = False
) -> Path:
    """Write the patched ``recipe`` to ``out`` as YAML (key order kept).

    Raises:
        FileExistsError: when ``out`` exists and ``force`` is False.

    Example:
        >>> write_recipe({"name": "x"}, [], Path("/tmp/x.yaml"), force=True)  # doctest: +SKIP
    """
    import yaml

    if out.exists() and not force:
        raise FileExistsError(f"{out} exists (use --force to overwrite)")
    text = yaml.safe_dump(apply_changes(recipe, changes), sort_keys=False)
    out.write_text(text, encoding="utf-8")
    return out
