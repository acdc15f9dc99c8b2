"""End-to-end ``lightreg fit`` on tiny recipes: files, summary, versions, resume."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from rich.console import Console
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.cli.summary import print_summary
from lightreg.recipe import load_recipe
from lightreg.runner import RunInterrupted, fit

runner = CliRunner()


def tiny_recipe(tmp_path: Path, **sections) -> Path:
    recipe = {
        "name": "tiny",
        "seed": 3,
        "data": {"dataset": "digits", "train_fraction": 0.3, "batch_size": 32},
        "model": {"type": "mlp", "hidden": [32]},
        "regularization": {"dropout": 0.2, "l1": 1e-5, "max_norm": 3.0},
        "trainer": {"max_epochs": 3, "enable_progress_bar": False},
        "logging": {"dir": str(tmp_path / "runs")},
    }
    for key, value in sections.items():
        recipe[key] = {**recipe.get(key, {}), **value}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def epochs_in(metrics_csv: Path, column: str) -> list[int]:
    with metrics_csv.open() as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle) if row.get(column)]


def test_fit_writes_the_run_and_prints_the_summary(tmp_path):
    recipe = tiny_recipe(tmp_path)
    result = runner.invoke(app, ["fit", str(recipe)])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "tiny" / "version_0"
    for name in ("metrics.csv", "hparams.yaml", "recipe.yaml", "best.ckpt", "last.ckpt"):
        assert (run_dir / name).is_file(), name
    saved = load_recipe(run_dir / "recipe.yaml")
    assert saved == load_recipe(recipe)
    assert epochs_in(run_dir / "metrics.csv", "val_loss") == [0, 1, 2]
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    for column in ("train_loss", "val_loss", "train_acc", "val_acc", "test_loss", "test_acc"):
        assert column in header.split(","), column
    for text in (
        "loss",
        "accuracy",
        "train-val gap",
        "epochs run: 3 of 3",
        "best epoch",
        "version_0",
    ):
        assert text in result.output, text
    again = runner.invoke(app, ["fit", str(recipe)])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "runs" / "tiny" / "version_1" / "best.ckpt").is_file()
    assert epochs_in(run_dir / "metrics.csv", "val_loss") == [0, 1, 2]  # untouched


def test_fit_with_tensorboard_and_overrides(tmp_path):
    recipe = tiny_recipe(tmp_path, logging={"tensorboard": True})
    result = runner.invoke(app, ["fit", str(recipe), "--set", "trainer.max_epochs=2"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "tiny" / "version_0"
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert load_recipe(run_dir / "recipe.yaml").trainer.max_epochs == 2


class InterruptAtEpoch(Callback):
    """Simulates Ctrl-C at the start of an epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def test_resume_continues_an_interrupted_run_in_its_directory(tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path, trainer={"max_epochs": 4}))
    with pytest.raises(RunInterrupted) as info:
        fit(recipe, extra_callbacks=[InterruptAtEpoch(2)])
    run_dir = info.value.run_dir
    assert epochs_in(run_dir / "metrics.csv", "val_loss") == [0, 1]
    result = runner.invoke(app, ["fit", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert epochs_in(run_dir / "metrics.csv", "val_loss") == [0, 1, 2, 3]
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["version_0"]
    assert "epochs run: 4 of 4" in result.output


def test_resume_errors_are_one_line(tmp_path):
    result = runner.invoke(app, ["fit", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "no recipe.yaml" in result.output
    result = runner.invoke(app, ["fit", "mlp", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "drop RECIPE" in result.output


def test_bad_user_data_is_one_line(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,label\n1,x\nnot-a-number,y\n")
    recipe = tiny_recipe(tmp_path, data={"dataset": "csv", "path": str(data)})
    result = runner.invoke(app, ["fit", str(recipe)])
    assert result.exit_code == 2
    assert "data.csv:3: a feature is not a number" in result.output
    assert "Traceback" not in result.output


def test_resume_after_a_kill_that_cut_the_last_metrics_row(tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path, trainer={"max_epochs": 3}))
    with pytest.raises(RunInterrupted) as info:
        fit(recipe, extra_callbacks=[InterruptAtEpoch(2)])
    run_dir = info.value.run_dir
    metrics = run_dir / "metrics.csv"
    metrics.write_text(metrics.read_text() + "1,99")  # a row cut short by the kill
    result = runner.invoke(app, ["fit", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert epochs_in(metrics, "val_loss") == [0, 1, 2]
    assert "99" not in [row.split(",")[1] for row in metrics.read_text().splitlines()[1:]]


class PoisonWeights(Callback):
    """From ``epoch`` on, every training batch starts from NaN weights: the run diverges."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch >= self.epoch:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(math.nan)


@pytest.mark.parametrize(("nan_from", "best"), [(0, None), (1, 0)])
def test_a_run_that_turns_nan_says_it_diverged(tmp_path, nan_from, best):
    trainer = {"max_epochs": 3, "limit_train_batches": 2}
    recipe = load_recipe(tiny_recipe(tmp_path, trainer=trainer))
    result = fit(recipe, extra_callbacks=[PoisonWeights(nan_from)])
    assert result.diverged_epoch == nan_from
    assert result.best_epoch == best
    console = Console(record=True, width=300)
    print_summary(console, recipe, result)
    text = console.export_text()
    assert f"diverged: a loss became NaN or infinite at epoch {nan_from}" in text
    assert f"best epoch: {'-' if best is None else best} " in text


def test_the_summary_shows_a_markup_like_logging_dir_literally(tmp_path):
    logging_dir = tmp_path / "x[/bold]y"
    recipe = tiny_recipe(
        tmp_path,
        trainer={"max_epochs": 1, "limit_train_batches": 2},
        logging={"dir": str(logging_dir)},
    )
    result = runner.invoke(app, ["fit", str(recipe)])
    assert result.exit_code == 0, result.output
    assert str(logging_dir / "tiny" / "version_0") in result.output.replace("\n", "")
