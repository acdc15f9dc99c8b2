"""Load YAML from a user with bounded time and memory, and refuse what would silently mislead.

``yaml.safe_load`` runs no code, but it still trusts the document's shape: a few hundred bytes of
nested aliases ("billion laughs") expand to billions of values downstream, 5,000 nested brackets
end in a ``RecursionError``, a 50 MB file takes minutes, and a repeated key silently keeps the
last value. :func:`load_yaml` refuses each of these with one line that names the source:

- files larger than ``max_bytes``;
- nesting deeper than ``max_depth`` (counted through aliases, so recursive aliases are refused);
- more than ``max_nodes`` values, or aliased text beyond ``max_bytes``, once aliases are expanded;
- a key given twice in one mapping (YAML merge keys ``<<`` still override, as YAML intends).

Limits are checked while the document is composed, before any Python object is built. Imports
only PyYAML: the diagnose path and the recipe loader both use it.

Example:
    >>> load_yaml("trainer: {max_epochs: 3}", "inline")
    {'trainer': {'max_epochs': 3}}
    >>> load_yaml("a: 1\\nb: 2\\na: 3\\n", "r.yaml")
    Traceback (most recent call last):
    ...
    lightreg.safe_yaml.RefusedYAMLError: r.yaml: duplicate key 'a' at lines 1 and 3; keep one
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from lightreg.text import short_repr

MAX_BYTES = 1024 * 1024
"""Default size limit: a real recipe is a few KB."""
MAX_NODES = 100_000
"""Default limit on values (keys, scalars, lists, mappings), aliases expanded."""
MAX_DEPTH = 100
"""Default limit on nesting: a real recipe nests 3 levels."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class RefusedYAMLError(ValueError):
    """A YAML document refused before it was built; the message is one line naming the source.

    Example:
        >>> str(RefusedYAMLError("r.yaml: too big"))
        'r.yaml: too big'
    """


if yaml.__with_libyaml__:  # linear time; PyYAML's own parser takes 14 s on a 90,000-item flow list
    _Events: type = yaml.cyaml.CParser
else:  # pragma: no cover - PyYAML's wheels ship libyaml

    class _Events(Reader, Scanner, Parser):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


class BoundedSafeLoader(Composer, _Events, SafeConstructor, Resolver):
    """``SafeLoader``'s constructors and resolver, composing within the limits of :func:`load_yaml`.

    Events come from libyaml when PyYAML has it; nodes are composed here, in Python, so that
    every limit is checked before the next node is read. Subclass it to add constructors (see
    ``lightreg.diagnose.readers.hparams``); set the limits through :func:`load_yaml`.

    Example:
        >>> load_yaml("[1, 2]", "inline", loader=BoundedSafeLoader)
        [1, 2]
    """

    source = "<yaml>"
    max_nodes = MAX_NODES
    max_depth = MAX_DEPTH
    max_alias_chars = MAX_BYTES

    def __init__(self, stream: str) -> None:
        _Events.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._path: list[Any] = []  # the index of each node being composed, root first
        self._open_anchors: set[str] = set()
        self._nodes = 0
        self._alias_chars = 0
        self._expanded: dict[int, tuple[int, int, int]] = {}  # id -> (nodes, chars, height)

    def _refuse(self, line: int | None, reason: str) -> RefusedYAMLError:
        where = f"line {line + 1}: " if line is not None else ""
        return RefusedYAMLError(f"{self.source}: {where}{reason}")

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        """Compose one node, counting it against the node, text and depth budgets."""
        event = self.peek_event()
        line = event.start_mark.line if event.start_mark is not None else None
        if len(self._path) >= self.max_depth:
            raise self._refuse(line, f"nested deeper than {self.max_depth} levels")
        if isinstance(event, AliasEvent):
            alias = f"alias *{event.anchor[:40]}"  # anchors are letters, digits, '-' and '_'
            if event.anchor in self._open_anchors:
                raise self._refuse(line, f"{alias} refers to itself")
            node = super().compose_node(parent, index)
            nodes, chars, height = self._expand(node)
            self._count(line, nodes, chars)
            if len(self._path) + height > self.max_depth:
                raise self._refuse(line, f"{alias} nests deeper than {self.max_depth} levels")
            return node
        self._count(line, 1, 0)
        if event.anchor is not None:
            self._open_anchors.add(event.anchor)
        self._path.append(index)
        try:
            return super().compose_node(parent, index)
        finally:
            self._path.pop()
            self._open_anchors.discard(event.anchor)

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:
        """Compose a mapping and refuse a key that it holds twice."""
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], ScalarNode] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                continue
            first = seen.get((key.tag, key.value))
            if first is None:
                seen[key.tag, key.value] = key
            else:
                path = short_repr(".".join([*self._key_path(), key.value]))
                lines = f"{first.start_mark.line + 1} and {key.start_mark.line + 1}"
                raise self._refuse(None, f"duplicate key {path} at lines {lines}; keep one")
        return node

    def _key_path(self) -> list[str]:
        """The dotted path of the node being composed (``trainer``, ``augment[0]``)."""
        parts: list[str] = []
        for index in self._path:
            if isinstance(index, ScalarNode):
                parts.append(index.value)
            elif isinstance(index, int):
                parts[-1:] = [f"{parts[-1] if parts else ''}[{index}]"]
        return parts

    def _count(self, line: int | None, nodes: int, chars: int) -> None:
        self._nodes += nodes
        self._alias_chars += chars
        if self._nodes > self.max_nodes:
            raise self._refuse(
                line, f"more than {self.max_nodes:,} values once aliases are expanded"
            )
        if self._alias_chars > self.max_alias_chars:
            raise self._refuse(
                line, f"aliases repeat more than {self.max_alias_chars:,} characters of text"
            )

    def _expand(self, node: Node) -> tuple[int, int, int]:
        """Values, scalar characters and height of ``node`` with its aliases expanded (memoized).

        Every node reached here was composed within the budgets, so recursion stays within
        ``max_depth`` and the counts within ``max_nodes``.
        """
        known = self._expanded.get(id(node))
        if known is not None:
            return known
        if isinstance(node, ScalarNode):
            result = (1, len(node.value), 1)
        else:
            if isinstance(node, SequenceNode):
                children: list[Node] = node.value
            else:
                children = [part for pair in node.value for part in pair]
            nodes, chars, height = 1, 0, 0
            for child in children:
                child_nodes, child_chars, child_height = self._expand(child)
                nodes, chars = nodes + child_nodes, chars + child_chars
                height = max(height, child_height)
            result = (nodes, chars, height + 1)
        self._expanded[id(node)] = result
        return result


def read_text(path: Path, source: str, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path``; a file over ``max_bytes`` is refused from its size alone.

    Raises:
        RefusedYAMLError: the file is too large; one line naming ``source``, its size and the limit.
        OSError, UnicodeDecodeError: the file cannot be read as UTF-8 text.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        ...     _ = file.write("x" * 2000) and file.flush()
        ...     read_text(Path(file.name), "big.yaml", max_bytes=1000)
        Traceback (most recent call last):
        ...
        lightreg.safe_yaml.RefusedYAMLError: big.yaml: 2,000 bytes, over the 1,000-byte limit
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_big(source, size, max_bytes)
    with path.open(encoding="utf-8") as stream:
        return stream.read(max_bytes + 1)  # the file may have grown since stat(): load_yaml checks


def _too_big(source: str, size: int, max_bytes: int) -> RefusedYAMLError:
    return RefusedYAMLError(f"{source}: {size:,} bytes, over the {max_bytes:,}-byte limit")


def load_yaml(
    text_or_path: str | Path,
    source: str,
    *,
    max_bytes: int = MAX_BYTES,
    max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH,
    loader: type[BoundedSafeLoader] = BoundedSafeLoader,
) -> Any:
    """Parse YAML text (a ``str``) or a file (a ``Path``) within limits; ``source`` names it.

    A file larger than ``max_bytes`` is refused from its size alone (see :func:`read_text`).

    Raises:
        RefusedYAMLError: over a limit, or a duplicate key; one line naming ``source``.
        yaml.YAMLError: not valid YAML, or a tag the loader does not construct.
        OSError, UnicodeDecodeError: a file that cannot be read as UTF-8 text.

    Example:
        >>> load_yaml("[[[1]]]", "deep.yaml", max_depth=3)
        Traceback (most recent call last):
        ...
        lightreg.safe_yaml.RefusedYAMLError: deep.yaml: line 1: nested deeper than 3 levels
        >>> bomb = "a: &a [1, 1, 1, 1]\\nb: &b [*a, *a, *a, *a]\\nc: [*b, *b, *b, *b]\\n"
        >>> load_yaml(bomb, "bomb.yaml", max_nodes=50)
        Traceback (most recent call last):
        ...
        lightreg.safe_yaml.RefusedYAMLError: bomb.yaml: line 3: more than 50 values once aliases are expanded
    """
    text = (
        read_text(text_or_path, source, max_bytes)
        if isinstance(text_or_path, Path)
        else text_or_path
    )
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise _too_big(source, size, max_bytes)
    instance = loader(text)
    instance.source = source
    instance.max_nodes, instance.max_depth, instance.max_alias_chars = (
        max_nodes,
        max_depth,
        max_bytes,
    )
    try:
        return instance.get_single_data()
    finally:
        instance.dispose()
