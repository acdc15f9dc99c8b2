"""``--set key.path=value`` overrides, applied to the raw recipe dict before validation.

Values are parsed as YAML (``0.4`` is a float, ``[64, 32]`` a list, ``null`` None), within the
limits of :func:`lightreg.safe_yaml.load_yaml`, and typed by the schema afterwards.

Example:
    >>> apply_overrides({"trainer": {"max_epochs": 5}}, ["trainer.max_epochs=20", "optim.lr=3e-3"])
    ({'trainer': {'max_epochs': 20}, 'optim': {'lr': 0.003}}, [])
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import yaml

from lightreg.safe_yaml import RefusedYAMLError, load_yaml
from lightreg.text import short_repr

_KEY_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$")


def parse_value(text: str, source: str = "--set") -> Any:
    """Parse one override value as YAML, reading ``1e-4`` as a float (YAML 1.1 would not).

    Text that is not valid YAML is taken as a string.

    Raises:
        RefusedYAMLError: an alias bomb, deep nesting or a duplicate key; ``source`` names it.

    Example:
        >>> parse_value("1e-4"), parse_value("true"), parse_value("light")
        (0.0001, True, 'light')
    """
    if _FLOAT.match(text.strip()):
        return float(text)
    try:
        return load_yaml(text, source) if text.strip() else ""
    except yaml.YAMLError:
        return text


def apply_overrides(
    raw: dict[str, Any], overrides: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``raw`` with every well-formed ``key.path=value`` set, and one line per bad one.

    Example:
        >>> apply_overrides({}, ["seed=1", "oops"])[1]
        ["--set 'oops': expected key.path=value, e.g. trainer.max_epochs=20"]
    """
    result = copy.deepcopy(raw)
    problems: list[str] = []
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not _KEY_PATH.match(key):
            problems.append(
                f"--set {short_repr(override)}: expected key.path=value, e.g. trainer.max_epochs=20"
            )
            continue
        try:
            value = parse_value(text, f"--set {key}")
        except RefusedYAMLError as exc:
            problems.append(str(exc))
            continue
        *parents, leaf = key.split(".")
        node = result
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parents[: depth + 1])
                problems.append(
                    f"--set {key}: {where} is {short_repr(child)}, not a section with keys"
                )
                break
            node = child
        else:
            node[leaf] = value
    return result, problems
