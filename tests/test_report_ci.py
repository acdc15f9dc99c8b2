"""``.ci/run`` installs Debian's Chromium when it is missing (the HTML report's browser tests
need it) and sets ``CI``, so that those tests fail rather than skip; checked with stub commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

CI_RUN = Path(__file__).parent.parent / ".ci" / "run"


def run_with_stubs(tmp_path: Path, uid: int, chromium: Path) -> list[str]:
    """Run ``.ci/run`` with ``sudo``, ``apt-get``, ``make`` and ``id`` stubbed; their calls, in order."""
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {
        "apt-get": f'echo "apt-get $*" >> {log}',
        "make": f'echo "make $* CI=$CI" >> {log}',
        "sudo": f'echo "sudo" >> {log}; "$@"',
        "id": f"echo {uid}",
    }
    for name, body in stubs.items():
        stub = bin_dir / name
        stub.write_text(f"#!/bin/sh\n{body}\n")
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "CHROMIUM": str(chromium)}
    env.pop("CI", None)
    done = subprocess.run(["bash", str(CI_RUN)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


@pytest.mark.parametrize(("uid", "sudo"), [(0, []), (1000, ["sudo"])])
def test_ci_installs_chromium_when_missing(tmp_path: Path, uid: int, sudo: list[str]) -> None:
    calls = run_with_stubs(tmp_path, uid, tmp_path / "no-chromium")
    assert calls == [
        *sudo,
        "apt-get update",
        *sudo,
        "apt-get install -y chromium",
        "make test CI=1",
        "make test-lowest CI=1",
    ]


def test_ci_keeps_an_installed_chromium(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    assert run_with_stubs(tmp_path, 0, chromium) == ["make test CI=1", "make test-lowest CI=1"]
