"""Checkpoints of a run: last.ckpt is the last epoch, best.ckpt survives a resume, writes are atomic."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from test_fit_e2e import InterruptAtEpoch, runner, tiny_recipe

from lightreg.assemble import AtomicCheckpointIO
from lightreg.cli.app import app
from lightreg.recipe import load_recipe
from lightreg.runner import RunInterrupted, fit

pytestmark = pytest.mark.slow

TINY = {"limit_train_batches": 3}


class SpoilWeights(Callback):
    """From ``epoch`` on, scramble the weights before validation: every later epoch is worse."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch and not trainer.sanity_checking:
            generator = torch.Generator().manual_seed(trainer.current_epoch)
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.add_(torch.randn(parameter.shape, generator=generator) * 10)


def saved_epoch(path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_last_ckpt_is_the_last_epoch_even_when_best_is_older(tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path, trainer={**TINY, "max_epochs": 3}))
    result = fit(recipe, extra_callbacks=[SpoilWeights(1)])
    assert saved_epoch(result.run_dir / "best.ckpt") == 0
    assert saved_epoch(result.run_dir / "last.ckpt") == 2
    assert result.best_epoch == 0


def test_resuming_a_moved_run_never_replaces_a_better_best_ckpt(tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path, trainer={**TINY, "max_epochs": 3}))
    with pytest.raises(RunInterrupted) as info:
        fit(recipe, extra_callbacks=[InterruptAtEpoch(2)])
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(info.value.run_dir, moved)
    best_before = (saved_epoch(moved / "best.ckpt"), digest(moved / "best.ckpt"))
    result = fit(recipe, resume=moved, extra_callbacks=[SpoilWeights(2)])
    assert result.run_dir == moved and result.epochs_run == 3
    assert (saved_epoch(moved / "best.ckpt"), digest(moved / "best.ckpt")) == best_before
    assert result.best_epoch == best_before[0]
    assert saved_epoch(moved / "last.ckpt") == 2


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 0}, path)
    save = torch.save

    def half_then_disk_full(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", half_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        AtomicCheckpointIO().save_checkpoint({"epoch": 1}, path)
    monkeypatch.setattr(torch, "save", save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert saved_epoch(path) == 0


def test_resuming_from_a_truncated_last_ckpt_is_one_line_naming_best(tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path, trainer={**TINY, "max_epochs": 3}))
    with pytest.raises(RunInterrupted) as info:
        fit(recipe, extra_callbacks=[InterruptAtEpoch(1)])
    last = info.value.run_dir / "last.ckpt"
    last.write_bytes(last.read_bytes()[:100])
    result = runner.invoke(app, ["fit", "--resume", str(info.value.run_dir)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "last.ckpt" in result.output and "best.ckpt" in result.output
