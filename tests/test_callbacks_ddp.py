"""2-process CPU DDP (gloo): EarlyStopping restore and MaxNorm leave identical weights on both ranks.

Lightning's DDP on CPU starts the other rank by re-running the launching script, so the run lives
in a standalone script (``tests/ddp_helpers.py``) started with ``subprocess``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HELPER = Path(__file__).with_name("ddp_helpers.py")


@pytest.mark.ddp
def test_ddp_ranks_agree_on_best_epoch_and_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    result = subprocess.run(
        [sys.executable, str(HELPER), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    for rank in ranks:
        # rank 0's own losses would pick epoch 1 and rank 1's epoch 2: the mean decides
        assert rank["best_epoch"] == 2
        assert rank["stopped_epoch"] == 4  # patience 2 after the best epoch
        assert rank["max_row_norm"] <= 0.5 * (1 + 1e-6)
        for key, value in rank["best_state"].items():
            assert torch.equal(rank["state"][key], value), key
    for key, value in ranks[0]["state"].items():
        assert torch.equal(ranks[1]["state"][key], value), key
