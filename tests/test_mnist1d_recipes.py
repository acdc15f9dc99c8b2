"""The six MNIST-1D recipes: the twins are the paper's models and training, the recipes regularize
only with the library's knobs, and the weights scored on test are the best validation ones.

(One epoch of each recipe runs in ``tests/test_shipped_recipes.py``, with every shipped recipe.)
"""

from __future__ import annotations

import pytest

from lightreg.models.registry import build_model
from lightreg.recipe import load_recipe, shipped_recipes
from lightreg.runner import fit

FAMILIES = ("mlp", "cnn", "lstm")
INPUT_SHAPES = {"mlp": (40,), "cnn": (1, 40), "lstm": (40, 1)}  # the data contract's layouts
PAPER_PARAMETERS = {
    "mlp": (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10),  # MLPBase
    "cnn": (1 * 25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10),  # ConvBase
}


def test_all_six_recipes_are_shipped_with_a_header():
    names = {f"mnist1d_{family}{twin}" for family in FAMILIES for twin in ("", "_baseline")}
    shipped = shipped_recipes()
    assert names <= set(shipped)
    for name in names:
        lines = shipped[name].splitlines()
        comments = [line for line in lines if line.startswith("#")]
        assert lines[0].startswith("# ") and f"name: {name}" in lines
        assert any(f"# Run:      lightreg fit recipes/{name}.yaml" == c for c in comments)
        assert any(
            c.startswith(f"# Override: lightreg fit recipes/{name}.yaml --set") for c in comments
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_twin_trains_as_the_papers_train_py(family):
    recipe = load_recipe(f"mnist1d_{family}_baseline")
    reg = recipe.regularization
    assert recipe.data.dataset == "mnist1d" and recipe.data.batch_size == 100
    assert (recipe.optim.name, recipe.optim.lr, recipe.optim.scheduler) == ("adam", 0.01, "none")
    assert recipe.trainer.max_epochs == 200
    assert (reg.dropout, reg.output_dropout, reg.weight_decay, reg.l1, reg.l2) == (0, 0, 0, 0, 0)
    assert (reg.label_smoothing, reg.mixup_alpha, reg.cutmix_alpha) == (0, 0, 0)
    assert reg.augment is None and reg.max_norm is None
    assert not recipe.model.batch_norm
    stop = recipe.early_stopping
    assert not stop.enabled or stop.patience > recipe.trainer.max_epochs
    assert stop.monitor.startswith("val_")


@pytest.mark.parametrize("family", sorted(PAPER_PARAMETERS))
def test_twin_is_the_papers_model(family):
    recipe = load_recipe(f"mnist1d_{family}_baseline")
    model = build_model(recipe, INPUT_SHAPES[family], 10)
    assert sum(p.numel() for p in model.parameters()) == PAPER_PARAMETERS[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_recipe_regularizes_and_keeps_the_twins_data(family):
    recipe = load_recipe(f"mnist1d_{family}")
    twin = load_recipe(f"mnist1d_{family}_baseline")
    assert recipe.model.type == twin.model.type
    assert recipe.data.dataset == "mnist1d" and recipe.data.val_fraction == twin.data.val_fraction
    assert recipe.early_stopping.monitor.startswith("val_")
    reg = recipe.regularization
    assert reg.dropout > 0 or reg.weight_decay > 0
    assert reg.augment is not None


def test_a_twin_scores_its_best_validation_weights(tmp_path):
    recipe = load_recipe(
        "mnist1d_mlp_baseline",
        [
            f"logging.dir={tmp_path}",
            "trainer.max_epochs=4",
            "trainer.limit_train_batches=2",
            "trainer.enable_progress_bar=false",
            "data.train_fraction=0.2",
        ],
    )
    result = fit(recipe)
    assert result.epochs_run == 4 and not result.stopped_early
    val_acc = {epoch: row["val_acc"] for epoch, row in result.history.items() if "val_acc" in row}
    assert result.best_epoch == max(val_acc, key=lambda epoch: (val_acc[epoch], -epoch))
    assert result.metric("val_acc") == pytest.approx(val_acc[result.best_epoch])
