"""Load a run's ``recipe.yaml`` or ``hparams.yaml`` safely.

Lightning writes ``!!python/tuple`` into ``hparams.yaml`` and some projects' files hold
``!!python/object`` tags, so plain ``yaml.safe_load`` fails and ``yaml.load`` would run code. The
loader here maps tuples to lists and turns every other unknown tag into opaque text. It keeps the
limits of :func:`lightreg.safe_yaml.load_yaml`: an alias bomb, deep nesting or a duplicate key
costs the config (with a warning), never the memory or the output of ``diagnose``.

Example:
    >>> text = "widths: !!python/tuple [4, 1]\\nact: !!python/name:torch.nn.ReLU ''"
    >>> load_yaml(text, "hparams.yaml", loader=OpaqueTagLoader)
    {'widths': [4, 1], 'act': '!!python/name:torch.nn.ReLU'}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml

from lightreg.diagnose.run import LogReadError
from lightreg.run_files import RECIPE_FILE
from lightreg.safe_yaml import BoundedSafeLoader, RefusedYAMLError, load_yaml

_SHORT = "tag:yaml.org,2002:"
MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""Config files larger than this are not read: a real recipe or hparams file is a few KB."""


class OpaqueTagLoader(BoundedSafeLoader):
    """A bounded ``SafeLoader`` that reads tuples as lists and any other unknown tag as text.

    Example:
        >>> load_yaml("a: !Custom {x: 1}", "inline", loader=OpaqueTagLoader)
        {'a': '!Custom'}
    """


def _tuple(loader: OpaqueTagLoader, node: yaml.Node) -> list[Any]:
    return loader.construct_sequence(node, deep=True)


def _opaque(loader: OpaqueTagLoader, node: yaml.Node) -> str:
    tag = node.tag.replace(_SHORT, "!!")
    if isinstance(node, yaml.ScalarNode) and node.value:
        return f"{tag} {node.value}"
    return tag


OpaqueTagLoader.add_constructor(_SHORT + "python/tuple", _tuple)
OpaqueTagLoader.add_constructor(None, _opaque)


def load_config(path: Path) -> dict[str, Any]:
    """Read a config file into a dict, or raise :class:`LogReadError` with a one-line reason.

    Example:
        >>> load_config(Path("missing/hparams.yaml"))
        Traceback (most recent call last):
        ...
        lightreg.diagnose.run.LogReadError: hparams.yaml: file not found
    """
    try:
        data = load_yaml(path, path.name, max_bytes=MAX_CONFIG_BYTES, loader=OpaqueTagLoader)
    except RefusedYAMLError as err:
        raise LogReadError(str(err)) from None
    except FileNotFoundError:
        raise LogReadError(f"{path.name}: file not found") from None
    except PermissionError:
        raise LogReadError(f"{path.name}: permission denied") from None
    except UnicodeDecodeError:
        raise LogReadError(f"{path.name}: not UTF-8 text") from None
    except OSError as err:
        raise LogReadError(f"{path.name}: {err.strerror or type(err).__name__}") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise LogReadError(f"{path.name}: invalid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LogReadError(f"{path.name}: not a mapping but {type(data).__name__}")
    return data


def find_config(
    folder: Path,
) -> tuple[dict[str, Any] | None, Literal["recipe", "hparams"] | None, list[str]]:
    """Load ``recipe.yaml`` (preferred) or ``hparams.yaml`` from a run folder.

    Returns ``(config, config_source, warnings)``; a file that can't be read costs the config and
    adds a warning, never an exception.

    Example:
        >>> find_config(Path("no/such/run"))
        (None, None, [])
    """
    warnings: list[str] = []
    sources: tuple[tuple[str, Literal["recipe", "hparams"]], ...] = (
        (RECIPE_FILE, "recipe"),
        ("hparams.yaml", "hparams"),
    )
    for name, source in sources:
        path = folder / name
        if not path.is_file():
            continue
        try:
            return load_config(path), source, warnings
        except LogReadError as err:
            warnings.append(f"config not read: {err}")
    return None, None, warnings
