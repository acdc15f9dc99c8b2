"""A sweep's worker processes end with the sweep, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SWEEP_LIKE = """
import os, sys, time
from pathlib import Path

from lightreg.recipe import Recipe
from lightreg.sweep import Job, JobResult, LocalBackend


def long_run(job, threads):
    Path(sys.argv[1], str(os.getpid())).write_text(job.slug)
    time.sleep(300)
    return JobResult(job.slug, None)


if __name__ == "__main__":
    jobs = [Job(slug, Recipe(name=slug)) for slug in ("a", "b")]
    LocalBackend(parallel=2, run_one=long_run).run(jobs, on_done=print)
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_workers_die_with_a_killed_sweep(tmp_path):
    script = tmp_path / "sweep_like.py"
    script.write_text(SWEEP_LIKE)
    pids = tmp_path / "pids"
    pids.mkdir()
    sweep = subprocess.Popen([sys.executable, str(script), str(pids)])
    workers: list[int] = []
    try:
        assert wait_until(lambda: len(list(pids.iterdir())) == 2, timeout=60), "no workers"
        workers = [int(path.name) for path in pids.iterdir()]
        assert all(alive(pid) for pid in workers)
        sweep.kill()
        sweep.wait()
        assert wait_until(lambda: not any(alive(pid) for pid in workers), timeout=5), [
            pid for pid in workers if alive(pid)
        ]
    finally:
        sweep.kill()
        for pid in workers:  # only when the test failed: do not leave them sleeping
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
