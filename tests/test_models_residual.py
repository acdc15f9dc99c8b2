"""The CNN's residual blocks, stochastic depth and DropBlock: the model, the recipe keys, a fit."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn
from typer.testing import CliRunner

from lightreg.cli.app import app
from lightreg.layers import DropBlock1d, DropBlock2d, DropPath
from lightreg.models.cnn import CNNClassifier, conv_block
from lightreg.models.registry import build_model
from lightreg.recipe import RecipeError, resolve_recipe
from lightreg.recipe.lint import lint_recipe

runner = CliRunner()


def _layers(model: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize(
    ("image_size", "dropblock"), [((16, 16), DropBlock2d), ((40,), DropBlock1d)]
)
def test_residual_cnn_runs_on_images_and_signals(image_size, dropblock):
    model = CNNClassifier(
        2, image_size, 5, channels=(4, 8, 8), block="residual", drop_path=0.3, dropblock=0.1
    )
    x = torch.randn(6, 2, *image_size)
    assert model(x).shape == (6, 5)
    assert model.eval()(x).shape == (6, 5)
    assert len(_layers(model, DropPath)) == 3
    assert len(_layers(model, dropblock)) == 3


def test_drop_path_rates_rise_linearly_over_depth():
    model = CNNClassifier(1, (16, 16), 3, channels=(4, 4, 4, 4), block="residual", drop_path=0.2)
    assert model.block_drop_path_rates() == pytest.approx([0.05, 0.1, 0.15, 0.2])
    assert [layer.p for layer in _layers(model, DropPath)] == model.block_drop_path_rates()


def test_a_residual_block_adds_its_input_to_the_kept_branch_only():
    block = conv_block(
        3, 3, convs=2, dropout=0.0, batch_norm=False, bn_position="before_activation",
        activation="relu", pool=False, block="residual", drop_path=0.5,
    )  # fmt: skip
    skip = block[0]
    assert isinstance(skip.shortcut, nn.Identity)
    x = torch.randn(64, 3, 5, 5)
    torch.manual_seed(0)
    y = skip(x)
    branch = skip.body(x)
    dropped = torch.isclose(y, x).flatten(1).all(dim=1)
    kept = torch.isclose(y, x + branch / 0.5).flatten(1).all(dim=1)
    assert bool((dropped | kept).all()) and 0 < int(dropped.sum()) < 64
    assert torch.allclose(skip.eval()(x), x + branch)


def test_a_residual_block_projects_the_shortcut_when_the_shape_changes():
    block = conv_block(
        3, 8, convs=1, dropout=0.0, batch_norm=True, bn_position="before_activation",
        activation="relu", pool=False, block="residual", stride=2,
    )  # fmt: skip
    conv, norm = block[0].shortcut
    assert (conv.kernel_size, conv.stride, conv.out_channels) == ((1, 1), (2, 2), 8)
    assert isinstance(norm, nn.BatchNorm2d)
    assert block(torch.zeros(2, 3, 9, 9)).shape == (2, 8, 5, 5)


def test_dropblock_acts_on_the_conv_maps_before_pooling():
    model = CNNClassifier(1, (8, 8), 3, channels=(4,), dropblock=0.1, dropblock_size=3, dropout=0.2)
    names = [type(layer).__name__ for layer in model.features[0]]
    assert names[-3:] == ["DropBlock2d", "MaxPool2d", "SpatialDropout"]
    assert model.features[0][-3].block_size == 3


def test_plain_cnn_state_keys_are_unchanged_by_dropblock():
    plain = CNNClassifier(1, (8, 8), 3, channels=(4, 8))
    with_dropblock = CNNClassifier(1, (8, 8), 3, channels=(4, 8), dropblock=0.1)
    assert list(plain.state_dict()) == list(with_dropblock.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop_path": 0.1}, "`drop_path` = 0.1 needs block='residual'"),
        ({"block": "resnet"}, "`block` can be plain, residual; got 'resnet'"),
        ({"block": "residual", "drop_path": 1.0}, r"`drop_path` must be in \[0, 1\)"),
        ({"dropblock": -0.1}, r"`dropblock` must be in \[0, 1\)"),
        ({"dropblock": 0.1, "dropblock_size": 0}, "`block_size` must be a whole number >= 1"),
        (
            {"block": "residual", "kernel_size": 4},
            "`block` 'residual': kernel_size 4 with padding 2 changes the map size",
        ),
    ],
)
def test_cnn_refuses_bad_block_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CNNClassifier(1, (8, 8), 3, channels=(4,), **kwargs)


# ---------------------------------------------------------------- recipe keys


def cnn_recipe(model: dict | None = None, regularization: dict | None = None, **sections) -> dict:
    return {
        "name": "x",
        "model": {"type": "cnn", "channels": [4, 8], **(model or {})},
        "regularization": regularization or {},
        **sections,
    }


def test_recipe_keys_reach_the_model():
    recipe = resolve_recipe(
        cnn_recipe(
            {"block": "residual"},
            {"drop_path": 0.2, "dropblock": {"rate": 0.1, "block_size": 2}},
        )
    )
    model = build_model(recipe, input_shape=(1, 8, 8), num_classes=10)
    assert model.block_drop_path_rates() == pytest.approx([0.1, 0.2])
    assert [(m.p, m.block_size) for m in _layers(model, DropBlock2d)] == [(0.1, 2)] * 2
    signal = build_model(recipe, input_shape=(1, 40), num_classes=10)
    assert len(_layers(signal, DropBlock1d)) == 2


def test_recipe_defaults_leave_the_cnn_plain():
    recipe = resolve_recipe(cnn_recipe())
    assert (recipe.model.block, recipe.regularization.drop_path) == ("plain", 0.0)
    assert recipe.regularization.dropblock.rate == 0.0
    model = build_model(recipe, input_shape=(1, 8, 8), num_classes=10)
    assert not _layers(model, DropPath) and not _layers(model, DropBlock2d)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            cnn_recipe(regularization={"drop_path": 0.1}),
            "regularization.drop_path = 0.1 drops the residual branch of a block; model.block "
            "is 'plain', which has none: set model.block residual, or drop_path 0",
        ),
        (
            {"name": "x", "regularization": {"drop_path": 0.1}},
            "model.type 'mlp' has none: use model.type cnn with model.block residual",
        ),
        (
            {"name": "x", "regularization": {"dropblock": {"rate": 0.1}}},
            "regularization.dropblock.rate = 0.1 drops blocks of the CNN's conv maps; "
            "model.type 'mlp' has none: use model.type cnn",
        ),
        (cnn_recipe({"block": "residual"}, {"drop_path": 1.0}), "drop_path: input should be less"),
        (cnn_recipe(regularization={"dropblock": {"rate": 1.2}}), "dropblock.rate: input should"),
        (cnn_recipe(regularization={"dropblock": {"block_size": 0}}), "dropblock.block_size"),
        (cnn_recipe(regularization={"drop_paht": 0.1}), "did you mean 'drop_path'"),
        (cnn_recipe(regularization={"dropblok": {"rate": 0.1}}), "did you mean 'dropblock'"),
        (cnn_recipe(regularization={"dropblock": {"blocksize": 3}}), "did you mean 'block_size'"),
        (cnn_recipe({"block": "residul"}), "did you mean 'residual'"),
        (
            cnn_recipe({"block": "residual", "padding": 0}),
            "model: block 'residual': kernel_size 3 with padding 0 changes the map size",
        ),
    ],
)
def test_recipe_refuses_bad_block_keys(raw, message):
    with pytest.raises(RecipeError, match=message.replace(".", r"\.").replace("(", r"\(")):
        resolve_recipe(raw)


@pytest.mark.parametrize(
    ("raw", "rule", "text"),
    [
        (
            cnn_recipe({"block": "residual"}, {"drop_path": 0.7}),
            "drop-path-too-high",
            "regularization.drop_path = 0.7 is above 0.5",
        ),
        (
            cnn_recipe(regularization={"dropblock": {"rate": 0.1, "block_size": 5}}),
            "dropblock-larger-than-map",
            "regularization.dropblock.block_size = 5 is larger than the 4x4 maps of conv block 2",
        ),
        (
            cnn_recipe(
                regularization={"dropblock": {"rate": 0.1, "block_size": 25}},
                data={"dataset": "mnist1d"},
            ),
            "dropblock-larger-than-map",
            "larger than the 20 maps of conv block 2",
        ),
    ],
)
def test_linter_warns_where_the_papers_do(raw, rule, text):
    findings = lint_recipe(resolve_recipe(raw))
    assert [f.rule for f in findings] == [rule]
    assert text in findings[0].message


def test_linter_is_quiet_on_sensible_settings():
    raw = cnn_recipe({"block": "residual"}, {"drop_path": 0.5, "dropblock": {"rate": 0.1}})
    assert lint_recipe(resolve_recipe(raw)) == []
    big_block_off = cnn_recipe(regularization={"dropblock": {"rate": 0.0, "block_size": 9}})
    assert lint_recipe(resolve_recipe(big_block_off)) == []


def test_dry_run_shows_the_new_keys():
    result = runner.invoke(
        app,
        [
            "fit", "cnn", "--dry-run", "--set", "model.block=residual",
            "--set", "regularization.drop_path=0.1", "--set", "regularization.dropblock.rate=0.1",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["model"]["block"] == "residual"
    assert shown["regularization"]["drop_path"] == 0.1
    assert shown["regularization"]["dropblock"] == {"rate": 0.1, "block_size": 3}


def test_recipe_error_on_the_cli_is_one_line_and_exit_2():
    result = runner.invoke(app, ["fit", "cnn", "--set", "regularization.drop_path=0.2"])
    assert result.exit_code == 2, result.output
    assert "regularization.drop_path = 0.2 drops the residual branch" in result.output
    assert "Traceback" not in result.output


def test_fit_trains_a_residual_cnn_with_drop_path_and_dropblock(tmp_path):
    recipe = {
        "name": "deep",
        "seed": 1,
        "data": {"dataset": "digits", "train_fraction": 0.3, "batch_size": 32},
        "model": {"type": "cnn", "channels": [8, 8], "convs_per_block": 1, "head": [16],
                  "block": "residual"},
        "regularization": {"drop_path": 0.2, "dropblock": {"rate": 0.1, "block_size": 3}},
        "trainer": {"max_epochs": 2, "enable_progress_bar": False},
        "logging": {"dir": str(tmp_path / "runs")},
    }  # fmt: skip
    path = tmp_path / "deep.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = runner.invoke(app, ["fit", str(path)])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "deep" / "version_0"
    best = torch.load(run_dir / "best.ckpt", map_location="cpu", weights_only=True)
    hparams = best["hyper_parameters"]
    assert (hparams["block"], hparams["drop_path"], hparams["dropblock"]) == ("residual", 0.2, 0.1)
    assert "features.1.0.body.0.weight" in best["state_dict"]
    assert "test_acc" in (run_dir / "metrics.csv").read_text().splitlines()[0]
