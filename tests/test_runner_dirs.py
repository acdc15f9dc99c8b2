"""The run directory: claimed atomically, bad or full locations are one line, no state leaks."""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from test_fit_e2e import epochs_in, runner, tiny_recipe

from lightreg.cli.app import app
from lightreg.recipe import load_recipe
from lightreg.runner import VERSION_ENV, claim_run_dir, fit

TINY = {"max_epochs": 1, "limit_train_batches": 2}


def _claim_after(start, recipe, names) -> None:
    start.wait()
    names.put(claim_run_dir(recipe).name)


def test_processes_claiming_at_once_never_share_a_directory(tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path))
    context = multiprocessing.get_context("fork")
    start, names = context.Event(), context.Queue()
    workers = [context.Process(target=_claim_after, args=(start, recipe, names)) for _ in range(8)]
    for worker in workers:
        worker.start()
    start.set()
    claimed = sorted(names.get(timeout=30) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    assert claimed == sorted(f"version_{n}" for n in range(8))
    assert sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir()) == claimed


def test_a_ddp_rank_reuses_the_launchers_directory(tmp_path, monkeypatch):
    recipe = load_recipe(tiny_recipe(tmp_path))
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv(VERSION_ENV, "7")
    assert claim_run_dir(recipe) == tmp_path / "runs" / "tiny" / "version_7"
    assert not (tmp_path / "runs" / "tiny").exists()  # the launcher creates it, not a rank


@pytest.mark.slow
def test_three_fits_started_together_end_in_different_version_dirs(tmp_path):
    recipe = tiny_recipe(tmp_path, trainer=TINY)
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", VERSION_ENV)}
    argv = [sys.executable, "-m", "lightreg", "fit", str(recipe)]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    runs = tmp_path / "runs" / "tiny"
    assert sorted(p.name for p in runs.iterdir()) == ["version_0", "version_1", "version_2"]
    reported = sorted(line for out, _ in outputs for line in out.splitlines() if "logs and" in line)
    assert [line.rsplit("/", 1)[1] for line in reported] == ["version_0", "version_1", "version_2"]
    for run_dir in runs.iterdir():
        assert epochs_in(run_dir / "metrics.csv", "val_loss") == [0]


def _unusable_dir(kind: str, tmp_path: Path) -> str:
    if kind == "proc":
        return "/proc/lightreg-runs"
    if kind == "read-only":
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o500)
        return str(folder)
    (tmp_path / "a-file").write_text("x")
    return str(tmp_path / "a-file" / "runs" if kind == "under-a-file" else tmp_path / "a-file")


@pytest.mark.parametrize(
    "kind",
    [
        "a-file",
        "under-a-file",
        "proc",
        pytest.param(
            "read-only", marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
        ),
    ],
)
def test_a_logging_dir_that_cannot_hold_runs_is_one_line(tmp_path, kind):
    recipe = tiny_recipe(tmp_path, trainer=TINY)
    folder = _unusable_dir(kind, tmp_path)
    result = runner.invoke(app, ["fit", str(recipe), "--set", f"logging.dir={folder}"])
    assert result.exit_code == 2, result.output
    assert "logging.dir" in result.output and "cannot" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_what_was_written(tmp_path, monkeypatch):
    recipe = tiny_recipe(tmp_path, trainer={"max_epochs": 3, "limit_train_batches": 2})
    save = torch.save

    def disk_full_from_epoch_1(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch", 0) >= 1:
            if hasattr(f, "write"):
                f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_from_epoch_1)
    result = runner.invoke(app, ["fit", str(recipe)])
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    run_dir = tmp_path / "runs" / "tiny" / "version_0"
    monkeypatch.setattr(torch, "save", save)
    kept = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert kept["epoch"] == 0
    assert epochs_in(run_dir / "metrics.csv", "val_loss")[:1] == [0]
    assert not list(run_dir.glob("*.tmp"))


@pytest.mark.slow
def test_fit_leaves_the_process_state_as_it_found_it(tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path, trainer=TINY))
    quiet = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    environ, filters, level = dict(os.environ), list(warnings.filters), quiet.level
    deterministic = torch.are_deterministic_algorithms_enabled()
    fit(recipe)
    assert dict(os.environ) == environ
    assert warnings.filters == filters
    assert quiet.level == level
    assert torch.are_deterministic_algorithms_enabled() == deterministic
