"""``lightreg autofit`` end to end on real (tiny) training runs: rounds, files, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from typer.testing import CliRunner

import lightreg.runner
from lightreg.cli.app import app
from lightreg.recipe import load_recipe, recipe_to_yaml, resolve_recipe

torch.set_num_threads(1)
pytestmark = pytest.mark.slow
runner = CliRunner()
# a small training set and a high learning rate: round 0 overfits within 8 epochs
TINY = [
    "trainer.max_epochs=8",
    "data.train_fraction=0.1",
    "data.batch_size=16",
    "optim.lr=0.02",
]


def argv(tmp_path: Path, *more: str) -> list[str]:
    sets = [item for pair in (("--set", s) for s in TINY) for item in pair]
    return ["autofit", "mlp_baseline", *sets, "--set", f"logging.dir={tmp_path}", *more]


def columns(run_dir: Path) -> list[str]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle).fieldnames or [])


def test_overfitting_round_then_its_prescription_then_the_test_split_once(tmp_path):
    result = runner.invoke(app, argv(tmp_path, "--rounds", "2"))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "mlp_baseline" / "autofit_0"
    state = json.loads((folder / "autofit.json").read_text())
    zero, one = state["rounds"]
    assert zero["trials"][0]["outcome"]["verdict"] == "overfitting"
    patch = {change["key"]: change["new"] for change in one["trials"][0]["patch"]}
    assert patch["regularization.dropout"] > 0 and patch["regularization.weight_decay"] > 0
    assert one["decision"].startswith("round 1: overfitting since epoch")
    for round_ in (zero, one):  # every round trained without a look at the test split
        run_dir = folder / round_["trials"][0]["run_dir"]
        assert not any(name.startswith("test") for name in columns(run_dir))
    selected = state["rounds"][state["selected_round"]]["trials"][0]
    assert 0.5 < state["test"]["test_acc"] <= 1.0
    best = load_recipe(folder / "best_recipe.yaml")  # loads as `lightreg fit` would
    assert recipe_to_yaml(best) == recipe_to_yaml(resolve_recipe(selected["recipe"]))
    assert best.name == "mlp_baseline" and str(best.logging.dir) == str(tmp_path)
    assert (folder / "report.html").is_file()
    for text in ("overfitting", f"stopped ({state['stop']['rule']})", "test accuracy", "val loss"):
        assert text in result.output, text


def test_interrupted_round_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    class CtrlC(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 2:
                raise KeyboardInterrupt

    build = lightreg.runner.build_callbacks

    def interrupting(recipe, run_dir):
        return [*build(recipe, run_dir), *([CtrlC()] if recipe.name == "round_1" else [])]

    monkeypatch.setattr(lightreg.runner, "build_callbacks", interrupting)
    stopped = runner.invoke(app, argv(tmp_path, "--rounds", "2", "--set", "trainer.max_epochs=4"))
    folder = tmp_path / "mlp_baseline" / "autofit_0"
    assert stopped.exit_code == 130, stopped.output
    assert f"resume with: lightreg autofit --resume {folder}" in stopped.output
    state = json.loads((folder / "autofit.json").read_text())
    assert state["rounds"][0]["done"] and state["rounds"][1]["trials"][0]["status"] == "running"
    assert (folder / "round_1" / "version_0" / "last.ckpt").is_file()
    round_0 = (folder / "round_0" / "version_0" / "metrics.csv").stat().st_mtime_ns

    monkeypatch.setattr(lightreg.runner, "build_callbacks", build)
    resumed = runner.invoke(app, ["autofit", "--resume", str(folder)])
    assert resumed.exit_code == 0, resumed.output
    state = json.loads((folder / "autofit.json").read_text())
    assert [p.name for p in (folder / "round_1").iterdir()] == ["version_0"]  # continued there
    assert (folder / "round_0" / "version_0" / "metrics.csv").stat().st_mtime_ns == round_0
    trial = state["rounds"][1]["trials"][0]
    assert trial["outcome"]["epochs"] == trial["recipe"]["trainer"]["max_epochs"]
    assert state["stop"] is not None and state["test"] is not None
