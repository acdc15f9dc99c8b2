"""The runner's part in autofit: train without touching the test split, score it once later."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from lightreg.recipe import load_recipe
from lightreg.runner import evaluate_test, fit

torch.set_num_threads(1)
pytestmark = pytest.mark.slow


def tiny(tmp_path: Path):
    return load_recipe(
        "mlp_baseline",
        [
            f"logging.dir={tmp_path}",
            "trainer.max_epochs=3",
            "trainer.enable_progress_bar=false",
            "data.train_fraction=0.1",
            "model.hidden=[16]",
        ],
    )


def logged_columns(run_dir: Path) -> list[str]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle).fieldnames or [])


def test_fit_without_test_never_scores_the_test_split_and_evaluate_test_scores_it_once(tmp_path):
    recipe = tiny(tmp_path)
    untouched = fit(recipe, test=False)
    assert untouched is not None
    assert not any(name.startswith("test") for name in untouched.final), untouched.final
    assert not any(name.startswith("test") for name in logged_columns(untouched.run_dir))
    assert untouched.metric("train_eval_acc") > 0  # the clean training score is still there

    reference = fit(recipe)  # same recipe and seed: the same best weights, scored during fit
    assert reference is not None
    files_before = sorted(p.name for p in untouched.run_dir.iterdir())
    scores = evaluate_test(untouched.run_dir)
    assert scores["test_acc"] == pytest.approx(reference.metric("test_acc"))
    assert scores["test_loss"] == pytest.approx(reference.metric("test_loss"))
    assert sorted(p.name for p in untouched.run_dir.iterdir()) == files_before  # writes nothing
    assert not any(name.startswith("test") for name in logged_columns(untouched.run_dir))
