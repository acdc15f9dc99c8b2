"""Turn pydantic validation errors into one plain line per problem, with did-you-mean hints.

Example:
    >>> from lightreg.recipe.schema import Recipe
    >>> from pydantic import ValidationError
    >>> try:
    ...     Recipe.model_validate({"name": "x", "regularization": {"dropuot": 0.1}})
    ... except ValidationError as exc:
    ...     print(format_validation_error(exc, Recipe)[0])
    regularization.dropuot: unknown key; did you mean 'dropout'?
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from lightreg.text import did_you_mean, printable, short_repr

_UNION_MEMBER = re.compile(
    r"^(literal|list|dict|nullable|tuple|set|function-[a-z]+|constrained-[a-z]+|"
    r"int|float|str|bool|json-or-python|lax-or-strict|union|tagged-union)(\[.*\])?$"
)


class RecipeError(Exception):
    """A recipe that cannot be used; ``problems`` holds one line per problem.

    Example:
        >>> RecipeError(["a: bad", "b: worse"]).problems
        ['a: bad', 'b: worse']
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes an annotation may hold (through Optional, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [cls for arg in typing.get_args(annotation) for cls in _model_classes(arg)]
    return []


def _walk(root: type[BaseModel], loc: Sequence[Any]) -> tuple[list[str], list[str]]:
    """Follow ``loc`` through the schema: the clean key path and the keys allowed at its end."""
    path: list[str] = []
    classes: list[type[BaseModel]] = [root]
    for part in loc:
        by_tag = [c for c in classes if c.model_fields.get("type") is not None]
        tagged = [c for c in by_tag if c.model_fields["type"].default == part]
        if tagged:  # a discriminated-union tag that pydantic puts in the location
            classes = tagged
            continue
        if isinstance(part, str) and _UNION_MEMBER.match(part):
            continue  # a union member's tag (e.g. 'constrained-int'), not a key
        if isinstance(part, int):
            path[-1:] = [f"{path[-1]}[{part}]"] if path else [f"[{part}]"]
        else:
            path.append(_key_text(part))
        fields = [c.model_fields[part] for c in classes if part in c.model_fields]
        classes = [cls for f in fields for cls in _model_classes(f.annotation)]
    allowed = sorted({name for cls in classes for name in cls.model_fields})
    return path, allowed


def _key_text(key: object) -> str:
    """A user's key as shown in a message: control characters visible, at most 60 characters."""
    text = printable(str(key)[:100])
    return text if len(text) <= 60 else text[:57] + "..."


def format_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per error: ``key.path: what is wrong (got value)``.

    Example:
        >>> from lightreg.recipe.schema import Recipe
        >>> raw = {"name": "x", "optim": {"lr": -1}, "trainer": {"max_epochs": 0}}
        >>> try:
        ...     Recipe.model_validate(raw)
        ... except ValidationError as exc:
        ...     for line in format_validation_error(exc, Recipe):
        ...         print(line)
        optim.lr: input should be greater than 0 (got -1)
        trainer.max_epochs: input should be greater than or equal to 1 (got 0)
    """
    lines: list[str] = []
    union_alternatives: dict[str, list[tuple[str, str, str]]] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        kind = error["type"]
        if kind == "extra_forbidden":
            path, allowed = _walk(root, loc[:-1])
            key = str(loc[-1])
            where = ".".join([*path, _key_text(key)])
            hint = did_you_mean(key, allowed)
            if not hint and allowed:
                hint = f"; allowed keys: {', '.join(allowed)}"
            lines.append(f"{where}: unknown key{hint}")
            continue
        path, _ = _walk(root, loc)
        where = ".".join(path) or "recipe"
        message = error["msg"]
        if kind == "union_tag_invalid":
            expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected_tags", "")))
            tag = error.get("ctx", {}).get("tag")
            lines.append(
                f"{where}.type: unknown type {short_repr(tag)}; expected one of "
                f"{', '.join(expected)}{did_you_mean(tag, expected)}"
            )
            continue
        if kind == "value_error":
            message = message.removeprefix("Value error, ")
            lines.append(f"{where}: {message}")
            continue
        message = message[0].lower() + message[1:]
        if kind == "finite_number":
            message = "must be a finite number"
        hint = ""
        if kind == "literal_error" and isinstance(error["input"], (str, int, float)):
            expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
            hint = did_you_mean(error["input"], expected)
        if kind == "missing":
            lines.append(f"{where}: required key is missing")
            continue
        union = union_alternatives.setdefault(where, [])
        if not union:
            lines.append(where)
        union.append((message, short_repr(error["input"]), hint))
    return [_union_line(line, union_alternatives.get(line)) for line in lines]


def _union_line(line: str, alternatives: list[tuple[str, str, str]] | None) -> str:
    """``path: msg (got v)``; several messages for one path come from a union of types."""
    if not alternatives:
        return line
    messages = " | ".join(dict.fromkeys(message for message, _, _ in alternatives))
    hint = next((hint for _, _, hint in alternatives if hint), "")
    return f"{line}: {messages} (got {alternatives[0][1]}){hint}"
