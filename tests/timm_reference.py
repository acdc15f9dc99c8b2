"""timm's ``timm/layers/drop.py``, loaded alone: the reference for DropPath and DropBlock parity.

timm is a test-only dependency, installed without its dependencies: its package ``__init__``
imports torchvision, which this project does not install, so the one file is loaded by path.
Without timm the parity tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest


@cache
def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("timm_layers_drop", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timm_drop() -> ModuleType:
    """The module ``timm.layers.drop``; skips the test without timm, fails it when CI is set."""
    found = importlib.util.find_spec("timm")
    path = Path(found.submodule_search_locations[0]) / "layers" / "drop.py" if found else None
    if path is None or not path.is_file():
        why = "timm is not installed (pip install timm --no-deps): parity with timm not checked"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return _load(path)
