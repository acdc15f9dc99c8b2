"""``lightreg fit`` under 2-process CPU DDP (gloo), end to end through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml


@pytest.mark.ddp
def test_fit_ddp_two_processes_one_run_one_summary_identical_weights(tmp_path):
    recipe = {
        "name": "ddp",
        "seed": 5,
        "data": {"dataset": "digits", "train_fraction": 0.3, "batch_size": 16},
        "model": {"type": "mlp", "hidden": [32]},
        "regularization": {"dropout": 0.2, "l2": 1e-4, "max_norm": 2.0, "mixup_alpha": 0.2},
        "trainer": {"max_epochs": 12, "enable_progress_bar": False},
        "early_stopping": {"patience": 2, "min_delta": 5.0},  # stops at epoch 2, restores 0
        "logging": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(recipe))
    overrides = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    argv = [sys.executable, "-m", "lightreg", "fit", str(path)]
    for override in overrides:
        argv += ["--set", override]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "runs" / "ddp").iterdir()) == ["version_0"]
    assert done.stdout.count("lightreg fit: ddp") == 1
    assert "replicas: 2 processes, final weights identical" in done.stdout
    assert "stopped early" in done.stdout and "best epoch: 0" in done.stdout  # restored
    run_dir = tmp_path / "runs" / "ddp" / "version_0"
    assert (run_dir / "recipe.yaml").is_file() and (run_dir / "best.ckpt").is_file()
