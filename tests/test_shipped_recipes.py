"""Every shipped recipe trains end to end: one epoch on a tiny subset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightreg.recipe import load_recipe, shipped_recipes
from lightreg.runner import fit


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    import cv2

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("light", 200)):
        (root / name).mkdir()
        for i in range(10):
            pixels = np.clip(rng.normal(level, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i}.png"), pixels)
    return root


@pytest.mark.parametrize("name", sorted(shipped_recipes()))
def test_shipped_recipe_trains_one_epoch(name, tmp_path, image_folder):
    overrides = [
        f"logging.dir={tmp_path}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.enable_progress_bar=false",
        f"data.path={image_folder}",
    ]
    recipe = load_recipe(name, overrides)
    if recipe.data.dataset == "image_folder":
        recipe = load_recipe(name, [*overrides, "data.image_size=8", "data.batch_size=4"])
    else:
        recipe = load_recipe(name, [*overrides, "data.train_fraction=0.1"])
    result = fit(recipe)
    assert result is not None and result.epochs_run == 1
    assert (result.run_dir / "best.ckpt").is_file() and (result.run_dir / "recipe.yaml").is_file()
    assert 0.0 <= result.metric("test_acc") <= 1.0
    assert math.isfinite(result.metric("test_loss"))
