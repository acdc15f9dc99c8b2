"""The house's layers, checked: import contracts (pyproject.toml) and messages free of CLI flags.

`make test` runs `lint-imports` on the tree; these tests prove that each contract can fail, by
planting a forbidden import in a copy of the package, and that no library string names a flag.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

from lightreg.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
# the library's packages and modules, as the first contract names them
LIBRARY = CONTRACTS["contracts"][0]["source_modules"]


def cli_flags() -> list[str]:
    """Every ``--long`` option of every ``lightreg`` command, read from the typer app."""

    def walk(command) -> Iterator[str]:
        for param in command.params:
            yield from (o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub)

    return sorted(set(walk(typer.main.get_command(app))))


def flags_named(source: str, flags: list[str]) -> list[tuple[int, str]]:
    """(line, flag) for each flag that a string literal of ``source`` names, f-strings included.

    >>> flags_named('raise ValueError(f"use --set {k}=1")', ["--set", "--force"])
    [(1, '--set')]
    >>> flags_named('x = "--settle"  # --force', ["--set", "--force"])
    []
    """
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, flags)) + r")(?![\w-])")
    return [
        (node.lineno, flag)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        for flag in pattern.findall(node.value)
    ]


def library_files() -> list[Path]:
    files = []
    for name in LIBRARY:
        path = ROOT / name.replace(".", "/")
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return files


def test_cli_flags_are_read_from_the_app():
    assert {"--set", "--force", "--resume", "--png"} <= set(cli_flags())


def test_library_messages_never_name_a_cli_flag():
    flags = cli_flags()
    files = library_files()
    assert len(files) > 10
    found = [
        f"{path.relative_to(ROOT)}:{line}: {flag}"
        for path in files
        for line, flag in flags_named(path.read_text(encoding="utf-8"), flags)
    ]
    assert not found, "the library speaks of arguments, the CLI of its flags:\n" + "\n".join(found)


def lint_imports(package_copy: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with the project's contracts on a copy of the package."""
    return subprocess.run(
        [
            Path(sys.executable).with_name("lint-imports"),
            "--no-cache",
            "--config",
            ROOT / "pyproject.toml",
        ],
        cwd=package_copy,  # lint-imports puts its working folder first on sys.path
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of lightreg/ with one forbidden import planted per contract."""
    copy = tmp_path_factory.mktemp("planted")
    shutil.copytree(
        ROOT / "lightreg", copy / "lightreg", ignore=shutil.ignore_patterns("__pycache__")
    )
    plants = {
        "lightreg/losses.py": "import typer",
        "lightreg/layers/drop.py": "def _plant():\n    from lightreg.recipe import schema",
        "lightreg/optim.py": "def _plant():\n    from lightreg.cli.console import user_error",
        "lightreg/diagnose/rules.py": "def _plant():\n    import lightning",
        "lightreg/diagnose/engine.py": "def _plant():\n    import lightreg.runner",
    }
    for name, line in plants.items():
        with open(copy / name, "a", encoding="utf-8") as f:
            f.write(f"\n\n{line}\n")
    return lint_imports(copy)


@pytest.mark.parametrize(
    "violation",
    [
        "lightreg.losses -> typer",
        "lightreg.layers.drop -> lightreg.recipe",
        "lightreg.optim -> lightreg (l.",  # lightreg.cli lies outside lightreg/: the root package
        "lightreg.diagnose.rules -> lightning",
        "lightreg.diagnose.engine -> lightreg.runner",  # ... which pulls in torch
    ],
)
def test_a_planted_forbidden_import_breaks_its_contract(planted, violation):
    assert planted.returncode == 1, planted.stdout + planted.stderr
    assert violation in planted.stdout, planted.stdout
