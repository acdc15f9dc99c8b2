"""OverfittingMonitor: GL/PQ/UP on scripted losses, CSV metrics, one warning, stop, state."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from ddp_helpers import ScriptedValLoss, loader
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from lightreg.callbacks import OverfittingMonitor

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"criterion": "gl"}, r"`criterion` can be GL, PQ, UP, got 'gl'"),
        ({"threshold": 0.0}, r"`threshold` must be a finite number > 0, got 0.0"),
        ({"criterion": "UP", "threshold": 0.5}, r"count of strips >= 1, got 0.5"),
        ({"strip": 0}, r"`strip` must be >= 1, got 0"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OverfittingMonitor(**kwargs)


def _evaluate(val, train=(), **kwargs):
    monitor = OverfittingMonitor(**kwargs)
    monitor.history = {"val": list(val), "train": list(train)}
    return monitor.evaluate()


@pytest.mark.parametrize(
    ("val", "threshold", "gl", "fired"),
    [
        ([1.0, 0.8, 0.84], 5.0, 5.0, False),  # 100 * (0.84 / 0.8 - 1) = 5, not above
        ([1.0, 0.8, 0.88], 5.0, 10.0, True),
        ([1.0, 0.8, 0.7], 1.0, 0.0, False),
    ],
)
def test_generalization_loss(val, threshold, gl, fired):
    metrics, crossed = _evaluate(val, criterion="GL", threshold=threshold, strip=5)
    assert metrics["overfit/gl"] == pytest.approx(gl)
    assert crossed is fired
    assert "overfit/pq" not in metrics and "overfit/up" not in metrics  # not a strip end


def test_progress_quotient_at_strip_ends_only():
    train = [1.0, 0.5, 0.5, 0.5]  # P_2 at epoch 4: 1000 * (1.0 / (2 * 0.5) - 1) = 0
    val = [1.0, 0.8, 0.8, 0.9]  # GL = 12.5, PQ = inf (training has stopped progressing)
    metrics, crossed = _evaluate(val, train, criterion="PQ", threshold=2.0, strip=2)
    assert metrics["overfit/pq"] == math.inf and crossed
    train = [1.0, 0.8, 0.6, 0.4]  # P_2 = 1000 * (1.0 / 0.8 - 1) = 250; PQ = 12.5 / 250
    metrics, crossed = _evaluate(val, train, criterion="PQ", threshold=0.1, strip=2)
    assert metrics["overfit/pq"] == pytest.approx(0.05) and not crossed
    metrics, _ = _evaluate(val[:3], train[:3], criterion="PQ", strip=2)
    assert "overfit/pq" not in metrics


@pytest.mark.parametrize(
    ("val", "threshold", "up", "fired"),
    [
        ([3, 2, 1, 0, 1, 2, 3, 4], 2, 2, True),
        ([3, 2, 1, 0, 1, 2, 3, 4], 3, 2, False),
        ([3, 2, 1, 0, 1, 0, 3, 4], 2, 1, False),
    ],
)
def test_up_counts_rising_strips(val, threshold, up, fired):
    metrics, crossed = _evaluate(val, criterion="UP", threshold=threshold, strip=2)
    assert metrics["overfit/up"] == up and crossed is fired


def _fit(monitor, val_losses, tmp_path, max_epochs=None, ckpt_path=None, callbacks=()):
    model = ScriptedValLoss(val_losses)
    trainer = pl.Trainer(
        max_epochs=max_epochs or len(val_losses),
        logger=CSVLogger(tmp_path),
        callbacks=[monitor, *callbacks],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=bool(callbacks),
        num_sanity_val_steps=1,
    )
    trainer.fit(model, loader(16), loader(8), ckpt_path=ckpt_path)
    return trainer


def test_metrics_reach_the_csv_log_and_a_single_warning(tmp_path: Path, caplog):
    monitor = OverfittingMonitor("GL", threshold=5.0, strip=2)
    with caplog.at_level(logging.WARNING, logger="lightreg"):
        trainer = _fit(monitor, [1.0, 0.8, 0.9, 1.0], tmp_path)
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["overfit/gl"]]
    assert [float(r["overfit/gl"]) for r in rows] == pytest.approx([0.0, 0.0, 12.5, 25.0])
    assert [r["overfit/up"] for r in rows] == ["", "0.0", "", "1.0"]
    assert [r["overfit/pq"] != "" for r in rows] == [False, True, False, True]
    messages = [r.getMessage() for r in caplog.records if "OverfittingMonitor" in r.getMessage()]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "GL crossed 5 at epoch 2" in messages[0]
    assert monitor.history["val"] == pytest.approx([1.0, 0.8, 0.9, 1.0])  # no sanity check
    assert trainer.current_epoch == 4  # warn only


def test_without_logging_configured_the_warning_is_one_line_on_stderr(
    tmp_path: Path, capsys, monkeypatch
):
    # A plain script: no handler on the `lightreg` logger or above it (pytest's own handlers are
    # cut off by propagate=False), so the callback prints the line itself.
    monkeypatch.setattr(logging.getLogger("lightreg"), "propagate", False)
    monitor = OverfittingMonitor("GL", threshold=5.0, strip=2)
    _fit(monitor, [1.0, 0.8, 0.9, 1.0], tmp_path)
    lines = [line for line in capsys.readouterr().err.splitlines() if "OverfittingMonitor" in line]
    assert len(lines) == 1
    assert lines[0].startswith("Warning: OverfittingMonitor: GL crossed 5 at epoch 2 (GL=12.5")


def test_stop_true_stops_training(tmp_path: Path):
    monitor = OverfittingMonitor("GL", threshold=5.0, stop=True)
    trainer = _fit(monitor, [1.0, 0.8, 0.9, 1.0, 1.1, 1.2], tmp_path)
    assert monitor.fired_epoch == 2 and trainer.current_epoch == 3


def test_missing_metric_raises(tmp_path: Path):
    monitor = OverfittingMonitor("PQ", train_monitor="train_error")
    with pytest.raises(RuntimeError, match="needs the metric `train_error`.*train_loss"):
        _fit(monitor, [1.0, 0.8], tmp_path)


def test_history_survives_checkpoint_and_resume(tmp_path: Path):
    losses = [1.0, 0.8, 0.9, 1.0]
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = OverfittingMonitor("UP", threshold=1, strip=2)
    _fit(first, losses, tmp_path, max_epochs=3, callbacks=[checkpoint])
    assert first.history["val"] == pytest.approx(losses[:3])
    resumed = OverfittingMonitor("UP", threshold=1, strip=2)
    _fit(resumed, losses, tmp_path, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert resumed.history["val"] == pytest.approx(losses)
    assert len(resumed.history["train"]) == 4
    assert resumed.fired_epoch == 3  # strip ends 0.8 -> 1.0: one rising strip
